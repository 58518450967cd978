import KilnCore

/// A SCIM 2.0 filter (RFC 7644 §3.4.2.2) over a resource's JSON: `userName eq "a@b.c"`, `displayName co "data"`,
/// `emails.value sw "x" and active eq true`, `not (displayName pr)`. Attribute names and string comparisons are
/// case-insensitive (SCIM's default `caseExact: false`); a multi-valued attribute matches when any value does.
public indirect enum SCIMFilter: Sendable, Equatable {
    case compare(path: [String], op: String, value: JSONValue)
    case present(path: [String])
    case and(SCIMFilter, SCIMFilter)
    case or(SCIMFilter, SCIMFilter)
    case not(SCIMFilter)

    static let operators: Set<String> = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]

    /// Parses `text`.
    /// - Throws: `INVALID_PARAMETER_VALUE` naming what was expected where.
    public static func parse(_ text: String) throws -> SCIMFilter {
        var parser = Parser(tokens: try tokenize(text), text: text)
        let filter = try parser.expression()
        guard parser.position == parser.tokens.count else { throw parser.error("unexpected '\(parser.tokens[parser.position].text)'") }
        return filter
    }

    /// Whether `resource` matches.
    public func matches(_ resource: JSONValue) -> Bool {
        switch self {
        case .and(let a, let b): return a.matches(resource) && b.matches(resource)
        case .or(let a, let b): return a.matches(resource) || b.matches(resource)
        case .not(let f): return !f.matches(resource)
        case .present(let path):
            return Self.values(resource, path).contains { v in
                switch v {
                case .null: return false
                case .string(let s): return !s.isEmpty
                case .array(let a): return !a.isEmpty
                default: return true
                }
            }
        case .compare(let path, let op, let expected):
            let found = Self.values(resource, path)
            if op == "ne" { return !found.contains { Self.compare($0, "eq", expected) } }
            return found.contains { Self.compare($0, op, expected) }
        }
    }

    /// The values at `path`, descending into arrays; a multi-valued attribute compared whole compares its `value`s.
    static func values(_ json: JSONValue, _ path: [String]) -> [JSONValue] {
        guard let head = path.first else {
            if case .array(let items) = json { return items.flatMap { values($0, []) } }
            if case .object(let o) = json, let v = o.first(where: { $0.key.lowercased() == "value" })?.value { return [v] }
            return [json]
        }
        switch json {
        case .array(let items): return items.flatMap { values($0, path) }
        case .object(let object):
            guard let v = object.first(where: { $0.key.lowercased() == head })?.value else { return [] }
            return values(v, Array(path.dropFirst()))
        default: return []
        }
    }

    static func compare(_ actual: JSONValue, _ op: String, _ expected: JSONValue) -> Bool {
        switch (actual, expected) {
        case (.string(let a), .string(let b)):
            let x = a.lowercased(), y = b.lowercased()
            switch op {
            case "eq": return x == y
            case "co": return x.contains(y)
            case "sw": return x.hasPrefix(y)
            case "ew": return x.hasSuffix(y)
            case "gt": return x > y
            case "ge": return x >= y
            case "lt": return x < y
            case "le": return x <= y
            default: return false
            }
        case (.bool(let a), .bool(let b)): return op == "eq" && a == b
        case (.bool(let a), .string(let b)): return op == "eq" && String(a) == b.lowercased()
        case (.number(let a), .number(let b)):
            guard let x = Double(a), let y = Double(b) else { return false }
            switch op {
            case "eq": return x == y
            case "gt": return x > y
            case "ge": return x >= y
            case "lt": return x < y
            case "le": return x <= y
            default: return false
            }
        case (.null, .null): return op == "eq"
        default: return false
        }
    }

    struct Token: Equatable {
        enum Kind { case word, string, open, close }
        var kind: Kind
        var text: String
    }

    static func tokenize(_ text: String) throws -> [Token] {
        var tokens: [Token] = []
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            if c.isWhitespace { i = text.index(after: i); continue }
            if c == "(" || c == ")" {
                tokens.append(Token(kind: c == "(" ? .open : .close, text: String(c)))
                i = text.index(after: i)
                continue
            }
            if c == "\"" {
                var value = ""
                var j = text.index(after: i)
                var closed = false
                while j < text.endIndex {
                    let d = text[j]
                    if d == "\\" {
                        let next = text.index(after: j)
                        guard next < text.endIndex else { break }
                        value.append(text[next])
                        j = text.index(after: next)
                        continue
                    }
                    if d == "\"" { closed = true; break }
                    value.append(d)
                    j = text.index(after: j)
                }
                guard closed else { throw KilnError.invalid("Invalid SCIM filter '\(text)': unterminated string") }
                tokens.append(Token(kind: .string, text: value))
                i = text.index(after: j)
                continue
            }
            var j = i
            while j < text.endIndex, !text[j].isWhitespace, text[j] != "(", text[j] != ")", text[j] != "\"" { j = text.index(after: j) }
            tokens.append(Token(kind: .word, text: String(text[i..<j])))
            i = j
        }
        return tokens
    }

    struct Parser {
        let tokens: [Token]
        let text: String
        var position = 0

        func error(_ what: String) -> KilnError {
            KilnError.invalid("Invalid SCIM filter '\(text)': \(what). Example: userName eq \"someone@example.com\"")
        }

        func peekWord(_ word: String) -> Bool {
            position < tokens.count && tokens[position].kind == .word && tokens[position].text.lowercased() == word
        }

        mutating func expression() throws -> SCIMFilter {
            var left = try term()
            while peekWord("or") {
                position += 1
                left = .or(left, try term())
            }
            return left
        }

        mutating func term() throws -> SCIMFilter {
            var left = try factor()
            while peekWord("and") {
                position += 1
                left = .and(left, try factor())
            }
            return left
        }

        mutating func factor() throws -> SCIMFilter {
            guard position < tokens.count else { throw error("it ends where a condition was expected") }
            if peekWord("not") {
                position += 1
                return .not(try factor())
            }
            if tokens[position].kind == .open {
                position += 1
                let inner = try expression()
                guard position < tokens.count, tokens[position].kind == .close else { throw error("a ')' is missing") }
                position += 1
                return inner
            }
            guard tokens[position].kind == .word else { throw error("expected an attribute, found '\(tokens[position].text)'") }
            let path = tokens[position].text.lowercased().split(separator: ".").map(String.init)
            position += 1
            guard position < tokens.count, tokens[position].kind == .word else { throw error("expected an operator after '\(path.joined(separator: "."))'") }
            let op = tokens[position].text.lowercased()
            position += 1
            if op == "pr" { return .present(path: path) }
            guard SCIMFilter.operators.contains(op) else {
                throw error("unknown operator '\(op)' (use eq, ne, co, sw, ew, gt, ge, lt, le or pr)")
            }
            guard position < tokens.count else { throw error("expected a value after '\(op)'") }
            let token = tokens[position]
            position += 1
            switch token.kind {
            case .string: return .compare(path: path, op: op, value: .string(token.text))
            case .word:
                switch token.text.lowercased() {
                case "true": return .compare(path: path, op: op, value: .bool(true))
                case "false": return .compare(path: path, op: op, value: .bool(false))
                case "null": return .compare(path: path, op: op, value: .null)
                default:
                    guard Double(token.text) != nil else { throw error("'\(token.text)' is not a value; quote strings") }
                    return .compare(path: path, op: op, value: .number(token.text))
                }
            default: throw error("expected a value after '\(op)'")
            }
        }
    }
}
