import Foundation

/// Exact decimal text from unscaled integers and back.
public enum DecimalText {
    /// `12345` at scale 2 → `123.45`; `-5` at scale 3 → `-0.005`.
    public static func text(unscaled: Int128, scale: Int) -> String { text(integer: String(unscaled), scale: scale) }

    /// An integer's text with the decimal point `scale` digits from the right (`"-5"`, 3 → `"-0.005"`).
    public static func text(integer: String, scale: Int) -> String {
        let negative = integer.hasPrefix("-")
        var digits = negative ? String(integer.dropFirst()) : integer
        guard scale > 0 else { return integer }
        if digits.count <= scale { digits = String(repeating: "0", count: scale - digits.count + 1) + digits }
        let point = digits.index(digits.endIndex, offsetBy: -scale)
        return (negative ? "-" : "") + digits[..<point] + "." + digits[point...]
    }

    /// `123.45` at scale 2 → 12345; nil when the text is not a plain decimal or has more fraction digits than `scale`
    /// that are not zeros.
    public static func unscaled(_ text: String, scale: Int) -> Int128? {
        var body = Substring(text)
        let negative = body.first == "-"
        if negative || body.first == "+" { body = body.dropFirst() }
        let parts = body.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts[0], fraction = parts.count > 1 ? parts[1] : ""
        guard !whole.isEmpty || !fraction.isEmpty, (whole + fraction).allSatisfy(\.isASCII), (whole + fraction).allSatisfy(\.isNumber),
              fraction.dropFirst(scale).allSatisfy({ $0 == "0" }) else { return nil }
        let kept = fraction.prefix(scale)
        guard let magnitude = Int128(String(whole.isEmpty ? "0" : whole) + kept + String(repeating: "0", count: scale - kept.count)) else { return nil }
        return negative ? -magnitude : magnitude
    }

    /// `unscaled` at scale `from` as the unscaled integer at scale `to`; nil when it would lose digits or overflow.
    public static func rescale(_ unscaled: Int128, from: Int, to: Int) -> Int128? {
        if from == to { return unscaled }
        var v = unscaled
        if to > from {
            for _ in from..<to {
                let (m, overflow) = v.multipliedReportingOverflow(by: 10)
                if overflow { return nil }
                v = m
            }
            return v
        }
        for _ in to..<from {
            guard v % 10 == 0 else { return nil }
            v /= 10
        }
        return v
    }

    /// A two's-complement big-endian integer (FIXED_LEN_BYTE_ARRAY or BYTE_ARRAY decimals, up to 16 bytes).
    public static func bigEndian(_ bytes: [UInt8]) -> Int128 {
        var v: Int128 = (bytes.first ?? 0) & 0x80 != 0 ? -1 : 0
        for b in bytes { v = v << 8 | Int128(b) }
        return v
    }

    /// The cell a decimal's Parquet element stores (INT32, INT64 or big-endian bytes).
    public static func cell(_ unscaled: Int128, precision: Int, element: SchemaElement) -> ParquetCell {
        switch element.physicalType {
        case .int32?: return .int32(Int32(truncatingIfNeeded: unscaled))
        case .int64?: return .int64(Int64(truncatingIfNeeded: unscaled))
        default:
            let width = Int(element.typeLength ?? 16)
            return .bytes((0..<width).map { k in UInt8(truncatingIfNeeded: unscaled >> (8 * (width - 1 - k))) })
        }
    }
}
