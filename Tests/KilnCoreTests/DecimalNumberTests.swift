import Glibc
import KilnCore
import Testing

@Suite("Decimal number parsing")
struct DecimalNumberTests {
    static func strtodValue(_ text: String) -> Double { text.withCString { strtod($0, nil) } }

    static func parse(_ text: String) -> (Double, Int)? {
        Array(text.utf8).withUnsafeBufferPointer { DecimalNumber.parseDouble($0, from: 0).map { ($0.value, $0.end) } }
    }

    @Test("equals strtod bit for bit on shortest round-trip texts, long mantissas and wide exponents")
    func equalsStrtod() {
        var generator = SystemRandomNumberGenerator()
        var texts = ["0", "-0", "0.0", "1", "-1.5", "17.99", "0.2654", "1001.0", "1e22", "1e23", "9007199254740993", "123456789012345678901234",
                     "0.1", "0.30000000000000004", "2.2250738585072014e-308", "1.7976931348623157e308", "5e-324", "1e-400", "1e400", "4.9e-324",
                     "0.000000000000000000000000000001", "12345678901234567890", "1E5", "2.5e+3", "-2.5E-3"]
        for _ in 0..<20_000 {
            let bits = UInt64.random(in: 0...UInt64.max, using: &generator)
            let value = Double(bitPattern: bits)
            if value.isFinite { texts.append("\(value)") }
            texts.append("\(Double.random(in: -1000...1000, using: &generator))")
            texts.append(String(Int.random(in: -1_000_000...1_000_000, using: &generator)) + "." + String(Int.random(in: 0...9999, using: &generator)))
        }
        for text in texts {
            guard let (value, end) = Self.parse(text) else { Issue.record("\(text) did not parse"); continue }
            #expect(end == text.utf8.count, "\(text)")
            #expect(value.bitPattern == Self.strtodValue(text).bitPattern, "\(text)")
        }
    }

    @Test("stops at the first byte after the number and refuses what JSON does not allow")
    func boundaries() {
        #expect(Self.parse("12.5,3")?.1 == 4)
        #expect(Self.parse("-7]")?.1 == 2)
        for bad in ["-", ".5", "1.", "1e", "1e+", "x", "", "-Infinity", "NaN"] {
            #expect(Self.parse(bad) == nil, "\(bad)")
        }
    }
}

@Suite("Hex")
struct HexTests {
    @Test("encodes every byte as String(format: \"%02x\") does")
    func everyByte() {
        let all = (0...255).map { UInt8($0) }
        #expect(Hex.encode(all) == all.map { String(format: "%02x", $0) }.joined())
        #expect(Hex.encode([UInt8]()) == "")
    }
}
