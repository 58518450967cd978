#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reading decimal numbers (JSON's grammar) from bytes without going through `String`.
public enum DecimalNumber {
    /// Exact powers of ten representable in a `Double` (10^0 ... 10^22).
    @usableFromInline static let powersOfTen: [Double] = (0...22).map { e in (0..<e).reduce(1.0) { x, _ in x * 10 } }

    /// Parses the number that starts at `start`: `-?digits(.digits)?([eE][+-]?digits)?`.
    ///
    /// Numbers of at most 19 significant digits whose mantissa fits 2^53 and whose decimal exponent is within ±22
    /// are computed exactly with one multiplication or division (Clinger's fast path, correctly rounded); anything
    /// else goes through `strtod`, so every result equals `strtod`'s.
    /// - Returns: the value and the index just past the number, or nil when no number starts at `start`.
    @inlinable
    public static func parseDouble(_ b: UnsafeBufferPointer<UInt8>, from start: Int) -> (value: Double, end: Int)? {
        var i = start
        let n = b.count
        var negative = false
        if i < n, b[i] == UInt8(ascii: "-") { negative = true; i += 1 }
        var mantissa: UInt64 = 0
        var significant = 0
        var exponent = 0
        var exact = true
        let integerStart = i
        while i < n, b[i] &- 48 < 10 {
            if significant < 19 {
                mantissa = mantissa &* 10 &+ UInt64(b[i] &- 48)
                if mantissa != 0 { significant += 1 }
            } else {
                exponent += 1
                exact = false
            }
            i += 1
        }
        guard i > integerStart else { return nil }
        if i < n, b[i] == UInt8(ascii: ".") {
            i += 1
            let fractionStart = i
            while i < n, b[i] &- 48 < 10 {
                if significant < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(b[i] &- 48)
                    if mantissa != 0 { significant += 1 }
                    exponent -= 1
                } else {
                    exact = false
                }
                i += 1
            }
            guard i > fractionStart else { return nil }
        }
        if i < n, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            var negativeExponent = false
            if i < n, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") { negativeExponent = b[i] == UInt8(ascii: "-"); i += 1 }
            let exponentStart = i
            var value = 0
            while i < n, b[i] &- 48 < 10 {
                if value < 100_000 { value = value * 10 + Int(b[i] &- 48) }
                i += 1
            }
            guard i > exponentStart else { return nil }
            exponent += negativeExponent ? -value : value
        }
        if mantissa == 0 { return (negative ? -0.0 : 0.0, i) }
        if exact, mantissa <= 1 << 53, exponent >= -22, exponent <= 22 {
            var value = Double(mantissa)
            if exponent < 0 { value /= powersOfTen[-exponent] } else { value *= powersOfTen[exponent] }
            return (negative ? -value : value, i)
        }
        return (slowParse(b, start, i), i)
    }

    /// `strtod` over `b[start..<end]`, copied so it is NUL-terminated.
    @usableFromInline static func slowParse(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Double {
        var text = Array(UnsafeBufferPointer(rebasing: b[start..<end]))
        text.append(0)
        return text.withUnsafeBufferPointer { p in
            p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { strtod($0, nil) }
        }
    }
}
