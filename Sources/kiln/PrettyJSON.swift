import Foundation
import KilnCore

/// `--json` output: sorted keys, two-space indent, `"key" : value` (JSONSerialization's pretty layout), written
/// directly — JSONSerialization cost every command ~1.5 ms on first use. Takes what commands build (Swift strings,
/// numbers, Booleans, dictionaries, arrays, optionals) and what `JSONSerialization.jsonObject` parses from a server
/// (NSNumber, NSDecimalNumber, NSNull): a parsed `true` stays a Boolean, `1` stays a number and a fraction keeps
/// the server's digits. NaN and ±Infinity are written as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`, as the
/// wire format writes them.
func prettyJSON(_ value: Any) throws -> String {
    var out = ""
    try writePrettyJSON(value, indent: 0, into: &out)
    return out
}

private let booleanNumberType: Any.Type = type(of: NSNumber(value: true))

private protocol OptionalValue { var wrapped: Any? { get } }
extension Optional: OptionalValue {
    fileprivate var wrapped: Any? { map { $0 as Any } }
}

private func writePrettyJSON(_ value: Any, indent: Int, into out: inout String) throws {
    let kind = type(of: value)
    if kind == Bool.self, let flag = value as? Bool {
        out += flag ? "true" : "false"
    } else if kind is NSNumber.Type, let number = value as? NSNumber {
        if kind == booleanNumberType {
            out += number.boolValue ? "true" : "false"
        } else if let decimal = number as? NSDecimalNumber {
            // How JSONSerialization parses most fractions on Linux: its text is the server's digits, its
            // `doubleValue` can be an ulp off.
            out += decimal.stringValue
        } else if ["d", "f"].contains(String(cString: number.objCType)) {
            writeJSONNumber(number.doubleValue, into: &out)
        } else {
            out += number.stringValue
        }
    } else if let text = value as? String {
        out += JSONValue.quote(text)
    } else if let double = value as? Double {
        writeJSONNumber(double, into: &out)
    } else if let float = value as? Float {
        writeJSONNumber(Double(float), into: &out)
    } else if let integer = value as? any BinaryInteger {
        out += "\(integer)"
    } else if let object = value as? [String: Any] {
        guard !object.isEmpty else { out += "{}"; return }
        out += "{\n"
        let pad = String(repeating: " ", count: indent + 2)
        for (i, key) in object.keys.sorted().enumerated() {
            out += pad
            out += JSONValue.quote(key)
            out += " : "
            try writePrettyJSON(object[key]!, indent: indent + 2, into: &out)
            out += i + 1 < object.count ? ",\n" : "\n"
        }
        out += String(repeating: " ", count: indent) + "}"
    } else if let array = value as? [Any] {
        guard !array.isEmpty else { out += "[]"; return }
        out += "[\n"
        let pad = String(repeating: " ", count: indent + 2)
        for (i, element) in array.enumerated() {
            out += pad
            try writePrettyJSON(element, indent: indent + 2, into: &out)
            out += i + 1 < array.count ? ",\n" : "\n"
        }
        out += String(repeating: " ", count: indent) + "]"
    } else if value is NSNull {
        out += "null"
    } else if let optional = value as? any OptionalValue {
        if let wrapped = optional.wrapped { try writePrettyJSON(wrapped, indent: indent, into: &out) } else { out += "null" }
    } else {
        throw CLIError("cannot write a \(kind) as JSON")
    }
}

private func writeJSONNumber(_ double: Double, into out: inout String) {
    if double.isNaN {
        out += "\"NaN\""
    } else if double.isInfinite {
        out += double > 0 ? "\"Infinity\"" : "\"-Infinity\""
    } else if double == double.rounded(), abs(double) < 1e15 {
        out += String(Int64(double))
    } else {
        out += "\(double)"
    }
}
