import Foundation
import KilnCore
import KilnParquet

/// One row of the change data feed: the row's cells (table columns), what happened to it, and in which commit.
public struct ChangeRow: Sendable {
    public var cells: [ParquetCell]
    /// `insert`, `delete`, `update_preimage` or `update_postimage`.
    public var changeType: String
    public var version: Int64
    /// The commit's time (ms since the epoch).
    public var timestamp: Int64
}

extension DeltaTable {
    /// The `_change_type` column of change-data files.
    static let changeTypeField = DeltaField(name: "_change_type", type: .primitive("string"), nullable: true)

    /// Whether DML on this table must record its row changes (`delta.enableChangeDataFeed=true`).
    static func changeDataFeedOn(_ configuration: [String: String]) -> Bool {
        configuration["delta.enableChangeDataFeed"]?.lowercased() == "true"
    }

    /// Writes change-data files for rows laid out as one data file of the table (no partition columns), all with
    /// the same change type; returns their `cdc` actions.
    func changeFile(_ batch: LakeBatch, changeType: String, dataSchema: DeltaSchema, file: AddFile, partitionColumns: [String]) throws -> AddFile? {
        guard batch.rowCount > 0 else { return nil }
        let conformed = try Self.conform(batch, to: dataSchema)
        return try writeFile(conformed.columns, schema: conformed.schema, deltaSchema: dataSchema, partitionValues: file.partitionValues,
                             partitionColumns: partitionColumns, changeType: changeType)
    }

    /// Reads the change data feed from version `start` to `end` (inclusive; the newest by default), in commit order.
    ///
    /// A commit with `cdc` actions contributes the rows of its change-data files; any other commit contributes the
    /// rows of the files it added (`insert`) and removed (`delete`) with `dataChange`. Commits that only reorganize
    /// files (OPTIMIZE) contribute nothing. Cells follow the fields of the snapshot returned (the end version's schema,
    /// or the columns in `fields`). - Throws: when the feed was off at a version in the range, or a file is gone.
    @discardableResult
    public func changes(from start: Int64, to end: Int64? = nil, fields wanted: [String]? = nil,
                        each: (ChangeRow) throws -> Bool) throws -> DeltaSnapshot {
        let last = try end ?? (log.latestVersion() ?? 0)
        guard start >= 0, start <= last else {
            throw KilnError.invalid("The start version \(start) must be between 0 and the end version \(last)")
        }
        let snapshot = try log.snapshot(version: last)
        try Self.checkReadable(snapshot)
        var enabled = Self.changeDataFeedOn(try log.snapshot(version: start).metadata.configuration)
        // Change-data files carry `_change_type`; data files do not (their change type comes from the action).
        var extended = snapshot.schema
        extended.fields.append(Self.changeTypeField)
        let feedSnapshot = DeltaSnapshot(version: snapshot.version, protocolVersion: snapshot.protocolVersion, metadata: snapshot.metadata,
                                         schema: extended, files: [], tombstones: [], transactions: [:])
        let plan = ScanPlan(snapshot: feedSnapshot, files: [], skippedFiles: 0, predicate: nil)
        let names = (wanted ?? snapshot.schema.fields.map(\.name)) + [Self.changeTypeField.name]
        for name in wanted ?? [] where snapshot.schema.field(name) == nil {
            throw KilnError.invalid("No column '\(name)'; columns are \(snapshot.schema.fields.map(\.name).joined(separator: ", "))")
        }
        for version in start...last {
            let actions = try log.readCommit(version)
            for case .metadata(let m) in actions { enabled = Self.changeDataFeedOn(m.configuration) }
            var files: [(file: AddFile, changeType: String?)] = []
            for case .cdc(let path, let values, let size) in actions {
                files.append((AddFile(path: path, partitionValues: values, size: size, modificationTime: 0), nil))
            }
            if files.isEmpty {
                for action in actions {
                    switch action {
                    case .add(let add) where add.dataChange:
                        files.append((add, "insert"))
                    case .remove(let remove) where remove.dataChange:
                        var file = AddFile(path: remove.path, partitionValues: remove.partitionValues ?? [:], size: remove.size ?? 0, modificationTime: 0)
                        file.deletionVector = remove.deletionVector
                        files.append((file, "delete"))
                    default: continue
                    }
                }
            }
            guard !files.isEmpty else { continue }
            guard enabled else {
                throw KilnError.invalid("The change data feed was off at version \(version) (delta.enableChangeDataFeed); read changes from a later version")
            }
            let timestamp = log.commitTimestamp(version) ?? 0
            for (file, changeType) in files {
                guard storage.exists(file.path) else {
                    throw KilnError(.invalidState, "The changes of version \(version) cannot be read: \(file.path) was vacuumed")
                }
                var stop = false
                try readRows(file, plan: plan, fields: names) { cells in
                    var cells = cells
                    let recorded = cells.removeLast()
                    var type = changeType ?? ""
                    if changeType == nil, case .bytes(let b) = recorded { type = String(decoding: b, as: UTF8.self) }
                    stop = try !each(ChangeRow(cells: cells, changeType: type, version: version, timestamp: timestamp))
                    return !stop
                }
                if stop { return snapshot }
            }
        }
        return snapshot
    }
}
