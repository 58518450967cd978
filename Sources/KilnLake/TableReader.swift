import Foundation
import KilnCore
import KilnParquet

/// Which files a scan reads, and how many it skipped.
public struct ScanPlan: Sendable {
    public var snapshot: DeltaSnapshot
    public var files: [AddFile]
    public var skippedFiles: Int
    public var predicate: LakePredicate?
}

extension DeltaTable {
    /// Looks up a file's partition values as typed values (for predicates over partition columns).
    func partitionLookup(_ file: AddFile, schema: DeltaSchema) -> (String) -> (LakeValue, DeltaType)? {
        let values = Dictionary(file.partitionValues.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
        return { name in
            guard let field = schema.field(name), let text = values[field.physicalName.lowercased()] else { return nil }
            return (LakeValue.partition(text, type: field.type), field.type)
        }
    }

    /// What a file's partition values and statistics say about each column.
    func ranges(_ file: AddFile, snapshot: DeltaSnapshot) -> (String) -> ColumnRange? {
        let schema = snapshot.schema
        let partitions = Set(snapshot.partitionColumns.map { $0.lowercased() })
        var parsed: FileStats?? = nil  // parsed on the first non-partition column asked for
        let partition = partitionLookup(file, schema: schema)
        return { name in
            guard let field = schema.field(name) else { return nil }
            if partitions.contains(name) {
                guard let (value, type) = partition(name) else { return nil }
                return ColumnRange(type: type, min: value == .null ? nil : value, max: value == .null ? nil : value,
                                   mayBeNull: value == .null, allNull: value == .null)
            }
            if parsed == nil { parsed = .some(FileStats.parse(file.stats)) }
            guard let stats = parsed! else { return nil }
            var nulls: Int64?
            let key = field.physicalName
            if case .number(let n)? = stats.nullCount[key] { nulls = Int64(n) }
            return ColumnRange(type: field.type, min: stats.bound(stats.minValues, key, type: field.type),
                               max: stats.bound(stats.maxValues, key, type: field.type),
                               mayBeNull: nulls.map { $0 > 0 } ?? true, allNull: nulls.map { $0 == stats.numRecords && $0 > 0 } ?? false)
        }
    }

    /// Plans a scan: partition pruning and min/max skipping for `predicate`.
    public func plan(version: Int64? = nil, timestamp: Int64? = nil, predicate text: String? = nil) throws -> ScanPlan {
        let target = try timestamp.map { try log.version(at: $0) } ?? version
        return try plan(try log.snapshot(version: target), predicate: text)
    }

    /// Plans a scan of a snapshot already replayed.
    public func plan(_ snapshot: DeltaSnapshot, predicate text: String? = nil) throws -> ScanPlan {
        try plan(snapshot, predicate: try text.map { try LakePredicate.parse($0) })
    }

    /// Plans a scan of a snapshot, skipping the files whose partition values or statistics prove `predicate` false
    /// for every row. - Throws: `INVALID_PARAMETER_VALUE` when it names a column the table lacks.
    public func plan(_ snapshot: DeltaSnapshot, predicate: LakePredicate?) throws -> ScanPlan {
        try Self.checkReadable(snapshot)
        guard let predicate else { return ScanPlan(snapshot: snapshot, files: snapshot.files, skippedFiles: 0, predicate: nil) }
        try predicate.validate(snapshot.schema)
        // Partition values first: a file they rule out never has its statistics parsed.
        let partitions = Set(snapshot.partitionColumns.map { $0.lowercased() })
        let files = snapshot.files.filter { file in
            let range = ranges(file, snapshot: snapshot)
            return predicate.mayMatch { partitions.contains($0) ? range($0) : nil } && predicate.mayMatch(range)
        }
        return ScanPlan(snapshot: snapshot, files: files, skippedFiles: snapshot.files.count - files.count, predicate: predicate)
    }

    /// Refuses writes this writer would get wrong: protocol features it lacks, generation expressions it cannot
    /// compute and invariants it cannot read.
    static func checkWritable(_ snapshot: DeltaSnapshot) throws {
        try snapshot.protocolVersion.checkWritable()
        _ = try GeneratedColumn.of(snapshot.schema)
        for field in snapshot.schema.fields { _ = try invariant(field) }
    }

    /// Features that change what rows mean and that this reader does not apply are refused.
    static func checkReadable(_ snapshot: DeltaSnapshot) throws {
        if let mode = snapshot.metadata.configuration["delta.columnMapping.mode"], !["none", "name", "id"].contains(mode) {
            throw KilnError(.invalidState, "The table uses column mapping mode '\(mode)', which Kiln cannot read")
        }
    }

    /// The rows a file's deletion vector deletes (sorted positions in the file); empty without one.
    func deletedRows(_ file: AddFile) throws -> [Int] {
        guard let descriptor = file.deletionVector else { return [] }
        return try DeletionVector.rows(descriptor, storage: storage)
    }

    /// Reads the rows of one file as cells in table-field order (partition values filled in, missing columns null),
    /// keeping those that satisfy `predicate`. `fields` limits the columns (nil: all).
    public func readRows(_ file: AddFile, plan: ScanPlan, fields wanted: [String]? = nil, each: ([ParquetCell]) throws -> Bool) throws {
        let schema = plan.snapshot.schema
        let tableParquet = try schema.parquetSchema()
        let fieldNames = wanted.map { Set($0.map { $0.lowercased() }) }
        let needed = Set((fieldNames ?? Set(schema.fields.map { $0.name.lowercased() })).union(plan.predicate?.columns ?? []))
        let reader: ParquetFileReader
        do { reader = try storage.parquet(file.path) } catch let error as ParquetError {
            throw KilnError(.invalidState, "Data file \(file.path) cannot be read: \(error.description)")
        }
        let partitions = Dictionary(file.partitionValues.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
        let fileFields = reader.schema.root.children
        var leafColumns: [Int] = []
        var fieldSource: [(field: DeltaField, node: SchemaNode, source: SchemaNode?)] = []
        for (field, node) in zip(schema.fields, tableParquet.root.children) where needed.contains(field.name.lowercased()) {
            let source = partitions[field.physicalName.lowercased()] == nil ? field.source(in: fileFields) : nil
            if let source { leafColumns += Self.leafIndices(source) }
            fieldSource.append((field, node, source))
        }
        // Partition values are the same for every row of the file: parse them once.
        let partitionCells: [ParquetCell?] = fieldSource.map { field, node, _ in
            guard let text = partitions[field.physicalName.lowercased()] else { return nil }
            guard let text, !text.isEmpty, text != "__HIVE_DEFAULT_PARTITION__" else { return .null }
            return (try? TextValues.cell(Array(text.utf8), element: node.element)) ?? .null
        }
        let position = Dictionary(fieldSource.enumerated().map { ($1.field.name.lowercased(), $0) }, uniquingKeysWith: { a, _ in a })
        let deleted = try deletedRows(file)
        var nextDeleted = 0, groupStart = 0
        for group in reader.metadata.rowGroups.indices {
            let data = try reader.readRowGroup(group, columns: leafColumns)
            let assembler = try RecordAssembler(schema: reader.schema, columns: Dictionary(uniqueKeysWithValues: zip(leafColumns, data)))
            let present = assembler.fields.map { $0.name }
            let sourceIndex = fieldSource.map { entry in entry.source.flatMap { present.firstIndex(of: $0.name) } }
            let rows = Int(reader.metadata.rowGroups[group].numRows)
            defer { groupStart += rows }
            for row in 0..<rows {
                if nextDeleted < deleted.count, deleted[nextDeleted] == groupStart + row {
                    nextDeleted += 1
                    continue
                }
                let cells = leafColumns.isEmpty ? [] : try assembler.row(row)
                var out: [ParquetCell] = []
                out.reserveCapacity(fieldSource.count)
                for (k, (_, node, source)) in fieldSource.enumerated() {
                    if let partition = partitionCells[k] {
                        out.append(partition)
                    } else if let source, let i = sourceIndex[k] {
                        out.append(Self.convert(cells[i], from: source, to: node))
                    } else {
                        out.append(.null)
                    }
                }
                if let predicate = plan.predicate {
                    let keep = predicate.evaluate { name in
                        guard let field = schema.field(name) else { return nil }
                        return (position[name].map { LakeValue.from(out[$0], type: field.type) } ?? .null, field.type)
                    }
                    if keep != true { continue }
                }
                if let fieldNames {
                    out = zip(fieldSource, out).filter { fieldNames.contains($0.0.field.name.lowercased()) }.map(\.1)
                }
                guard try each(out) else { return }
            }
        }
    }

    /// Values written by other engines in another physical form (INT96 or nanosecond timestamps) → the table's.
    static func convert(_ cell: ParquetCell, from source: SchemaNode, to target: SchemaNode) -> ParquetCell {
        guard source.isLeaf, target.isLeaf, case .timestamp? = target.element.logicalType else { return cell }
        switch (cell, source.element.logicalType) {
        case (.int64(let v), .timestamp(.nanos, _)?): return .int64(v / 1000)
        case (.int64(let v), .timestamp(.millis, _)?): return .int64(v * 1000)
        case (.bytes(let b), _) where source.element.physicalType == .int96 && b.count == 12:
            var nanos: UInt64 = 0
            for i in 0..<8 { nanos |= UInt64(b[i]) << (8 * UInt64(i)) }
            var julian: UInt32 = 0
            for i in 0..<4 { julian |= UInt32(b[8 + i]) << (8 * UInt32(i)) }
            return .int64((Int64(julian) - 2_440_588) * 86_400_000_000 + Int64(nanos / 1000))
        default: return cell
        }
    }

    /// The table's Parquet schema nodes of the given fields (for rendering rows).
    public func nodes(_ snapshot: DeltaSnapshot, fields wanted: [String]? = nil) throws -> [SchemaNode] {
        let parquet = try snapshot.schema.parquetSchema()
        let names = wanted.map { Set($0.map { $0.lowercased() }) }
        return parquet.root.children.filter { names?.contains($0.name.lowercased()) ?? true }
    }

    /// A column as a predicate over one file's rows sees it: the partition value, the decoded leaf (timestamps in
    /// microseconds), or null when the file predates the column.
    static func predicateInput(_ name: String, schema: DeltaSchema, file: ParquetSchema, data: (Int) -> ColumnData?,
                               partitions: Set<String>, partition: (String) -> (LakeValue, DeltaType)?) -> PredicateInput? {
        guard let field = schema.field(name) else { return nil }
        if partitions.contains(name) { return partition(name).map { .constant($0.0, $0.1) } }
        guard let node = field.source(in: file.root.children), let leaf = node.leafIndex, let column = data(leaf) else {
            return .constant(.null, field.type)
        }
        return .data(rescaleTimestamps(column, from: file.columns[leaf].element), file.columns[leaf], field.type)
    }

    /// Decodes the chosen columns of every planned file into memory (the benchmark path); with a predicate, counts
    /// the rows that satisfy it (evaluated on the typed buffers; partition values are per file).
    /// Returns rows kept and decoded bytes.
    public func scan(_ plan: ScanPlan, columns wanted: [String]? = nil) throws -> (rows: Int, bytes: Int) {
        let schema = plan.snapshot.schema
        let partitions = Set(plan.snapshot.partitionColumns.map { $0.lowercased() })
        let names = Set((wanted ?? schema.fields.map(\.name)).map { $0.lowercased() }).union(plan.predicate?.columns ?? [])
        let fields = schema.fields.filter { names.contains($0.name.lowercased()) }
        let files = plan.files
        let counts = try concurrentMap(files.count) { i -> (Int, Int) in
            let file = files[i]
            let reader = try self.storage.parquet(file.path)
            let leaves = fields.compactMap { $0.source(in: reader.schema.root.children) }.flatMap(Self.leafIndices).sorted()
            let deleted = try self.deletedRows(file)
            var kept = 0, bytes = 0, groupStart = 0
            for group in reader.metadata.rowGroups.indices {
                let data = try reader.readRowGroup(group, columns: leaves, parallel: false)
                bytes += data.reduce(0) { $0 + $1.memoryBytes }
                let rows = Int(reader.metadata.rowGroups[group].numRows)
                defer { groupStart += rows }
                // Rows of this group a deletion vector removed.
                let gone = deleted.isEmpty ? [] : deleted.filter { $0 >= groupStart && $0 < groupStart + rows }.map { $0 - groupStart }
                guard let predicate = plan.predicate else {
                    kept += rows - gone.count
                    continue
                }
                let decoded = Dictionary(uniqueKeysWithValues: zip(leaves, data))
                let partition = self.partitionLookup(file, schema: schema)
                var mask = try predicate.mask(rows: rows) { name in
                    Self.predicateInput(name, schema: schema, file: reader.schema, data: { decoded[$0] }, partitions: partitions, partition: partition)
                }
                for row in gone { mask[row] = 0 }
                kept += mask.reduce(0) { $0 + ($1 == 1 ? 1 : 0) }
            }
            return (kept, bytes)
        }
        return counts.reduce((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
    }
}


/// A column of a `TableChunk`: a decoded leaf, or one value for every row (a partition value, or null when the
/// file predates the column).
public enum TableChunkColumn: Sendable {
    case data(ColumnData, ColumnDescriptor)
    case constant(LakeValue)
    /// A struct, array or map field: one assembled cell per row, and the file's node for it.
    case nested([ParquetCell], SchemaNode)
}

/// A data file opened for `forEachChunk`: its reader, where each requested field comes from, deleted rows.
struct OpenedDataFile: Sendable {
    var file: AddFile
    var reader: ParquetFileReader
    var sources: [SchemaNode?]
    var deleted: [Int]
}

/// One row group of a data file, as the table sees it: the requested columns, rows deleted by a deletion vector gone.
public struct TableChunk: Sendable {
    public var rows: Int
    public var columns: [TableChunkColumn]
}

extension DeltaTable {
    /// Decodes the given top-level primitive fields of every planned file, row group by row group (files in
    /// parallel, in plan order). The columnar entry point for the DataFrame and SQL layers.
    public func chunks(_ plan: ScanPlan, fields: [DeltaField]) throws -> [TableChunk] {
        try forEachChunk(plan, fields: fields) { $0 }
    }

    /// `chunks`, handing each row group to `body` as soon as it is decoded (on the decoding thread), so only the
    /// results stay in memory. Results come back in plan order.
    ///
    /// Fields whose positions are in `keepingCodes` may arrive as dictionary codes (`ColumnData.dictionaryCodes`) when a
    /// file stores them dictionary-encoded, so a filter can look at each distinct value once.
    public func forEachChunk<T>(_ plan: ScanPlan, fields: [DeltaField], keepingCodes: Set<Int> = [],
                                _ body: @Sendable (TableChunk) throws -> T) throws -> [T] {
        let schema = plan.snapshot.schema
        // Every row group of every file is one task, so one big file still uses every core.
        let opened = try concurrentMap(plan.files.count) { i -> OpenedDataFile in
            let file = plan.files[i]
            let reader = try self.storage.parquet(file.path)
            let partitions = Dictionary(file.partitionValues.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
            let sources: [SchemaNode?] = fields.map { field in
                partitions[field.physicalName.lowercased()] == nil ? field.source(in: reader.schema.root.children) : nil
            }
            return OpenedDataFile(file: file, reader: reader, sources: sources, deleted: try self.deletedRows(file))
        }
        var tasks: [(file: Int, group: Int, start: Int)] = []
        for (i, o) in opened.enumerated() {
            var start = 0
            for group in o.reader.metadata.rowGroups.indices {
                tasks.append((i, group, start))
                start += Int(o.reader.metadata.rowGroups[group].numRows)
            }
        }
        let planned = tasks
        return try concurrentMap(planned.count) { t -> T in
            let (i, group, groupStart) = planned[t]
            let o = opened[i]
            let reader = o.reader
            let partition = self.partitionLookup(o.file, schema: schema)
            let leaves = o.sources.flatMap { $0.map(\.leaves) ?? [] }
            let coded = Set(keepingCodes.compactMap { o.sources[$0]?.leafIndex })
            let rows = Int(reader.metadata.rowGroups[group].numRows)
            let data = Dictionary(uniqueKeysWithValues: zip(leaves, try reader.readRowGroup(group, columns: leaves, parallel: false, keepingCodes: coded)))
            let gone = Set(o.deleted.filter { $0 >= groupStart && $0 < groupStart + rows }.map { $0 - groupStart })
            let keep = gone.isEmpty ? nil : (0..<rows).filter { !gone.contains($0) }
            var columns: [TableChunkColumn] = []
            for (field, source) in zip(fields, o.sources) {
                if let leaf = source?.leafIndex, var column = data[leaf] {
                    let descriptor = reader.columns[leaf]
                    if let keep { column = try column.materialized().take(rows: keep, maxDefinitionLevel: descriptor.maxDefinitionLevel) }
                    columns.append(.data(column, descriptor))
                } else if let node = source, node.leafIndex == nil {
                    let mine = Set(node.leaves)
                    let assembler = try RecordAssembler(schema: reader.schema, columns: data.filter { mine.contains($0.key) })
                    var cells = try (0..<assembler.rowCount).map { try assembler.row($0)[0] }
                    if let keep { cells = keep.map { cells[$0] } }
                    columns.append(.nested(cells, node))
                } else {
                    columns.append(.constant(partition(field.name.lowercased())?.0 ?? .null))
                }
            }
            return try body(TableChunk(rows: keep?.count ?? rows, columns: columns))
        }
    }
}
