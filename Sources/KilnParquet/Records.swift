/// One value of a row, nested as the schema nests it. Row-at-a-time tools (`cat`, JSON conversion) use it; bulk
/// paths stay in `ColumnData`.
public indirect enum ParquetCell: Sendable, Equatable {
    case null
    case bool(Bool)
    case int32(Int32)
    case int64(Int64)
    case float(Float)
    case double(Double)
    /// BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY and INT96 values.
    case bytes([UInt8])
    case list([ParquetCell])
    /// A group's fields, in schema order.
    case record([ParquetCell])
    case map([MapEntry])

    public struct MapEntry: Sendable, Equatable {
        public var key: ParquetCell
        public var value: ParquetCell
        public init(_ key: ParquetCell, _ value: ParquetCell) {
            self.key = key
            self.value = value
        }
    }
}

/// How a schema node maps to a logical value.
enum NodeShape {
    case leaf
    case record
    /// A LIST-annotated group: `repeated` is its repeated child; `element` the node holding each item (the repeated
    /// node itself in legacy two-level lists).
    case list(repeated: Int, elementIsRepeated: Bool)
    /// A MAP-annotated group with its repeated key/value group.
    case map
    /// A repeated field outside a LIST annotation: a list of that field's values.
    case bareRepeated

    static func of(_ node: SchemaNode) -> NodeShape {
        if node.isLeaf { return .leaf }
        let annotation = node.element.logicalType
        if annotation == .list || node.element.convertedType == ConvertedType.list.rawValue, node.children.count == 1,
           node.children[0].repetition == .repeated {
            let repeated = node.children[0]
            // Backward-compatibility rules of the LIST spec: the repeated node is itself the element when it is a
            // primitive, has several fields, or is named `array` / `<list>_tuple`.
            let itself = repeated.isLeaf || repeated.children.count > 1 || repeated.name == "array" || repeated.name == node.name + "_tuple"
            return .list(repeated: 0, elementIsRepeated: itself)
        }
        if annotation == .map || node.element.convertedType == ConvertedType.map.rawValue
            || node.element.convertedType == ConvertedType.mapKeyValue.rawValue,
           node.children.count == 1, node.children[0].repetition == .repeated, node.children[0].children.count == 2 {
            return .map
        }
        return .record
    }
}

/// Rebuilds rows from decoded columns (Dremel record assembly).
public struct RecordAssembler {
    let schema: ParquetSchema
    let data: [Int: ColumnData]
    /// Per selected leaf: where each row's slots start (plus one past the end).
    var rowStarts: [Int: [Int]] = [:]
    /// Per selected leaf: index of the first value of each slot.
    var valueIndex: [Int: [Int]] = [:]

    /// `columns` maps leaf index → its data for one row group; leaves not in it are left out of the rows.
    public init(schema: ParquetSchema, columns: [Int: ColumnData]) throws {
        self.schema = schema
        self.data = columns
        var rows: Int?
        for (leaf, column) in columns {
            var starts: [Int] = []
            if let reps = column.repetitionLevels {
                for (slot, level) in reps.enumerated() where level == 0 { starts.append(slot) }
            } else {
                starts = Array(0..<column.count)
            }
            starts.append(column.count)
            guard rows == nil || rows == starts.count - 1 else { throw ParquetError("Columns of one row group disagree on the row count") }
            rows = starts.count - 1
            rowStarts[leaf] = starts
            if let defs = column.definitionLevels {
                let maxDef = UInt8(schema.columns[leaf].maxDefinitionLevel)
                var next = 0
                var index: [Int] = []
                index.reserveCapacity(defs.count)
                for level in defs {
                    index.append(next)
                    if level == maxDef { next += 1 }
                }
                guard next == column.values.count else { throw ParquetError("Levels of '\(schema.columns[leaf].dottedPath)' do not match its values") }
                valueIndex[leaf] = index
            }
        }
    }

    public var rowCount: Int { rowStarts.values.first.map { $0.count - 1 } ?? 0 }

    /// The top-level fields that have at least one selected leaf.
    public var fields: [SchemaNode] { schema.root.children.filter(hasSelectedLeaf) }

    /// Whether any leaf under `node` is among the columns given.
    public func hasSelectedLeaf(_ node: SchemaNode) -> Bool {
        if let leaf = node.leafIndex { return data[leaf] != nil }
        return node.children.contains(where: hasSelectedLeaf)
    }

    func leaves(_ node: SchemaNode) -> [Int] {
        if let leaf = node.leafIndex { return data[leaf] != nil ? [leaf] : [] }
        return node.children.flatMap(leaves)
    }

    /// Row `row` as one cell per field in `fields`.
    public func row(_ row: Int) throws -> [ParquetCell] {
        var ranges: [Int: Range<Int>] = [:]
        for (leaf, starts) in rowStarts { ranges[leaf] = starts[row]..<starts[row + 1] }
        return try fields.map { try value(of: $0, ranges) }
    }

    func definition(_ leaf: Int, _ slot: Int) -> Int {
        data[leaf]!.definitionLevels.map { Int($0[slot]) } ?? schema.columns[leaf].maxDefinitionLevel
    }

    func repetition(_ leaf: Int, _ slot: Int) -> Int {
        data[leaf]!.repetitionLevels.map { Int($0[slot]) } ?? 0
    }

    /// The value of `node` within one instance of its parent, given each leaf's slots for that instance.
    func value(of node: SchemaNode, _ ranges: [Int: Range<Int>]) throws -> ParquetCell {
        let mine = leaves(node)
        guard let probe = mine.first, let range = ranges[probe], !range.isEmpty else { throw ParquetError("Levels end early") }
        if node.repetition == .repeated {
            guard definition(probe, range.lowerBound) >= node.definitionLevel else { return .list([]) }
            // Split every leaf's slots into instances: one starts where the repetition level is at most this node's.
            var split: [[Int: Range<Int>]] = []
            for leaf in mine {
                let r = ranges[leaf]!
                var starts = [r.lowerBound]
                for slot in r.dropFirst() where repetition(leaf, slot) <= node.repetitionLevel { starts.append(slot) }
                starts.append(r.upperBound)
                if split.isEmpty { split = Array(repeating: [:], count: starts.count - 1) }
                guard split.count == starts.count - 1 else { throw ParquetError("Columns under '\(node.name)' disagree on the list lengths") }
                for i in 0..<split.count { split[i][leaf] = starts[i]..<starts[i + 1] }
            }
            return .list(try split.map { try content(of: node, $0) })
        }
        if definition(probe, range.lowerBound) < node.definitionLevel { return .null }
        return try content(of: node, ranges)
    }

    /// The value of one defined instance of `node`.
    func content(of node: SchemaNode, _ ranges: [Int: Range<Int>]) throws -> ParquetCell {
        switch NodeShape.of(node) {
        case .leaf:
            let leaf = node.leafIndex!
            let range = ranges[leaf]!
            guard range.count == 1 else { throw ParquetError("Column '\(node.name)' has \(range.count) values where one was expected") }
            let slot = range.lowerBound
            guard definition(leaf, slot) == schema.columns[leaf].maxDefinitionLevel else { return .null }
            return cell(leaf, valueIndex[leaf]?[slot] ?? slot)
        case .record, .bareRepeated:
            return .record(try node.children.filter(hasSelectedLeaf).map { try value(of: $0, ranges) })
        case .list(let index, let itself):
            let repeated = node.children[index]
            guard case .list(let items) = try value(of: repeated, ranges) else { return .list([]) }
            if itself { return .list(items) }
            return .list(items.map { item in
                if case .record(let fields) = item, fields.count == 1 { return fields[0] }
                return item
            })
        case .map:
            let keyValue = node.children[0]
            guard case .list(let items) = try value(of: keyValue, ranges) else { return .map([]) }
            let selected = keyValue.children.map(hasSelectedLeaf)
            return .map(items.map { item in
                guard case .record(let fields) = item else { return ParquetCell.MapEntry(.null, .null) }
                var iterator = fields.makeIterator()
                let key = selected[0] ? iterator.next() ?? .null : .null
                let value = selected[1] ? iterator.next() ?? .null : .null
                return ParquetCell.MapEntry(key, value)
            })
        }
    }

    func cell(_ leaf: Int, _ index: Int) -> ParquetCell {
        switch data[leaf]!.values {
        case .boolean(let v): .bool(v[index])
        case .int32(let v): .int32(v[index])
        case .int64(let v): .int64(v[index])
        case .float(let v): .float(v[index])
        case .double(let v): .double(v[index])
        case .byteArray(let v): .bytes(Array(v[index]))
        case .int96(let v), .fixedLenByteArray(let v): .bytes(Array(v[index]))
        }
    }
}

/// Splits rows of cells into columns with Dremel levels (the inverse of `RecordAssembler`).
public struct RecordShredder {
    public let schema: ParquetSchema
    var values: [ValueBuilder]
    var definitions: [[UInt8]]
    var repetitions: [[UInt8]]
    public private(set) var rows = 0

    public init(schema: ParquetSchema) {
        self.schema = schema
        values = schema.columns.map { ValueBuilder($0.element.physicalType ?? .int32, width: Int($0.element.typeLength ?? 0)) }
        definitions = Array(repeating: [], count: schema.columns.count)
        repetitions = Array(repeating: [], count: schema.columns.count)
    }

    /// Adds one row: a cell per top-level field.
    public mutating func append(_ row: [ParquetCell]) throws {
        let fields = schema.root.children
        guard row.count == fields.count else { throw ParquetError("Row has \(row.count) fields; the schema has \(fields.count)") }
        for (field, cell) in zip(fields, row) { try shred(field, cell, repetition: 0, definition: 0) }
        rows += 1
    }

    /// The columns shredded so far, and a fresh start for the next row group.
    public mutating func take() -> [ColumnData] {
        let out = schema.columns.indices.map { i in
            let column = schema.columns[i]
            return ColumnData(values: values[i].build(),
                              definitionLevels: column.maxDefinitionLevel > 0 ? definitions[i] : nil,
                              repetitionLevels: column.maxRepetitionLevel > 0 ? repetitions[i] : nil,
                              count: column.maxDefinitionLevel > 0 ? definitions[i].count : values[i].count)
        }
        self = RecordShredder(schema: schema)
        return out
    }

    mutating func empty(_ node: SchemaNode, repetition: Int, definition: Int) {
        if let leaf = node.leafIndex {
            if schema.columns[leaf].maxDefinitionLevel > 0 { definitions[leaf].append(UInt8(definition)) }
            if schema.columns[leaf].maxRepetitionLevel > 0 { repetitions[leaf].append(UInt8(repetition)) }
            return
        }
        for child in node.children { empty(child, repetition: repetition, definition: definition) }
    }

    mutating func shred(_ node: SchemaNode, _ cell: ParquetCell, repetition: Int, definition: Int) throws {
        if node.repetition == .repeated {
            let items: [ParquetCell]
            switch cell {
            case .list(let list): items = list
            case .null: items = []
            default: throw ParquetError("Field '\(node.name)' is repeated; got a single value")
            }
            if items.isEmpty { return empty(node, repetition: repetition, definition: definition) }
            for (i, item) in items.enumerated() {
                try content(node, item, repetition: i == 0 ? repetition : node.repetitionLevel, definition: node.definitionLevel)
            }
            return
        }
        if cell == .null {
            guard node.repetition == .optional else { throw ParquetError("Field '\(node.name)' is required; got null") }
            return empty(node, repetition: repetition, definition: definition)
        }
        try content(node, cell, repetition: repetition, definition: node.definitionLevel)
    }

    mutating func content(_ node: SchemaNode, _ cell: ParquetCell, repetition: Int, definition: Int) throws {
        switch NodeShape.of(node) {
        case .leaf:
            let leaf = node.leafIndex!
            try append(cell, to: leaf, name: node.name)
            if schema.columns[leaf].maxDefinitionLevel > 0 { definitions[leaf].append(UInt8(definition)) }
            if schema.columns[leaf].maxRepetitionLevel > 0 { repetitions[leaf].append(UInt8(repetition)) }
        case .record, .bareRepeated:
            guard case .record(let fields) = cell, fields.count == node.children.count else {
                throw ParquetError("Field '\(node.name)' is a struct of \(node.children.count) fields; got \(cell)")
            }
            for (child, value) in zip(node.children, fields) { try shred(child, value, repetition: repetition, definition: definition) }
        case .list(let index, let itself):
            guard case .list(let items) = cell else { throw ParquetError("Field '\(node.name)' is a list; got \(cell)") }
            let repeated = node.children[index]
            let wrapped = itself ? items : items.map { ParquetCell.record([$0]) }
            try shred(repeated, .list(wrapped), repetition: repetition, definition: definition)
        case .map:
            guard case .map(let entries) = cell else { throw ParquetError("Field '\(node.name)' is a map; got \(cell)") }
            try shred(node.children[0], .list(entries.map { .record([$0.key, $0.value]) }), repetition: repetition, definition: definition)
        }
    }

    mutating func append(_ cell: ParquetCell, to leaf: Int, name: String) throws {
        guard values[leaf].append(cell) else {
            throw ParquetError("Field '\(name)' holds \(values[leaf].type.name) values; got \(cell)")
        }
    }
}

/// Accumulates values of one physical type into its typed buffer.
public struct ValueBuilder: Sendable {
    public let type: PhysicalType
    public var bools: [Bool] = []
    public var ints32: [Int32] = []
    public var ints64: [Int64] = []
    public var floats: [Float] = []
    public var doubles: [Double] = []
    public var byteArrays = ByteArrays()
    public var fixed: FixedBytes

    public init(_ type: PhysicalType, width: Int = 0) {
        self.type = type
        fixed = FixedBytes(width: type == .int96 ? 12 : width)
    }

    public var count: Int {
        switch type {
        case .boolean: bools.count
        case .int32: ints32.count
        case .int64: ints64.count
        case .float: floats.count
        case .double: doubles.count
        case .byteArray: byteArrays.count
        case .int96, .fixedLenByteArray: fixed.count
        }
    }

    /// Appends a cell of the matching kind; false when it does not match the type.
    public mutating func append(_ cell: ParquetCell) -> Bool {
        switch (type, cell) {
        case (.boolean, .bool(let x)): bools.append(x)
        case (.int32, .int32(let x)): ints32.append(x)
        case (.int64, .int64(let x)): ints64.append(x)
        case (.float, .float(let x)): floats.append(x)
        case (.double, .double(let x)): doubles.append(x)
        case (.byteArray, .bytes(let x)): byteArrays.append(x)
        case (.fixedLenByteArray, .bytes(let x)), (.int96, .bytes(let x)):
            guard x.count == fixed.width else { return false }
            fixed.data.append(contentsOf: x)
        default: return false
        }
        return true
    }

    public func build() -> ColumnValues {
        switch type {
        case .boolean: .boolean(bools)
        case .int32: .int32(ints32)
        case .int64: .int64(ints64)
        case .float: .float(floats)
        case .double: .double(doubles)
        case .byteArray: .byteArray(byteArrays)
        case .int96: .int96(fixed)
        case .fixedLenByteArray: .fixedLenByteArray(fixed)
        }
    }
}

extension SchemaNode {
    /// For a LIST-annotated group, the node each item is an instance of (per the LIST compatibility rules).
    /// The leaf column indices under this node (itself, for a leaf).
    public var leaves: [Int] {
        if let leafIndex { return [leafIndex] }
        return children.flatMap(\.leaves)
    }

    public var listElement: SchemaNode? {
        guard case .list(let index, let itself) = NodeShape.of(self) else { return nil }
        return itself ? children[index] : children[index].children[0]
    }

    /// For a MAP-annotated group, its key and value nodes.
    public var mapEntry: (key: SchemaNode, value: SchemaNode)? {
        guard case .map = NodeShape.of(self) else { return nil }
        return (children[0].children[0], children[0].children[1])
    }
}
