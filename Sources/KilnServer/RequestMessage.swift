import Foundation
import Hummingbird
import KilnCore

/// A request's fields, from the JSON body (POST, PATCH, DELETE) or the query string (GET), with typed accessors
/// that turn wrong types into `INVALID_PARAMETER_VALUE`, as MLflow's request parser does.
struct RequestMessage: Sendable {
    var fields: [String: JSONValue]
    /// Who sent the request, from the auth middleware.
    var caller: Caller?
    /// The caller's name.
    var principal: String? { caller?.name }
    /// The client's `User-Agent`.
    var userAgent: String?
    /// Whether unitycatalog-client (OpenAPI-generated) sent it: it reads privileges spelled with spaces.
    var fromOSSClient: Bool { userAgent?.hasPrefix("OpenAPI-Generator") ?? false }

    init(fields: [String: JSONValue]) { self.fields = fields }

    /// Reads the message of `request`: the query for GET, else the JSON body (an empty body is `{}`);
    /// query fields fill in anything the body lacks, and path parameters override both.
    static func read(_ request: Request, context: KilnRequestContext, limit: Int = 16 * 1024 * 1024) async throws -> RequestMessage {
        var fields = parseQuery(request.uri.query ?? "")
        if request.method != .get && request.method != .head {
            let buffer: ByteBuffer
            do {
                buffer = try await request.body.collect(upTo: limit)
            } catch {
                throw KilnError(.invalidParameterValue, "Request body is larger than \(limit) bytes")
            }
            let bytes = buffer.readableBytesView
            if !bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
                guard case .object(let object) = try JSONValue.parse(bytes) else {
                    throw KilnError.invalid("Malformed JSON request body: expected an object")
                }
                fields.merge(object) { _, body in body }
            }
        }
        return RequestMessage(fields: fields)
    }

    /// Parses `a=1&b=x+y&b=z` into fields; repeated keys become arrays.
    static func parseQuery(_ query: String) -> [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = decode(parts[0])
            let value = parts.count > 1 ? decode(parts[1]) : ""
            switch fields[key] {
            case nil: fields[key] = .string(value)
            case .array(var items): items.append(.string(value)); fields[key] = .array(items)
            case let existing?: fields[key] = .array([existing, .string(value)])
            }
        }
        return fields
    }

    static func decode(_ part: Substring) -> String {
        let plus = part.replacingOccurrences(of: "+", with: " ")
        return plus.removingPercentEncoding ?? plus
    }

    func bad(_ key: String, _ value: JSONValue, expected: String) -> KilnError {
        KilnError.invalid("Invalid value for parameter '\(key)' supplied: expected \(expected), got \(value.typeName)")
    }

    func missing(_ key: String) -> KilnError {
        KilnError.invalid("Missing value for required parameter '\(key)'. See the API docs for more information about request parameters.")
    }

    /// A string field; numbers and booleans are taken as their text.
    func string(_ key: String) throws -> String? {
        switch fields[key] {
        case nil, .null?: return nil
        case .string(let s)?: return s
        case .number(let n)?: return n
        case .bool(let b)?: return b ? "true" : "false"
        case let other?: throw bad(key, other, expected: "a string")
        }
    }

    func requireString(_ key: String) throws -> String {
        guard let value = try string(key), !value.isEmpty else { throw missing(key) }
        return value
    }

    /// The first of several spellings (`run_id`, then the deprecated `run_uuid`).
    func requireString(_ keys: String...) throws -> String {
        for key in keys { if let value = try string(key), !value.isEmpty { return value } }
        throw missing(keys[0])
    }

    func int64(_ key: String) throws -> Int64? {
        switch fields[key] {
        case nil, .null?: return nil
        case .number(let n)?:
            if let v = Int64(n) { return v }
            if let d = Double(n), d == d.rounded(), abs(d) < 9.2e18 { return Int64(d) }
            throw bad(key, .number(n), expected: "an int64")
        case .string(let s)?:
            guard let v = Int64(s) else { throw KilnError.invalid("Invalid value '\(s)' for parameter '\(key)' supplied: expected an int64") }
            return v
        case let other?: throw bad(key, other, expected: "an int64")
        }
    }

    func int(_ key: String) throws -> Int? {
        guard let value = try int64(key) else { return nil }
        guard let small = Int(exactly: value), small >= Int(Int32.min), small <= Int(Int32.max) else {
            throw KilnError.invalid("Invalid value \(value) for parameter '\(key)' supplied: out of range")
        }
        return small
    }

    /// A double; the strings `NaN`, `Infinity` and `-Infinity` are accepted as proto JSON writes them.
    func double(_ key: String) throws -> Double? {
        switch fields[key] {
        case nil, .null?: return nil
        case .number(let n)?:
            guard let v = Double(n) else { throw bad(key, .number(n), expected: "a double") }
            return v
        case .string(let s)?:
            switch s {
            case "NaN", "nan": return .nan
            case "Infinity", "inf": return .infinity
            case "-Infinity", "-inf": return -.infinity
            default:
                guard let v = Double(s) else { throw KilnError.invalid("Invalid value '\(s)' for parameter '\(key)' supplied: expected a double") }
                return v
            }
        case let other?: throw bad(key, other, expected: "a double")
        }
    }

    func bool(_ key: String) throws -> Bool? {
        switch fields[key] {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        case .string(let s)?:
            switch s.lowercased() {
            case "true", "1": return true
            case "false", "0": return false
            default: throw KilnError.invalid("Invalid value '\(s)' for parameter '\(key)' supplied: expected a boolean")
            }
        case let other?: throw bad(key, other, expected: "a boolean")
        }
    }

    /// A repeated string field; a single value is a list of one.
    func strings(_ key: String) throws -> [String] {
        switch fields[key] {
        case nil, .null?: return []
        case .string(let s)?: return [s]
        case .array(let items)?:
            return try items.map { item in
                switch item {
                case .string(let s): return s
                case .number(let n): return n
                default: throw bad(key, item, expected: "a list of strings")
                }
            }
        case let other?: throw bad(key, other, expected: "a list of strings")
        }
    }

    /// A repeated message field.
    func messages(_ key: String) throws -> [RequestMessage] {
        switch fields[key] {
        case nil, .null?: return []
        case .array(let items)?:
            return try items.map { item in
                guard case .object(let object) = item else { throw bad(key, item, expected: "a list of objects") }
                return RequestMessage(fields: object)
            }
        case let other?: throw bad(key, other, expected: "a list of objects")
        }
    }

    /// A nested message field.
    func message(_ key: String) throws -> RequestMessage? {
        switch fields[key] {
        case nil, .null?: return nil
        case .object(let object)?: return RequestMessage(fields: object)
        case let other?: throw bad(key, other, expected: "an object")
        }
    }

    /// `[{key, value}]` pairs such as tags and params.
    func keyValues(_ key: String) throws -> [(String, String)] {
        try messages(key).map { item in
            (try item.requireString("key"), try item.string("value") ?? "")
        }
    }
}
