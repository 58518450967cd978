import Crypto
import Foundation
import KilnCore
import KilnStore
import Logging
import SQLKit
import Synchronization

/// One API call as the audit log keeps it: who, what, from where, and how it ended.
public struct AuditEvent: Sendable, Equatable {
    public var eventID: String
    /// Epoch milliseconds.
    public var eventTime: Int64
    /// The API family, as Databricks names them (`mlflowExperiment`, `modelRegistry`, `accounts`, `jobs`, ...).
    public var serviceName: String
    /// The operation, e.g. `postRunsLogMetric`.
    public var actionName: String
    /// The caller's name; nil when the call carried no valid credentials.
    public var userName: String?
    public var sourceIP: String?
    public var userAgent: String?
    public var requestID: String
    /// Request fields with secret values replaced by `[REDACTED]`.
    public var requestParams: [String: String]
    public var statusCode: Int
    public var errorMessage: String?

    public init(eventID: String = UUID().uuidString.lowercased(), eventTime: Int64, serviceName: String, actionName: String, userName: String?,
                sourceIP: String?, userAgent: String?, requestID: String, requestParams: [String: String], statusCode: Int, errorMessage: String?) {
        self.eventID = eventID
        self.eventTime = eventTime
        self.serviceName = serviceName
        self.actionName = actionName
        self.userName = userName
        self.sourceIP = sourceIP
        self.userAgent = userAgent
        self.requestID = requestID
        self.requestParams = requestParams
        self.statusCode = statusCode
        self.errorMessage = errorMessage
    }
}

/// A stored event: its place in the chain and the hashes that link it.
public struct AuditRecord: Sendable, Equatable {
    public var sequence: Int64
    public var event: AuditEvent
    public var previousHash: String
    public var hash: String
}

/// The append-only audit log: events are queued by the caller and written in small batches, each record hash-chained
/// to the one before it (SHA-256 over the previous hash and the record's canonical JSON), so that changing, removing
/// or reordering a stored record is found by ``verify()``.
///
/// Writes are batched (at most `flushMillis` apart) to keep the log off the hot paths; a crash loses at most the
/// events of the last unflushed batch. ``flush()`` writes what is queued now (the server calls it on shutdown).
public final class AuditLog: Sendable {
    let database: any KilnDatabase
    let logger: Logger
    let flushMillis: Int
    /// Events not yet written, as closures that build them: the request pays for an append, the writer for the rest.
    let queue = Mutex<[@Sendable () -> AuditEvent]>([])
    let wakeup: AsyncStream<Void>.Continuation
    let writer: AsyncSerialLock
    let exporter = AsyncSerialLock()
    let task = Mutex<Task<Void, Never>?>(nil)

    /// The hash a chain starts from.
    public static let genesis = String(repeating: "0", count: 64)

    public static let migrations = [
        Migration("audit_0001_events", [
            """
            CREATE TABLE audit_events (
                seq BIGINT PRIMARY KEY,
                event_id VARCHAR(36) NOT NULL,
                event_time BIGINT NOT NULL,
                service_name VARCHAR(64) NOT NULL,
                action_name VARCHAR(200) NOT NULL,
                user_name TEXT,
                source_ip TEXT,
                user_agent TEXT,
                request_id VARCHAR(64) NOT NULL,
                request_params TEXT NOT NULL,
                status_code INTEGER NOT NULL,
                error_message TEXT,
                prev_hash VARCHAR(64) NOT NULL,
                hash VARCHAR(64) NOT NULL
            )
            """,
        ]),
    ]

    /// Opens the log over `database` and starts its writer.
    public static func make(database: any KilnDatabase, logger: Logger, flushMillis: Int = 100) async throws -> AuditLog {
        try await Migrator.migrate(database, migrations, logger: logger)
        let log = AuditLog(database: database, logger: logger, flushMillis: flushMillis)
        log.start()
        return log
    }

    init(database: any KilnDatabase, logger: Logger, flushMillis: Int) {
        self.database = database
        self.logger = logger
        self.flushMillis = flushMillis
        self.writer = AsyncSerialLock()
        var continuation: AsyncStream<Void>.Continuation!
        let stream = AsyncStream<Void>(bufferingPolicy: .bufferingNewest(1)) { continuation = $0 }
        self.wakeup = continuation
        self.stream = stream
    }

    let stream: AsyncStream<Void>

    func start() {
        let delay = UInt64(flushMillis) * 1_000_000
        task.withLock { task in
            task = Task { [self] in
                for await _ in stream {
                    try? await Task.sleep(nanoseconds: delay)
                    do { try await flush() } catch {
                        logger.error("Could not write audit events; they stay queued", metadata: ["error": "\(error)"])
                    }
                }
            }
        }
    }

    /// Queues an event; it is written within `flushMillis`.
    public func record(_ event: AuditEvent) { record { event } }

    /// Queues an event built later, by the writer (so that a request spends no time formatting its own event).
    public func record(_ make: @escaping @Sendable () -> AuditEvent) {
        queue.withLock { $0.append(make) }
        wakeup.yield()
    }

    /// Writes every queued event now, chained after the last stored record.
    public func flush() async throws {
        try await writer.withLock {
            let pending = self.queue.withLock { q -> [@Sendable () -> AuditEvent] in let out = q; q.removeAll(); return out }
            guard !pending.isEmpty else { return }
            let events = pending.map { $0() }
            do {
                try await self.database.write { sql in
                    var (sequence, previous) = try await Self.head(sql)
                    // Bounded by the store's bind limit: 14 values a row.
                    for chunk in stride(from: 0, to: events.count, by: 60).map({ Array(events[$0..<min($0 + 60, events.count)]) }) {
                        var query = SQLQueryString("""
                            INSERT INTO audit_events (seq, event_id, event_time, service_name, action_name, user_name, source_ip, user_agent,
                                request_id, request_params, status_code, error_message, prev_hash, hash) VALUES
                            """)
                        for (i, event) in chunk.enumerated() {
                            sequence += 1
                            let params = Self.paramsJSON(event.requestParams)
                            let hash = Self.hash(sequence: sequence, event: event, previous: previous, params: params)
                            query.appendLiteral(i == 0 ? " (" : ", (")
                            query.appendInterpolation(bind: sequence)
                            for value in [event.eventID] { query.appendLiteral(", "); query.appendInterpolation(bind: value) }
                            query.appendLiteral(", "); query.appendInterpolation(bind: event.eventTime)
                            for value in [event.serviceName, event.actionName] { query.appendLiteral(", "); query.appendInterpolation(bind: value) }
                            for value in [event.userName, event.sourceIP, event.userAgent] { query.appendLiteral(", "); query.appendInterpolation(bind: value) }
                            query.appendLiteral(", "); query.appendInterpolation(bind: event.requestID)
                            query.appendLiteral(", "); query.appendInterpolation(bind: params)
                            query.appendLiteral(", "); query.appendInterpolation(bind: event.statusCode)
                            query.appendLiteral(", "); query.appendInterpolation(bind: event.errorMessage)
                            query.appendLiteral(", "); query.appendInterpolation(bind: previous)
                            query.appendLiteral(", "); query.appendInterpolation(bind: hash)
                            query.appendLiteral(")")
                            previous = hash
                        }
                        try await sql.raw(query).run()
                    }
                }
            } catch {
                // Put them back in front, in order, for the next try.
                let again: [@Sendable () -> AuditEvent] = events.map { event in { @Sendable in event } }
                self.queue.withLock { $0.insert(contentsOf: again, at: 0) }
                throw error
            }
        }
    }

    /// Stops the writer after writing what is queued.
    public func close() async {
        task.withLock { $0?.cancel() }
        wakeup.finish()
        do { try await flush() } catch { logger.error("Could not write the last audit events", metadata: ["error": "\(error)"]) }
    }

    static func head(_ sql: any SQLDatabase) async throws -> (Int64, String) {
        guard let row = try await sql.raw("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").first() else { return (0, genesis) }
        return (try row.decode(column: "seq", as: Int64.self), try row.decode(column: "hash", as: String.self))
    }

    /// Records after `sequence`, oldest first.
    public func records(after sequence: Int64, limit: Int = 5000) async throws -> [AuditRecord] {
        try await database.read { sql in try await Self.records(sql, after: sequence, limit: limit) }
    }

    static func records(_ sql: any SQLDatabase, after sequence: Int64, limit: Int) async throws -> [AuditRecord] {
        try await sql.raw("SELECT * FROM audit_events WHERE seq > \(bind: sequence) ORDER BY seq LIMIT \(bind: limit)").all().map { row in
            var params: [String: String] = [:]
            if case .object(let o)? = try? JSONValue.parse(Array(try row.decode(column: "request_params", as: String.self).utf8)) {
                for (k, v) in o { if case .string(let s) = v { params[k] = s } }
            }
            let event = AuditEvent(
                eventID: try row.decode(column: "event_id", as: String.self), eventTime: try row.decode(column: "event_time", as: Int64.self),
                serviceName: try row.decode(column: "service_name", as: String.self), actionName: try row.decode(column: "action_name", as: String.self),
                userName: try row.decode(column: "user_name", as: String?.self), sourceIP: try row.decode(column: "source_ip", as: String?.self),
                userAgent: try row.decode(column: "user_agent", as: String?.self), requestID: try row.decode(column: "request_id", as: String.self),
                requestParams: params, statusCode: try row.decode(column: "status_code", as: Int.self),
                errorMessage: try row.decode(column: "error_message", as: String?.self))
            return AuditRecord(sequence: try row.decode(column: "seq", as: Int64.self), event: event,
                               previousHash: try row.decode(column: "prev_hash", as: String.self), hash: try row.decode(column: "hash", as: String.self))
        }
    }

    /// The outcome of checking the chain.
    public struct Verification: Sendable, Equatable {
        /// Records checked.
        public var checked: Int
        /// The first record that does not hold, and why; nil when the chain is whole.
        public var broken: (sequence: Int64, eventID: String, reason: String)?

        public static func == (a: Verification, b: Verification) -> Bool {
            a.checked == b.checked && a.broken?.sequence == b.broken?.sequence && a.broken?.reason == b.broken?.reason
        }
    }

    /// Walks the whole chain: each record's hash must match its content, its previous hash the record before it,
    /// and sequence numbers must run without gaps from 1.
    public func verify() async throws -> Verification {
        try await flush()
        return try await database.read { sql in try await Self.verify(sql) }
    }

    /// Checks the chain in `sql` (the CLI calls this on a store it opened itself).
    public static func verify(_ sql: any SQLDatabase) async throws -> Verification {
        var expected: Int64 = 1
        var previous = genesis
        var checked = 0
        while true {
            let page = try await records(sql, after: expected - 1, limit: 5000)
            if page.isEmpty { return Verification(checked: checked, broken: nil) }
            for record in page {
                if record.sequence != expected {
                    return Verification(checked: checked, broken: (record.sequence, record.event.eventID,
                                                                   "records \(expected)…\(record.sequence - 1) are missing"))
                }
                if record.previousHash != previous {
                    return Verification(checked: checked, broken: (record.sequence, record.event.eventID,
                                                                   "its previous hash does not match record \(record.sequence - 1)"))
                }
                if hash(sequence: record.sequence, event: record.event, previous: record.previousHash) != record.hash {
                    return Verification(checked: checked, broken: (record.sequence, record.event.eventID, "its content does not match its hash"))
                }
                previous = record.hash
                expected += 1
                checked += 1
            }
        }
    }

    /// SHA-256 over the previous hash and the record's canonical JSON (fixed key order), hex.
    public static func hash(sequence: Int64, event e: AuditEvent, previous: String, params: String? = nil) -> String {
        var w = JSONWriter()
        w.object { w in
            w.field("seq", sequence)
            w.field("event_id", e.eventID)
            w.field("event_time", e.eventTime)
            w.field("service_name", e.serviceName)
            w.field("action_name", e.actionName)
            w.field("user_name", e.userName)
            w.field("source_ip", e.sourceIP)
            w.field("user_agent", e.userAgent)
            w.field("request_id", e.requestID)
            w.key("request_params")
            w.raw(params ?? paramsJSON(e.requestParams))
            w.field("status_code", Int64(e.statusCode))
            w.field("error_message", e.errorMessage)
        }
        var bytes = Array(previous.utf8)
        bytes.append(0x0A)
        bytes += w.bytes
        return Hex.encode(SHA256.hash(data: bytes))
    }

    /// Request params as a JSON object with sorted keys.
    static func paramsJSON(_ params: [String: String]) -> String {
        var w = JSONWriter()
        w.object { w in for key in params.keys.sorted() { w.field(key, params[key]) } }
        return String(decoding: w.bytes, as: UTF8.self)
    }
}
