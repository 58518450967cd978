/// Text → typed values for text inputs (CSV fields, JSON strings): numbers, booleans, `YYYY-MM-DD` dates,
/// ISO-8601 timestamps, decimals; and type inference over a sample of fields.
public enum TextValues {
    /// Parses `text` as a value of the leaf column `element`.
    public static func cell(_ text: [UInt8], element: SchemaElement) throws -> ParquetCell {
        let string = String(decoding: text, as: UTF8.self)
        let trimmed = string.trimmingSpaces
        func bad(_ what: String) -> ParquetError { ParquetError("'\(string)' is not \(what)") }
        switch (element.physicalType, element.logicalType) {
        case (.byteArray?, .decimal(_, let scale)?), (.fixedLenByteArray?, .decimal(_, let scale)?):
            let width = element.physicalType == .byteArray ? 16 : Int(element.typeLength ?? 16)
            guard let bytes = decimalBytes(trimmed, scale: Int(scale), width: width) else { throw bad("a DECIMAL with scale \(scale)") }
            return .bytes(bytes)
        case (.byteArray?, _), (.fixedLenByteArray?, _):
            return .bytes(text)
        case (.boolean?, _):
            switch trimmed.lowercased() {
            case "true", "t", "1", "yes": return .bool(true)
            case "false", "f", "0", "no": return .bool(false)
            default: throw bad("a BOOLEAN")
            }
        case (.int32?, .date?):
            guard let days = date(trimmed) else { throw bad("a DATE (YYYY-MM-DD)") }
            guard let narrow = Int32(exactly: days) else { throw bad("a DATE in range") }
            return .int32(narrow)
        case (.int32?, .decimal(let precision, let scale)?), (.int64?, .decimal(let precision, let scale)?):
            guard let unscaled = decimalUnscaled(trimmed, scale: Int(scale)), String(unscaled.magnitude).count <= Int(precision) else {
                throw bad("a DECIMAL(\(precision), \(scale))")
            }
            if element.physicalType == .int32 {
                guard let narrow = Int32(exactly: unscaled) else { throw bad("a DECIMAL(\(precision), \(scale))") }
                return .int32(narrow)
            }
            return .int64(unscaled)
        case (.int32?, let logical):
            guard let value = Int32(trimmed) else { throw bad("an integer in 32-bit range") }
            if case .integer(let bits, true)? = logical, bits < 32, value >> (bits - 1) != 0, value >> (bits - 1) != -1 {
                throw bad("an integer in \(bits)-bit range")
            }
            return .int32(value)
        case (.int64?, .timestamp(let unit, _)?):
            guard let micros = timestampMicros(trimmed) else { throw bad("a TIMESTAMP (YYYY-MM-DD HH:MM:SS[.ffffff][Z|±HH:MM])") }
            switch unit {
            case .millis: return .int64(micros / 1000)
            case .micros: return .int64(micros)
            case .nanos:
                let (v, overflow) = micros.multipliedReportingOverflow(by: 1000)
                guard !overflow else { throw bad("a TIMESTAMP in the nanosecond range") }
                return .int64(v)
            }
        case (.int64?, _):
            guard let value = Int64(trimmed) else { throw bad("an integer in 64-bit range") }
            return .int64(value)
        case (.float?, _):
            guard let value = Double(trimmed) else { throw bad("a number") }
            return .float(Float(value))
        case (.double?, _):
            guard let value = Double(trimmed) else { throw bad("a number") }
            return .double(value)
        case (.int96?, _):
            guard let micros = timestampMicros(trimmed) else { throw bad("a TIMESTAMP") }
            var days = micros / 86_400_000_000
            var rest = micros % 86_400_000_000
            if rest < 0 {
                rest += 86_400_000_000
                days -= 1
            }
            let nanos = UInt64(rest) * 1000, julian = UInt32(truncatingIfNeeded: days + 2_440_588)
            return .bytes((0..<8).map { UInt8(truncatingIfNeeded: nanos >> (8 * UInt64($0))) } + (0..<4).map { UInt8(truncatingIfNeeded: julian >> (8 * UInt32($0))) })
        case (nil, _):
            throw ParquetError("A group has no text form")
        }
    }

    /// The type a sample of CSV fields suggests: BIGINT, DOUBLE, BOOLEAN, DATE, TIMESTAMP, else STRING.
    public static func infer<S: Sequence>(name: String, _ sample: S) -> SchemaNode where S.Element == (bytes: [UInt8], quoted: Bool) {
        var int = true, double = true, bool = true, date = true, timestamp = true, any = false
        for field in sample where !(field.bytes.isEmpty && !field.quoted) {
            any = true
            let text = String(decoding: field.bytes, as: UTF8.self).trimmingSpaces
            if int, Int64(text) == nil { int = false }
            if double, Double(text) == nil || text.lowercased().hasPrefix("0x") { double = false }
            if bool, !["true", "false"].contains(text.lowercased()) { bool = false }
            if date, Self.date(text) == nil { date = false }
            if timestamp, timestampMicros(text) == nil { timestamp = false }
        }
        guard any else { return .leaf(name, .byteArray, logical: .string) }
        if int { return .leaf(name, .int64) }
        if double { return .leaf(name, .double) }
        if bool { return .leaf(name, .boolean) }
        if date { return .leaf(name, .int32, logical: .date) }
        if timestamp { return .leaf(name, .int64, logical: .timestamp(.micros, utc: true)) }
        return .leaf(name, .byteArray, logical: .string)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    public static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// Year, month and day of a day count since 1970-01-01 (proleptic Gregorian); the inverse of `days`.
    public static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static func digits(_ s: Substring) -> Int64? {
        guard !s.isEmpty, s.allSatisfy(\.isASCII), s.allSatisfy(\.isNumber) else { return nil }
        return Int64(s)
    }

    /// `YYYY-MM-DD` → days since the epoch.
    public static func date(_ text: String) -> Int64? {
        var text = text
        return text.withUTF8 { b -> Int64? in
            guard b.count == 10, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-") else { return nil }
            func number(_ range: Range<Int>) -> Int64? {
                var value: Int64 = 0
                for i in range {
                    guard b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") else { return nil }
                    value = value * 10 + Int64(b[i] - UInt8(ascii: "0"))
                }
                return value
            }
            guard let y = number(0..<4), let m = number(5..<7), let d = number(8..<10) else { return nil }
            return date(year: y, month: m, day: d)
        }
    }

    /// Days since 1970-01-01 of a calendar date; nil when the month or day does not exist.
    static func date(year y: Int64, month m: Int64, day d: Int64) -> Int64? {
        guard (1...12).contains(m) else { return nil }
        let monthDays: [Int64] = [31, y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...monthDays[Int(m - 1)]).contains(d) else { return nil }
        return days(year: y, month: m, day: d)
    }

    /// `YYYY-MM-DD[ T]HH:MM[:SS[.fraction]][Z|±HH:MM]` (or a bare date) → microseconds since the epoch, UTC.
    public static func timestampMicros(_ text: String) -> Int64? {
        guard text.count >= 10 else { return nil }
        let datePart = String(text.prefix(10))
        guard let days = date(datePart) else { return nil }
        var rest = text.dropFirst(10)
        if rest.isEmpty { return days * 86_400_000_000 }
        guard let separator = rest.first, separator == "T" || separator == " " else { return nil }
        rest = rest.dropFirst()
        var offsetMinutes: Int64 = 0
        if rest.hasSuffix("Z") {
            rest = rest.dropLast()
        } else if rest.count >= 6, ["+", "-"].contains(rest[rest.index(rest.endIndex, offsetBy: -6)]) {
            let sign = rest[rest.index(rest.endIndex, offsetBy: -6)]
            let hm = rest.suffix(5).split(separator: ":")
            guard hm.count == 2, let h = digits(hm[0]), let m = digits(hm[1]) else { return nil }
            offsetMinutes = (h * 60 + m) * (sign == "-" ? -1 : 1)
            rest = rest.dropLast(6)
        }
        let clock = rest.split(separator: ":", omittingEmptySubsequences: false)
        guard clock.count == 2 || clock.count == 3, clock[0].count == 2, clock[1].count == 2,
              let h = digits(clock[0]), let m = digits(clock[1]), h < 24, m < 60 else { return nil }
        var seconds: Int64 = 0, micros: Int64 = 0
        if clock.count == 3 {
            let secondParts = clock[2].split(separator: ".", omittingEmptySubsequences: false)
            guard secondParts.count <= 2, secondParts[0].count == 2, let s = digits(secondParts[0]), s < 60 else { return nil }
            seconds = s
            if secondParts.count == 2 {
                let fraction = secondParts[1]
                guard !fraction.isEmpty, fraction.count <= 9, digits(fraction) != nil else { return nil }
                micros = Int64(String(fraction.prefix(6)).padding(toLength: 6, withPad: "0", startingAt: 0))!
            }
        }
        return ((days * 86_400 + h * 3600 + m * 60 + seconds) - offsetMinutes * 60) * 1_000_000 + micros
    }

    /// The unscaled integer of a decimal text at `scale` (`"-1.5"`, scale 2 → -150); nil if it does not fit.
    public static func decimalUnscaled(_ text: String, scale: Int) -> Int64? {
        guard let (negative, digits) = decimalDigits(text, scale: scale), digits.count <= 18 || digits.drop(while: { $0 == "0" }).count <= 18,
              let magnitude = Int64(digits) else { return nil }
        return negative ? -magnitude : magnitude
    }

    /// Sign and unscaled digits; nil for malformed text or more fraction digits than the scale (unless zeros).
    static func decimalDigits(_ text: String, scale: Int) -> (Bool, String)? {
        var body = Substring(text)
        var negative = false
        if body.first == "-" || body.first == "+" {
            negative = body.first == "-"
            body = body.dropFirst()
        }
        let parts = body.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, !(parts[0].isEmpty && (parts.count == 1 || parts[1].isEmpty)) else { return nil }
        let whole = parts[0], fraction = parts.count == 2 ? parts[1] : ""
        guard whole.allSatisfy({ $0.isASCII && $0.isNumber }), fraction.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        guard fraction.count <= scale || fraction.dropFirst(scale).allSatisfy({ $0 == "0" }) else { return nil }
        let scaled = String(fraction.prefix(scale)).padding(toLength: scale, withPad: "0", startingAt: 0)
        var digits = String(whole) + scaled
        digits = String(digits.drop(while: { $0 == "0" }))
        return (negative && !digits.isEmpty, digits.isEmpty ? "0" : digits)
    }

    /// A decimal as `width` big-endian two's-complement bytes.
    public static func decimalBytes(_ text: String, scale: Int, width: Int) -> [UInt8]? {
        guard let (negative, digits) = decimalDigits(text, scale: scale) else { return nil }
        var bytes = [UInt8](repeating: 0, count: width)  // big-endian magnitude
        for digit in digits.utf8 {
            var carry = UInt32(digit - 0x30)
            for i in stride(from: width - 1, through: 0, by: -1) {
                let v = UInt32(bytes[i]) * 10 + carry
                bytes[i] = UInt8(v & 0xFF)
                carry = v >> 8
            }
            guard carry == 0 else { return nil }
        }
        guard bytes[0] & 0x80 == 0 else { return nil }
        if negative {
            bytes = bytes.map { ~$0 }
            for i in stride(from: width - 1, through: 0, by: -1) {
                let (sum, overflow) = bytes[i].addingReportingOverflow(1)
                bytes[i] = sum
                if !overflow { break }
            }
        }
        return bytes
    }
}

extension String {
    var trimmingSpaces: String {
        guard let first = firstIndex(where: { $0 != " " && $0 != "\t" }) else { return "" }
        let last = lastIndex(where: { $0 != " " && $0 != "\t" })!
        return String(self[first...last])
    }
}
