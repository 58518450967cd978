import Foundation
import KilnCore
import KilnLake
import KilnParquet

extension FrameType {
    /// The frame type of a Delta column type (nil for a type Kiln does not know).
    public init?(delta: DeltaType) {
        switch delta {
        case .decimal(let p, let s): self = .decimal(precision: p, scale: s)
        case .array(let element, _):
            guard let e = FrameType(delta: element) else { return nil }
            self = .array(e)
        case .map(let k, let v, _):
            guard let key = FrameType(delta: k), let value = FrameType(delta: v) else { return nil }
            self = .map(key, value)
        case .structure(let fields):
            var out: [FrameField] = []
            for field in fields {
                guard let t = FrameType(delta: field.type) else { return nil }
                out.append(FrameField(name: field.name, type: t))
            }
            self = .structure(out)
        case .primitive(let name):
            let map: [String: FrameType] = ["string": .string, "long": .int64, "integer": .int32, "short": .int16, "byte": .int8,
                                            "float": .float32, "double": .float64, "boolean": .bool, "binary": .binary, "date": .date,
                                            "timestamp": .timestamp, "timestamp_ntz": .timestamp]
            guard let t = map[name] else { return nil }
            self = t
        }
    }

    /// The frame type of a top-level Parquet field (nested ones by their LIST/MAP annotations).
    public init(parquetNode node: SchemaNode) throws {
        if node.isLeaf { self.init(leaf: node.element); return }
        guard let type = FrameType(delta: try DeltaType(parquetNode: node)) else {
            throw KilnError.invalid("Column '\(node.name)' has a type Kiln cannot read")
        }
        self = type
    }

    /// The frame type of a Parquet leaf (its logical annotation decides).
    public init(parquetLeaf element: SchemaElement) { self.init(leaf: element) }

    init(leaf element: SchemaElement) {
        switch element.logicalType {
        case .string?, .enumeration?, .json?, .uuid?: self = .string
        case .date?: self = .date
        case .timestamp?: self = .timestamp
        case .decimal(let p, let s)?: self = .decimal(precision: Int(p), scale: Int(s))
        case .integer(let bits, _)?: self = bits <= 8 ? .int8 : bits <= 16 ? .int16 : bits <= 32 ? .int32 : .int64
        default:
            switch element.physicalType {
            case .boolean?: self = .bool
            case .int32?: self = .int32
            case .int64?: self = .int64
            case .int96?: self = .timestamp
            case .float?: self = .float32
            case .double?: self = .float64
            default: self = element.convertedType == ConvertedType.utf8.rawValue ? .string : .binary
            }
        }
    }
}

/// `values.map(transform)` as one tight loop into uninitialized storage (Array.map grows its count element by element).
@inline(__always)
func convert<S, T>(_ values: [S], _ transform: (S) -> T) -> [T] {
    [T](unsafeUninitializedCapacity: values.count) { out, initialized in
        values.withUnsafeBufferPointer { src in
            for i in 0..<src.count { (out.baseAddress! + i).initialize(to: transform(src[i])) }
        }
        initialized = values.count
    }
}

extension Column {
    /// A flat Parquet leaf as a column of `type` (timestamps to µs, decimals to doubles, INT96 decoded).
    public init(parquet data: ColumnData, descriptor: ColumnDescriptor, type: FrameType) throws {
        guard descriptor.maxRepetitionLevel == 0 else { throw KilnError.invalid("Column \(descriptor.dottedPath) is repeated; only flat columns read as frames") }
        let rows = data.count
        let maxDef = UInt8(descriptor.maxDefinitionLevel)
        var valid: [Bool]?
        // Some value is null exactly when there are fewer values than rows (the levels are checked by the decoder).
        let nullLevels = data.values.count < rows ? data.definitionLevels : nil
        if let nullLevels { valid = convert(nullLevels) { $0 == maxDef } }
        /// The values spread over the rows, `zero` at the nulls.
        func expand<T>(_ values: [T], zero: T) -> [T] {
            guard let nullLevels else { return values }
            return [T](unsafeUninitializedCapacity: rows) { out, initialized in
                values.withUnsafeBufferPointer { v in
                    nullLevels.withUnsafeBufferPointer { levels in
                        var next = 0
                        for i in 0..<rows {
                            if levels[i] == maxDef {
                                (out.baseAddress! + i).initialize(to: v[next])
                                next += 1
                            } else {
                                (out.baseAddress! + i).initialize(to: zero)
                            }
                        }
                    }
                }
                initialized = rows
            }
        }
        func expandBytes(_ raw: ByteColumn) -> ByteColumn {
            guard let nullLevels else { return raw }
            var out = ByteColumn()
            out.data = raw.data  // the values keep their order; nulls only add empty offsets
            out.offsets = [Int](unsafeUninitializedCapacity: rows + 1) { offsets, initialized in
                raw.offsets.withUnsafeBufferPointer { o in
                    nullLevels.withUnsafeBufferPointer { levels in
                        var next = 0
                        offsets[0] = 0
                        for i in 0..<rows {
                            if levels[i] == maxDef { next += 1 }
                            offsets[i + 1] = o[next]
                        }
                    }
                }
                initialized = rows + 1
            }
            return out
        }
        let element = descriptor.element
        var scale = 0
        if case .decimal(_, let s) = type { scale = s }
        let divisor = pow(10, Double(scale))
        var unit: Int64 = 1  // multiplier to microseconds, negative for a divisor
        if case .timestamp(let u, _)? = element.logicalType {
            switch u {
            case .millis: unit = 1000
            case .micros: unit = 1
            case .nanos: unit = -1000
            }
        }
        func micros(_ v: Int64) -> Int64 { unit >= 0 ? v * unit : v / -unit }
        let values: FrameValues
        switch data.values {
        case .boolean(let v): values = .bool(expand(v, zero: false))
        case .int32(let v):
            values = type.storage == .double ? .double(expand(convert(v) { Double($0) / divisor }, zero: 0)) : .int(expand(convert(v) { Int64($0) }, zero: 0))
        case .int64(let v):
            if type.storage == .double { values = .double(expand(convert(v) { Double($0) / divisor }, zero: 0)) }
            else if type == .timestamp && unit != 1 { values = .int(expand(convert(v, micros), zero: 0)) }
            else { values = .int(expand(v, zero: 0)) }
        case .float(let v): values = .double(expand(convert(v) { Double($0) }, zero: 0))
        case .double(let v): values = .double(expand(v, zero: 0))
        case .int96(let f):
            let decoded = (0..<f.count).map { i -> Int64 in
                let b = Array(f[i])
                var nanos: UInt64 = 0
                for k in 0..<8 { nanos |= UInt64(b[k]) << (8 * UInt64(k)) }
                var julian: UInt32 = 0
                for k in 0..<4 { julian |= UInt32(b[8 + k]) << (8 * UInt32(k)) }
                return (Int64(julian) - 2_440_588) * 86_400_000_000 + Int64(nanos / 1000)
            }
            values = .int(expand(decoded, zero: 0))
        case .byteArray(let b):
            if type.storage == .double {
                values = .double(expand((0..<b.count).map { Double(DecimalText.bigEndian(Array(b[$0]))) / divisor }, zero: 0))
            } else {
                var raw = ByteColumn()
                raw.data = b.data
                raw.offsets = convert(b.offsets) { Int($0) }
                values = .bytes(expandBytes(raw))
            }
        case .fixedLenByteArray(let f):
            if type.storage == .double {
                values = .double(expand((0..<f.count).map { Double(DecimalText.bigEndian(Array(f[$0]))) / divisor }, zero: 0))
            } else {
                var raw = ByteColumn()
                for i in 0..<f.count {
                    if case .uuid? = element.logicalType {
                        let h = Hex.encode(f[i])
                        raw.append([h.prefix(8), h.dropFirst(8).prefix(4), h.dropFirst(12).prefix(4), h.dropFirst(16).prefix(4), h.dropFirst(20)]
                            .joined(separator: "-"))
                    } else {
                        raw.append(f[i])
                    }
                }
                values = .bytes(expandBytes(raw))
            }
        }
        var exact: [Int128]?
        if type.isWideDecimal {
            switch data.values {
            case .int32(let v): exact = expand(convert(v) { Int128($0) }, zero: 0)
            case .int64(let v): exact = expand(convert(v) { Int128($0) }, zero: 0)
            case .byteArray(let b): exact = expand((0..<b.count).map { DecimalText.bigEndian(Array(b[$0])) }, zero: 0)
            case .fixedLenByteArray(let f): exact = expand((0..<f.count).map { DecimalText.bigEndian(Array(f[$0])) }, zero: 0)
            default: break
            }
        }
        self.init(type: type, values: values, validity: valid, unscaled: exact)
    }

    /// `count` copies of one table value (a partition value) as a column of `type`.
    init(repeating value: LakeValue, type: FrameType, count: Int) {
        let scalar: Value
        switch value {
        case .null: scalar = .null
        case .bool(let b): scalar = .bool(b)
        case .int(let n): scalar = .int(n)
        case .double(let d): scalar = .double(d)
        case .string(let s): scalar = .string(s)
        case .bytes(let b): scalar = .bytes(b)
        }
        self = Column.from([Value](repeating: scalar, count: count), type: type)
    }
}

/// A filter's conjuncts, those that read one string column alone (by field position) apart from the rest.
struct DictionaryFilter {
    var byField: [Int: [Expr]] = [:]
    var rest: [Expr] = []

    init(_ filter: Expr?, names: [String], types: [FrameType]) {
        guard let filter else { return }
        let positions = Dictionary(names.enumerated().map { ($1.lowercased(), $0) }, uniquingKeysWith: { a, _ in a })
        for conjunct in filter.conjuncts {
            var windowed = false
            conjunct.visit { if case .window = $0 { windowed = true } }
            if !windowed, conjunct.columns.count == 1, let i = positions[conjunct.columns.first!], types[i] == .string || types[i] == .binary {
                byField[i, default: []].append(conjunct)
            } else {
                rest.append(conjunct)
            }
        }
    }
}

/// One chunk's dictionary-encoded string column seen row by row: each row's entry, the last entry standing for null.
struct CodedColumn {
    let entries: ByteColumn
    let rowCodes: [UInt32]
    let hasNulls: Bool

    init(_ data: ColumnData, codes: DictionaryCodes, maxDefinitionLevel: Int) {
        var entries = ByteColumn()
        entries.data = codes.dictionary.data
        entries.offsets = convert(codes.dictionary.offsets) { Int($0) }
        entries.offsets.append(entries.data.count)  // the null entry (empty)
        self.entries = entries
        if let defs = data.definitionLevels, codes.codes.count < data.count {
            let maxDef = UInt8(maxDefinitionLevel), null = UInt32(codes.dictionary.count)
            var next = 0
            rowCodes = defs.map { level in
                guard level == maxDef else { return null }
                defer { next += 1 }
                return codes.codes[next]
            }
            hasNulls = true
        } else {
            rowCodes = codes.codes
            hasNulls = false
        }
    }

    /// The rows (of `rows`, or of all) whose entry `passes`.
    func select(_ passes: [Bool], from rows: [Int]?) -> [Int] {
        rowCodes.withUnsafeBufferPointer { codes in
            passes.withUnsafeBufferPointer { passes in
                if let rows { return rows.filter { passes[Int(codes[$0])] } }
                var out: [Int] = []
                for i in 0..<codes.count where passes[Int(codes[i])] { out.append(i) }
                return out
            }
        }
    }

    /// The column of `type` for `rows` (every row when nil).
    func column(type: FrameType, rows: [Int]?) -> Column {
        let codes = rows.map { r in r.map { Int(rowCodes[$0]) } } ?? convert(rowCodes) { Int($0) }
        let null = entries.count - 1
        return Column(type: type, values: .bytes(entries.gather(codes)), validity: hasNulls ? codes.map { $0 != null } : nil)
    }

    /// Whether `conjunct` holds for each entry (null counting as false), or nil when it cannot be decided per entry.
    func passes(_ conjunct: Expr, name: String, type: FrameType) -> [Bool]? {
        var validity = [Bool](repeating: true, count: entries.count)
        validity[entries.count - 1] = false
        let frame = Frame(names: [name], columns: [Column(type: type, values: .bytes(entries), validity: validity)])
        // An error (say, a cast that fails on a value no row of this chunk holds any more) leaves it to the rows.
        guard let result = try? conjunct.evaluate(frame), result.count == entries.count, case .bool(let bits) = result.values else { return nil }
        guard let valid = result.validity else { return bits }
        return zip(bits, valid).map { $0 && $1 }
    }
}

extension Frame {
    /// Reads a Delta table's planned files into one frame (the given columns, or every primitive column).
    /// Calls `body` with each row group of the table as a frame (the given columns, `filter` applied), in parallel;
    /// returns the results in plan order. Nothing but the results stays in memory.
    public static func mapChunks<T>(_ table: DeltaTable, plan: ScanPlan, columns wanted: [String]? = nil, filter: Expr? = nil,
                                    limit: MemoryLimit? = nil, _ body: @Sendable (Frame) throws -> T) throws -> [T] {
        try mapChunks(table, plan: plan, columns: wanted, filter: filter, limit: limit) { frame, mask in try body(mask.map { frame.filter($0) } ?? frame) }
    }

    /// Like `mapChunks`, but the body gets each whole chunk with the filter's mask (nil without a filter) and
    /// decides how to apply it: an aggregation can skip rows instead of copying the ones that pass.
    ///
    /// A conjunct of the filter that reads one string column is decided on the column's dictionary when a file
    /// stores it dictionary-encoded (once per distinct value, not per row); the body then gets only the rows that
    /// pass those conjuncts, with the mask of the rest.
    /// With a `limit`, each chunk's work is checked against it (a query past it stops with RESOURCE_EXHAUSTED).
    public static func mapChunks<T>(_ table: DeltaTable, plan: ScanPlan, columns wanted: [String]? = nil, filter: Expr?,
                                    limit: MemoryLimit? = nil, masked body: @Sendable (Frame, Column?) throws -> T) throws -> [T] {
        let (fields, types) = try frameFields(plan.snapshot.schema, wanted)
        let split = DictionaryFilter(filter, names: fields.map(\.name), types: types)
        return try table.forEachChunk(plan, fields: fields, keepingCodes: Set(split.byField.keys)) { chunk in
            var coded: [Int: CodedColumn] = [:]
            for (i, column) in chunk.columns.enumerated() {
                if case .data(let data, let descriptor) = column, let codes = data.dictionaryCodes, codes.dictionary.count < chunk.rows {
                    coded[i] = CodedColumn(data, codes: codes, maxDefinitionLevel: descriptor.maxDefinitionLevel)
                }
            }
            var rows: [Int]?
            var rest = split.rest
            for (i, conjuncts) in split.byField.sorted(by: { $0.key < $1.key }) {
                for conjunct in conjuncts {
                    guard let column = coded[i], let passes = column.passes(conjunct, name: fields[i].name, type: types[i]) else {
                        rest.append(conjunct)
                        continue
                    }
                    rows = column.select(passes, from: rows)
                }
            }
            let count = rows?.count ?? chunk.rows
            let frame = Frame(names: fields.map(\.name), columns: try zip(chunk.columns, types).enumerated().map { i, pair in
                let (column, type) = pair
                if let codedColumn = coded[i] { return codedColumn.column(type: type, rows: rows) }
                let whole: Column
                switch column {
                case .data(let data, let descriptor): whole = try Column(parquet: data.materialized(), descriptor: descriptor, type: type)
                case .constant(let value): return Column(repeating: value, type: type, count: count)
                case .nested(let cells, let node): whole = Column(nested: cells, node: node, type: type)
                }
                return rows.map { whole.take($0) } ?? whole
            })
            let remaining = rest.isEmpty ? nil : rest.dropFirst().reduce(rest[0]) { .binary("AND", $0, $1) }
            try limit?.check("reading \(URL(fileURLWithPath: table.path).lastPathComponent)")
            let result = try body(frame, try remaining.map { try $0.evaluate(frame) })
            try limit?.check("a step over \(URL(fileURLWithPath: table.path).lastPathComponent)")
            return result
        }
    }

    /// An empty frame with the table's (or the wanted) columns.
    public static func empty(_ schema: DeltaSchema, columns wanted: [String]? = nil) throws -> Frame {
        let (fields, types) = try frameFields(schema, wanted)
        return Frame(names: fields.map(\.name), columns: types.map { Column(type: $0, values: .empty($0, count: 0)) })
    }

    static func frameFields(_ schema: DeltaSchema, _ wanted: [String]?) throws -> ([DeltaField], [FrameType]) {
        let fields: [DeltaField]
        if let wanted {
            fields = try wanted.map { name in
                guard let field = schema.field(name) else {
                    throw KilnError.invalid("No column '\(name)'; columns are \(schema.fields.map(\.name).joined(separator: ", "))")
                }
                return field
            }
        } else {
            fields = schema.fields.filter { FrameType(delta: $0.type) != nil }
        }
        let types = try fields.map { field -> FrameType in
            guard let type = FrameType(delta: field.type) else {
                throw KilnError.invalid("Column '\(field.name)' is a \(field.type.sqlName); nested columns are not supported in frames yet")
            }
            return type
        }
        return (fields, types)
    }

    /// With a `filter`, each chunk keeps only the rows where it is true as soon as it is decoded (in parallel).
    public static func read(_ table: DeltaTable, plan: ScanPlan, columns wanted: [String]? = nil, filter: Expr? = nil, limit: MemoryLimit? = nil) throws -> Frame {
        let parts = try mapChunks(table, plan: plan, columns: wanted, filter: filter, limit: limit) { $0 }
        return parts.isEmpty ? try empty(plan.snapshot.schema, columns: wanted) : Frame.concatenate(parts)
    }

    /// Reads the flat columns of a Parquet file (row groups in parallel).
    public static func read(parquet path: String, columns wanted: [String]? = nil) throws -> Frame {
        let reader = try ParquetFileReader(path: path)
        return try read(reader, rowGroups: Array(reader.metadata.rowGroups.indices), columns: wanted)
    }

    /// Rows `range` of the flat columns of the Parquet file `source` serves, reading only the row groups that hold
    /// them (a page of a large file costs a row group, not the file); and the file's row count.
    public static func read(parquet source: any ParquetSource, rows range: Range<Int>) throws -> (frame: Frame, totalRows: Int) {
        let reader = try ParquetFileReader(source: source)
        var groups: [Int] = [], first = 0, start = 0
        for (i, group) in reader.metadata.rowGroups.enumerated() {
            let rows = Int(group.numRows)
            if start + rows > range.lowerBound, start < range.upperBound {
                if groups.isEmpty { first = start }
                groups.append(i)
            }
            start += rows
        }
        let frame = try read(reader, rowGroups: groups, columns: nil)
        let lower = min(frame.rowCount, max(0, range.lowerBound - first))
        return (frame.slice(lower..<min(frame.rowCount, max(lower, range.upperBound - first))), start)
    }

    /// Every column of a Parquet file held in memory (an upload), nested ones included.
    public static func read(parquetBytes bytes: [UInt8]) throws -> Frame {
        let reader = try ParquetFileReader(source: ParquetBytes(bytes))
        return try read(reader, rowGroups: Array(reader.metadata.rowGroups.indices), columns: nil, nested: true)
    }

    /// The frame as a Parquet file in memory (snappy, a row group per million rows), every column nullable.
    public func parquetBytes() throws -> [UInt8] {
        let batch = try lakeBatch(DeltaSchema(zip(names, columns).map { DeltaField(name: $0, type: $1.type.delta) }))
        let sink = ParquetMemorySink()
        let writer = try ParquetFileWriter(sink: sink, schema: batch.schema, options: ParquetWriterOptions(codec: .snappy))
        let groupRows = 1 << 20
        if rowCount <= groupRows {
            try writer.writeRowGroup(batch.columns)
        } else {
            for start in stride(from: 0, to: rowCount, by: groupRows) {
                try writer.writeRowGroup(batch.columns.enumerated().map { i, c in
                    c.slice(rows: start..<min(rowCount, start + groupRows), maxDefinitionLevel: batch.schema.columns[i].maxDefinitionLevel)
                })
            }
        }
        _ = try writer.close()
        return sink.bytes
    }

    /// The file's top-level columns (`wanted`, or all): flat ones always, nested ones when `nested` (else skipped).
    static func read(_ reader: ParquetFileReader, rowGroups: [Int], columns wanted: [String]?, nested: Bool = false) throws -> Frame {
        var nodes = reader.schema.root.children.filter { nested || $0.isLeaf }
        if let wanted {
            nodes = try wanted.map { name in
                guard let node = reader.schema.root.children.first(where: { $0.name.lowercased() == name.lowercased() }), nested || node.isLeaf else {
                    throw KilnError.invalid("No flat column '\(name)' in \(URL(fileURLWithPath: reader.path).lastPathComponent)")
                }
                return node
            }
        }
        let types = try nodes.map { try FrameType(parquetNode: $0) }
        let leaves = nodes.flatMap(\.leaves)
        // Writers put out empty row groups (pyarrow for a table with no rows) whose chunks point nowhere: skip them.
        let rowGroups = rowGroups.filter { reader.metadata.rowGroups[$0].numRows > 0 }
        let groups = try reader.readAll(rowGroups: rowGroups, columns: leaves)
        let parts = try groups.map { group in
            let data = Dictionary(uniqueKeysWithValues: zip(leaves, group))
            return Frame(names: nodes.map(\.name), columns: try zip(nodes, types).map { node, type in
                if let leaf = node.leafIndex { return try Column(parquet: data[leaf]!, descriptor: reader.columns[leaf], type: type) }
                let mine = Set(node.leaves)
                let assembler = try RecordAssembler(schema: reader.schema, columns: data.filter { mine.contains($0.key) })
                return Column(nested: try (0..<assembler.rowCount).map { try assembler.row($0)[0] }, node: node, type: type)
            })
        }
        if parts.isEmpty {
            return Frame(names: nodes.map(\.name), columns: types.map { Column(type: $0, values: .empty($0, count: 0)) })
        }
        return Frame.concatenate(parts)
    }

    /// Rows `range` of a Delta table's latest version (its live files in path order), reading only the files that
    /// hold them, found from each file's row count in its stats (a file without stats is read to be counted); and
    /// the table's row count.
    public static func read(_ table: DeltaTable, rows range: Range<Int>) throws -> (frame: Frame, totalRows: Int) {
        var plan = try table.plan()
        var chosen: [AddFile] = [], start = 0, first: Int?
        for file in plan.files {
            var count: Int
            if let n = FileStats.parse(file.stats)?.numRecords {
                count = Int(n)
                if case .number(let deleted)? = file.deletionVector?["cardinality"] { count -= Int(deleted) ?? 0 }
            } else {
                var one = plan
                one.files = [file]
                count = try read(table, plan: one).rowCount
            }
            if start + count > range.lowerBound, start < range.upperBound {
                chosen.append(file)
                if first == nil { first = start }
            }
            start += count
        }
        plan.files = chosen
        let frame = chosen.isEmpty ? try empty(plan.snapshot.schema) : try read(table, plan: plan)
        let lower = min(frame.rowCount, max(0, range.lowerBound - (first ?? 0)))
        return (frame.slice(lower..<min(frame.rowCount, max(lower, range.upperBound - (first ?? 0)))), start)
    }
}

extension FrameType {
    /// The Delta column type that stores this frame type.
    public var delta: DeltaType {
        switch self {
        case .bool: .primitive("boolean")
        case .int8: .primitive("byte")
        case .int16: .primitive("short")
        case .int32: .primitive("integer")
        case .int64: .primitive("long")
        case .float32: .primitive("float")
        case .float64: .primitive("double")
        case .string: .primitive("string")
        case .binary: .primitive("binary")
        case .date: .primitive("date")
        case .timestamp: .primitive("timestamp")
        case .decimal(let p, let s): .decimal(precision: min(p, 38), scale: s)
        case .array(let element): .array(element.delta, containsNull: true)
        case .map(let k, let v): .map(k.delta, v.delta, valueContainsNull: true)
        case .structure(let fields): .structure(fields.map { DeltaField(name: $0.name, type: $0.type.delta) })
        }
    }
}

extension Frame {
    /// The frame as rows for a Delta table: one flat Parquet leaf per column, typed as `delta` says (decimals are
    /// rounded to their scale; every column is nullable unless the schema says otherwise).
    public func lakeBatch(_ schema: DeltaSchema) throws -> LakeBatch {
        let parquet = try schema.parquetSchema()
        let fields = parquet.root.children
        guard fields.count == columns.count else { throw KilnError.invalid("The rows have \(columns.count) columns; the table has \(fields.count)") }
        var out: [ColumnData] = []
        for (column, node) in zip(columns, fields) {
            guard let leaf = node.leafIndex else {
                out += try column.shredded(node: node)
                continue
            }
            let descriptor = parquet.columns[leaf]
            let rows = column.count
            let present = (0..<rows).filter { !column.isNull($0) }
            var scale = 0
            if case .decimal(_, let s)? = descriptor.element.logicalType { scale = Int(s) }
            // Decimals are held as doubles: the unscaled integer is the nearest one (exact to 15 digits).
            func unscaled(_ i: Int) throws -> Int128 {
                if let exact = column.unscaled, case .decimal(_, let s) = column.type {
                    guard let u = DecimalText.rescale(exact[i], from: s, to: scale) else {
                        throw KilnError.invalid("Column '\(descriptor.dottedPath)': \(DecimalText.text(unscaled: exact[i], scale: s)) does not fit its decimal type")
                    }
                    return u
                }
                let d: Double
                switch column.values {
                case .double(let v): d = v[i]
                case .int(let v): d = Double(v[i])
                default: return 0
                }
                guard let u = Int128(exactly: (d * pow(10, Double(scale))).rounded()) else {
                    throw KilnError.invalid("Column '\(descriptor.dottedPath)': \(d) does not fit its decimal type")
                }
                return u
            }
            let values: KilnParquet.ColumnValues
            switch (descriptor.element.physicalType!, column.values) {
            case (.boolean, .bool(let v)): values = .boolean(present.map { v[$0] })
            case (.int32, .int(let v)) where scale == 0: values = .int32(present.map { Int32(truncatingIfNeeded: v[$0]) })
            case (.int64, .int(let v)) where scale == 0: values = .int64(present.map { v[$0] })
            case (.int32, _): values = .int32(try present.map { Int32(truncatingIfNeeded: try unscaled($0)) })
            case (.int64, _): values = .int64(try present.map { Int64(truncatingIfNeeded: try unscaled($0)) })
            case (.float, .double(let v)): values = .float(present.map { Float(v[$0]) })
            case (.double, .double(let v)): values = .double(present.map { v[$0] })
            case (.byteArray, .bytes(let v)): values = .byteArray(ByteArrays(present.map { Array(v[$0]) }))
            case (.fixedLenByteArray, _):
                let width = Int(descriptor.element.typeLength ?? 16)
                var data: [UInt8] = []
                for i in present {
                    let u = try unscaled(i)
                    for k in stride(from: width - 1, through: 0, by: -1) { data.append(k >= 16 ? (u < 0 ? 0xFF : 0) : UInt8(truncatingIfNeeded: u >> (8 * k))) }
                }
                values = .fixedLenByteArray(FixedBytes(width: width, data: data))
            default:
                throw KilnError.invalid("Cannot store a \(column.type) column in \(descriptor.dottedPath)")
            }
            if descriptor.maxDefinitionLevel == 0 {
                guard present.count == rows else { throw KilnError.invalid("Column '\(descriptor.dottedPath)' is NOT NULL; the rows have nulls") }
                out.append(ColumnData(values: values, count: rows))
            } else {
                out.append(ColumnData(values: values, definitionLevels: (0..<rows).map { column.isNull($0) ? 0 : 1 }, count: rows))
            }
        }
        return LakeBatch(schema: parquet, columns: out)
    }
}

extension Value {
    /// A table cell (as `DeltaTable.readRows` gives it) as a scalar of `type`.
    public init(cell: ParquetCell, type: FrameType) {
        let scale: Int
        if case .decimal(_, let s) = type { scale = s } else { scale = 0 }
        switch (cell, type) {
        case (.null, _): self = .null
        case (_, let nested) where nested.isNested: self = .nested(NestedText.text(cell, node: NestedText.node(nested), type: nested), nested)
        case (.bool(let b), _): self = .bool(b)
        case (.int32(let v), .decimal): self = type.isWideDecimal ? .decimal(Int128(v), scale: scale) : .double(Double(v) / pow(10, Double(scale)))
        case (.int64(let v), .decimal): self = type.isWideDecimal ? .decimal(Int128(v), scale: scale) : .double(Double(v) / pow(10, Double(scale)))
        case (.bytes(let b), .decimal):
            self = type.isWideDecimal ? .decimal(DecimalText.bigEndian(b), scale: scale) : .double(Double(DecimalText.bigEndian(b)) / pow(10, Double(scale)))
        case (.int32(let v), .date): self = .date(Int64(v))
        case (.int64(let v), .timestamp): self = .timestamp(v)
        case (.int32(let v), _): self = .int(Int64(v))
        case (.int64(let v), _): self = .int(v)
        case (.float(let f), _): self = .double(Double(f))
        case (.double(let d), _): self = .double(d)
        case (.bytes(let b), .binary): self = .bytes(b)
        case (.bytes(let b), _): self = .string(String(decoding: b, as: UTF8.self))
        default: self = .null
        }
    }
}
