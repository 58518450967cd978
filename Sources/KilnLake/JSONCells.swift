import Foundation
import KilnCore
import KilnParquet

/// The type a sample of JSON values suggests; merging widens (BIGINT + DOUBLE → DOUBLE, anything else → STRING).
public indirect enum JSONType: Equatable, Sendable {
    case null, bool, int, double, string
    case array(JSONType)
    case object([String: JSONType])

    public init(_ value: JSONValue) {
        switch value {
        case .null: self = .null
        case .bool: self = .bool
        case .number(let text): self = text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) || Int64(text) == nil ? .double : .int
        case .string: self = .string
        case .array(let items): self = .array(items.reduce(JSONType.null) { $0.merged(JSONType($1)) })
        case .object(let fields): self = .object(fields.mapValues(JSONType.init))
        }
    }

    public func merged(_ other: JSONType) -> JSONType {
        switch (self, other) {
        case (.null, _): return other
        case (_, .null): return self
        case (.int, .double), (.double, .int): return .double
        case (.array(let a), .array(let b)): return .array(a.merged(b))
        case (.object(let a), .object(let b)): return .object(a.merging(b) { $0.merged($1) })
        default: return self == other ? self : .string
        }
    }

    public func node(_ name: String) -> SchemaNode {
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

/// JSON values → cells for a schema node (JSON-lines input, checkpoint rows).
public enum JSONCells {
    public static func cell(_ value: JSONValue, node: SchemaNode) throws -> ParquetCell {
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
    public static func text(_ value: JSONValue) -> [UInt8] {
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

extension JSONCells {
    /// The JSON form of a cell (checkpoint rows → log actions): structs and maps as objects, lists as arrays,
    /// strings as strings, numbers as numbers, binary as base64.
    public static func json(_ cell: ParquetCell, node: SchemaNode) -> JSONValue {
        if node.repetition == .repeated, case .list(let items) = cell {
            var single = node
            single.element.repetition = .required
            return .array(items.map { json($0, node: single) })
        }
        switch cell {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .int32(let v): return .number(String(v))
        case .int64(let v): return .number(String(v))
        case .float(let v): return .number(String(Double(v)))
        case .double(let v): return v.isFinite ? .number(String(v)) : .string(v.isNaN ? "NaN" : v > 0 ? "Infinity" : "-Infinity")
        case .bytes(let b):
            switch node.element.logicalType {
            case .string?, .enumeration?, .json?: return .string(String(decoding: b, as: UTF8.self))
            default: return .string(Data(b).base64EncodedString())
            }
        case .list(let items):
            let element = node.listElement ?? node
            return .array(items.map { json($0, node: element) })
        case .record(let fields):
            var out: [String: JSONValue] = [:]
            for (child, value) in zip(node.children, fields) { out[child.name] = json(value, node: child) }
            return .object(out)
        case .map(let entries):
            guard let (k, v) = node.mapEntry else { return .null }
            var out: [String: JSONValue] = [:]
            for entry in entries {
                let key: String
                switch json(entry.key, node: k) {
                case .string(let s): key = s
                case .number(let n): key = n
                default: continue
                }
                out[key] = json(entry.value, node: v)
            }
            return .object(out)
        }
    }
}
