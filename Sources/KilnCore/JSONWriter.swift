/// Writes JSON straight into a byte buffer: the encoder for every wire response.
///
/// Non-finite doubles are written as the strings `"NaN"`, `"Infinity"` and `"-Infinity"`, as proto JSON does.
///
/// ```swift
/// var w = JSONWriter()
/// w.object { w in w.field("experiment_id", "1") }
/// ```
public struct JSONWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    private var needsComma = false

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    private mutating func separator() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
        needsComma = true
    }

    /// Writes an object whose members `body` writes.
    public mutating func object(_ body: (inout JSONWriter) throws -> Void) rethrows {
        separator()
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
        try body(&self)
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }

    /// Writes an array whose elements `body` writes.
    public mutating func array(_ body: (inout JSONWriter) throws -> Void) rethrows {
        separator()
        bytes.append(UInt8(ascii: "["))
        needsComma = false
        try body(&self)
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }

    /// Writes a member name; the next value written is its value.
    public mutating func key(_ name: String) {
        separator()
        writeString(name)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    public mutating func value(_ string: String) { separator(); writeString(string) }
    public mutating func value(_ int: Int64) { separator(); bytes.append(contentsOf: String(int).utf8) }
    public mutating func value(_ int: Int) { value(Int64(int)) }
    public mutating func value(_ bool: Bool) { separator(); bytes.append(contentsOf: (bool ? "true" : "false").utf8) }
    public mutating func null() { separator(); bytes.append(contentsOf: "null".utf8) }
    public mutating func value(_ double: Double) {
        separator()
        if double.isNaN {
            bytes.append(contentsOf: "\"NaN\"".utf8)
        } else if double.isInfinite {
            bytes.append(contentsOf: (double > 0 ? "\"Infinity\"" : "\"-Infinity\"").utf8)
        } else if double == double.rounded(), abs(double) < 1e15 {
            bytes.append(contentsOf: String(Int64(double)).utf8)
            bytes.append(contentsOf: ".0".utf8)
        } else {
            bytes.append(contentsOf: "\(double)".utf8)
        }
    }

    /// Writes `"name": value` members; `nil` values are left out, as proto JSON leaves out empty fields.
    public mutating func field(_ name: String, _ string: String?) {
        guard let string else { return }
        key(name); value(string)
    }
    public mutating func field(_ name: String, _ int: Int64?) {
        guard let int else { return }
        key(name); value(int)
    }
    public mutating func field(_ name: String, _ double: Double?) {
        guard let double else { return }
        key(name); value(double)
    }
    public mutating func field(_ name: String, _ bool: Bool?) {
        guard let bool else { return }
        key(name); value(bool)
    }

    /// Writes a raw JSON fragment that the caller guarantees is valid.
    public mutating func raw(_ json: String) { separator(); bytes.append(contentsOf: json.utf8) }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    private mutating func writeString(_ string: String) {
        bytes.append(UInt8(ascii: "\""))
        // Fast path: nothing to escape, copy the UTF-8 in one go.
        let clean = string.utf8.withContiguousStorageIfAvailable { buffer in
            !buffer.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
        }
        if clean == true {
            bytes.append(contentsOf: string.utf8)
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(0x5C); bytes.append(0x22)
            case UInt8(ascii: "\\"): bytes.append(0x5C); bytes.append(0x5C)
            case 0x0A: bytes.append(0x5C); bytes.append(UInt8(ascii: "n"))
            case 0x0D: bytes.append(0x5C); bytes.append(UInt8(ascii: "r"))
            case 0x09: bytes.append(0x5C); bytes.append(UInt8(ascii: "t"))
            case 0..<0x20:
                bytes.append(contentsOf: Array("\\u00".utf8))
                bytes.append(Self.hex[Int(byte >> 4)])
                bytes.append(Self.hex[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
