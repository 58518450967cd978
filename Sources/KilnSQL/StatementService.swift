import Foundation
import KilnCore
import KilnFrame

/// Runs SQL statements for the Statement Execution API: each statement gets an id, runs in the background, and can
/// be waited for, polled, fetched and canceled. Results are kept in memory until the statement is closed or the
/// service holds more than `capacity` finished statements (oldest dropped first).
public actor StatementService {
    public enum State: String, Sendable { case pending = "PENDING", running = "RUNNING", succeeded = "SUCCEEDED", failed = "FAILED",
                                              canceled = "CANCELED", closed = "CLOSED" }

    /// What a client sees of a statement.
    public struct Snapshot: Sendable {
        public var id: String
        public var state: State
        public var error: KilnError?
        public var result: Frame?
        /// Whether `row_limit` cut the result.
        public var truncated = false
    }

    /// A `:name` parameter as the API sends it: text plus an optional SQL type.
    public struct Parameter: Sendable {
        public var name: String
        public var value: String?
        public var type: String?
        public init(name: String, value: String?, type: String?) {
            self.name = name
            self.value = value
            self.type = type
        }
    }

    /// Decides, before a statement runs, whether `caller` may touch what it references (nil caller: Kiln itself).
    public typealias Authorizer = @Sendable (_ caller: Caller?, _ references: StatementReferences) async throws -> Void
    /// Told what a statement that succeeded created, before its success is reported (to record who owns it).
    public typealias Completion = @Sendable (_ caller: Caller?, _ references: StatementReferences) async -> Void

    let warehouse: String
    let capacity: Int
    let authorize: Authorizer?
    let completed: Completion?
    /// Narrows a successful result to what the caller may see (SHOW lists); runs before the result is kept.
    public typealias ResultFilter = @Sendable (_ caller: Caller?, _ references: StatementReferences, _ result: Frame) async throws -> Frame
    let filter: ResultFilter?
    /// Runs GRANT, REVOKE and SHOW GRANTS (the engine keeps no grants); nil: they fail.
    public typealias GrantRunner = @Sendable (_ caller: Caller?, _ statement: GrantStatement, _ catalog: Catalog) async throws -> Frame
    let grants: GrantRunner?
    /// The rows of the `information_schema` views a statement reads, as `caller` may see them, by
    /// `catalog.information_schema.view`.
    public typealias ViewProvider = @Sendable (_ caller: Caller?, _ views: Set<String>) async throws -> [String: Frame]
    let views: ViewProvider?
    var statements: [String: Snapshot] = [:]
    var order: [String] = []

    public init(warehouse: String, capacity: Int = 1000, authorize: Authorizer? = nil, completed: Completion? = nil, grants: GrantRunner? = nil,
                filter: ResultFilter? = nil, views: ViewProvider? = nil) {
        self.filter = filter
        self.views = views
        self.warehouse = warehouse
        self.capacity = capacity
        self.authorize = authorize
        self.completed = completed
        self.grants = grants
    }

    /// Starts `sql` and waits up to `wait` seconds for it; past that, the statement keeps running (or is canceled
    /// when `cancelOnTimeout`). - Throws: `INVALID_PARAMETER_VALUE` for bad parameters (nothing is started then).
    /// - Parameter caller: who runs it, checked by the authorizer first (a refusal runs nothing).
    public func execute(_ sql: String, parameters: [Parameter] = [], catalog: String? = nil, schema: String? = nil, caller: Caller? = nil,
                        rowLimit: Int? = nil, wait: Double, cancelOnTimeout: Bool = false) async throws -> Snapshot {
        var values: [String: Value] = [:]
        for p in parameters { values[p.name] = try Self.value(p) }
        var target = Catalog(warehouse: warehouse)
        if let catalog, !catalog.isEmpty { target.defaultCatalog = catalog }
        if let schema, !schema.isEmpty { target.defaultSchema = schema }
        // Parsed once, for the checks and the engine. A statement that does not parse reads nothing: it fails below as
        // the engine words it.
        let parsed = try? Parser.parse(sql, functions: target.functionResolver)
        if let grants, case .grants(let statement)? = parsed?.statement {
            let id = Self.newID()
            statements[id] = Snapshot(id: id, state: .running)
            order.append(id)
            trim()
            let outcome: Result<Frame, any Error>
            do { outcome = .success(try await grants(caller, statement, target)) } catch { outcome = .failure(error) }
            finish(id, outcome, rowLimit: rowLimit)
            // A refusal is the caller's error, as for any other statement that may not run.
            if case .failure(let error as KilnError) = outcome, error.code == .permissionDenied { throw error }
            return try get(id)
        }
        let references = authorize == nil && completed == nil && filter == nil ? nil : parsed.flatMap { try? StatementReferences.of($0, catalog: target) }
        if let authorize, let references { try await authorize(caller, references) }
        let completed = self.completed, filter = self.filter
        var engine = SQLEngine(catalog: target, parameters: values)
        if let views, let references, !references.informationSchemaRead.isEmpty {
            engine.virtualTables = try await views(caller, references.informationSchemaRead)
        }
        let id = Self.newID()
        statements[id] = Snapshot(id: id, state: .running)
        order.append(id)
        trim()
        // Queries are CPU-bound and synchronous: they run on Dispatch's pool, not on Swift concurrency's cooperative
        // threads (which serve HTTP requests), and report back to the actor when done.
        DispatchQueue.global(qos: .userInitiated).async { [engine] in
            let outcome: Result<Frame, any Error> = Result { try parsed.map { try engine.execute($0) } ?? engine.execute(sql) }
            Task {
                var result = outcome
                if case .success(let frame) = outcome, let references {
                    if let completed { await completed(caller, references) }
                    if let filter, references.listing != nil {
                        do { result = .success(try await filter(caller, references, frame)) } catch { result = .failure(error) }
                    }
                }
                await self.finish(id, result, rowLimit: rowLimit)
            }
        }
        let deadline = Date().addingTimeInterval(wait)
        while let s = statements[id], s.state == .running, Date() < deadline {
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
        if statements[id]?.state == .running, cancelOnTimeout { cancel(id) }
        return try get(id)
    }

    func finish(_ id: String, _ outcome: Result<Frame, any Error>, rowLimit: Int?) {
        guard var s = statements[id], s.state == .running else { return }
        switch outcome {
        case .success(var frame):
            if let rowLimit, frame.rowCount > rowLimit {
                frame = frame.slice(0..<rowLimit)
                s.truncated = true
            }
            s.result = frame
            s.state = .succeeded
        case .failure(let error as KilnError):
            s.error = error
            s.state = .failed
        case .failure(let error):
            s.error = KilnError(.internalError, "The statement failed: \(error)")
            s.state = .failed
        }
        statements[id] = s
    }

    /// The statement's current state. - Throws: `RESOURCE_DOES_NOT_EXIST` for an unknown id.
    public func get(_ id: String) throws -> Snapshot {
        guard let s = statements[id] else { throw KilnError.notFound("Statement \(id) does not exist") }
        return s
    }

    /// Cancels a running statement (a finished one is left as it is). - Throws: for an unknown id.
    public func cancel(_ id: String) {
        guard var s = statements[id], s.state == .running || s.state == .pending else { return }
        s.state = .canceled
        statements[id] = s
    }

    /// Forgets a statement's result.
    public func close(_ id: String) {
        guard var s = statements[id] else { return }
        s.state = .closed
        s.result = nil
        statements[id] = s
    }

    func trim() {
        while order.count > capacity {
            let oldest = order.removeFirst()
            statements[oldest] = nil
        }
    }

    static func newID() -> String {
        let hex = UUID().uuidString.lowercased()
        return hex
    }

    /// A parameter's value by its declared type (STRING when none).
    static func value(_ p: Parameter) throws -> Value {
        guard let text = p.value else { return .null }
        let type = (p.type ?? "STRING").uppercased()
        func bad() -> KilnError { KilnError.invalid("Parameter '\(p.name)' has the value '\(text)', which is not a valid \(type)") }
        switch type {
        case "STRING", "VARCHAR", "CHAR": return .string(text)
        case "INT", "INTEGER", "BIGINT", "LONG", "SMALLINT", "SHORT", "TINYINT", "BYTE":
            guard let n = Int64(text) else { throw bad() }
            return .int(n)
        case "DOUBLE", "FLOAT", "REAL":
            guard let d = Double(text) else { throw bad() }
            return .double(d)
        case "BOOLEAN":
            switch text.lowercased() {
            case "true": return .bool(true)
            case "false": return .bool(false)
            default: throw bad()
            }
        case "DATE":
            guard let d = Dates.parseDate(text) else { throw bad() }
            return .date(d)
        case "TIMESTAMP", "TIMESTAMP_NTZ":
            guard let t = Dates.parseTimestamp(text) else { throw bad() }
            return .timestamp(t)
        default:
            if type.hasPrefix("DECIMAL") {
                guard let d = Double(text) else { throw bad() }
                return .double(d)
            }
            throw KilnError.invalid("Parameter '\(p.name)' has the unknown type \(type)")
        }
    }
}
