import Foundation
import KilnCore
import KilnParquet

extension DeltaTable {
    /// The classic checkpoint layout: one nullable struct column per action kind, one row per action.
    static let checkpointSchema: DeltaSchema = {
        let string = DeltaType.primitive("string"), long = DeltaType.primitive("long"), bool = DeltaType.primitive("boolean")
        let stringMap = DeltaType.map(string, string, valueContainsNull: true)
        func s(_ fields: [(String, DeltaType)]) -> DeltaType { .structure(fields.map { DeltaField(name: $0.0, type: $0.1) }) }
        return DeltaSchema([
            DeltaField(name: "txn", type: s([("appId", string), ("version", long), ("lastUpdated", long)])),
            DeltaField(name: "add", type: s([("path", string), ("partitionValues", stringMap), ("size", long), ("modificationTime", long),
                                             ("dataChange", bool), ("stats", string), ("tags", stringMap)])),
            DeltaField(name: "remove", type: s([("path", string), ("deletionTimestamp", long), ("dataChange", bool),
                                                ("extendedFileMetadata", bool), ("partitionValues", stringMap), ("size", long)])),
            DeltaField(name: "metaData", type: s([("id", string), ("name", string), ("description", string),
                                                  ("format", s([("provider", string), ("options", stringMap)])), ("schemaString", string),
                                                  ("partitionColumns", .array(string, containsNull: true)), ("configuration", stringMap),
                                                  ("createdTime", long)])),
            DeltaField(name: "protocol", type: s([("minReaderVersion", .primitive("integer")), ("minWriterVersion", .primitive("integer")),
                                                  ("readerFeatures", .array(string, containsNull: true)),
                                                  ("writerFeatures", .array(string, containsNull: true))])),
        ])
    }()

    /// Writes a checkpoint for `version` when it falls on the table's interval (`delta.checkpointInterval`, given
    /// by the committing writer's configuration, so ordinary commits replay nothing).
    func checkpointIfDue(_ version: Int64, configuration: [String: String]) throws {
        let interval = configuration["delta.checkpointInterval"].flatMap(Int64.init) ?? Self.defaultCheckpointInterval
        guard version > 0, interval > 0, version % interval == 0 else { return }
        try writeCheckpoint(try log.snapshot(version: version))
        if configuration["delta.enableExpiredLogCleanup"]?.lowercased() != "false" {
            let hours = Self.intervalHours(configuration["delta.logRetentionDuration"], default: 30 * 24)
            try cleanUpLog(before: Self.now() - Int64(hours * 3_600_000))
        }
    }

    /// Deletes the commits and checkpoints that come before the newest checkpoint all of whose earlier commits were
    /// made before `cutoff` (ms): readers start from that checkpoint, and time travel to older versions, past the
    /// log retention, ends with a clear error. Returns the number of files deleted.
    @discardableResult
    public func cleanUpLog(before cutoff: Int64) throws -> Int {
        let listing = try log.list()
        let versions = listing.commits.keys.sorted()
        var expiredThrough = (versions.first ?? 0) - 1
        for version in versions {
            guard let time = log.commitTimestamp(version), time < cutoff, version == expiredThrough + 1 else { break }
            expiredThrough = version
        }
        guard let start = listing.checkpoints.keys.filter({ $0 <= expiredThrough + 1 && $0 > 0 }).max() else { return 0 }
        var deleted = 0
        for (version, path) in listing.commits where version < start {
            if (try? storage.store.delete(try storage.key(path))) != nil { deleted += 1 }
        }
        for (version, parts) in listing.checkpoints where version < start {
            for part in parts where (try? storage.store.delete(try storage.key(part))) != nil { deleted += 1 }
        }
        return deleted
    }

    /// Writes `NNN.checkpoint.parquet` for a snapshot and points `_last_checkpoint` at it (both atomically).
    public func writeCheckpoint(_ snapshot: DeltaSnapshot) throws {
        let parquet = try Self.checkpointSchema.parquetSchema()
        var actions: [DeltaAction] = [.protocolAction(snapshot.protocolVersion), .metadata(snapshot.metadata)]
        actions += snapshot.transactions.keys.sorted().map { .txn(appId: $0, version: snapshot.transactions[$0]!, lastUpdated: nil) }
        actions += snapshot.files.map { .add($0) }
        actions += snapshot.tombstones.map { .remove($0) }
        var shredder = RecordShredder(schema: parquet)
        let fields = parquet.root.children
        for action in actions {
            guard case .object(let line) = try JSONValue.parse(Array(action.json.utf8)), let (name, value) = line.first else { continue }
            let key = name
            var row = [ParquetCell](repeating: .null, count: fields.count)
            guard let index = fields.firstIndex(where: { $0.name == key }) else { continue }
            row[index] = try JSONCells.cell(value, node: fields[index])
            try shredder.append(row)
        }
        let name = DeltaLog.logFile(DeltaLog.checkpointName(snapshot.version))
        var options = ParquetWriterOptions(codec: .snappy)
        options.createdBy = "kiln"
        // The store publishes the file whole when the writer closes (a temporary file renamed into place locally).
        let sink = try storage.parquetSink(name)
        defer { sink.abandon() }
        let writer = try ParquetFileWriter(sink: sink, schema: parquet, options: options)
        try writer.writeRowGroup(shredder.take())
        try writer.close()
        let size = (try? storage.store.head(try storage.key(name)))??.size ?? 0
        let pointer = "{\"version\":\(snapshot.version),\"size\":\(actions.count),\"sizeInBytes\":\(size),\"numOfAddFiles\":\(snapshot.files.count)}"
        try storage.store.put(try storage.key(DeltaLog.logFile("_last_checkpoint")), bytes: Array(pointer.utf8))
    }
}
