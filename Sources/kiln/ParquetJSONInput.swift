import Foundation
import KilnCore
import KilnParquet

/// The type a sample of JSON values suggests; merging widens (BIGINT + DOUBLE → DOUBLE, anything else → STRING).
indirect enum JSONType: Equatable {
    case null, bool, int, double, string
    case array(JSONType)
    case object([String: JSONType])

    init(_ value: JSONValue) {
        switch value {
        case .null: self = .null
        case .bool: self = .bool
        case .number(let text): self = text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) || Int64(text) == nil ? .double : .int
        case .string: self = .string
        case .array(let items): self = .array(items.reduce(JSONType.null) { $0.merged(JSONType($1)) })
        case .object(let fields): self = .object(fields.mapValues(JSONType.init))
        }
    }

    func merged(_ other: JSONType) -> JSONType {
        switch (self, other) {
        case (.null, _): return other
        case (_, .null): return self
        case (.int, .double), (.double, .int): return .double
        case (.array(let a), .array(let b)): return .array(a.merged(b))
        case (.object(let a), .object(let b)): return .object(a.merging(b) { $0.merged($1) })
        default: return self == other ? self : .string
        }
    }

    func node(_ name: String) -> SchemaNode {
        switch self {
        case .null, .string: .leaf(name, .byteArray, logical: .string)
        case .bool: .leaf(name, .boolean)
        case .int: .leaf(name, .int64)
        case .double: .leaf(name, .double)
        case .array(let element): .list(name, element: element.node("element"))
        case .object(let fields): fields.isEmpty ? .leaf(name, .byteArray, logical: .string) : .group(name, .optional, fields.keys.sorted().map { fields[$0]!.node($0) })
        }
    }
}

/// JSON values → cells for a schema node.
enum JSONCells {
    static func cell(_ value: JSONValue, node: SchemaNode) throws -> ParquetCell {
        if value == .null { return .null }
        if let element = node.listElement {
            guard case .array(let items) = value else { throw ParquetError("'\(node.name)' is a list; got a JSON \(value.typeName)") }
            return .list(try items.map { try cell($0, node: element) })
        }
        if let (keyNode, valueNode) = node.mapEntry {
            guard case .object(let object) = value else { throw ParquetError("'\(node.name)' is a map; got a JSON \(value.typeName)") }
            return .map(try object.keys.sorted().map { key in
                ParquetCell.MapEntry(try TextValues.cell(Array(key.utf8), element: keyNode.element), try cell(object[key]!, node: valueNode))
            })
        }
        if !node.isLeaf {
            guard case .object(let object) = value else { throw ParquetError("'\(node.name)' is a struct; got a JSON \(value.typeName)") }
            return .record(try node.children.map { try cell(object[$0.name] ?? .null, node: $0) })
        }
        let element = node.element
        do {
            switch value {
            case .bool(let b):
                if element.physicalType == .boolean { return .bool(b) }
                return try TextValues.cell(Array((b ? "true" : "false").utf8), element: element)
            case .number(let text):
                return try TextValues.cell(Array(text.utf8), element: element)
            case .string(let text):
                if element.physicalType == .byteArray, element.logicalType == nil, let data = Data(base64Encoded: text) {
                    return .bytes([UInt8](data))  // BINARY columns take base64, as `cat` prints them
                }
                return try TextValues.cell(Array(text.utf8), element: element)
            case .array, .object:
                guard element.physicalType == .byteArray else { throw ParquetError("got a JSON \(value.typeName)") }
                return .bytes(text(value))
            case .null:
                return .null
            }
        } catch let error as ParquetError {
            throw ParquetError("'\(node.name)': \(error.message)")
        }
    }

    /// Compact JSON text of a value (for STRING columns that receive objects or arrays).
    static func text(_ value: JSONValue) -> [UInt8] {
        var w = JSONWriter()
        func write(_ v: JSONValue, _ w: inout JSONWriter) {
            switch v {
            case .null: w.null()
            case .bool(let b): w.value(b)
            case .number(let n): w.raw(n)
            case .string(let s): w.value(s)
            case .array(let items): w.array { w in for item in items { write(item, &w) } }
            case .object(let fields): w.object { w in for key in fields.keys.sorted() { w.key(key); write(fields[key]!, &w) } }
            }
        }
        write(value, &w)
        return w.bytes
    }
}
