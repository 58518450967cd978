import KilnCore
import KilnLake

/// Unity Catalog's column type spellings (`type_name`, `type_text`, `type_json`) to and from Delta types.
public enum ColumnTypes {
    static let byName: [String: String] = [
        "BOOLEAN": "boolean", "BYTE": "byte", "SHORT": "short", "INT": "integer", "LONG": "long", "FLOAT": "float", "DOUBLE": "double",
        "DATE": "date", "TIMESTAMP": "timestamp", "TIMESTAMP_NTZ": "timestamp_ntz", "STRING": "string", "CHAR": "string", "BINARY": "binary",
    ]
    static let byText: [String: String] = [
        "boolean": "boolean", "tinyint": "byte", "byte": "byte", "smallint": "short", "short": "short", "int": "integer", "integer": "integer",
        "bigint": "long", "long": "long", "float": "float", "double": "double", "date": "date", "timestamp": "timestamp",
        "timestamp_ntz": "timestamp_ntz", "string": "string", "binary": "binary",
    ]

    /// The `type_name` of a Delta type (the enum both clients validate).
    public static func name(_ type: DeltaType) -> String {
        switch type {
        case .primitive(let p): return byName.first { $0.value == p && $0.key != "CHAR" }?.key ?? "STRING"
        case .decimal: return "DECIMAL"
        case .structure: return "STRUCT"
        case .array: return "ARRAY"
        case .map: return "MAP"
        }
    }

    /// Spark's simple string: `bigint`, `decimal(10,2)`, `array<string>`, `struct<a:int,b:string>`.
    public static func text(_ type: DeltaType) -> String {
        switch type {
        case .primitive(let p): return byText.first { $0.value == p && !["byte", "short", "integer", "long"].contains($0.key) }?.key ?? p
        case .decimal(let p, let s): return "decimal(\(p),\(s))"
        case .structure(let fields): return "struct<" + fields.map { "\($0.name):\(text($0.type))" }.joined(separator: ",") + ">"
        case .array(let element, _): return "array<\(text(element))>"
        case .map(let k, let v, _): return "map<\(text(k)),\(text(v))>"
        }
    }

    /// The Delta field a column of a create request describes: from `type_json` when given, else `type_name` (with
    /// `type_precision`/`type_scale` for decimals) or a primitive `type_text`.
    /// - Throws: `INVALID_PARAMETER_VALUE` naming the column when its type cannot be read.
    public static func field(name: String, typeName: String?, typeText: String?, typeJSON: String?, precision: Int?, scale: Int?,
                             nullable: Bool) throws -> DeltaField {
        if let typeJSON, !typeJSON.isEmpty {
            do {
                var field = try DeltaField(parsing: try JSONValue.parse(Array(typeJSON.utf8)))
                field.name = name
                return field
            } catch {
                throw KilnError.invalid("Column '\(name)': type_json is not a Spark StructField ({\"name\", \"type\", \"nullable\", \"metadata\"})")
            }
        }
        if let typeName = typeName?.uppercased() {
            if typeName == "DECIMAL" { return DeltaField(name: name, type: .decimal(precision: precision ?? 10, scale: scale ?? 0), nullable: nullable) }
            if let p = byName[typeName] { return DeltaField(name: name, type: .primitive(p), nullable: nullable) }
        }
        if let typeText = typeText?.lowercased().trimmingCharacters(in: .whitespaces) {
            if let p = byText[typeText] { return DeltaField(name: name, type: .primitive(p), nullable: nullable) }
            if typeText.hasPrefix("decimal(") {
                let parts = typeText.dropFirst(8).dropLast().split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
                if parts.count == 2 { return DeltaField(name: name, type: .decimal(precision: parts[0], scale: parts[1]), nullable: nullable) }
            }
        }
        throw KilnError.invalid("Column '\(name)': give type_name (BOOLEAN, INT, LONG, DOUBLE, STRING, DATE, TIMESTAMP, DECIMAL, ...) or type_json for nested types")
    }
}
