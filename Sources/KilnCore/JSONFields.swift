import Foundation
import KilnCore

/// Typed reads of a JSON object's fields with `INVALID_PARAMETER_VALUE` errors that name the field: what REST
/// bodies and job task parameters share.
public struct JSONFields: Sendable {
    public var fields: [String: JSONValue]

    public init(_ fields: [String: JSONValue]) { self.fields = fields }

    /// A string; numbers and booleans are taken as their text.
    public func string(_ key: String) throws -> String? {
        switch fields[key] {
        case nil, .null?: return nil
        case .string(let s)?: return s
        case .number(let n)?: return n
        case .bool(let b)?: return b ? "true" : "false"
        case let other?: throw KilnError.invalid("\(key) must be a string, got \(other.typeName)")
        }
    }

    public func require(_ key: String) throws -> String {
        guard let value = try string(key), !value.isEmpty else { throw KilnError.invalid("Missing value for required parameter '\(key)'") }
        return value
    }

    public func int64(_ key: String) throws -> Int64? {
        guard let text = try string(key) else { return nil }
        if let v = Int64(text) { return v }
        if let d = Double(text), d == d.rounded(), abs(d) < 9.2e18 { return Int64(d) }
        throw KilnError.invalid("\(key) must be an integer, got '\(text)'")
    }

    public func double(_ key: String) throws -> Double? {
        guard let text = try string(key) else { return nil }
        guard let v = Double(text) else { throw KilnError.invalid("\(key) must be a number, got '\(text)'") }
        return v
    }

    /// A list of strings; a comma-separated string is taken as a list too.
    public func strings(_ key: String) throws -> [String]? {
        switch fields[key] {
        case nil, .null?: return nil
        case .array(let items)?:
            return try items.map {
                guard case .string(let s) = $0 else { throw KilnError.invalid("\(key) must be a list of strings") }
                return s
            }
        case .string(let s)?: return s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        case let other?: throw KilnError.invalid("\(key) must be a list of strings, got \(other.typeName)")
        }
    }

    /// A map of names to scalars, as text.
    public func map(_ key: String) throws -> [String: String] {
        guard let value = fields[key], value != .null else { return [:] }
        guard case .object(let object) = value else { throw KilnError.invalid("\(key) must be an object of name: value") }
        var out: [String: String] = [:]
        for (k, v) in object {
            switch v {
            case .string(let s): out[k] = s
            case .number(let n): out[k] = n
            case .bool(let b): out[k] = b ? "true" : "false"
            default: throw KilnError.invalid("\(key).\(k) must be a string, number or boolean")
            }
        }
        return out
    }
}
