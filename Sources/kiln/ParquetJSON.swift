import Foundation
import KilnCore
import KilnParquet

/// Renders assembled Parquet rows as `kiln parquet cat` prints them: dates `YYYY-MM-DD`, timestamps ISO-8601 UTC
/// with microseconds, decimals as strings, binary as base64, NaN/±Infinity as strings, maps as objects.
struct ParquetJSON {
    let include: (SchemaNode) -> Bool

    func row(_ cells: [ParquetCell], fields: [SchemaNode]) -> [UInt8] {
        var w = JSONWriter()
        w.object { w in
            for (field, cell) in zip(fields, cells) {
                w.key(field.name)
                value(cell, node: field, into: &w)
            }
        }
        return w.bytes
    }

    /// A node's value within its parent: a list for repeated nodes, else its content or null.
    func value(_ cell: ParquetCell, node: SchemaNode, into w: inout JSONWriter) {
        if node.repetition == .repeated, case .list(let items) = cell {
            w.array { w in for item in items { content(item, node: node, into: &w) } }
        } else {
            content(cell, node: node, into: &w)
        }
    }

    func content(_ cell: ParquetCell, node: SchemaNode, into w: inout JSONWriter) {
        switch cell {
        case .null:
            w.null()
        case .record(let fields):
            w.object { w in
                for (child, value) in zip(node.children.filter(include), fields) {
                    w.key(child.name)
                    self.value(value, node: child, into: &w)
                }
            }
        case .list(let items):
            // A LIST-annotated group: items are contents of the element node.
            let element = node.listElement ?? node
            w.array { w in for item in items { content(item, node: element, into: &w) } }
        case .map(let entries):
            guard let (keyNode, valueNode) = node.mapEntry else { return w.null() }
            w.object { w in
                for entry in entries {
                    var key = JSONWriter()
                    content(entry.key, node: keyNode, into: &key)
                    var text = String(decoding: key.bytes, as: UTF8.self)
                    if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 { text = String(text.dropFirst().dropLast()) }
                    w.key(text)
                    content(entry.value, node: valueNode, into: &w)
                }
            }
        default:
            Self.scalar(cell, element: node.element, into: &w)
        }
    }

    static func scalar(_ cell: ParquetCell, element: SchemaElement, into w: inout JSONWriter) {
        let logical = element.logicalType
        switch cell {
        case .bool(let b): w.value(b)
        case .int32(let v):
            switch logical {
            case .date?: w.value(date(days: Int64(v)))
            case .decimal(_, let scale)?: w.value(DecimalText.text(integer: String(v), scale: Int(scale)))
            case .integer(_, false)?: w.value(Int64(UInt32(bitPattern: v)))
            case .time(let unit, _)?: w.value(time(Int64(v), unit: unit))
            default: w.value(Int64(v))
            }
        case .int64(let v):
            switch logical {
            case .timestamp(let unit, _)?: w.value(timestamp(v, perSecond: unit.perSecond))
            case .decimal(_, let scale)?: w.value(DecimalText.text(integer: String(v), scale: Int(scale)))
            case .integer(64, false)?: w.raw(String(UInt64(bitPattern: v)))
            case .time(let unit, _)?: w.value(time(v, unit: unit))
            default: w.value(v)
            }
        case .float(let f): w.value(Double(f))
        case .double(let d): w.value(d)
        case .bytes(let bytes):
            if element.physicalType == .int96, bytes.count == 12 {
                var nanos: UInt64 = 0
                for i in 0..<8 { nanos |= UInt64(bytes[i]) << (8 * UInt64(i)) }
                var julian: UInt32 = 0
                for i in 0..<4 { julian |= UInt32(bytes[8 + i]) << (8 * UInt32(i)) }
                let days = Int64(julian) - 2_440_588
                w.value(timestamp(days &* 86_400_000_000_000 &+ Int64(bitPattern: nanos), perSecond: 1_000_000_000))
                return
            }
            switch logical {
            case .decimal(_, let scale)?: w.value(DecimalText.text(integer: bigEndianSigned(bytes), scale: Int(scale)))
            case .string?, .enumeration?, .json?: w.value(String(decoding: bytes, as: UTF8.self))
            case .uuid? where bytes.count == 16:
                let hex = Hex.encode(bytes)
                let parts = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { r in
                    String(hex[hex.index(hex.startIndex, offsetBy: r.lowerBound)..<hex.index(hex.startIndex, offsetBy: r.upperBound)])
                }
                w.value(parts.joined(separator: "-"))
            default: w.value(Data(bytes).base64EncodedString())
            }
        default:
            w.null()
        }
    }

    static func pad(_ value: Int64, _ width: Int) -> String {
        let text = String(abs(value))
        return (value < 0 ? "-" : "") + String(repeating: "0", count: max(0, width - text.count)) + text
    }

    static func date(days: Int64) -> String {
        let (y, m, d) = TextValues.civil(days: days)
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))"
    }

    /// ISO-8601 UTC with microseconds, from a count of `perSecond` units since the epoch.
    static func timestamp(_ value: Int64, perSecond: Int64) -> String {
        var seconds = value / perSecond
        var fraction = value % perSecond
        if fraction < 0 {
            fraction += perSecond
            seconds -= 1
        }
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let micros = fraction * 1_000_000 / perSecond
        return "\(date(days: days))T\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(micros, 6))Z"
    }

    static func time(_ value: Int64, unit: TimeUnit) -> String {
        let seconds = value / unit.perSecond
        let micros = value % unit.perSecond * 1_000_000 / unit.perSecond
        return "\(pad(seconds / 3600, 2)):\(pad(seconds / 60 % 60, 2)):\(pad(seconds % 60, 2)).\(pad(micros, 6))"
    }

    /// The decimal text of a big-endian two's-complement integer of any width.
    static func bigEndianSigned(_ bytes: [UInt8]) -> String {
        guard let first = bytes.first else { return "0" }
        let negative = first & 0x80 != 0
        var magnitude = bytes
        if negative {  // two's complement: invert and add one
            magnitude = magnitude.map { ~$0 }
            var carry = true
            for i in magnitude.indices.reversed() where carry {
                let (sum, overflow) = magnitude[i].addingReportingOverflow(1)
                magnitude[i] = sum
                carry = overflow
            }
        }
        var digits: [UInt8] = []
        var number = magnitude.drop { $0 == 0 }.map { UInt32($0) }
        while !number.isEmpty {
            var remainder: UInt32 = 0
            var next: [UInt32] = []
            for byte in number {
                let current = remainder * 256 + byte
                let quotient = current / 10
                remainder = current % 10
                if !(next.isEmpty && quotient == 0) { next.append(quotient) }
            }
            digits.append(UInt8(remainder))
            number = next
        }
        let text = digits.isEmpty ? "0" : String(digits.reversed().map { Character(String($0)) })
        return negative && text != "0" ? "-" + text : text
    }
}
