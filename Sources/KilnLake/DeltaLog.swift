import Foundation
import KilnCore
import KilnParquet

/// A table's state at one version: what log replay yields.
public struct DeltaSnapshot: Sendable {
    public let version: Int64
    public let protocolVersion: DeltaProtocol
    public let metadata: DeltaMetadata
    public let schema: DeltaSchema
    /// Live files, in path order.
    public let files: [AddFile]
    /// Tombstones (removed files) not yet vacuumed.
    public let tombstones: [RemoveFile]
    public let transactions: [String: Int64]

    public var partitionColumns: [String] { metadata.partitionColumns }
    public var numRecords: Int64? {
        var total: Int64 = 0
        for file in files {
            guard let n = FileStats.parse(file.stats)?.numRecords else { return nil }
            total += n
            // numRecords counts the file's physical rows; a deletion vector's are gone.
            if case .number(let deleted)? = file.deletionVector?["cardinality"] { total -= Int64(deleted) ?? 0 }
        }
        return total
    }
}

/// The `_delta_log` folder of a table in its store: listing, reading commits and checkpoints, and replaying them
/// into snapshots.
public struct DeltaLog: Sendable {
    public let storage: TableStorage
    /// How messages name the table.
    public var tablePath: String { storage.displayPath }
    /// The log folder of a table in a local folder.
    public var logPath: String { tablePath + "/_delta_log" }

    /// The log of the table in a local folder or at `s3://bucket/prefix`.
    public init(tablePath: String) {
        var path = tablePath
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        storage = .at(path)
    }

    /// The log of the table at `storage`.
    public init(storage: TableStorage) { self.storage = storage }

    /// A log file's path relative to the table root.
    static func logFile(_ name: String) -> String { "_delta_log/" + name }

    public static func commitName(_ version: Int64) -> String { String(format: "%020lld.json", version) }
    static func checkpointName(_ version: Int64) -> String { String(format: "%020lld.checkpoint.parquet", version) }

    /// What `_delta_log` holds: commit versions and complete checkpoints (version → part paths).
    struct Listing {
        var commits: [Int64: String] = [:]
        var checkpoints: [Int64: [String]] = [:]
        var maxVersion: Int64? { (Array(commits.keys) + Array(checkpoints.keys)).max() }
    }

    func list() throws -> Listing {
        let prefix = (storage.root.isEmpty ? "" : storage.root + "/") + "_delta_log/"
        let objects = try storage.store.listAllObjects(prefix: prefix)
        guard !objects.isEmpty else {
            throw KilnError.notFound("No Delta table at '\(tablePath)' (no _delta_log directory)")
        }
        var listing = Listing()
        var parts: [Int64: [Int: String]] = [:]
        var partCounts: [Int64: Int] = [:]
        for object in objects {
            let name = String(object.key.dropFirst(prefix.count))
            guard !name.contains("/") else { continue }
            let pieces = name.split(separator: ".")
            guard pieces.count >= 2, pieces[0].count == 20, let version = Int64(pieces[0]) else { continue }
            if pieces.count == 2, pieces[1] == "json" {
                listing.commits[version] = Self.logFile(name)
            } else if pieces.count == 3, pieces[1] == "checkpoint", pieces[2] == "parquet" {
                listing.checkpoints[version] = [Self.logFile(name)]
            } else if pieces.count == 5, pieces[1] == "checkpoint", pieces[4] == "parquet", let part = Int(pieces[2]), let total = Int(pieces[3]) {
                parts[version, default: [:]][part] = Self.logFile(name)
                partCounts[version] = total
            }
        }
        for (version, found) in parts where listing.checkpoints[version] == nil {
            let total = partCounts[version] ?? 0
            if total > 0, (1...total).allSatisfy({ found[$0] != nil }) { listing.checkpoints[version] = (1...total).map { found[$0]! } }
        }
        return listing
    }

    /// The newest version, or nil when the log is empty.
    public func latestVersion() throws -> Int64? { try list().maxVersion }

    /// The actions of commit `version`.
    public func readCommit(_ version: Int64) throws -> [DeltaAction] {
        try parseCommit(at: Self.logFile(Self.commitName(version)))
    }

    /// The actions of the commit file at `path` (relative to the table root).
    func parseCommit(at path: String) throws -> [DeltaAction] {
        let data: [UInt8]
        do { data = try storage.bytes(path) } catch let error as KilnError where error.code == .resourceDoesNotExist {
            throw KilnError.notFound("Missing commit file \(tablePath)/\(path)")
        }
        var actions: [DeltaAction] = []
        for line in data.split(separator: UInt8(ascii: "\n")) where !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) {
            let value: JSONValue
            do { value = try JSONValue.parse(line) } catch { throw KilnError(.invalidState, "Commit \(path) holds a line that is not JSON") }
            if let action = try DeltaAction.parse(value) { actions.append(action) }
        }
        return actions
    }

    /// The actions a checkpoint stores (one row per action).
    func readCheckpoint(_ paths: [String]) throws -> [DeltaAction] {
        var actions: [DeltaAction] = []
        for path in paths {
            let reader: ParquetFileReader
            do { reader = try storage.parquet(path) } catch let error as ParquetError {
                throw KilnError(.invalidState, "Checkpoint \(path) cannot be read: \(error.description)")
            }
            let wanted = ["protocol", "metaData", "add", "remove", "txn"]
            let fields = reader.schema.root.children.filter { wanted.contains($0.name) }
            let columns = try reader.columnIndices(fields.map(\.name))
            for group in reader.metadata.rowGroups.indices {
                let data = try reader.readRowGroup(group, columns: columns)
                let assembler = try RecordAssembler(schema: reader.schema, columns: Dictionary(uniqueKeysWithValues: zip(columns, data)))
                let shown = assembler.fields
                for row in 0..<assembler.rowCount {
                    for (field, cell) in zip(shown, try assembler.row(row)) where cell != .null {
                        if let action = try DeltaAction.parse(.object([field.name: JSONCells.json(cell, node: field)])) { actions.append(action) }
                    }
                }
            }
        }
        return actions
    }

    /// When commit `version` was made: the commit file's modification time, as the protocol says (ms).
    public func commitTimestamp(_ version: Int64) -> Int64? {
        guard let key = try? storage.key(Self.logFile(Self.commitName(version))) else { return nil }
        return (try? storage.store.head(key))??.modifiedMillis
    }

    /// Replays the log up to `version` (the newest by default).
    public func snapshot(version: Int64? = nil) throws -> DeltaSnapshot {
        let listing = try list()
        guard let latest = listing.maxVersion else { throw KilnError.notFound("The Delta table at '\(tablePath)' has no commits") }
        let target = version ?? latest
        guard target >= 0, target <= latest else {
            throw KilnError.notFound("Version \(target) of the table does not exist; the newest is \(latest)")
        }
        let checkpoint = listing.checkpoints.keys.filter { $0 <= target }.max()
        var state = Replay()
        var start: Int64 = 0
        if let checkpoint {
            try state.apply(try readCheckpoint(listing.checkpoints[checkpoint]!), version: checkpoint)
            start = checkpoint + 1
        }
        if start <= target {
            let paths = try (start...target).map { v -> String in
                guard let path = listing.commits[v] else {
                    let first = listing.commits.keys.min() ?? 0
                    throw KilnError.notFound(first > v
                        ? "Version \(target) can no longer be read: its commits were cleaned up (the oldest kept is \(first))"
                        : "The Delta log is missing commit \(v)")
                }
                return path
            }
            // Commits parse independently (on every core); they apply in order.
            let parsed = try concurrentMap(paths.count) { try self.parseCommit(at: paths[$0]) }
            for (offset, actions) in parsed.enumerated() { try state.apply(actions, version: start + Int64(offset)) }
        }
        guard let proto = state.protocolAction, let metadata = state.metadata else {
            throw KilnError(.invalidState, "The Delta log has no protocol or metaData action by version \(target)")
        }
        try proto.checkReadable()
        return DeltaSnapshot(version: target, protocolVersion: proto, metadata: metadata, schema: try metadata.schema(),
                             files: state.files.values.sorted { $0.path < $1.path }, tombstones: Array(state.tombstones.values),
                             transactions: state.transactions)
    }

    /// The newest version whose commit time is at or before `timestamp` (ms since the epoch).
    public func version(at timestamp: Int64) throws -> Int64 {
        let listing = try list()
        let versions = listing.commits.keys.sorted()
        var found: Int64?
        for v in versions {
            guard let t = commitTimestamp(v) else { continue }
            if t <= timestamp { found = v } else { break }
        }
        guard let found else {
            let first = versions.first.flatMap(commitTimestamp).map { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double($0) / 1000)) }
            throw KilnError.notFound("The table has no version at or before that time; its first commit is at \(first ?? "?")")
        }
        return found
    }

    /// Commit infos, newest first.
    public func history(limit: Int? = nil) throws -> [(version: Int64, timestamp: Int64?, info: [String: JSONValue])] {
        let versions = try list().commits.keys.sorted(by: >)
        return try versions.prefix(limit ?? versions.count).map { v in
            var info: [String: JSONValue] = [:]
            for case .commitInfo(let i) in try readCommit(v) { info = i }
            var timestamp = commitTimestamp(v)
            if case .number(let n)? = info["timestamp"], let t = Int64(n) { timestamp = t }
            return (v, timestamp, info)
        }
    }
}

/// Log replay: latest protocol and metadata win, files reconcile by path (+ deletion vector), removes tombstone.
struct Replay {
    var protocolAction: DeltaProtocol?
    var metadata: DeltaMetadata?
    var files: [String: AddFile] = [:]
    var tombstones: [String: RemoveFile] = [:]
    var transactions: [String: Int64] = [:]

    mutating func apply(_ actions: [DeltaAction], version: Int64) throws {
        for action in actions {
            switch action {
            case .protocolAction(let p): protocolAction = p
            case .metadata(let m): metadata = m
            case .add(let a):
                files[a.key] = a
                tombstones[a.key] = nil
            case .remove(let r):
                files[r.key] = nil
                tombstones[r.key] = r
            case .txn(let appId, let v, _): transactions[appId] = v
            case .commitInfo, .cdc, .other: break
            }
        }
    }
}
