import Foundation
import KilnCore
import KilnParquet

/// The clauses of a MERGE: what happens to target rows with a matching source row, to source rows without a
/// match, and to target rows no source row matches.
public struct MergeClauses: Sendable {
    public enum Matched: String, Sendable { case update, delete, none }
    public var whenMatched: Matched = .update
    public var insertNotMatched = true
    public var deleteNotMatchedBySource = false

    public init(whenMatched: Matched = .update, insertNotMatched: Bool = true, deleteNotMatchedBySource: Bool = false) {
        self.whenMatched = whenMatched
        self.insertNotMatched = insertNotMatched
        self.deleteNotMatchedBySource = deleteNotMatchedBySource
    }
}

/// What a MERGE did.
public struct MergeResult: Sendable {
    public var version: Int64?
    public var sourceRows = 0
    public var updated = 0
    public var deleted = 0
    public var inserted = 0
    public var filesRemoved = 0
    public var filesAdded = 0
}

/// A row key for equality joins.
struct MergeKey: Hashable {
    var values: [LakeValue]
}

extension DeltaTable {
    /// Parses `t.a = s.a AND t.b = s.b` (aliases optional, names case-insensitive) into key column names.
    static func mergeKeys(_ condition: String, schema: DeltaSchema) throws -> [String] {
        var keys: [String] = []
        for clause in condition.components(separatedBy: .whitespaces).joined(separator: " ").components(separatedBy: " AND ")
            .flatMap({ $0.components(separatedBy: " and ") }) {
            let sides = clause.split(separator: "=").map { $0.trimmingCharacters(in: .whitespaces) }
            func column(_ side: String) -> String { String(side.split(separator: ".").last ?? Substring(side)) }
            guard sides.count == 2, column(sides[0]).lowercased() == column(sides[1]).lowercased(), let field = schema.field(column(sides[0])) else {
                throw KilnError.invalid("MERGE joins on equal columns: write the condition as 't.id = s.id AND t.day = s.day' (got '\(clause)')")
            }
            switch field.type {
            case .primitive, .decimal: keys.append(field.name)
            default: throw KilnError.invalid("MERGE key '\(field.name)' is a \(field.type.sqlName); keys must be primitive")
            }
        }
        guard !keys.isEmpty else { throw KilnError.invalid("MERGE needs a join condition") }
        return keys
    }

    /// Upserts `source` into the table, matching rows on the key columns of `condition`.
    /// Each target row may match at most one source row. One commit; conflicts with concurrent writers fail.
    @discardableResult
    public func merge(condition: String, clauses: MergeClauses = MergeClauses(),
                      source produce: ((LakeBatch) throws -> Void) throws -> Void) throws -> MergeResult {
        let snapshot = try log.snapshot()
        try Self.checkWritable(snapshot)
        let schema = snapshot.schema
        let keys = try Self.mergeKeys(condition, schema: schema)
        let partitions = Set(snapshot.partitionColumns.map { $0.lowercased() })
        // The source, laid out as the table (every column, partition columns included).
        var sources: [LakeBatch] = []
        let generated = try GeneratedColumn.of(schema)
        try produce { batch in
            _ = try Self.evolve(schema, with: batch, mergeSchema: false)
            sources.append(try Self.generate(try Self.conform(batch, to: schema), columns: generated,
                                             provided: Set(batch.schema.root.children.map { $0.name.lowercased() })))
        }
        let tableParquet = try schema.parquetSchema()
        let source = sources.isEmpty
            ? LakeBatch(schema: tableParquet, columns: [])
            : LakeBatch(schema: tableParquet, columns: tableParquet.columns.indices.map { i in
                ColumnData.concatenate(sources.map { $0.columns[i] }, maxDefinitionLevel: tableParquet.columns[i].maxDefinitionLevel)
            })
        var result = MergeResult(sourceRows: source.rowCount)
        var sourceIndex: [MergeKey: Int] = [:]
        if source.rowCount > 0 {
            let sourceKeys = try Self.keyValues(source, keys: keys, schema: schema, partition: nil)
            for (row, key) in sourceKeys.enumerated() where !key.values.contains(.null) {
                guard sourceIndex.updateValue(row, forKey: key) == nil else {
                    throw KilnError.invalid("The MERGE source has two rows with key \(key.values.map { "\($0)" }.joined(separator: ", ")); keys must be unique")
                }
            }
        }
        var matchedSource = [Bool](repeating: false, count: source.rowCount)
        let recordChanges = Self.changeDataFeedOn(snapshot.metadata.configuration)
        var actions: [DeltaAction] = []
        var adds: [AddFile] = [], changes: [AddFile] = []
        let dataFields = schema.fields.filter { !partitions.contains($0.name.lowercased()) }
        let dataSchema = DeltaSchema(dataFields)
        do {
            for file in snapshot.files {
                let reader = try storage.parquet(file.path)
                let groups = try reader.readAll(rowGroups: Array(reader.metadata.rowGroups.indices), columns: Array(reader.columns.indices))
                guard !groups.isEmpty else { continue }
                let fileBatch = LakeBatch(schema: reader.schema, columns: reader.columns.indices.map { i in
                    ColumnData.concatenate(groups.map { $0[i] }, maxDefinitionLevel: reader.columns[i].maxDefinitionLevel)
                })
                guard fileBatch.rowCount > 0 else { continue }
                let targetKeys = try Self.keyValues(fileBatch, keys: keys, schema: schema, partition: partitionLookup(file, schema: schema))
                var keep: [Int] = [], preimages: [Int] = [], deletions: [Int] = []
                var changed = false
                for (row, key) in targetKeys.enumerated() {
                    if let s = sourceIndex[key] {
                        guard !matchedSource[s] else {
                            throw KilnError.invalid("Several target rows match source key \(key.values.map { "\($0)" }.joined(separator: ", ")); MERGE needs each source row to match at most one target row")
                        }
                        matchedSource[s] = true
                        switch clauses.whenMatched {
                        case .update: result.updated += 1; changed = true; preimages.append(row)
                        case .delete: result.deleted += 1; changed = true; deletions.append(row)
                        case .none: keep.append(row)
                        }
                    } else if clauses.deleteNotMatchedBySource {
                        result.deleted += 1
                        changed = true
                        deletions.append(row)
                    } else {
                        keep.append(row)
                    }
                }
                guard changed else { continue }
                actions.append(.remove(RemoveFile(path: file.path, deletionTimestamp: Self.now(), dataChange: true,
                                                  partitionValues: file.partitionValues, size: file.size)))
                result.filesRemoved += 1
                func rows(_ indices: [Int]) -> LakeBatch {
                    LakeBatch(schema: fileBatch.schema, columns: fileBatch.columns.indices.map {
                        fileBatch.columns[$0].take(rows: indices, maxDefinitionLevel: reader.columns[$0].maxDefinitionLevel)
                    })
                }
                if !keep.isEmpty {
                    let conformed = try Self.conform(rows(keep), to: dataSchema)
                    adds.append(try writeFile(conformed.columns, schema: conformed.schema, deltaSchema: dataSchema,
                                              partitionValues: file.partitionValues, partitionColumns: snapshot.partitionColumns))
                }
                if recordChanges {
                    for (indices, type) in [(preimages, "update_preimage"), (deletions, "delete")] where !indices.isEmpty {
                        if let change = try changeFile(rows(indices), changeType: type, dataSchema: dataSchema, file: file,
                                                       partitionColumns: snapshot.partitionColumns) { changes.append(change) }
                    }
                }
            }
            // Updated rows take the source's values; unmatched source rows are inserted.
            var updatedRows: [Int] = [], insertedRows: [Int] = []
            for row in 0..<source.rowCount {
                if matchedSource[row] {
                    if clauses.whenMatched == .update { updatedRows.append(row) }
                } else if clauses.insertNotMatched {
                    insertedRows.append(row)
                }
            }
            result.inserted = insertedRows.count
            func sourceRows(_ indices: [Int]) -> LakeBatch {
                LakeBatch(schema: tableParquet, columns: tableParquet.columns.indices.map {
                    source.columns[$0].take(rows: indices, maxDefinitionLevel: tableParquet.columns[$0].maxDefinitionLevel)
                })
            }
            let written = (updatedRows + insertedRows).sorted()
            if !written.isEmpty {
                let rows = sourceRows(written)
                try checkConstraints(rows, schema: schema, snapshot: snapshot)
                adds += try writeFiles(rows, schema: schema, partitionColumns: snapshot.partitionColumns)
            }
            if recordChanges {
                for (indices, type) in [(updatedRows, "update_postimage"), (insertedRows, "insert")] where !indices.isEmpty {
                    changes += try writeFiles(sourceRows(indices), schema: schema, partitionColumns: snapshot.partitionColumns, changeType: type)
                }
            }
            result.filesAdded = adds.count
            guard !actions.isEmpty || !adds.isEmpty else { return result }
            actions += adds.map { .add($0) } + changes.map(\.cdc)
            result.version = try commit(actions, readVersion: snapshot.version, operation: "MERGE",
                                        parameters: ["predicate": .string(condition),
                                                     "matchedPredicates": .string(clauses.whenMatched == .none ? "[]" : "[{\"actionType\":\"\(clauses.whenMatched.rawValue)\"}]"),
                                                     "notMatchedPredicates": .string(clauses.insertNotMatched ? "[{\"actionType\":\"insert\"}]" : "[]"),
                                                     "notMatchedBySourcePredicates": .string(clauses.deleteNotMatchedBySource ? "[{\"actionType\":\"delete\"}]" : "[]")],
                                        metrics: ["numSourceRows": .number(String(result.sourceRows)),
                                                  "numTargetRowsUpdated": .number(String(result.updated)),
                                                  "numTargetRowsDeleted": .number(String(result.deleted)),
                                                  "numTargetRowsInserted": .number(String(result.inserted)),
                                                  "numTargetFilesRemoved": .number(String(result.filesRemoved)),
                                                  "numTargetFilesAdded": .number(String(result.filesAdded)),
                                                  "numTargetChangeFilesAdded": .number(String(changes.count))],
                                        blindAppend: false, configuration: snapshot.metadata.configuration)
            return result
        } catch {
            for add in adds + changes { storage.delete(add.path) }
            throw error
        }
    }

    /// The key of every row of a batch (partition columns come from the file's partition values).
    static func keyValues(_ batch: LakeBatch, keys: [String], schema: DeltaSchema,
                          partition: ((String) -> (LakeValue, DeltaType)?)?) throws -> [MergeKey] {
        var columns: [[LakeValue]] = []
        for name in keys {
            let field = schema.field(name)!
            if let partition, let (value, _) = partition(name.lowercased()), !batch.schema.root.children.contains(where: { $0.name.lowercased() == name.lowercased() }) {
                columns.append([LakeValue](repeating: value, count: batch.rowCount))
                continue
            }
            guard let node = batch.schema.root.children.first(where: { $0.name.lowercased() == name.lowercased() }), let leaf = node.leafIndex else {
                columns.append([LakeValue](repeating: .null, count: batch.rowCount))
                continue
            }
            let data = rescaleTimestamps(batch.columns[leaf], from: batch.schema.columns[leaf].element)
            columns.append(try values(data, column: batch.schema.columns[leaf], type: field.type))
        }
        return (0..<batch.rowCount).map { row in MergeKey(values: columns.map { $0[row] }) }
    }
}

extension ScanPlan {
    /// A plan that reads `files` of `snapshot` as they are.
    public init(snapshot: DeltaSnapshot, files: [AddFile]) {
        self.init(snapshot: snapshot, files: files, skippedFiles: 0, predicate: nil)
    }
}

/// Rows to record in the change data feed, by change type (`update_preimage`, `update_postimage`, `delete`, `insert`).
public typealias ChangeRows = [(rows: LakeBatch, changeType: String)]

extension DeltaTable {
    /// Replaces the rows of `files` (removed) with `rows` (written anew and partitioned as the table, so an updated row
    /// may move partition), in one commit on top of `snapshot`: what the SQL engine's MERGE, UPDATE and DELETE
    /// produce. `rows` has the table's columns; generated columns are recomputed, CHECK constraints and NOT NULL are
    /// enforced, and `changes` go to the change data feed when the table has it on. Nil when nothing changed.
    /// - Throws: `INVALID_STATE` when an append-only table would lose files; the data files written are deleted on
    ///   any failure, and a concurrent writer's change to the files read fails the commit (`RESOURCE_CONFLICT`).
    @discardableResult
    public func rewrite(snapshot: DeltaSnapshot, removing files: [AddFile], adding rows: LakeBatch?, changes: ChangeRows,
                        operation: String, parameters: [String: JSONValue], metrics: [String: JSONValue]) throws -> Int64? {
        try Self.checkWritable(snapshot)
        if !files.isEmpty, snapshot.metadata.configuration["delta.appendOnly"] == "true" {
            throw KilnError(.invalidState, "The table is append-only (delta.appendOnly=true); its rows cannot be updated or deleted")
        }
        let schema = snapshot.schema
        guard !files.isEmpty || (rows?.rowCount ?? 0) > 0 else { return nil }
        let generated = try GeneratedColumn.of(schema)
        let recompute = Set(generated.map { $0.field.name.lowercased() })
        func prepared(_ batch: LakeBatch) throws -> LakeBatch {
            try Self.generate(try Self.conform(batch, to: schema), columns: generated,
                              provided: Set(batch.schema.root.children.map { $0.name.lowercased() }).subtracting(recompute))
        }
        var adds: [AddFile] = [], changeFiles: [AddFile] = []
        do {
            if let rows, rows.rowCount > 0 {
                let table = try prepared(rows)
                try checkConstraints(table, schema: schema, snapshot: snapshot)
                adds = try writeFiles(table, schema: schema, partitionColumns: snapshot.partitionColumns)
            }
            if Self.changeDataFeedOn(snapshot.metadata.configuration) {
                for change in changes where change.rows.rowCount > 0 {
                    changeFiles += try writeFiles(try prepared(change.rows), schema: schema, partitionColumns: snapshot.partitionColumns,
                                                  changeType: change.changeType)
                }
            }
            let now = Self.now()
            var actions: [DeltaAction] = files.map {
                .remove(RemoveFile(path: $0.path, deletionTimestamp: now, dataChange: true, partitionValues: $0.partitionValues, size: $0.size))
            }
            actions += adds.map { .add($0) } + changeFiles.map(\.cdc)
            var allMetrics = metrics
            allMetrics["numTargetFilesRemoved"] = .number(String(files.count))
            allMetrics["numTargetFilesAdded"] = .number(String(adds.count))
            allMetrics["numTargetChangeFilesAdded"] = .number(String(changeFiles.count))
            return try commit(actions, readVersion: snapshot.version, operation: operation, parameters: parameters, metrics: allMetrics,
                              blindAppend: false, configuration: snapshot.metadata.configuration)
        } catch {
            for add in adds + changeFiles { storage.delete(add.path) }
            throw error
        }
    }
}
