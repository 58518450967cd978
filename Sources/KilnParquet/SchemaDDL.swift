/// SQL-style column lists (`id BIGINT NOT NULL, name STRING, tags ARRAY<STRING>, price DECIMAL(10,2)`), as Spark
/// and Delta write them, turned into Parquet schema nodes the way Spark lays them out.
public enum SchemaDDL {
    /// Parses a comma-separated list of `name TYPE [NOT NULL]`.
    public static func parse(_ text: String) throws -> ParquetSchema {
        var parser = Parser(Array(text.utf8))
        let fields = try parser.fields(until: nil)
        guard !fields.isEmpty else { throw ParquetError("The schema lists no columns; write it as 'a BIGINT, b STRING'") }
        return ParquetSchema(fields)
    }

    /// The node for one SQL type name (`BIGINT`, `DECIMAL(10,2)`, `ARRAY<INT>`...).
    public static func node(_ name: String, type text: String, nullable: Bool = true) throws -> SchemaNode {
        var parser = Parser(Array(text.utf8))
        let node = try parser.type(name: name, repetition: nullable ? .optional : .required)
        parser.skipSpace()
        guard parser.atEnd else { throw parser.fail("unexpected text after the type") }
        return node
    }

    /// The SQL name of a node's type, for display (`BIGINT`, `ARRAY<STRING>`...).
    public static func typeName(_ node: SchemaNode) -> String {
        switch NodeShape.of(node) {
        case .list(_, let itself):
            let repeated = node.children[0]
            return "ARRAY<\(typeName(itself ? withoutRepetition(repeated) : repeated.children[0]))>"
        case .map:
            let kv = node.children[0]
            return "MAP<\(typeName(kv.children[0])), \(typeName(kv.children[1]))>"
        case .record, .bareRepeated:
            return "STRUCT<" + node.children.map { "\($0.name): \(typeName($0))" }.joined(separator: ", ") + ">"
        case .leaf:
            let element = node.element
            let base: String
            switch (element.physicalType, element.logicalType) {
            case (_, .string?), (_, .enumeration?), (_, .json?): base = "STRING"
            case (_, .date?): base = "DATE"
            case (_, .decimal(let p, let s)?): base = "DECIMAL(\(p),\(s))"
            case (_, .timestamp(_, let utc)?): base = utc ? "TIMESTAMP" : "TIMESTAMP_NTZ"
            case (_, .integer(8, true)?): base = "TINYINT"
            case (_, .integer(16, true)?): base = "SMALLINT"
            case (.boolean?, _): base = "BOOLEAN"
            case (.int32?, _): base = "INT"
            case (.int64?, _): base = "BIGINT"
            case (.int96?, _): base = "TIMESTAMP"
            case (.float?, _): base = "FLOAT"
            case (.double?, _): base = "DOUBLE"
            default: base = "BINARY"
            }
            return node.repetition == .repeated ? "ARRAY<\(base)>" : base
        }
    }

    static func withoutRepetition(_ node: SchemaNode) -> SchemaNode {
        var copy = node
        copy.element.repetition = .required
        return copy
    }

    /// Bytes a FIXED_LEN_BYTE_ARRAY needs for a decimal of `precision` digits.
    public static func decimalBytes(precision: Int) -> Int {
        var bytes = 1
        while Double(bytes * 8 - 1) * 0.30102999566398120 < Double(precision) { bytes += 1 }
        return bytes
    }

    struct Parser {
        let text: [UInt8]
        var position = 0

        init(_ text: [UInt8]) { self.text = text }

        var atEnd: Bool { position >= text.count }

        func fail(_ message: String) -> ParquetError {
            ParquetError("Cannot read the schema at character \(position + 1): \(message). Write it as 'a BIGINT, b STRING, c ARRAY<INT>'")
        }

        mutating func skipSpace() {
            while position < text.count, [0x20, 0x09, 0x0A, 0x0D].contains(text[position]) { position += 1 }
        }

        mutating func word() throws -> String {
            skipSpace()
            if position < text.count, text[position] == UInt8(ascii: "`") {
                position += 1
                let start = position
                while position < text.count, text[position] != UInt8(ascii: "`") { position += 1 }
                guard position < text.count else { throw fail("unclosed backquote") }
                defer { position += 1 }
                return String(decoding: text[start..<position], as: UTF8.self)
            }
            let start = position
            while position < text.count, text[position] == UInt8(ascii: "_") || (0x30...0x39).contains(text[position])
                || (0x41...0x5A).contains(text[position]) || (0x61...0x7A).contains(text[position]) {
                position += 1
            }
            guard position > start else { throw fail("expected a name") }
            return String(decoding: text[start..<position], as: UTF8.self)
        }

        mutating func accept(_ c: Character) -> Bool {
            skipSpace()
            if position < text.count, text[position] == c.asciiValue! {
                position += 1
                return true
            }
            return false
        }

        mutating func expect(_ c: Character) throws {
            guard accept(c) else { throw fail("expected '\(c)'") }
        }

        mutating func integer() throws -> Int32 {
            let w = try word()
            guard let n = Int32(w) else { throw fail("expected a number, found '\(w)'") }
            return n
        }

        /// `name TYPE [NOT NULL]` entries separated by commas, up to `close` (or the end).
        mutating func fields(until close: Character?, colon: Bool = false) throws -> [SchemaNode] {
            var fields: [SchemaNode] = []
            var names = Set<String>()
            repeat {
                skipSpace()
                if atEnd || close.map({ text[position] == $0.asciiValue! }) == true {
                    if !fields.isEmpty { throw fail("expected a column after ','") }
                    break
                }
                let name = try word()
                guard names.insert(name.lowercased()).inserted else { throw fail("column '\(name)' appears twice") }
                if colon { _ = accept(":") }
                var field = try type(name: name, repetition: .optional)
                let save = position
                if let not = try? word(), not.uppercased() == "NOT" {
                    guard (try? word())?.uppercased() == "NULL" else { throw fail("expected NOT NULL") }
                    field.element.repetition = .required
                } else {
                    position = save
                }
                fields.append(field)
            } while accept(",")
            if let close { try expect(close) } else {
                skipSpace()
                guard atEnd else { throw fail("unexpected text") }
            }
            return fields
        }

        mutating func type(name: String, repetition: Repetition) throws -> SchemaNode {
            let keyword = try word().uppercased()
            switch keyword {
            case "BOOLEAN", "BOOL": return .leaf(name, .boolean, repetition)
            case "TINYINT", "BYTE": return .leaf(name, .int32, repetition, logical: .integer(bits: 8, signed: true))
            case "SMALLINT", "SHORT": return .leaf(name, .int32, repetition, logical: .integer(bits: 16, signed: true))
            case "INT", "INTEGER": return .leaf(name, .int32, repetition)
            case "BIGINT", "LONG": return .leaf(name, .int64, repetition)
            case "FLOAT", "REAL": return .leaf(name, .float, repetition)
            case "DOUBLE": return .leaf(name, .double, repetition)
            case "STRING", "VARCHAR", "TEXT":
                if accept("(") { _ = try integer(); try expect(")") }
                return .leaf(name, .byteArray, repetition, logical: .string)
            case "BINARY": return .leaf(name, .byteArray, repetition)
            case "DATE": return .leaf(name, .int32, repetition, logical: .date)
            case "TIMESTAMP": return .leaf(name, .int64, repetition, logical: .timestamp(.micros, utc: true))
            case "TIMESTAMP_NTZ": return .leaf(name, .int64, repetition, logical: .timestamp(.micros, utc: false))
            case "DECIMAL", "NUMERIC":
                var precision: Int32 = 10, scale: Int32 = 0
                if accept("(") {
                    precision = try integer()
                    if accept(",") { scale = try integer() }
                    try expect(")")
                }
                guard (1...38).contains(precision), (0...precision).contains(scale) else {
                    throw fail("DECIMAL precision must be 1 to 38 and the scale 0 to the precision")
                }
                let logical = LogicalType.decimal(precision: precision, scale: scale)
                if precision <= 9 { return .leaf(name, .int32, repetition, logical: logical) }
                if precision <= 18 { return .leaf(name, .int64, repetition, logical: logical) }
                return .leaf(name, .fixedLenByteArray, repetition, logical: logical, typeLength: Int32(decimalBytes(precision: Int(precision))))
            case "ARRAY":
                try expect("<")
                let element = try type(name: "element", repetition: .optional)
                try expect(">")
                return .list(name, repetition, element: element)
            case "MAP":
                try expect("<")
                let key = try type(name: "key", repetition: .required)
                try expect(",")
                let value = try type(name: "value", repetition: .optional)
                try expect(">")
                return .map(name, repetition, key: key, value: value)
            case "STRUCT":
                try expect("<")
                let children = try fields(until: ">", colon: true)
                guard !children.isEmpty else { throw fail("a STRUCT needs at least one field") }
                return .group(name, repetition, children)
            default:
                throw fail("unknown type '\(keyword)'")
            }
        }
    }
}
