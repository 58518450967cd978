import Foundation
import KilnCore
import KilnLake
import KilnParquet

/// Arrays, maps and structs in a frame: each value is held as its canonical JSON text, so the engine carries, gathers,
/// compares and groups them whole with the string kernels, and a value read from Parquet is written back unchanged.
///
/// The text is what Databricks shows for such a value: arrays as `[...]`, structs as `{"field": ...}` in field order,
/// maps as `{"key": ...}` in entry order (keys as their text); numbers exactly (decimals with their scale, floats and
/// doubles by the shortest text that reads back to the same value, `-0.0` kept), dates as `"2024-01-31"`, timestamps
/// as `"2024-01-31 12:00:00[.ffffff]"` (UTC), binary as base64, non-finite numbers as `"NaN"`/`"Infinity"`.
public enum NestedText {
    /// The canonical text of a cell read from Parquet at `node`, a value of `type`.
    public static func text(_ cell: ParquetCell, node: SchemaNode, type: FrameType) -> String {
        var w = JSONWriter()
        write(cell, node: node, type: type, into: &w)
        return String(decoding: w.bytes, as: UTF8.self)
    }

    /// The standard Parquet node of a nested type (for cells that come without their file's node).
    static func node(_ type: FrameType) -> SchemaNode {
        (try? ParquetSchema([type.delta.parquetNode("value", nullable: true)]).root.children[0]) ?? .leaf("value", .byteArray)
    }

    static func write(_ cell: ParquetCell, node: SchemaNode, type: FrameType, into w: inout JSONWriter) {
        switch (cell, type) {
        case (.null, _): w.null()
        case (.list(let items), .array(let elementType)):
            let element = node.listElement ?? node
            w.array { w in for item in items { write(item, node: element, type: elementType, into: &w) } }
        case (.map(let entries), .map(let keyType, let valueType)):
            guard let (k, v) = node.mapEntry else { return w.null() }
            w.object { w in
                for entry in entries {
                    var key = JSONWriter()
                    write(entry.key, node: k, type: keyType, into: &key)
                    w.key(keyText(key.bytes))
                    write(entry.value, node: v, type: valueType, into: &w)
                }
            }
        case (.record(let values), .structure(let fields)):
            // Fields by name (a file written before a field was added lacks it); by position when no name matches
            // (column mapping gives the file's fields physical names).
            let names = node.children.map { $0.name.lowercased() }
            let byName = fields.contains { names.contains($0.name.lowercased()) }
            w.object { w in
                for (i, field) in fields.enumerated() {
                    w.key(field.name)
                    if let k = byName ? names.firstIndex(of: field.name.lowercased()) : (i < names.count ? i : nil), k < values.count {
                        write(values[k], node: node.children[k], type: field.type, into: &w)
                    } else {
                        w.null()
                    }
                }
            }
        case (_, .decimal(_, let scale)):
            switch cell {
            case .int32(let v): writeScalar(.decimal(Int128(v), scale: scale), type: type, into: &w)
            case .int64(let v): writeScalar(.decimal(Int128(v), scale: scale), type: type, into: &w)
            case .bytes(let b): writeScalar(.decimal(DecimalText.bigEndian(b), scale: scale), type: type, into: &w)
            default: w.null()
            }
        default:
            writeScalar(Value(leaf: cell, element: node.element, type: type), type: type, into: &w)
        }
    }

    /// A map key's text: a string key as itself, any other key as its JSON text.
    static func keyText(_ json: [UInt8]) -> String {
        if json.first == UInt8(ascii: "\""), let parsed = try? JSONValue.parse(json), case .string(let s) = parsed { return s }
        return String(decoding: json, as: UTF8.self)
    }

    /// A scalar as JSON the way nested values hold it (`type` tells FLOAT from DOUBLE; shortest text of each).
    public static func writeScalar(_ value: Value, type: FrameType = .float64, into w: inout JSONWriter) {
        switch value {
        case .null: w.null()
        case .bool(let b): w.value(b)
        case .int(let n): w.value(n)
        case .double(let d):
            if !d.isFinite { w.value(d.isNaN ? "NaN" : d > 0 ? "Infinity" : "-Infinity") }
            else if type == .float32 { w.raw("\(Float(d))") }
            else if d == 0, d.sign == .minus { w.raw("-0.0") }
            else { w.value(d) }
        case .string(let s): w.value(s)
        case .bytes(let b): w.value(Data(b).base64EncodedString())
        case .date(let d): w.value(Dates.text(days: d))
        case .timestamp(let t): w.value(Dates.text(micros: t))
        case .nested(let text, _): w.raw(text)
        case .decimal(let u, let scale): w.raw(DecimalText.text(unscaled: u, scale: scale))
        }
    }

    /// The Parquet cell for `node` of the value whose canonical text is `text` (a value of `type`), for writing.
    public static func cell(_ text: some Collection<UInt8>, node: SchemaNode, type: FrameType) throws -> ParquetCell {
        try cell(JSONValue.parseKeepingKeyOrder(text), node: node, type: type)
    }

    static func cell(_ json: JSONValue, node: SchemaNode, type: FrameType) throws -> ParquetCell {
        if json == .null { return .null }
        switch type {
        case .array(let elementType):
            guard case .array(let items) = json, let element = node.listElement else { throw mismatch(json, type) }
            return .list(try items.map { try cell($0, node: element, type: elementType) })
        case .map(let keyType, let valueType):
            guard case .array(let pairs) = json, let (k, v) = node.mapEntry else { throw mismatch(json, type) }
            return .map(try pairs.map { pair in
                guard case .array(let kv) = pair, kv.count == 2, case .string(let keyText) = kv[0] else { throw mismatch(json, type) }
                // Keys whose JSON is a string were written unquoted (`keyText`); the others are their JSON.
                let textual: Set<FrameType> = [.string, .binary, .date, .timestamp]
                let keyJSON = textual.contains(keyType) ? .string(keyText)
                    : (try? JSONValue.parseKeepingKeyOrder(Array(keyText.utf8))) ?? .string(keyText)
                let key = try cell(keyJSON, node: k, type: keyType)
                return ParquetCell.MapEntry(key, try cell(kv[1], node: v, type: valueType))
            })
        case .structure(let fields):
            guard case .array(let pairs) = json else { throw mismatch(json, type) }
            var byName: [String: JSONValue] = [:]
            for pair in pairs { if case .array(let kv) = pair, kv.count == 2, case .string(let name) = kv[0] { byName[name] = kv[1] } }
            return .record(try zip(fields, node.children).map { field, child in try cell(byName[field.name] ?? .null, node: child, type: field.type) })
        default:
            return try leaf(json, element: node.element, type: type)
        }
    }

    static func mismatch(_ json: JSONValue, _ type: FrameType) -> KilnError {
        KilnError.invalid("Expected a \(type) value; got a JSON \(json.typeName)")
    }

    /// A leaf value as the physical cell its Parquet element stores.
    static func leaf(_ json: JSONValue, element: SchemaElement, type: FrameType) throws -> ParquetCell {
        func number() throws -> String {
            switch json {
            case .number(let n): return n
            case .string(let s) where ["NaN", "Infinity", "-Infinity"].contains(s): return s
            default: throw mismatch(json, type)
            }
        }
        func string() throws -> String {
            guard case .string(let s) = json else { throw mismatch(json, type) }
            return s
        }
        switch type {
        case .bool:
            guard case .bool(let b) = json else { throw mismatch(json, type) }
            return .bool(b)
        case .int8, .int16, .int32, .int64:
            guard let n = Int64(try number()) else { throw mismatch(json, type) }
            return element.physicalType == .int32 ? .int32(Int32(truncatingIfNeeded: n)) : .int64(n)
        case .float32:
            guard let f = Float(try number()) else { throw mismatch(json, type) }
            return element.physicalType == .double ? .double(Double(f)) : .float(f)
        case .float64:
            guard let d = Double(try number()) else { throw mismatch(json, type) }
            return element.physicalType == .float ? .float(Float(d)) : .double(d)
        case .string: return .bytes(Array(try string().utf8))
        case .binary:
            guard let data = Data(base64Encoded: try string()) else { throw mismatch(json, type) }
            return .bytes(Array(data))
        case .date:
            guard let days = Dates.parseDate(try string()) else { throw mismatch(json, type) }
            return .int32(Int32(truncatingIfNeeded: days))
        case .timestamp:
            guard let micros = Dates.parseTimestamp(try string()) else { throw mismatch(json, type) }
            return .int64(micros)
        case .decimal(let precision, let scale):
            guard let unscaled = DecimalText.unscaled(try number(), scale: scale) else { throw mismatch(json, type) }
            return DecimalText.cell(unscaled, precision: precision, element: element)
        case .array, .map, .structure:
            throw mismatch(json, type)
        }
    }
}

extension Value {
    /// A flat Parquet cell of `element` (its logical annotation read: timestamp units, INT96, decimals exactly) as a
    /// scalar of `type`.
    init(leaf cell: ParquetCell, element: SchemaElement, type: FrameType) {
        switch (cell, type) {
        case (.null, _): self = .null
        case (.int64(let v), .timestamp):
            if case .timestamp(let unit, _)? = element.logicalType {
                switch unit {
                case .millis: self = .timestamp(v * 1000)
                case .micros: self = .timestamp(v)
                case .nanos: self = .timestamp(v / 1000)
                }
            } else {
                self = .timestamp(v)
            }
        case (.bytes(let b), .timestamp) where b.count == 12:
            var nanos: UInt64 = 0
            for k in 0..<8 { nanos |= UInt64(b[k]) << (8 * UInt64(k)) }
            var julian: UInt32 = 0
            for k in 0..<4 { julian |= UInt32(b[8 + k]) << (8 * UInt32(k)) }
            self = .timestamp((Int64(julian) - 2_440_588) * 86_400_000_000 + Int64(nanos / 1000))
        case (.int32(let v), .date): self = .date(Int64(v))
        default: self = Value(cell: cell, type: type)
        }
    }
}

extension Column {
    /// A nested field's assembled cells as a column of their canonical texts (a null cell is a null row).
    public init(nested cells: [ParquetCell], node: SchemaNode, type: FrameType) {
        var out = ByteColumn()
        out.offsets.reserveCapacity(cells.count + 1)
        var valid = [Bool](repeating: true, count: cells.count)
        for (i, cell) in cells.enumerated() {
            if cell == .null {
                valid[i] = false
            } else {
                var w = JSONWriter()
                NestedText.write(cell, node: node, type: type, into: &w)
                out.data.append(contentsOf: w.bytes)
            }
            out.offsets.append(out.data.count)
        }
        self.init(type: type, values: .bytes(out), validity: valid)
    }

    /// The column's values as Parquet leaf columns (with their levels) for the nested field `node` of a file.
    func shredded(node: SchemaNode) throws -> [ColumnData] {
        guard case .bytes(let texts) = values else { throw KilnError.invalid("Cannot store a \(type) column in '\(node.name)'") }
        let single = ParquetSchema([node])
        var shredder = RecordShredder(schema: single)
        for i in 0..<count {
            let cell = isNull(i) ? ParquetCell.null : try NestedText.cell(texts[i], node: single.root.children[0], type: type)
            do { try shredder.append([cell]) } catch let e as ParquetError { throw KilnError.invalid("Column '\(node.name)': \(e)") }
        }
        return shredder.take()
    }
}
