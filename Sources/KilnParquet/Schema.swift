/// Time units of TIME and TIMESTAMP.
public enum TimeUnit: Sendable, Equatable {
    case millis, micros, nanos

    public var name: String {
        switch self {
        case .millis: "MILLIS"
        case .micros: "MICROS"
        case .nanos: "NANOS"
        }
    }

    /// Units per second.
    public var perSecond: Int64 {
        switch self {
        case .millis: 1_000
        case .micros: 1_000_000
        case .nanos: 1_000_000_000
        }
    }
}

/// Parquet logical type annotations (`LogicalType` in parquet.thrift).
public enum LogicalType: Sendable, Equatable {
    case string, map, list, enumeration, date, unknown, json, bson, uuid, float16
    case decimal(precision: Int32, scale: Int32)
    case time(TimeUnit, utc: Bool)
    case timestamp(TimeUnit, utc: Bool)
    case integer(bits: Int8, signed: Bool)
    case other(Int16)

    /// As Parquet tools print it: `STRING`, `DECIMAL(10, 2)`, `TIMESTAMP(MICROS, UTC)`, `INT(8, signed)`...
    public var name: String {
        switch self {
        case .string: "STRING"
        case .map: "MAP"
        case .list: "LIST"
        case .enumeration: "ENUM"
        case .date: "DATE"
        case .unknown: "UNKNOWN"
        case .json: "JSON"
        case .bson: "BSON"
        case .uuid: "UUID"
        case .float16: "FLOAT16"
        case .decimal(let p, let s): "DECIMAL(\(p), \(s))"
        case .time(let unit, let utc): "TIME(\(unit.name), \(utc ? "UTC" : "local"))"
        case .timestamp(let unit, let utc): "TIMESTAMP(\(unit.name), \(utc ? "UTC" : "local"))"
        case .integer(let bits, let signed): "INT(\(bits), \(signed ? "signed" : "unsigned"))"
        case .other(let id): "LOGICAL(\(id))"
        }
    }

    init?(_ union: ThriftStruct) {
        guard let (id, value) = union.fields.first else { return nil }
        let inner: ThriftStruct? = { if case .structure(let s) = value { return s }; return nil }()
        func unit() -> TimeUnit {
            guard let s = inner?.structure(2) else { return .millis }
            return s[2] != nil ? .micros : s[3] != nil ? .nanos : .millis
        }
        switch id {
        case 1: self = .string
        case 2: self = .map
        case 3: self = .list
        case 4: self = .enumeration
        case 5: self = .decimal(precision: inner?.i32(2) ?? 0, scale: inner?.i32(1) ?? 0)
        case 6: self = .date
        case 7: self = .time(unit(), utc: inner?.bool(1) == true)
        case 8: self = .timestamp(unit(), utc: inner?.bool(1) == true)
        case 10:
            var width: Int8 = 0
            if case .byte(let w)? = inner?[1] { width = w }
            self = .integer(bits: width, signed: inner?.bool(2) == true)
        case 11: self = .unknown
        case 12: self = .json
        case 13: self = .bson
        case 14: self = .uuid
        case 15: self = .float16
        default: self = .other(id)
        }
    }

    var thrift: ThriftStruct {
        let empty = ThriftValue.structure(ThriftStruct())
        func unit(_ u: TimeUnit) -> ThriftValue {
            .structure(ThriftStruct([u == .millis ? 1 : u == .micros ? 2 : 3: empty]))
        }
        switch self {
        case .string: return ThriftStruct([1: empty])
        case .map: return ThriftStruct([2: empty])
        case .list: return ThriftStruct([3: empty])
        case .enumeration: return ThriftStruct([4: empty])
        case .decimal(let p, let s): return ThriftStruct([5: .structure(ThriftStruct([1: .i32(s), 2: .i32(p)]))])
        case .date: return ThriftStruct([6: empty])
        case .time(let u, let utc): return ThriftStruct([7: .structure(ThriftStruct([1: .bool(utc), 2: unit(u)]))])
        case .timestamp(let u, let utc): return ThriftStruct([8: .structure(ThriftStruct([1: .bool(utc), 2: unit(u)]))])
        case .integer(let bits, let signed): return ThriftStruct([10: .structure(ThriftStruct([1: .byte(bits), 2: .bool(signed)]))])
        case .unknown: return ThriftStruct([11: empty])
        case .json: return ThriftStruct([12: empty])
        case .bson: return ThriftStruct([13: empty])
        case .uuid: return ThriftStruct([14: empty])
        case .float16: return ThriftStruct([15: empty])
        case .other(let id): return ThriftStruct([id: empty])
        }
    }

    /// The legacy converted type that older readers understand, where one exists.
    var convertedType: ConvertedType? {
        switch self {
        case .string: .utf8
        case .map: .map
        case .list: .list
        case .enumeration: .enumeration
        case .decimal: .decimal
        case .date: .date
        case .json: .json
        case .bson: .bson
        case .time(.millis, _): .timeMillis
        case .time(.micros, _): .timeMicros
        case .timestamp(.millis, true): .timestampMillis
        case .timestamp(.micros, true): .timestampMicros
        case .integer(let bits, let signed):
            switch (bits, signed) {
            case (8, true): .int8
            case (16, true): .int16
            case (32, true): .int32
            case (64, true): .int64
            case (8, false): .uint8
            case (16, false): .uint16
            case (32, false): .uint32
            case (64, false): .uint64
            default: nil
            }
        default: nil
        }
    }
}

/// Legacy converted types (`ConvertedType` in parquet.thrift).
public enum ConvertedType: Int32, Sendable {
    case utf8 = 0, map, mapKeyValue, list, enumeration, decimal, date, timeMillis, timeMicros, timestampMillis,
         timestampMicros, uint8, uint16, uint32, uint64, int8, int16, int32, int64, json, bson, interval

    public var name: String {
        ["UTF8", "MAP", "MAP_KEY_VALUE", "LIST", "ENUM", "DECIMAL", "DATE", "TIME_MILLIS", "TIME_MICROS", "TIMESTAMP_MILLIS",
         "TIMESTAMP_MICROS", "UINT_8", "UINT_16", "UINT_32", "UINT_64", "INT_8", "INT_16", "INT_32", "INT_64", "JSON", "BSON",
         "INTERVAL"][Int(rawValue)]
    }
}

/// One node of a Parquet schema as a tree: a leaf column or a group of fields.
public struct SchemaNode: Sendable, Equatable {
    public var element: SchemaElement
    public var children: [SchemaNode]
    /// Definition level of this node: how many optional or repeated nodes lie on the path to it, itself included.
    public internal(set) var definitionLevel = 0
    /// Repetition level of this node: how many repeated nodes lie on the path to it, itself included.
    public internal(set) var repetitionLevel = 0
    /// For a leaf, its index among the schema's leaf columns.
    public internal(set) var leafIndex: Int?

    public var name: String { element.name }
    public var isLeaf: Bool { element.physicalType != nil }
    public var repetition: Repetition { element.repetition ?? .required }

    /// A leaf column.
    public static func leaf(_ name: String, _ type: PhysicalType, _ repetition: Repetition = .optional, logical: LogicalType? = nil,
                            typeLength: Int32? = nil) -> SchemaNode {
        var element = SchemaElement(name: name, physicalType: type, repetition: repetition)
        element.typeLength = typeLength
        element.setLogicalType(logical)
        return SchemaNode(element: element, children: [])
    }

    /// A group of fields (a struct), optionally annotated LIST or MAP.
    public static func group(_ name: String, _ repetition: Repetition = .optional, logical: LogicalType? = nil, _ children: [SchemaNode]) -> SchemaNode {
        var element = SchemaElement(name: name, physicalType: nil, repetition: repetition)
        element.numChildren = Int32(children.count)
        element.setLogicalType(logical)
        return SchemaNode(element: element, children: children)
    }

    /// The standard three-level LIST: `<repetition> group name (LIST) { repeated group list { <element> } }`.
    public static func list(_ name: String, _ repetition: Repetition = .optional, element: SchemaNode) -> SchemaNode {
        var item = element
        item.element.name = "element"
        return .group(name, repetition, logical: .list, [.group("list", .repeated, [item])])
    }

    /// The standard MAP: `<repetition> group name (MAP) { repeated group key_value { required key; value } }`.
    public static func map(_ name: String, _ repetition: Repetition = .optional, key: SchemaNode, value: SchemaNode) -> SchemaNode {
        var k = key, v = value
        k.element.name = "key"
        k.element.repetition = .required
        v.element.name = "value"
        return .group(name, repetition, logical: .map, [.group("key_value", .repeated, [k, v])])
    }
}

/// Where a leaf column sits in the schema.
public struct ColumnDescriptor: Sendable, Equatable {
    public var path: [String]
    public var element: SchemaElement
    public var maxDefinitionLevel: Int
    public var maxRepetitionLevel: Int
    public var dottedPath: String { path.joined(separator: ".") }
}

/// A file's schema: the tree of fields under the root, and its leaf columns in file order.
public struct ParquetSchema: Sendable, Equatable {
    public var root: SchemaNode
    public private(set) var columns: [ColumnDescriptor] = []

    /// Builds a schema from top-level fields.
    public init(_ fields: [SchemaNode], name: String = "schema") {
        self.init(root: .group(name, .required, fields))
    }

    public init(root: SchemaNode) {
        self.root = root
        var columns: [ColumnDescriptor] = []
        func annotate(_ node: inout SchemaNode, path: [String], definition: Int, repetition: Int) {
            node.definitionLevel = definition
            node.repetitionLevel = repetition
            if node.isLeaf {
                node.leafIndex = columns.count
                columns.append(ColumnDescriptor(path: path, element: node.element, maxDefinitionLevel: definition, maxRepetitionLevel: repetition))
                return
            }
            node.element.numChildren = Int32(node.children.count)
            for i in node.children.indices {
                let child = node.children[i]
                annotate(&node.children[i], path: path + [child.name],
                         definition: definition + (child.repetition == .required ? 0 : 1),
                         repetition: repetition + (child.repetition == .repeated ? 1 : 0))
            }
        }
        var annotated = root
        annotated.element.repetition = nil
        annotate(&annotated, path: [], definition: 0, repetition: 0)
        self.root = annotated
        self.columns = columns
    }

    /// Rebuilds the tree from a footer's depth-first element list.
    public init(elements: [SchemaElement]) throws {
        guard let first = elements.first else { throw ParquetError("Footer has an empty schema") }
        var index = 1
        func children(count: Int32, depth: Int) throws -> [SchemaNode] {
            guard depth <= 64 else { throw ParquetError("Schema nests deeper than 64 levels") }
            var nodes: [SchemaNode] = []
            for _ in 0..<count {
                guard index < elements.count else { throw ParquetError("Schema declares more children than it lists") }
                let element = elements[index]
                index += 1
                if element.physicalType == nil {
                    let n = element.numChildren ?? 0
                    guard n > 0 else { throw ParquetError("Group '\(element.name)' has no children") }
                    nodes.append(SchemaNode(element: element, children: try children(count: n, depth: depth + 1)))
                } else {
                    guard (element.numChildren ?? 0) == 0 else { throw ParquetError("Leaf '\(element.name)' declares children") }
                    nodes.append(SchemaNode(element: element, children: []))
                }
            }
            return nodes
        }
        let top = try children(count: first.numChildren ?? Int32(elements.count - 1), depth: 1)
        guard index == elements.count else { throw ParquetError("Schema lists \(elements.count - index) elements outside the tree") }
        self.init(root: SchemaNode(element: first, children: top))
    }

    /// The depth-first element list a footer stores.
    public var elements: [SchemaElement] {
        var out: [SchemaElement] = []
        func walk(_ node: SchemaNode) {
            out.append(node.element)
            node.children.forEach(walk)
        }
        walk(root)
        return out
    }

    /// The index of the leaf column with this dotted path.
    public func columnIndex(_ dotted: String) -> Int? { columns.firstIndex { $0.dottedPath == dotted } }
}
