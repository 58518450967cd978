import Foundation
import KilnCore
import KilnParquet

/// What a DELETE did; `version` is nil when no row matched (nothing is committed then).
public struct DeleteResult: Sendable {
    public var version: Int64?
    public var rowsDeleted: Int
    public var filesRemoved: Int
    public var filesAdded: Int
}

extension DeltaTable {
    /// Deletes the rows matching `predicate`: files with matching rows are rewritten without them (or dropped).
    @discardableResult
    public func delete(where text: String) throws -> DeleteResult {
        let plan = try plan(predicate: text)
        let snapshot = plan.snapshot
        try Self.checkWritable(snapshot)
        if snapshot.metadata.configuration["delta.appendOnly"] == "true" {
            throw KilnError(.invalidState, "The table is append-only (delta.appendOnly=true); rows cannot be deleted")
        }
        guard let predicate = plan.predicate else { throw KilnError.invalid("DELETE needs a condition") }
        let schema = snapshot.schema
        let partitions = Set(snapshot.partitionColumns.map { $0.lowercased() })
        let dataFields = schema.fields.filter { !partitions.contains($0.name.lowercased()) }
        let dataSchema = DeltaSchema(dataFields)
        let recordChanges = Self.changeDataFeedOn(snapshot.metadata.configuration)
        var actions: [DeltaAction] = []
        var adds: [AddFile] = [], changes: [AddFile] = []
        var deleted = 0, removed = 0
        do {
            for file in plan.files {
                let reader = try storage.parquet(file.path)
                let partition = partitionLookup(file, schema: schema)
                var kept: [LakeBatch] = [], gone: [LakeBatch] = []
                var matched = 0
                for group in reader.metadata.rowGroups.indices {
                    let rows = Int(reader.metadata.rowGroups[group].numRows)
                    let data = try reader.readRowGroup(group)
                    let mask = try predicate.mask(rows: rows) { name in
                        Self.predicateInput(name, schema: schema, file: reader.schema, data: { data[$0] }, partitions: partitions, partition: partition)
                    }
                    let keep = mask.indices.filter { mask[$0] != 1 }
                    matched += rows - keep.count
                    kept.append(LakeBatch(schema: reader.schema, columns: keep.count == rows ? data : data.indices.map {
                        data[$0].take(rows: keep, maxDefinitionLevel: reader.columns[$0].maxDefinitionLevel)
                    }))
                    if recordChanges, keep.count < rows {
                        let drop = mask.indices.filter { mask[$0] == 1 }
                        gone.append(LakeBatch(schema: reader.schema, columns: data.indices.map {
                            data[$0].take(rows: drop, maxDefinitionLevel: reader.columns[$0].maxDefinitionLevel)
                        }))
                    }
                }
                guard matched > 0 else { continue }
                deleted += matched
                removed += 1
                actions.append(.remove(RemoveFile(path: file.path, deletionTimestamp: Self.now(), dataChange: true,
                                                  partitionValues: file.partitionValues, size: file.size)))
                if let merged = LakeBatch.concatenate(try kept.map { try Self.conform($0, to: dataSchema) }) {
                    adds.append(try writeFile(merged.columns, schema: merged.schema, deltaSchema: dataSchema, partitionValues: file.partitionValues,
                                              partitionColumns: snapshot.partitionColumns))
                }
                if let merged = LakeBatch.concatenate(gone),
                   let change = try changeFile(merged, changeType: "delete", dataSchema: dataSchema, file: file, partitionColumns: snapshot.partitionColumns) {
                    changes.append(change)
                }
            }
            guard deleted > 0 else { return DeleteResult(version: nil, rowsDeleted: 0, filesRemoved: 0, filesAdded: 0) }
            actions += adds.map { .add($0) } + changes.map(\.cdc)
            let version = try commit(actions, readVersion: snapshot.version, operation: "DELETE", parameters: ["predicate": .string(text)],
                                     metrics: ["numDeletedRows": .number(String(deleted)), "numRemovedFiles": .number(String(removed)),
                                               "numAddedFiles": .number(String(adds.count)), "numAddedChangeFiles": .number(String(changes.count))],
                                     blindAppend: false, configuration: snapshot.metadata.configuration)
            return DeleteResult(version: version, rowsDeleted: deleted, filesRemoved: removed, filesAdded: adds.count)
        } catch {
            for add in adds + changes { storage.delete(add.path) }
            throw error
        }
    }

    /// Makes the current content that of `version` with a new commit (files re-added, later ones removed).
    @discardableResult
    public func restore(to version: Int64) throws -> WriteResult {
        let current = try snapshot()
        try Self.checkWritable(current)
        guard version < current.version else { throw KilnError.invalid("Version \(version) is not older than the current version \(current.version)") }
        let target = try snapshot(version: version)
        let currentKeys = Set(current.files.map(\.key)), targetKeys = Set(target.files.map(\.key))
        let now = Self.now()
        var actions: [DeltaAction] = []
        if target.metadata != current.metadata {
            var m = target.metadata
            m.id = current.metadata.id
            actions.append(.metadata(m))
        }
        let removes = current.files.filter { !targetKeys.contains($0.key) }
        var adds = target.files.filter { !currentKeys.contains($0.key) }
        for add in adds where !storage.exists(add.path) {
            throw KilnError(.invalidState, "Version \(version) cannot be restored: its file \(add.path) was vacuumed")
        }
        for i in adds.indices { adds[i].dataChange = true }
        actions += removes.map { .remove(RemoveFile(path: $0.path, deletionTimestamp: now, dataChange: true, partitionValues: $0.partitionValues, size: $0.size)) }
        actions += adds.map { .add($0) }
        let committed = try commit(actions, readVersion: current.version, operation: "RESTORE", parameters: ["version": .number(String(version))],
                                   metrics: ["numRestoredFiles": .number(String(adds.count)), "numRemovedFiles": .number(String(removes.count))],
                                   blindAppend: false, configuration: current.metadata.configuration)
        return WriteResult(version: committed, filesAdded: adds.count, filesRemoved: removes.count, rowsWritten: 0)
    }

    /// The retention of removed files: `delta.deletedFileRetentionDuration` (`interval 7 days`), default a week.
    func retentionHours(_ snapshot: DeltaSnapshot) -> Double {
        Self.intervalHours(snapshot.metadata.configuration["delta.deletedFileRetentionDuration"], default: 168)
    }

    /// A table property like `interval 7 days` in hours; `fallback` when absent or unreadable.
    static func intervalHours(_ value: String?, default fallback: Double) -> Double {
        guard let text = value?.lowercased() else { return fallback }
        let words = text.replacingOccurrences(of: "interval", with: "").split(separator: " ")
        guard words.count == 2, let n = Double(words[0]) else { return fallback }
        let unit = words[1].hasSuffix("s") ? String(words[1].dropLast()) : String(words[1])
        let hours: [String: Double] = ["week": 168, "day": 24, "hour": 1, "minute": 1.0 / 60, "second": 1.0 / 3600]
        guard let scale = hours[unit] else { return fallback }
        return n * scale
    }

    /// Deletes files under the table that no version within the retention needs; returns their relative paths.
    /// Refuses a retention shorter than the table's unless `force`.
    public func vacuum(retentionHours hours: Double? = nil, dryRun: Bool = false, force: Bool = false) throws -> [String] {
        let snapshot = try snapshot()
        let minimum = retentionHours(snapshot)
        let retention = hours ?? minimum
        guard retention >= 0 else { throw KilnError.invalid("The retention cannot be negative") }
        if retention < minimum, !force {
            throw KilnError.invalid("A retention of \(retention) hours is shorter than the table's \(minimum); readers of older versions would fail. Pass force to do it anyway")
        }
        let cutoff = Double(Self.now()) - retention * 3_600_000
        // Live and recently removed files by their path under the table root; every object the store lists under
        // the root that is neither, is older than the cutoff and is not under a `_`/`.` folder or name goes.
        func relative(_ logPath: String) -> String? {
            guard let (key, _) = try? storage.resolve(logPath), let key else { return nil }
            return storage.root.isEmpty ? key.path : String(key.path.dropFirst(storage.root.count + 1))
        }
        var keep = Set(snapshot.files.compactMap { relative($0.path) })
        for tombstone in snapshot.tombstones where Double(tombstone.deletionTimestamp ?? 0) > cutoff {
            if let r = relative(tombstone.path) { keep.insert(r) }
        }
        var victims: [String] = []
        let prefix = storage.root.isEmpty ? "" : storage.root + "/"
        for object in try storage.store.listAllObjects(prefix: prefix) {
            let name = String(object.key.dropFirst(prefix.count))
            guard !name.split(separator: "/").contains(where: { $0.hasPrefix("_") || $0.hasPrefix(".") }) else { continue }
            guard !keep.contains(name), Double(object.modifiedMillis) < cutoff else { continue }
            victims.append(name)
        }
        victims.sort()
        if !dryRun { for victim in victims { try storage.store.delete(try storage.key(victim)) } }
        return victims
    }
}

/// What an OPTIMIZE did.
public struct OptimizeResult: Sendable {
    public var version: Int64?
    public var filesRemoved = 0
    public var filesAdded = 0
    public var partitionsOptimized = 0
}

extension DeltaTable {
    /// Bin-packs small files: within each partition, files under `targetSize` bytes are rewritten together into
    /// files of about `targetSize` (`dataChange=false`: readers of the change feed see no change).
    @discardableResult
    public func optimize(targetSize: Int64 = 100 << 20, where text: String? = nil, zOrderBy: [String] = []) throws -> OptimizeResult {
        let plan = try plan(predicate: text)
        let snapshot = plan.snapshot
        try Self.checkWritable(snapshot)
        if let predicate = plan.predicate,
           !predicate.columns.isSubset(of: Set(snapshot.partitionColumns.map { $0.lowercased() })) {
            throw KilnError.invalid("OPTIMIZE's condition must use partition columns only")
        }
        let partitions = Set(snapshot.partitionColumns.map { $0.lowercased() })
        let dataSchema = DeltaSchema(snapshot.schema.fields.filter { !partitions.contains($0.name.lowercased()) })
        for name in zOrderBy {
            guard let field = snapshot.schema.field(name), !partitions.contains(name.lowercased()) else {
                throw KilnError.invalid("Z-ORDER BY '\(name)': it must be a column of the table and not a partition column")
            }
            switch field.type {
            case .primitive, .decimal: break
            default: throw KilnError.invalid("Z-ORDER BY '\(name)': a \(field.type.sqlName) cannot be ordered")
            }
        }
        var byPartition: [[String: String?]: [AddFile]] = [:]
        // Bin-packing takes the small files; Z-ordering rewrites every file of a partition.
        for file in plan.files where file.size < targetSize || !zOrderBy.isEmpty { byPartition[file.partitionValues, default: []].append(file) }
        var result = OptimizeResult()
        var actions: [DeltaAction] = []
        var adds: [AddFile] = []
        do {
            for (values, files) in byPartition.sorted(by: { $0.value[0].path < $1.value[0].path }) where files.count > 1 || !zOrderBy.isEmpty {
                result.partitionsOptimized += 1
                var bin: [LakeBatch] = []
                var binBytes: Int64 = 0
                func flush() throws {
                    guard !bin.isEmpty else { return }
                    let target = try dataSchema.parquetSchema()
                    var columns = target.columns.indices.map { i in
                        ColumnData.concatenate(bin.map { $0.columns[i] }, maxDefinitionLevel: target.columns[i].maxDefinitionLevel)
                    }
                    var pieces = [0..<(columns.first?.rowCount ?? 0)]
                    if !zOrderBy.isEmpty {
                        let order = try Self.zOrder(LakeBatch(schema: target, columns: columns), by: zOrderBy, schema: dataSchema)
                        columns = columns.indices.map { columns[$0].take(rows: order, maxDefinitionLevel: target.columns[$0].maxDefinitionLevel) }
                        // Cut the sorted rows into files of about the target size.
                        let rows = order.count
                        let perFile = max(1, Int(Double(rows) * Double(targetSize) / Double(max(1, binBytes))))
                        pieces = stride(from: 0, to: rows, by: perFile).map { $0..<min(rows, $0 + perFile) }
                    }
                    for piece in pieces {
                        let part = pieces.count == 1 ? columns : columns.indices.map {
                            columns[$0].slice(rows: piece, maxDefinitionLevel: target.columns[$0].maxDefinitionLevel)
                        }
                        var add = try writeFile(part, schema: target, deltaSchema: dataSchema, partitionValues: values,
                                                partitionColumns: snapshot.partitionColumns)
                        add.dataChange = false
                        adds.append(add)
                    }
                    bin = []
                    binBytes = 0
                }
                for file in files.sorted(by: { $0.path < $1.path }) {
                    let reader = try storage.parquet(file.path)
                    for group in reader.metadata.rowGroups.indices {
                        bin.append(try Self.conform(LakeBatch(schema: reader.schema, columns: try reader.readRowGroup(group)), to: dataSchema))
                    }
                    binBytes += file.size
                    actions.append(.remove(RemoveFile(path: file.path, deletionTimestamp: Self.now(), dataChange: false,
                                                      partitionValues: file.partitionValues, size: file.size)))
                    result.filesRemoved += 1
                    if binBytes >= targetSize, zOrderBy.isEmpty { try flush() }
                }
                try flush()
            }
            result.filesAdded = adds.count
            guard !adds.isEmpty else { return result }
            actions += adds.map { .add($0) }
            result.version = try commit(actions, readVersion: snapshot.version, operation: "OPTIMIZE",
                                        parameters: ["predicate": .string(text ?? "[]"), "targetSize": .string(String(targetSize)),
                                                     "zOrderBy": .string(JSONText.string(.array(zOrderBy.map(JSONValue.string))))],
                                        metrics: ["numFilesAdded": .number(String(result.filesAdded)), "numFilesRemoved": .number(String(result.filesRemoved)),
                                                  "partitionsOptimized": .number(String(result.partitionsOptimized))],
                                        blindAppend: false, configuration: snapshot.metadata.configuration)
            return result
        } catch {
            for add in adds { storage.delete(add.path) }
            throw error
        }
    }
}

/// What an UPDATE did.
public struct UpdateResult: Sendable {
    public var version: Int64?
    public var rowsUpdated = 0
    public var rowsCopied = 0
    public var filesRemoved = 0
    public var filesAdded = 0
}

extension DeltaTable {
    /// Parses `x = 0, region = 'us', note = NULL` into column → literal.
    static func assignments(_ text: String, schema: DeltaSchema) throws -> [(field: DeltaField, value: LakePredicate.Literal)] {
        var parser = PredicateParser(text)
        var out: [(DeltaField, LakePredicate.Literal)] = []
        repeat {
            let name = try parser.identifier()
            guard let field = schema.field(name) else { throw KilnError.invalid("UPDATE sets '\(name)', which the table does not have") }
            switch field.type {
            case .primitive, .decimal: break
            default: throw KilnError.invalid("UPDATE can set primitive columns only; '\(name)' is a \(field.type.sqlName)")
            }
            guard parser.symbol("=") else { throw parser.fail("expected '=' after \(name)") }
            out.append((field, try parser.literal()))
        } while parser.symbol(",")
        parser.skip()
        guard parser.atEnd else { throw parser.fail("unexpected text; separate assignments with commas") }
        return out
    }

    /// Sets columns to literals in the rows matching `predicate` (all rows when nil); files with matching rows are
    /// rewritten (rows may move partitions when a partition column is set).
    @discardableResult
    public func update(set text: String, where predicateText: String? = nil) throws -> UpdateResult {
        let plan = try plan(predicate: predicateText)
        let snapshot = plan.snapshot
        try Self.checkWritable(snapshot)
        let schema = snapshot.schema
        let assignments = try Self.assignments(text, schema: schema)
        let generated = try GeneratedColumn.of(schema)
        for (field, _) in assignments where generated.contains(where: { $0.field.name == field.name }) {
            throw KilnError.invalid("Column '\(field.name)' is generated; set the column it is computed from instead")
        }
        let tableParquet = try schema.parquetSchema()
        let nodes = tableParquet.root.children
        var updates: [(index: Int, cell: ParquetCell)] = []
        for (field, literal) in assignments {
            let index = schema.fields.firstIndex { $0.name == field.name }!
            let cell: ParquetCell
            switch literal {
            case .null:
                guard field.nullable else { throw KilnError.invalid("Column '\(field.name)' is NOT NULL") }
                cell = .null
            case .bool(let b): cell = .bool(b)
            case .number(let n), .text(let n): cell = try TextValues.cell(Array(n.utf8), element: nodes[index].element)
            }
            updates.append((index, cell))
        }
        let readAll = ScanPlan(snapshot: snapshot, files: plan.files, skippedFiles: 0, predicate: nil)
        let recordChanges = Self.changeDataFeedOn(snapshot.metadata.configuration)
        var shredder = RecordShredder(schema: tableParquet)
        var before = RecordShredder(schema: tableParquet), after = RecordShredder(schema: tableParquet)
        var result = UpdateResult()
        var actions: [DeltaAction] = []
        for file in plan.files {
            var rows: [[ParquetCell]] = []
            var matched = 0
            try readRows(file, plan: readAll) { cells in
                var row = cells
                let verdict = plan.predicate?.evaluate { name in
                    guard let i = schema.fields.firstIndex(where: { $0.name.lowercased() == name }) else { return nil }
                    return (LakeValue.from(cells[i], type: schema.fields[i].type), schema.fields[i].type)
                } ?? true
                if verdict == true {
                    matched += 1
                    for (index, cell) in updates { row[index] = cell }
                    if recordChanges {
                        try before.append(cells)
                        try after.append(row)
                    }
                }
                rows.append(row)
                return true
            }
            guard matched > 0 else { continue }
            result.rowsUpdated += matched
            result.rowsCopied += rows.count - matched
            result.filesRemoved += 1
            for row in rows { try shredder.append(row) }
            actions.append(.remove(RemoveFile(path: file.path, deletionTimestamp: Self.now(), dataChange: true,
                                              partitionValues: file.partitionValues, size: file.size)))
        }
        guard result.rowsUpdated > 0 else { return result }
        // Generated columns follow their (possibly updated) sources.
        let batch = try Self.generate(LakeBatch(schema: tableParquet, columns: shredder.take()), columns: generated, provided: [])
        try checkConstraints(batch, schema: schema, snapshot: snapshot)
        var adds: [AddFile] = [], changes: [AddFile] = []
        do {
            adds = try writeFiles(batch, schema: schema, partitionColumns: snapshot.partitionColumns)
            if recordChanges {
                changes = try writeFiles(LakeBatch(schema: tableParquet, columns: before.take()), schema: schema,
                                         partitionColumns: snapshot.partitionColumns, changeType: "update_preimage")
                changes += try writeFiles(LakeBatch(schema: tableParquet, columns: after.take()), schema: schema,
                                          partitionColumns: snapshot.partitionColumns, changeType: "update_postimage")
            }
            result.filesAdded = adds.count
            result.version = try commit(actions + adds.map { .add($0) } + changes.map(\.cdc), readVersion: snapshot.version, operation: "UPDATE",
                                        parameters: ["predicate": .string(predicateText ?? "true"), "set": .string(text)],
                                        metrics: ["numUpdatedRows": .number(String(result.rowsUpdated)), "numCopiedRows": .number(String(result.rowsCopied)),
                                                  "numRemovedFiles": .number(String(result.filesRemoved)), "numAddedFiles": .number(String(adds.count)),
                                                  "numAddedChangeFiles": .number(String(changes.count))],
                                        blindAppend: false, configuration: snapshot.metadata.configuration)
            return result
        } catch {
            for add in adds + changes { storage.delete(add.path) }
            throw error
        }
    }
}

extension DeltaTable {
    /// Row order along a Z-order curve of the given columns: each column's values become ranks scaled to an equal
    /// share of 64 bits, whose bits are interleaved into one key per row (nulls first).
    static func zOrder(_ batch: LakeBatch, by names: [String], schema: DeltaSchema) throws -> [Int] {
        let rows = batch.rowCount
        let bits = 64 / max(1, names.count)
        var ranks: [[UInt64]] = []
        for name in names {
            guard let node = batch.schema.root.children.first(where: { $0.name.lowercased() == name.lowercased() }), let leaf = node.leafIndex,
                  let field = schema.field(name) else { continue }
            let values = try values(batch.columns[leaf], column: batch.schema.columns[leaf], type: field.type)
            let order = values.indices.sorted { a, b in
                if values[a] == .null { return values[b] != .null }
                if values[b] == .null { return false }
                return (values[a].compare(values[b]) ?? 0) < 0
            }
            var rank = [UInt64](repeating: 0, count: rows)
            let scale = bits >= 64 ? 1.0 : Double(UInt64(1) << UInt64(bits)) / Double(max(1, rows))
            for (position, row) in order.enumerated() { rank[row] = UInt64(Double(position) * scale) }
            ranks.append(rank)
        }
        var keys = [UInt64](repeating: 0, count: rows)
        for row in 0..<rows {
            var key: UInt64 = 0
            for bit in stride(from: bits - 1, through: 0, by: -1) {
                for rank in ranks { key = key << 1 | (rank[row] >> UInt64(bit) & 1) }
            }
            keys[row] = key
        }
        return (0..<rows).sorted { keys[$0] < keys[$1] }
    }

    /// Writes `_symlink_format_manifest/` (Presto/Athena/Hive): one `manifest` per partition directory listing the
    /// absolute URIs of the current files. Replaces any previous manifest.
    @discardableResult
    public func generateSymlinkManifest() throws -> Int {
        let snapshot = try snapshot()
        try Self.checkReadable(snapshot)
        let root = "_symlink_format_manifest"
        try storage.store.delete(try storage.key(root))
        var byDirectory: [String: [String]] = [:]
        for file in snapshot.files {
            let directory = snapshot.partitionColumns.map { "\($0)=\(Self.escapePartition(file.partitionValues[$0] ?? nil))" }.joined(separator: "/")
            let (_, local) = try storage.resolve(file.path)
            let location = local ?? ((storage.displayPath.hasSuffix("/") ? storage.displayPath : storage.displayPath + "/")
                + (file.path.removingPercentEncoding ?? file.path))
            byDirectory[directory, default: []].append(URL(fileURLWithPath: location).standardizedFileURL.absoluteString)
        }
        for (directory, files) in byDirectory {
            let dir = directory.isEmpty ? root : root + "/" + directory
            try storage.store.put(try storage.key(dir + "/manifest"), bytes: Array((files.sorted().joined(separator: "\n") + "\n").utf8))
        }
        return byDirectory.count
    }
}

extension DeltaTable {
    /// Sets (and removes) table properties in one metadata commit, upgrading the protocol when a property needs it
    /// (CHECK constraints, change data feed). Constraints are checked against the rows already in the table.
    @discardableResult
    public func alterProperties(set: [String: String] = [:], unset: [String] = [], operation: String = "SET TBLPROPERTIES") throws -> Int64 {
        let snapshot = try log.snapshot()
        try Self.checkWritable(snapshot)
        var configuration = snapshot.metadata.configuration
        for key in unset { configuration[key] = nil }
        for (key, value) in set { configuration[key] = value }
        for (key, expression) in set where key.hasPrefix("delta.constraints.") {
            let violations = try scan(try plan(predicate: "NOT (\(expression))")).rows
            guard violations == 0 else {
                throw KilnError.invalid("CHECK constraint \(key.dropFirst("delta.constraints.".count)) (\(expression)) is violated by \(violations) existing rows")
            }
        }
        for expectation in try Expectation.of(set) { _ = try LakePredicate.parse(expectation.expression) }
        if let mode = set["delta.columnMapping.mode"], mode != "none" { throw KilnError.invalid("Kiln cannot turn on column mapping") }
        if set["delta.enableDeletionVectors"] == "true" { throw KilnError.invalid("Kiln does not write deletion vectors") }
        var metadata = snapshot.metadata
        metadata.configuration = configuration
        var actions: [DeltaAction] = [.metadata(metadata)]
        let needed = try Self.protocolFor(schema: snapshot.schema, properties: configuration)
        let current = snapshot.protocolVersion
        if needed.minReaderVersion > current.minReaderVersion || needed.minWriterVersion > current.minWriterVersion
            || !Set(needed.writerFeatures ?? []).isSubset(of: Set(current.writerFeatures ?? needed.writerFeatures ?? [])) {
            var upgraded = current
            upgraded.minReaderVersion = max(current.minReaderVersion, needed.minReaderVersion)
            upgraded.minWriterVersion = max(current.minWriterVersion, needed.minWriterVersion)
            if upgraded.minWriterVersion == 7 {
                upgraded.writerFeatures = Array(Set(current.writerFeatures ?? []).union(needed.writerFeatures ?? [])).sorted()
            }
            actions.insert(.protocolAction(upgraded), at: 0)
        }
        return try commit(actions, readVersion: snapshot.version, operation: operation,
                          parameters: ["properties": .string(JSONText.string(.object(set.mapValues(JSONValue.string))))], metrics: [:],
                          blindAppend: false, configuration: configuration)
    }

    /// Adds nullable columns at the end of the schema (ALTER TABLE ADD COLUMNS); older files read them as null.
    @discardableResult
    public func addColumns(_ fields: [DeltaField]) throws -> Int64 {
        let snapshot = try log.snapshot()
        try Self.checkWritable(snapshot)
        var schema = snapshot.schema
        for field in fields {
            guard schema.field(field.name) == nil else { throw KilnError.alreadyExists("Column '\(field.name)' already exists") }
            var added = field
            added.nullable = true
            schema.fields.append(added)
        }
        var metadata = snapshot.metadata
        metadata.schemaString = schema.json
        return try commit([.metadata(metadata)], readVersion: snapshot.version, operation: "ADD COLUMNS",
                          parameters: ["columns": .string(fields.map(\.name).joined(separator: ", "))], metrics: [:], blindAppend: false,
                          configuration: snapshot.metadata.configuration)
    }
}

extension DeltaTable {
    /// The files of `source` that COPY INTO commits already loaded: each such commit lists them in its
    /// `operationParameters.files` (a JSON array), so a file is loaded exactly once even across crashes (the list and
    /// the data land in the same atomic commit). Commits removed by log cleanup are no longer seen.
    public func ingestedFiles(source: String) throws -> Set<String> {
        var files = Set<String>()
        for entry in try log.history() {
            guard case .string("COPY INTO")? = entry.info["operation"], case .object(let parameters)? = entry.info["operationParameters"],
                  case .string(let from)? = parameters["source"], from == source, case .string(let list)? = parameters["files"],
                  case .array(let names) = try JSONValue.parse(Array(list.utf8)) else { continue }
            for case .string(let name) in names { files.insert(name) }
        }
        return files
    }
}
