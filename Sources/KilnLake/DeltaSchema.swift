import Foundation
import KilnCore
import KilnParquet

/// A Delta column type, as `schemaString` spells it (Spark's JSON schema).
public indirect enum DeltaType: Sendable, Equatable {
    case primitive(String)
    case decimal(precision: Int, scale: Int)
    case structure([DeltaField])
    case array(DeltaType, containsNull: Bool)
    case map(DeltaType, DeltaType, valueContainsNull: Bool)

    static let primitives: Set<String> = ["string", "long", "integer", "short", "byte", "float", "double", "boolean", "binary", "date",
                                          "timestamp", "timestamp_ntz"]

    /// SQL-style name: `BIGINT`, `ARRAY<STRING>`, `STRUCT<a: INT>`...
    public var sqlName: String {
        switch self {
        case .primitive(let name):
            return ["string": "STRING", "long": "BIGINT", "integer": "INT", "short": "SMALLINT", "byte": "TINYINT", "float": "FLOAT",
                    "double": "DOUBLE", "boolean": "BOOLEAN", "binary": "BINARY", "date": "DATE", "timestamp": "TIMESTAMP",
                    "timestamp_ntz": "TIMESTAMP_NTZ"][name] ?? name.uppercased()
        case .decimal(let p, let s): return "DECIMAL(\(p),\(s))"
        case .structure(let fields): return "STRUCT<" + fields.map { "\($0.name): \($0.type.sqlName)" }.joined(separator: ", ") + ">"
        case .array(let element, _): return "ARRAY<\(element.sqlName)>"
        case .map(let k, let v, _): return "MAP<\(k.sqlName), \(v.sqlName)>"
        }
    }

    init(json: JSONValue) throws {
        switch json {
        case .string(let name):
            if name.hasPrefix("decimal(") || name == "decimal" {
                let inner = name.dropFirst("decimal(".count).dropLast()
                let parts = inner.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard name == "decimal" || (parts.count == 2 && parts[0] != nil && parts[1] != nil) else {
                    throw KilnError.invalid("Unknown Delta type '\(name)'")
                }
                self = name == "decimal" ? .decimal(precision: 10, scale: 0) : .decimal(precision: parts[0]!, scale: parts[1]!)
                return
            }
            guard Self.primitives.contains(name) else { throw KilnError.invalid("Unknown Delta type '\(name)'") }
            self = .primitive(name)
        case .object(let o):
            switch o["type"] {
            case .string("struct")?:
                guard case .array(let fields)? = o["fields"] else { throw KilnError.invalid("A struct type without fields") }
                self = .structure(try fields.map(DeltaField.init(json:)))
            case .string("array")?:
                guard let element = o["elementType"] else { throw KilnError.invalid("An array type without elementType") }
                self = .array(try DeltaType(json: element), containsNull: o["containsNull"] != .bool(false))
            case .string("map")?:
                guard let k = o["keyType"], let v = o["valueType"] else { throw KilnError.invalid("A map type without key or value") }
                self = .map(try DeltaType(json: k), try DeltaType(json: v), valueContainsNull: o["valueContainsNull"] != .bool(false))
            default:
                throw KilnError.invalid("Unknown Delta type \(o["type"].map { "\($0)" } ?? "without a name")")
            }
        default:
            throw KilnError.invalid("A Delta type must be a string or an object")
        }
    }

    func write(_ w: inout JSONWriter) {
        switch self {
        case .primitive(let name): w.value(name)
        case .decimal(let p, let s): w.value("decimal(\(p),\(s))")
        case .structure(let fields):
            w.object { w in
                w.key("type"); w.value("struct")
                w.key("fields"); w.array { w in for f in fields { f.write(&w) } }
            }
        case .array(let element, let containsNull):
            w.object { w in
                w.key("type"); w.value("array")
                w.key("elementType"); element.write(&w)
                w.key("containsNull"); w.value(containsNull)
            }
        case .map(let k, let v, let valueContainsNull):
            w.object { w in
                w.key("type"); w.value("map")
                w.key("keyType"); k.write(&w)
                w.key("valueType"); v.write(&w)
                w.key("valueContainsNull"); w.value(valueContainsNull)
            }
        }
    }

    /// The Parquet node for a field of this type, laid out as Spark and delta-rs do.
    /// The Parquet node that stores a field of this type.
    public func parquetNode(_ name: String, nullable: Bool) throws -> SchemaNode {
        let repetition: Repetition = nullable ? .optional : .required
        switch self {
        case .primitive(let p):
            switch p {
            case "string": return .leaf(name, .byteArray, repetition, logical: .string)
            case "long": return .leaf(name, .int64, repetition)
            case "integer": return .leaf(name, .int32, repetition)
            case "short": return .leaf(name, .int32, repetition, logical: .integer(bits: 16, signed: true))
            case "byte": return .leaf(name, .int32, repetition, logical: .integer(bits: 8, signed: true))
            case "float": return .leaf(name, .float, repetition)
            case "double": return .leaf(name, .double, repetition)
            case "boolean": return .leaf(name, .boolean, repetition)
            case "binary": return .leaf(name, .byteArray, repetition)
            case "date": return .leaf(name, .int32, repetition, logical: .date)
            case "timestamp": return .leaf(name, .int64, repetition, logical: .timestamp(.micros, utc: true))
            case "timestamp_ntz": return .leaf(name, .int64, repetition, logical: .timestamp(.micros, utc: false))
            default: throw KilnError.invalid("Unknown Delta type '\(p)'")
            }
        case .decimal(let p, let s):
            return try SchemaDDL.node(name, type: "DECIMAL(\(p),\(s))", nullable: nullable)
        case .structure(let fields):
            return .group(name, repetition, try fields.map { try $0.type.parquetNode($0.name, nullable: $0.nullable) })
        case .array(let element, let containsNull):
            return .list(name, repetition, element: try element.parquetNode("element", nullable: containsNull))
        case .map(let k, let v, let valueContainsNull):
            return .map(name, repetition, key: try k.parquetNode("key", nullable: false), value: try v.parquetNode("value", nullable: valueContainsNull))
        }
    }

    /// The Delta type of a Parquet node (a file's field; nested ones by their LIST/MAP annotations).
    public init(parquetNode node: SchemaNode) throws { self = try DeltaType.from(node) }

    /// The Delta type of a Parquet node (for writing files into tables).
    static func from(_ node: SchemaNode) throws -> DeltaType {
        if let element = node.listElement { return .array(try from(element), containsNull: element.repetition != .required) }
        if let (k, v) = node.mapEntry { return .map(try from(k), try from(v), valueContainsNull: v.repetition != .required) }
        if !node.isLeaf { return .structure(try node.children.map { DeltaField(name: $0.name, type: try from($0), nullable: $0.repetition != .required) }) }
        let e = node.element
        switch (e.physicalType, e.logicalType) {
        case (_, .string?), (_, .enumeration?), (_, .json?): return .primitive("string")
        case (_, .decimal(let p, let s)?): return .decimal(precision: Int(p), scale: Int(s))
        case (_, .date?): return .primitive("date")
        case (_, .timestamp(_, let utc)?): return .primitive(utc ? "timestamp" : "timestamp_ntz")
        case (.int96?, _): return .primitive("timestamp")
        case (_, .integer(8, true)?): return .primitive("byte")
        case (_, .integer(16, true)?), (_, .integer(8, false)?): return .primitive("short")
        case (_, .integer(16, false)?): return .primitive("integer")
        case (_, .integer(32, false)?): return .primitive("long")
        case (_, .integer(64, false)?): throw KilnError.invalid("Column '\(e.name)' is an unsigned 64-bit integer, which Delta cannot hold")
        case (.boolean?, _): return .primitive("boolean")
        case (.int32?, _): return .primitive("integer")
        case (.int64?, _): return .primitive("long")
        case (.float?, _): return .primitive("float")
        case (.double?, _): return .primitive("double")
        default: return .primitive("binary")
        }
    }
}

/// One field of a Delta schema.
public struct DeltaField: Sendable, Equatable {
    public var name: String
    public var type: DeltaType
    public var nullable: Bool
    /// Field metadata as JSON text (`{}` when empty); kept verbatim (column mapping, invariants, generation).
    public var metadata: [String: JSONValue]

    public init(name: String, type: DeltaType, nullable: Bool = true, metadata: [String: JSONValue] = [:]) {
        self.name = name
        self.type = type
        self.nullable = nullable
        self.metadata = metadata
    }

    /// The column's name in data files, partition values and statistics: `delta.columnMapping.physicalName` on
    /// tables with column mapping, else its name.
    public var physicalName: String {
        if case .string(let physical)? = metadata["delta.columnMapping.physicalName"] { return physical }
        return name
    }

    /// The Parquet field id of the column under column mapping's `id` mode.
    var columnMappingID: Int32? {
        if case .number(let n)? = metadata["delta.columnMapping.id"] { return Int32(n) }
        return nil
    }

    /// This field's column among a data file's top-level columns: by physical name, else by field id.
    func source(in nodes: [SchemaNode]) -> SchemaNode? {
        let physical = physicalName.lowercased()
        if let node = nodes.first(where: { $0.name.lowercased() == physical }) { return node }
        guard let id = columnMappingID else { return nil }
        return nodes.first { $0.element.fieldID == id }
    }

    /// A field from Spark's StructField JSON (`{"name", "type", "nullable", "metadata"}`).
    public init(parsing json: JSONValue) throws { try self.init(json: json) }

    /// This field as Spark's StructField JSON.
    public var jsonText: String {
        var w = JSONWriter()
        write(&w)
        return String(decoding: w.bytes, as: UTF8.self)
    }

    init(json: JSONValue) throws {
        guard case .object(let o) = json, case .string(let name)? = o["name"], let type = o["type"] else {
            throw KilnError.invalid("A schema field needs a name and a type")
        }
        self.name = name
        self.type = try DeltaType(json: type)
        nullable = o["nullable"] != .bool(false)
        if case .object(let m)? = o["metadata"] { metadata = m } else { metadata = [:] }
    }

    func write(_ w: inout JSONWriter) {
        w.object { w in
            w.key("name"); w.value(name)
            w.key("type"); type.write(&w)
            w.key("nullable"); w.value(nullable)
            w.key("metadata"); JSONText.write(.object(metadata), into: &w)
        }
    }
}

/// A table schema: the top-level struct.
public struct DeltaSchema: Sendable, Equatable {
    public var fields: [DeltaField]

    public init(_ fields: [DeltaField]) { self.fields = fields }

    /// Parses a `schemaString`.
    public init(json text: String) throws {
        let value = try JSONValue.parse(Array(text.utf8))
        guard case .structure(let fields) = try DeltaType(json: value) else { throw KilnError.invalid("A table schema must be a struct") }
        self.fields = fields
        var seen = Set<String>()
        for f in fields where !seen.insert(f.name.lowercased()).inserted {
            throw KilnError.invalid("Column '\(f.name)' appears twice (Delta column names are case-insensitive)")
        }
    }

    /// From a Parquet schema (CSV/JSON/Parquet input).
    public init(parquet: ParquetSchema) throws {
        fields = try parquet.root.children.map { DeltaField(name: $0.name, type: try DeltaType.from($0), nullable: $0.repetition != .required) }
    }

    /// The `schemaString` JSON.
    public var json: String {
        var w = JSONWriter()
        DeltaType.structure(fields).write(&w)
        return String(decoding: w.bytes, as: UTF8.self)
    }

    public func field(_ name: String) -> DeltaField? { fields.first { $0.name.lowercased() == name.lowercased() } }

    /// The Parquet schema of data files: every field except the partition columns.
    public func parquetSchema(excluding partitionColumns: [String] = []) throws -> ParquetSchema {
        let skip = Set(partitionColumns.map { $0.lowercased() })
        return ParquetSchema(try fields.filter { !skip.contains($0.name.lowercased()) }.map { try $0.type.parquetNode($0.name, nullable: $0.nullable) })
    }
}

/// Writes arbitrary JSON values (field metadata, commitInfo parameters).
public enum JSONText {
    public static func write(_ value: JSONValue, into w: inout JSONWriter) {
        switch value {
        case .null: w.null()
        case .bool(let b): w.value(b)
        case .number(let n): w.raw(n)
        case .string(let s): w.value(s)
        case .array(let items): w.array { w in for item in items { write(item, into: &w) } }
        case .object(let fields): w.object { w in for key in fields.keys.sorted() { w.key(key); write(fields[key]!, into: &w) } }
        }
    }

    /// A JSON value as compact text.
    public static func string(_ value: JSONValue) -> String {
        var w = JSONWriter()
        write(value, into: &w)
        return String(decoding: w.bytes, as: UTF8.self)
    }
}
