import Foundation
import KilnCore
import KilnParquet

/// What a write did.
public struct WriteResult: Sendable {
    public var version: Int64
    public var filesAdded: Int
    public var filesRemoved: Int
    public var rowsWritten: Int
}

extension DeltaTable {
    /// Appends or overwrites rows. `replaceWhere` limits an overwrite to the rows matching it (every new row must
    /// match too); `mergeSchema` adds the batch's new columns to the table.
    @discardableResult
    public func write(_ batch: LakeBatch, mode: WriteMode = .append, mergeSchema: Bool = false, replaceWhere: String? = nil) throws -> WriteResult {
        try write(mode: mode, mergeSchema: mergeSchema, replaceWhere: replaceWhere) { emit in try emit(batch) }
    }

    /// Writes every batch `produce` emits as one commit: data files are written as batches arrive, and the table
    /// changes only when all of them are in. If anything fails, the files written so far are deleted.
    /// `operation` and `parameters` go into the commit's commitInfo (COPY INTO records the files it loaded there).
    @discardableResult
    public func write(mode: WriteMode = .append, mergeSchema: Bool = false, replaceWhere: String? = nil, operation: String = "WRITE",
                      parameters extra: [String: JSONValue] = [:], batches produce: ((LakeBatch) throws -> Void) throws -> Void) throws -> WriteResult {
        try write(into: try log.snapshot(), mode: mode, mergeSchema: mergeSchema, replaceWhere: replaceWhere, operation: operation,
                  parameters: extra, batches: produce)
    }

    /// A write on top of `snapshot`; version -1 is a table being created, whose protocol and metadata go into the
    /// same commit as its rows.
    func write(into snapshot: DeltaSnapshot, mode: WriteMode, mergeSchema: Bool, replaceWhere: String?, operation: String,
               parameters extra: [String: JSONValue], batches produce: ((LakeBatch) throws -> Void) throws -> Void) throws -> WriteResult {
        try Self.checkWritable(snapshot)
        if mode == .overwrite, snapshot.metadata.configuration["delta.appendOnly"] == "true" {
            throw KilnError(.invalidState, "The table is append-only (delta.appendOnly=true); it cannot be overwritten")
        }
        var schema = snapshot.schema
        var predicate: LakePredicate?
        if let replaceWhere {
            guard mode == .overwrite else { throw KilnError.invalid("replaceWhere applies to overwrites") }
            let parsed = try LakePredicate.parse(replaceWhere)
            try parsed.validate(schema)
            guard parsed.columns.isSubset(of: Set(snapshot.partitionColumns.map { $0.lowercased() })) else {
                throw KilnError.invalid("replaceWhere '\(replaceWhere)' must use partition columns only (\(snapshot.partitionColumns.joined(separator: ", ")))")
            }
            predicate = parsed
        }
        var adds: [AddFile] = []
        var rowsWritten = 0
        let expectations = try Expectation.of(snapshot.metadata.configuration)
        var expectationCounts: [String: (passed: Int, failed: Int)] = [:]
        do {
            try produce { batch in
                schema = try Self.evolve(schema, with: batch, mergeSchema: mergeSchema)
                let generated = try Self.generate(try Self.conform(batch, to: schema), columns: try GeneratedColumn.of(schema),
                                                  provided: Set(batch.schema.root.children.map { $0.name.lowercased() }))
                let table = try Self.applyExpectations(expectations, to: generated, schema: schema, counts: &expectationCounts)
                try checkConstraints(table, schema: schema, snapshot: snapshot)
                if let predicate {
                    let outside = try Self.mask(predicate, table, schema: schema).reduce(0) { $0 + ($1 == 1 ? 0 : 1) }
                    guard outside == 0 else {
                        throw KilnError.invalid("\(outside) of the rows written do not match replaceWhere '\(replaceWhere!)'; every row of a replaceWhere overwrite must")
                    }
                }
                adds += try writeFiles(table, schema: schema, partitionColumns: snapshot.partitionColumns)
                rowsWritten += table.rowCount
            }
            var metrics: [String: JSONValue] = [:]
            for (name, count) in expectationCounts {
                metrics["expectations.\(name).passed"] = .number(String(count.passed))
                metrics["expectations.\(name).failed"] = .number(String(count.failed))
            }
            let dropped = expectations.filter { $0.action == .drop }.reduce(0) { $0 + (expectationCounts[$1.name]?.failed ?? 0) }
            if dropped > 0 { metrics["numDroppedRows"] = .number(String(dropped)) }
            return try commitWrite(adds: adds, rows: rowsWritten, snapshot: snapshot, schema: schema, mode: mode, predicate: predicate,
                                   replaceWhere: replaceWhere, operation: operation, extra: extra, extraMetrics: metrics)
        } catch {
            for add in adds { storage.delete(add.path) }
            throw error
        }
    }

    /// Replaces the table's schema, partitioning, properties and rows in one commit (CREATE OR REPLACE TABLE): the
    /// old files are removed (time travel still reads them), the new rows written under the new schema.
    @discardableResult
    public func replace(schema: DeltaSchema, partitionColumns: [String], properties: [String: String], rows: LakeBatch?) throws -> WriteResult {
        let snapshot = try log.snapshot()
        try Self.checkWritable(snapshot)
        for column in partitionColumns where schema.field(column) == nil {
            throw KilnError.invalid("Partition column '\(column)' is not in the schema")
        }
        var metadata = DeltaMetadata(id: snapshot.metadata.id, name: snapshot.metadata.name, description: snapshot.metadata.description,
                                     schema: schema, partitionColumns: partitionColumns.map { schema.field($0)!.name }, configuration: properties,
                                     createdTime: Self.now())
        metadata.id = snapshot.metadata.id
        let proto = try Self.protocolFor(schema: schema, properties: properties)
        var adds: [AddFile] = []
        do {
            if let rows, rows.rowCount > 0 {
                let table = try Self.conform(rows, to: schema)
                adds = try writeFiles(table, schema: schema, partitionColumns: metadata.partitionColumns)
            }
            let now = Self.now()
            var actions: [DeltaAction] = []
            if proto != snapshot.protocolVersion { actions.append(.protocolAction(proto)) }
            actions.append(.metadata(metadata))
            actions += snapshot.files.map { .remove(RemoveFile(path: $0.path, deletionTimestamp: now, dataChange: true, partitionValues: $0.partitionValues, size: $0.size)) }
            actions += adds.map { .add($0) }
            let version = try commit(actions, readVersion: snapshot.version, operation: "CREATE OR REPLACE TABLE AS SELECT",
                                     parameters: ["partitionBy": .string(JSONText.string(.array(partitionColumns.map(JSONValue.string))))],
                                     metrics: ["numFiles": .number(String(adds.count)), "numOutputRows": .number(String(rows?.rowCount ?? 0))],
                                     blindAppend: false, configuration: properties)
            return WriteResult(version: version, filesAdded: adds.count, filesRemoved: snapshot.files.count, rowsWritten: rows?.rowCount ?? 0)
        } catch {
            for add in adds { storage.delete(add.path) }
            throw error
        }
    }

    /// The table schema after taking in a batch's columns: same names must have the same types; new names only
    /// with `mergeSchema`.
    static func evolve(_ schema: DeltaSchema, with batch: LakeBatch, mergeSchema: Bool) throws -> DeltaSchema {
        var schema = schema
        let incoming = try DeltaSchema(parquet: batch.schema)
        for field in incoming.fields {
            if let existing = schema.field(field.name) {
                guard Self.compatible(existing.type, field.type) else {
                    throw KilnError.invalid("Column '\(existing.name)' is \(existing.type.sqlName) in the table; the data has \(field.type.sqlName)")
                }
            } else if mergeSchema {
                var added = field
                added.nullable = true
                schema.fields.append(added)
            } else {
                throw KilnError.invalid("Column '\(field.name)' is not in the table (columns: \(schema.fields.map(\.name).joined(separator: ", "))); write with mergeSchema to add it")
            }
        }
        return schema
    }

    func commitWrite(adds: [AddFile], rows: Int, snapshot: DeltaSnapshot, schema: DeltaSchema, mode: WriteMode, predicate: LakePredicate?,
                     replaceWhere: String?, operation: String, extra: [String: JSONValue], extraMetrics: [String: JSONValue] = [:]) throws -> WriteResult {
        var newMetadata: DeltaMetadata?
        if schema != snapshot.schema || snapshot.version < 0 {
            var m = snapshot.metadata
            m.schemaString = schema.json
            newMetadata = m
        }
        var actions: [DeltaAction] = newMetadata.map { [.metadata($0)] } ?? []
        if snapshot.version < 0 {
            // A new table: its protocol (for the final schema) and metadata commit with its first rows, as version 0.
            actions.insert(.protocolAction(try Self.protocolFor(schema: schema, properties: snapshot.metadata.configuration)), at: 0)
        }
        var removed = 0
        if mode == .overwrite {
            let now = Self.now()
            for file in snapshot.files {
                if let predicate, predicate.evaluate(partitionLookup(file, schema: schema)) != true { continue }
                actions.append(.remove(RemoveFile(path: file.path, deletionTimestamp: now, dataChange: true, partitionValues: file.partitionValues,
                                                  size: file.size)))
                removed += 1
            }
        }
        actions += adds.map { .add($0) }
        var parameters: [String: JSONValue] = ["mode": .string(mode == .append ? "Append" : "Overwrite")]
        if !snapshot.partitionColumns.isEmpty {
            parameters["partitionBy"] = .string(JSONText.string(.array(snapshot.partitionColumns.map(JSONValue.string))))
        }
        if let replaceWhere { parameters["predicate"] = .string(replaceWhere) }
        var metrics: [String: JSONValue] = ["numFiles": .number(String(adds.count)), "numOutputRows": .number(String(rows)),
                                            "numOutputBytes": .number(String(adds.reduce(0) { $0 + $1.size })),
                                            "numRemovedFiles": .number(String(removed))]
        let blind = mode == .append && newMetadata == nil
        parameters.merge(extra) { _, new in new }
        metrics.merge(extraMetrics) { _, new in new }
        // A commit that records what it loaded must not be retried blindly past another loader's commit.
        let version = try commit(actions, readVersion: snapshot.version, operation: operation, parameters: parameters, metrics: metrics,
                                 blindAppend: blind && extra.isEmpty, configuration: snapshot.metadata.configuration)
        return WriteResult(version: version, filesAdded: adds.count, filesRemoved: removed, rowsWritten: rows)
    }

    /// Whether data of type `b` can be stored in a column of type `a` as it is.
    static func compatible(_ a: DeltaType, _ b: DeltaType) -> Bool {
        switch (a, b) {
        case (.primitive(let x), .primitive(let y)): return x == y
        case (.decimal(let p, let s), .decimal(let q, let t)): return p == q && s == t
        case (.array(let x, _), .array(let y, _)): return compatible(x, y)
        case (.map(let k1, let v1, _), .map(let k2, let v2, _)): return compatible(k1, k2) && compatible(v1, v2)
        case (.structure(let x), .structure(let y)):
            return y.allSatisfy { f in x.contains { $0.name.lowercased() == f.name.lowercased() && compatible($0.type, f.type) } }
                && x.count == y.count
        default: return false
        }
    }

    /// The batch laid out in the table's schema order, missing columns filled with nulls; NOT NULL enforced.
    static func conform(_ batch: LakeBatch, to schema: DeltaSchema) throws -> LakeBatch {
        let target = try schema.parquetSchema()
        let rows = batch.rowCount
        var columns: [ColumnData] = []
        for (field, node) in zip(schema.fields, target.root.children) {
            let leaves = leafIndices(node)
            if let source = batch.schema.root.children.first(where: { $0.name.lowercased() == field.name.lowercased() }) {
                let sourceLeaves = leafIndices(source)
                guard sourceLeaves.count == leaves.count else { throw KilnError.invalid("Column '\(field.name)' does not match the table's layout") }
                for (s, t) in zip(sourceLeaves, leaves) {
                    let descriptor = target.columns[t]
                    var data = try Self.physical(Self.rescaleTimestamps(batch.columns[s], from: batch.schema.columns[s].element),
                                                 from: batch.schema.columns[s].element, to: descriptor.element)
                    // Required leaves carry no definition levels; optional ones written without nulls may omit them.
                    if descriptor.maxDefinitionLevel == 0 {
                        guard data.values.count == data.count, data.repetitionLevels == nil else {
                            throw KilnError.invalid("Column '\(field.name)' is NOT NULL; the data has nulls")
                        }
                        data.definitionLevels = nil
                    } else if data.definitionLevels == nil, descriptor.maxRepetitionLevel == 0 {
                        // fine: all present
                    } else if batch.schema.columns[s].maxDefinitionLevel != descriptor.maxDefinitionLevel {
                        throw KilnError.invalid("Column '\(field.name)' nests differently in the data and the table")
                    }
                    columns.append(data)
                }
            } else {
                // A generated column is computed afterwards (`generate`).
                guard field.nullable || field.metadata["delta.generationExpression"] != nil else {
                    throw KilnError.invalid("Column '\(field.name)' is NOT NULL and the data does not have it")
                }
                for t in leaves {
                    let d = target.columns[t]
                    columns.append(ColumnData(values: .empty(d.element.physicalType!, typeLength: Int(d.element.typeLength ?? 0)),
                                              definitionLevels: [UInt8](repeating: 0, count: rows),
                                              repetitionLevels: d.maxRepetitionLevel > 0 ? [UInt8](repeating: 0, count: rows) : nil, count: rows))
                }
            }
        }
        return LakeBatch(schema: target, columns: columns)
    }

    /// Delta stores timestamps as INT64 microseconds; other units and INT96 are converted on the way in.
    static func rescaleTimestamps(_ data: ColumnData, from element: SchemaElement) -> ColumnData {
        var out = data
        switch (data.values, element.logicalType) {
        case (.int64(let v), .timestamp(.nanos, _)?): out.values = .int64(v.map { $0 / 1000 - ($0 % 1000 < 0 ? 1 : 0) })
        case (.int64(let v), .timestamp(.millis, _)?): out.values = .int64(v.map { $0 &* 1000 })
        case (.int96(let f), _):
            out.values = .int64((0..<f.count).map { i in
                if case .int64(let micros) = convert(.bytes(Array(f[i])), from: .leaf("t", .int96), to: .leaf("t", .int64, logical: .timestamp(.micros, utc: true))) {
                    return micros
                }
                return 0
            })
        default: break
        }
        return out
    }

    /// Converts between the physical forms one logical type can take: decimals as INT32, INT64 or big-endian
    /// bytes (pyarrow always writes bytes; Spark and Kiln use the narrowest integer), and INT32 widened to INT64.
    static func physical(_ data: ColumnData, from source: SchemaElement, to target: SchemaElement) throws -> ColumnData {
        guard let type = target.physicalType, data.values.physicalType != type else { return data }
        var out = data
        func unscaled() -> [Int64]? {
            switch data.values {
            case .int32(let v): return v.map(Int64.init)
            case .int64(let v): return v
            case .fixedLenByteArray(let f): return (0..<f.count).map { bigEndian(Array(f[$0])) }
            case .byteArray(let b): return (0..<b.count).map { bigEndian(Array(b[$0])) }
            default: return nil
            }
        }
        switch type {
        case .int64:
            guard let v = unscaled() else { break }
            out.values = .int64(v)
            return out
        case .int32:
            guard let v = unscaled(), v.allSatisfy({ Int32(exactly: $0) != nil }) else { break }
            out.values = .int32(v.map { Int32($0) })
            return out
        case .fixedLenByteArray:
            let width = Int(target.typeLength ?? 16)
            switch data.values {
            case .int32, .int64:
                var bytes: [UInt8] = []
                for value in unscaled()! { bytes += (0..<width).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * Int64(min($0, 7)))) } }
                out.values = .fixedLenByteArray(FixedBytes(width: width, data: bytes))
                return out
            case .fixedLenByteArray(let f), .int96(let f):
                // Re-pad big-endian two's complement to the target width.
                var bytes: [UInt8] = []
                for i in 0..<f.count {
                    let value = Array(f[i])
                    let pad: UInt8 = (value.first ?? 0) & 0x80 != 0 ? 0xFF : 0
                    guard value.count <= width || value.prefix(value.count - width).allSatisfy({ $0 == pad }) else { break }
                    bytes += value.count <= width ? [UInt8](repeating: pad, count: width - value.count) + value : Array(value.suffix(width))
                }
                out.values = .fixedLenByteArray(FixedBytes(width: width, data: bytes))
                return out
            default: break
            }
        default: break
        }
        throw KilnError.invalid("Column '\(target.name)' is stored as \(type.name); the data has \(data.values.physicalType.name) values that do not convert")
    }

    static func bigEndian(_ bytes: [UInt8]) -> Int64 {
        guard let first = bytes.first else { return 0 }
        var value: Int64 = first & 0x80 != 0 ? -1 : 0
        for b in bytes { value = value << 8 | Int64(b) }
        return value
    }

    static func leafIndices(_ node: SchemaNode) -> [Int] {
        if let leaf = node.leafIndex { return [leaf] }
        return node.children.flatMap(leafIndices)
    }

    /// Rows of a batch as column → value lookups (for predicates and constraints), top-level primitive columns only.
    /// Evaluates a predicate over every row of a batch (top-level primitive columns; others are unknown).
    static func mask(_ predicate: LakePredicate, _ batch: LakeBatch, schema: DeltaSchema) throws -> Mask {
        try predicate.mask(rows: batch.rowCount) { name in
            predicateInput(name, schema: schema, file: batch.schema, data: { batch.columns[$0] }, partitions: [], partition: { _ in nil })
        }
    }

    /// A small code per row (nulls included) and the distinct values the codes index.
    static func codes(_ data: ColumnData, column: ColumnDescriptor, type: DeltaType) throws -> (codes: [Int32], values: [LakeValue]) {
        func encode<K: Hashable>(_ keys: [K], value: (K) -> LakeValue) -> (codes: [Int32], values: [LakeValue]) {
            var index: [K: Int32] = [:]
            var values: [LakeValue] = []
            let codes = keys.map { x -> Int32 in
                if let c = index[x] { return c }
                index[x] = Int32(values.count)
                values.append(value(x))
                return Int32(values.count - 1)
            }
            return (codes, values)
        }
        if data.definitionLevels == nil, !type.isDecimal {
            if case .int32(let v) = data.values { return encode(v) { .int(Int64($0)) } }
            if case .int64(let v) = data.values { return encode(v) { .int($0) } }
        }
        return encode(try Self.values(data, column: column, type: type)) { $0 }
    }

    /// One value per row of a flat column.
    static func values(_ data: ColumnData, column: ColumnDescriptor, type: DeltaType) throws -> [LakeValue] {
        guard column.maxRepetitionLevel == 0 else { throw KilnError.invalid("Column '\(column.dottedPath)' is repeated, not a single value per row") }
        func value(_ i: Int) -> LakeValue {
            switch (data.values, type) {
            case (.boolean(let v), _): return .bool(v[i])
            case (.int32(let v), .decimal(_, let s)): return .double(Double(v[i]) / pow(10, Double(s)))
            case (.int64(let v), .decimal(_, let s)): return .double(Double(v[i]) / pow(10, Double(s)))
            case (.int32(let v), _): return .int(Int64(v[i]))
            case (.int64(let v), _): return .int(v[i])
            case (.float(let v), _): return .double(Double(v[i]))
            case (.double(let v), _): return .double(v[i])
            case (.byteArray(let v), .primitive("string")): return .string(String(decoding: v[i], as: UTF8.self))
            case (.byteArray(let v), _): return LakeValue.from(.bytes(Array(v[i])), type: type)
            case (.fixedLenByteArray(let v), _), (.int96(let v), _): return LakeValue.from(.bytes(Array(v[i])), type: type)
            }
        }
        guard let defs = data.definitionLevels else { return (0..<data.count).map(value) }
        let maxDef = UInt8(column.maxDefinitionLevel)
        var out: [LakeValue] = []
        out.reserveCapacity(defs.count)
        var next = 0
        for level in defs {
            if level == maxDef {
                out.append(value(next))
                next += 1
            } else {
                out.append(.null)
            }
        }
        return out
    }

    /// CHECK constraints (`delta.constraints.<name>`) and column invariants (`delta.invariants`): every row must
    /// satisfy them (a null result passes a CHECK constraint and fails an invariant, as in Spark).
    func checkConstraints(_ batch: LakeBatch, schema: DeltaSchema, snapshot: DeltaSnapshot) throws {
        var checks: [(name: String, expression: String, nullPasses: Bool)] = snapshot.metadata.configuration
            .filter { $0.key.hasPrefix("delta.constraints.") }.sorted { $0.key < $1.key }
            .map { ("CHECK constraint " + $0.key.dropFirst("delta.constraints.".count), $0.value, true) }
        for field in schema.fields {
            if let expression = try Self.invariant(field) { checks.append(("Invariant on \(field.name)", expression, false)) }
        }
        for check in checks {
            let predicate = try LakePredicate.parse(check.expression)
            let mask = try Self.mask(predicate, batch, schema: schema)
            if let bad = mask.firstIndex(where: { $0 == 0 || (!check.nullPasses && $0 != 1) }) {
                throw KilnError.invalid("\(check.name) (\(check.expression)) is violated by row \(bad + 1)")
            }
        }
    }

    /// A column invariant's SQL expression: `delta.invariants` holds `{"expression": {"expression": "x > 0"}}`.
    static func invariant(_ field: DeltaField) throws -> String? {
        guard case .string(let text)? = field.metadata["delta.invariants"] else { return nil }
        guard case .object(let outer) = try JSONValue.parse(Array(text.utf8)), case .object(let inner)? = outer["expression"],
              case .string(let expression)? = inner["expression"] else {
            throw KilnError(.invalidState, "Column '\(field.name)' has an invariant Kiln cannot read: \(text)")
        }
        return expression
    }

    // MARK: Files

    /// Writes the batch as Parquet files, one set per partition; returns their add actions. With a `changeType`, the
    /// files are change-data files (see `writeFile`).
    func writeFiles(_ batch: LakeBatch, schema: DeltaSchema, partitionColumns: [String], changeType: String? = nil) throws -> [AddFile] {
        guard batch.rowCount > 0 else { return [] }
        let dataFields = schema.fields.filter { f in !partitionColumns.contains { $0.lowercased() == f.name.lowercased() } }
        let dataSchema = try DeltaSchema(dataFields).parquetSchema()
        let rootChildren = batch.schema.root.children
        // Leaf columns of the data (non-partition) fields, in order.
        let dataLeaves = rootChildren.filter { n in dataFields.contains { $0.name.lowercased() == n.name.lowercased() } }.flatMap(Self.leafIndices)
        var groups: [(values: [String: String?], rows: [Int]?)] = [([:], nil)]
        if !partitionColumns.isEmpty {
            // Each partition column's values become small codes; the codes combine into one key per row.
            var key = [Int](repeating: 0, count: batch.rowCount)
            var keySpace = 1
            var fields: [DeltaField] = []
            var distinct: [[LakeValue]] = []
            var perColumnCodes: [[Int32]] = []
            for name in partitionColumns {
                guard let node = rootChildren.first(where: { $0.name.lowercased() == name.lowercased() }), let leaf = node.leafIndex,
                      let field = schema.field(name) else { continue }
                fields.append(field)
                let (codes, values) = try Self.codes(batch.columns[leaf], column: batch.schema.columns[leaf], type: field.type)
                distinct.append(values)
                perColumnCodes.append(codes)
                for i in key.indices { key[i] = key[i] &* (values.count + 1) &+ Int(codes[i]) }
                keySpace = keySpace.multipliedReportingOverflow(by: values.count + 1).overflow ? Int.max : keySpace * (values.count + 1)
            }
            var members: [[Int]] = []
            var firstRow: [Int] = []
            func join(_ row: Int, _ group: Int?) -> Int {
                if let group {
                    members[group].append(row)
                    return group
                }
                members.append([row])
                firstRow.append(row)
                return members.count - 1
            }
            if keySpace <= max(1 << 16, batch.rowCount) {
                // Few possible keys: an array maps them to groups.
                var groupOf = [Int32](repeating: -1, count: keySpace)
                for (row, k) in key.enumerated() { groupOf[k] = Int32(join(row, groupOf[k] >= 0 ? Int(groupOf[k]) : nil)) }
            } else {
                var groupOf: [Int: Int] = [:]
                for (row, k) in key.enumerated() { groupOf[k] = join(row, groupOf[k]) }
            }
            // Each group's values, from its first row.
            groups = members.indices.map { g in
                let row = firstRow[g]
                var values: [String: String?] = [:]
                for (c, field) in fields.enumerated() { values[field.name] = distinct[c][Int(perColumnCodes[c][row])].text(type: field.type) }
                return (values, members[g])
            }
        }
        let deltaData = DeltaSchema(dataFields)
        let partitionNames = partitionColumns.map { schema.field($0)!.name }
        var columns = dataLeaves.map { batch.columns[$0] }
        var ranges = [0..<batch.rowCount]
        if groups.count > 1 {
            // Put each partition's rows together with one gather per column; partitions are then contiguous slices.
            let order = groups.flatMap { $0.rows ?? [] }, unsorted = columns
            columns = try concurrentMap(dataLeaves.count) { i in
                unsorted[i].take(rows: order, maxDefinitionLevel: batch.schema.columns[dataLeaves[i]].maxDefinitionLevel)
            }
            var start = 0
            ranges = groups.map { group in
                defer { start += group.rows?.count ?? 0 }
                return start..<start + (group.rows?.count ?? 0)
            }
        }
        let planned = groups, sorted = columns, slices = ranges
        let adds = try concurrentMap(planned.count) { g in
            let part = planned.count == 1 ? sorted : zip(dataLeaves, sorted).map { leaf, data in
                data.slice(rows: slices[g], maxDefinitionLevel: batch.schema.columns[leaf].maxDefinitionLevel)
            }
            return try self.writeFile(part, schema: dataSchema, deltaSchema: deltaData, partitionValues: planned[g].values,
                                      partitionColumns: partitionNames, changeType: changeType)
        }
        return adds
    }

    /// Writes one data file of a partition. With a `changeType` (`delete`, `insert`, `update_preimage`,
    /// `update_postimage`) it is a change-data file instead: under `_change_data/`, with a `_change_type` column.
    func writeFile(_ columns: [ColumnData], schema: ParquetSchema, deltaSchema: DeltaSchema, partitionValues: [String: String?],
                   partitionColumns: [String], changeType: String? = nil) throws -> AddFile {
        var columns = columns, schema = schema, deltaSchema = deltaSchema
        if let changeType {
            let rows = columns.first?.rowCount ?? 0
            var values = ByteArrays()
            values.reserve(values: rows, bytes: rows * changeType.utf8.count)
            for _ in 0..<rows { values.append(changeType.utf8) }
            columns.append(ColumnData(values: .byteArray(values), definitionLevels: [UInt8](repeating: 1, count: rows)))
            deltaSchema.fields.append(Self.changeTypeField)
            schema = ParquetSchema(schema.root.children + [try Self.changeTypeField.type.parquetNode(Self.changeTypeField.name, nullable: true)])
        }
        var directory = partitionColumns.map { "\($0)=\(Self.escapePartition(partitionValues[$0] ?? nil))" }.joined(separator: "/")
        if changeType != nil { directory = directory.isEmpty ? "_change_data" : "_change_data/" + directory }
        let name = "\(changeType == nil ? "part" : "cdc")-00000-\(UUID().uuidString.lowercased())-c000.snappy.parquet"
        let relative = directory.isEmpty ? name : directory + "/" + name
        let rows = columns.first?.rowCount ?? 0
        // Visible under its name only once whole (the store's atomic write); an error leaves nothing behind.
        let sink = try storage.parquetSink(relative)
        defer { sink.abandon() }
        let writer = try ParquetFileWriter(sink: sink, schema: schema, options: ParquetWriterOptions(codec: .snappy))
        let groupRows = 1 << 20
        if rows <= groupRows {
            try writer.writeRowGroup(columns)
        } else {
            for start in stride(from: 0, to: rows, by: groupRows) {
                try writer.writeRowGroup(columns.enumerated().map { i, c in
                    c.slice(rows: start..<min(rows, start + groupRows), maxDefinitionLevel: schema.columns[i].maxDefinitionLevel)
                })
            }
        }
        try writer.close()
        let size = try storage.store.head(try storage.key(relative))?.size ?? 0
        let stats = FileStats.compute(rows: rows, columns: columns, parquet: schema, schema: deltaSchema)
        return AddFile(path: relative.addingPercentEncoding(withAllowedCharacters: Self.pathAllowed) ?? relative, partitionValues: partitionValues,
                       size: size, modificationTime: Self.now(), dataChange: true, stats: stats.json)
    }

    static let pathAllowed: CharacterSet = {
        var set = CharacterSet.alphanumerics
        set.insert(charactersIn: "-._~/=")
        return set
    }()

    /// Hive-style escaping of a partition value for a directory name; null is `__HIVE_DEFAULT_PARTITION__`.
    static func escapePartition(_ value: String?) -> String {
        guard let value, !value.isEmpty else { return "__HIVE_DEFAULT_PARTITION__" }
        var out = ""
        for scalar in value.unicodeScalars {
            if scalar.value < 0x20 || "\"#%'*/:=?\\\u{7F}{[]^".unicodeScalars.contains(scalar) {
                out += String(format: "%%%02X", scalar.value)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
