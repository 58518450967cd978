import Foundation
import KilnCore
import KilnParquet

/// Rows to write: leaf columns of `schema` (a Parquet schema whose top-level fields name table columns).
public struct LakeBatch: Sendable {
    public var schema: ParquetSchema
    public var columns: [ColumnData]

    public init(schema: ParquetSchema, columns: [ColumnData]) {
        self.schema = schema
        self.columns = columns
    }

    public var rowCount: Int { columns.first?.rowCount ?? 0 }

    /// The rows of batches that share a schema, in order; nil when there are none.
    static func concatenate(_ batches: [LakeBatch]) -> LakeBatch? {
        let parts = batches.filter { $0.rowCount > 0 }
        guard let first = parts.first else { return nil }
        guard parts.count > 1 else { return first }
        return LakeBatch(schema: first.schema, columns: first.columns.indices.map { i in
            ColumnData.concatenate(parts.map { $0.columns[i] }, maxDefinitionLevel: first.schema.columns[i].maxDefinitionLevel)
        })
    }
}

/// How a write treats the rows already in the table.
public enum WriteMode: String, Sendable {
    case append, overwrite
}

/// A Delta Lake table on the local file system: create, write, read, time travel, history.
///
/// Commits are optimistic: a writer reads version v, writes its data files, then creates `v+1.json` with
/// `link(2)`, which fails if another writer got there first. Blind appends then retry at the next version; any
/// other operation that raced a data change fails with `RESOURCE_CONFLICT`. A killed writer leaves at most
/// orphan data files (VACUUM removes them), never a partial commit.
public final class DeltaTable: Sendable {
    public let path: String
    public let log: DeltaLog
    /// Versions between checkpoints (`delta.checkpointInterval`, default 10).
    static let defaultCheckpointInterval: Int64 = 10

    /// The table in a local folder or at `s3://bucket/prefix` (`TableStorage.at`).
    public init(path: String) {
        log = DeltaLog(tablePath: path)
        self.path = log.tablePath
    }

    /// The table at `storage` (any blob store).
    public init(storage: TableStorage) {
        log = DeltaLog(storage: storage)
        path = storage.displayPath
    }

    /// Where the table's files live.
    public var storage: TableStorage { log.storage }

    /// Opens an existing table. - Throws: `RESOURCE_DOES_NOT_EXIST` when there is none at `path`.
    public static func open(_ path: String) throws -> DeltaTable { try open(DeltaTable(path: path)) }

    /// Opens an existing table in a store. - Throws: `RESOURCE_DOES_NOT_EXIST` when there is none.
    public static func open(storage: TableStorage) throws -> DeltaTable { try open(DeltaTable(storage: storage)) }

    static func open(_ table: DeltaTable) throws -> DeltaTable {
        guard try table.log.latestVersion() != nil else { throw KilnError.notFound("No Delta table at '\(table.path)'") }
        return table
    }

    public func snapshot(version: Int64? = nil) throws -> DeltaSnapshot { try log.snapshot(version: version) }

    static func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

    // MARK: Create

    /// Creates an empty table (version 0). - Throws: `RESOURCE_ALREADY_EXISTS` when a table is there.
    @discardableResult
    public static func create(at path: String, schema: DeltaSchema, partitionColumns: [String] = [], properties: [String: String] = [:],
                              name: String? = nil, description: String? = nil) throws -> DeltaTable {
        try create(DeltaTable(path: path), schema: schema, partitionColumns: partitionColumns, properties: properties, name: name,
                   description: description)
    }

    /// Creates an empty table (version 0) at `storage`. - Throws: `RESOURCE_ALREADY_EXISTS` when a table is there.
    @discardableResult
    public static func create(storage: TableStorage, schema: DeltaSchema, partitionColumns: [String] = [], properties: [String: String] = [:],
                              name: String? = nil, description: String? = nil) throws -> DeltaTable {
        try create(DeltaTable(storage: storage), schema: schema, partitionColumns: partitionColumns, properties: properties, name: name,
                   description: description)
    }

    static func create(_ table: DeltaTable, schema: DeltaSchema, partitionColumns: [String], properties: [String: String],
                       name: String?, description: String?) throws -> DeltaTable {
        let snapshot = try newSnapshot(table, schema: schema, partitionColumns: partitionColumns, properties: properties, name: name,
                                       description: description)
        _ = try table.commit([.protocolAction(snapshot.protocolVersion), .metadata(snapshot.metadata)], readVersion: -1, operation: "CREATE TABLE",
                             parameters: createParameters(snapshot), metrics: [:], blindAppend: false, configuration: properties)
        return table
    }

    /// Creates a table whose version 0 holds the protocol, the metadata and every row `produce` emits — one commit,
    /// as Spark and delta-rs write a new table: no reader sees an empty version 0, and a crash leaves no table or the
    /// whole first write. `mergeSchema` lets the batches add columns to `schema`.
    /// - Throws: `RESOURCE_ALREADY_EXISTS` when a table is there; if anything fails, the data files written are deleted.
    @discardableResult
    public static func create(at path: String, schema: DeltaSchema, partitionColumns: [String] = [], properties: [String: String] = [:],
                              name: String? = nil, description: String? = nil, mergeSchema: Bool = false, operation: String = "WRITE",
                              parameters: [String: JSONValue] = [:], batches produce: ((LakeBatch) throws -> Void) throws -> Void) throws -> WriteResult {
        let table = DeltaTable(path: path)
        let snapshot = try newSnapshot(table, schema: schema, partitionColumns: partitionColumns, properties: properties, name: name,
                                       description: description)
        return try table.write(into: snapshot, mode: .append, mergeSchema: mergeSchema, replaceWhere: nil, operation: operation,
                               parameters: createParameters(snapshot).merging(parameters) { _, new in new }, batches: produce)
    }

    /// Appends `produce`'s rows to the table at `path`, or creates it with them in one commit (named after the last
    /// part of `name`) when there is none.
    @discardableResult
    public static func append(to path: String, creatingWith schema: DeltaSchema, name: String, operation: String = "WRITE",
                              parameters: [String: JSONValue] = [:], batches produce: ((LakeBatch) throws -> Void) throws -> Void) throws -> WriteResult {
        let table = DeltaTable(path: path)
        if (try? table.log.latestVersion()) ?? nil != nil {
            return try table.write(mode: .append, operation: operation, parameters: parameters, batches: produce)
        }
        return try create(at: path, schema: schema, name: name.split(separator: ".").last.map(String.init), operation: operation,
                          parameters: parameters, batches: produce)
    }

    static func createParameters(_ snapshot: DeltaSnapshot) -> [String: JSONValue] {
        ["partitionBy": .string(JSONText.string(.array(snapshot.partitionColumns.map(JSONValue.string)))),
         "description": snapshot.metadata.description.map(JSONValue.string) ?? .null,
         "properties": .string(JSONText.string(.object(snapshot.metadata.configuration.mapValues(JSONValue.string))))]
    }

    /// The state a new table starts from (version -1: nothing committed), after checking the definition.
    static func newSnapshot(_ table: DeltaTable, schema: DeltaSchema, partitionColumns: [String], properties: [String: String],
                            name: String?, description: String?) throws -> DeltaSnapshot {
        let path = table.path
        if (try? table.log.latestVersion()) ?? nil != nil { throw KilnError.alreadyExists("A Delta table already exists at '\(path)'") }
        guard !schema.fields.isEmpty else { throw KilnError.invalid("A table needs at least one column") }
        var seen = Set<String>()
        for field in schema.fields where !seen.insert(field.name.lowercased()).inserted {
            throw KilnError.invalid("Column '\(field.name)' appears twice (Delta column names are case-insensitive)")
        }
        for column in partitionColumns {
            guard let field = schema.field(column) else { throw KilnError.invalid("Partition column '\(column)' is not in the schema") }
            switch field.type {
            case .primitive, .decimal: break
            default: throw KilnError.invalid("Partition column '\(column)' is a \(field.type.sqlName); partition columns must be primitive")
            }
        }
        guard partitionColumns.count < schema.fields.count else { throw KilnError.invalid("A table cannot be partitioned by every column") }
        let metadata = DeltaMetadata(name: name, description: description, schema: schema,
                                     partitionColumns: partitionColumns.map { schema.field($0)!.name }, configuration: properties,
                                     createdTime: now())
        return DeltaSnapshot(version: -1, protocolVersion: try protocolFor(schema: schema, properties: properties), metadata: metadata,
                             schema: schema, files: [], tombstones: [], transactions: [:])
    }

    /// The lowest protocol that supports what the table uses; features Kiln cannot honour are refused.
    static func protocolFor(schema: DeltaSchema, properties: [String: String]) throws -> DeltaProtocol {
        if let mode = properties["delta.columnMapping.mode"], mode != "none" {
            throw KilnError.invalid("delta.columnMapping.mode=\(mode) is not supported by Kiln's writer; Kiln reads such tables only")
        }
        if properties["delta.enableDeletionVectors"] == "true" {
            throw KilnError.invalid("delta.enableDeletionVectors is not supported by Kiln's writer; Kiln writes files without deletion vectors")
        }
        let constraints = properties.keys.contains { $0.hasPrefix("delta.constraints.") }
        func usesNtz(_ type: DeltaType) -> Bool {
            switch type {
            case .primitive(let p): p == "timestamp_ntz"
            case .decimal: false
            case .structure(let fields): fields.contains { usesNtz($0.type) }
            case .array(let e, _): usesNtz(e)
            case .map(let k, let v, _): usesNtz(k) || usesNtz(v)
            }
        }
        for key in properties.keys where key.hasPrefix("delta.constraints.") {
            _ = try LakePredicate.parse(properties[key]!)
        }
        let changeFeed = changeDataFeedOn(properties)
        let generated = !(try GeneratedColumn.of(schema)).isEmpty
        for field in schema.fields { _ = try invariant(field) }
        if schema.fields.contains(where: { usesNtz($0.type) }) {
            var writer = ["timestampNtz", "appendOnly", "invariants"]
            if constraints { writer.append("checkConstraints") }
            if changeFeed { writer.append("changeDataFeed") }
            if generated { writer.append("generatedColumns") }
            return DeltaProtocol(minReaderVersion: 3, minWriterVersion: 7, readerFeatures: ["timestampNtz"], writerFeatures: writer)
        }
        return DeltaProtocol(minReaderVersion: 1, minWriterVersion: changeFeed || generated ? 4 : constraints ? 3 : 2)
    }

    // MARK: Commit

    /// Writes commit `readVersion + 1` (or later, for blind appends that lose a race) with put-if-absent.
    /// - Returns: the committed version.
    func commit(_ actions: [DeltaAction], readVersion: Int64, operation: String, parameters: [String: JSONValue],
                metrics: [String: JSONValue], blindAppend: Bool, configuration: [String: String]) throws -> Int64 {
        var version = readVersion + 1
        while true {
            var info: [String: JSONValue] = [
                "timestamp": .number(String(Self.now())), "operation": .string(operation),
                "operationParameters": .object(parameters), "isBlindAppend": .bool(blindAppend),
                "engineInfo": .string("Kiln"), "clientVersion": .string("kiln-0.1.0"),
                "operationMetrics": .object(metrics.mapValues { v in if case .number(let n) = v { return .string(n) }; return v }),
            ]
            if readVersion >= 0 { info["readVersion"] = .number(String(readVersion)) }
            if let user = ProcessInfo.processInfo.environment["USER"] { info["userName"] = .string(user) }
            let text = ([DeltaAction.commitInfo(info)] + actions).map(\.json).joined(separator: "\n") + "\n"
            if try storage.store.putIfAbsent(try storage.key(DeltaLog.logFile(DeltaLog.commitName(version))), bytes: Array(text.utf8)) {
                // A checkpoint only speeds up later reads: the commit stands even if writing one fails.
                try? checkpointIfDue(version, configuration: configuration)
                return version
            }
            // Someone else committed `version`: see what they did.
            let latest = try log.latestVersion() ?? version
            for v in version...latest {
                for action in try log.readCommit(v) {
                    switch action {
                    case .metadata, .protocolAction:
                        throw KilnError(.resourceConflict, "The table's schema or protocol changed in version \(v) while this \(operation) ran; retry it")
                    case .add, .remove:
                        // Blind appends read nothing, so data changes cannot invalidate them; anything else read the files.
                        if !blindAppend {
                            throw KilnError(.resourceConflict, "Version \(v) changed the table's files while this \(operation) ran; retry it")
                        }
                    default:
                        continue
                    }
                }
            }
            version = latest + 1
        }
    }
}
