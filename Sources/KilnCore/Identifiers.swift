import Foundation

/// Makes the identifiers Kiln hands out.
public enum Identifiers {
    /// A 32-character lowercase hex id, the form MLflow uses for run ids.
    public static func hex32() -> String {
        UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    }

    private static let adjectives = [
        "amber", "bold", "brave", "bright", "calm", "clever", "crisp", "daring", "eager", "fast", "gentle", "glad",
        "golden", "grand", "keen", "kind", "lively", "lucky", "merry", "mighty", "nimble", "polite", "proud", "quick",
        "quiet", "rare", "sharp", "shy", "silent", "smooth", "steady", "sunny", "swift", "tidy", "vivid", "warm", "wise",
    ]
    private static let nouns = [
        "ant", "bass", "bear", "bee", "bird", "boar", "carp", "cat", "crane", "crow", "deer", "dove", "eel", "elk",
        "finch", "fox", "frog", "goat", "hare", "hawk", "heron", "horse", "jay", "lark", "lynx", "mole", "moth", "newt",
        "owl", "ox", "panda", "ram", "seal", "shrew", "snail", "sloth", "squid", "stork", "swan", "toad", "trout", "wolf",
        "wren", "yak",
    ]

    /// A readable run name such as `swift-owl-417`, as MLflow generates when none is given.
    public static func runName() -> String {
        "\(adjectives.randomElement()!)-\(nouns.randomElement()!)-\(Int.random(in: 100...999))"
    }
}

/// This build's version, reported by `kiln version`, the server and the models Kiln writes.
public let kilnVersion = "0.1.0"

/// Lowercase hexadecimal, without going through `String(format:)` (which costs about a microsecond a byte on Linux;
/// token hashes and audit chain hashes are encoded on every request).
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of hexadecimal text (either case); nil when it is not an even run of hex digits.
    public static func decode(_ text: String) -> [UInt8]? {
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let high = value(digits[i]), let low = value(digits[i + 1]) else { return nil }
            out.append(high << 4 | low)
        }
        return out
    }
}
