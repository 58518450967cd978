import KilnCore

/// What a filter clause's key names.
public enum FilterEntity: String, Sendable, Equatable {
    case metric, param, tag, attribute, dataset
}

/// A comparison in a filter clause.
public enum FilterOperator: String, Sendable, Equatable {
    case equal = "="
    case notEqual = "!="
    case less = "<"
    case lessOrEqual = "<="
    case greater = ">"
    case greaterOrEqual = ">="
    case like = "LIKE"
    case ilike = "ILIKE"
    case `in` = "IN"
    case notIn = "NOT IN"
    case isNull = "IS NULL"
    case isNotNull = "IS NOT NULL"

    public var isComparison: Bool { [.equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual].contains(self) }
}

/// The right-hand side of a clause.
public enum FilterValue: Sendable, Equatable {
    case number(Double, text: String)
    case string(String)
    case list([String])
    case none
}

/// One `key op value` clause of a search filter.
public struct FilterClause: Sendable, Equatable {
    public var entity: FilterEntity
    public var key: String
    public var op: FilterOperator
    public var value: FilterValue
    /// Character offset of the clause in the filter string, for error messages.
    public var position: Int
}

/// A parsed MLflow search filter: `AND`-joined clauses such as
/// ``metrics.rmse < 1 and params.model = 'tree' and tags.`my tag` LIKE 'x%'``.
public struct SearchFilter: Sendable, Equatable {
    public var clauses: [FilterClause]

    /// Parses a filter string; an empty or blank string has no clauses.
    /// - Throws: `INVALID_PARAMETER_VALUE` naming the position of the first error.
    public static func parse(_ text: String?) throws -> SearchFilter {
        guard let text, !text.allSatisfy(\.isWhitespace) else { return SearchFilter(clauses: []) }
        var parser = try FilterParser(text)
        return SearchFilter(clauses: try parser.parseClauses())
    }
}

/// One `order_by` entry such as `metrics.acc DESC`.
public struct OrderClause: Sendable, Equatable {
    /// Which of a metric's values orders runs: the latest (MLflow's only choice), or the smallest or largest over
    /// the whole history (the web UI's min/max columns).
    public enum MetricValue: String, Sendable, CaseIterable {
        case last, min, max
    }

    public var entity: FilterEntity
    public var key: String
    public var ascending: Bool
    /// For metrics only; `order_by` strings always mean `.last`.
    public var metricValue: MetricValue

    public init(entity: FilterEntity, key: String, ascending: Bool, metricValue: MetricValue = .last) {
        self.entity = entity
        self.key = key
        self.ascending = ascending
        self.metricValue = metricValue
    }

    /// Parses an `order_by` entry.
    /// - Throws: `INVALID_PARAMETER_VALUE` for anything but `key [ASC|DESC]`.
    public static func parse(_ text: String) throws -> OrderClause {
        var parser = try FilterParser(text)
        return try parser.parseOrder()
    }
}

enum FilterToken: Equatable {
    case identifier(String)          // bare word, possibly with dots, possibly prefix + quoted name
    case quotedIdentifier(String)    // `name`
    case prefixedName(String, String) // metrics.`a b` or metrics."a b"
    case doubleQuoted(String)        // "text": a name in key position, a string in value position
    case string(String)              // 'text'
    case number(Double, String)
    case op(String)                  // = != <> < <= > >=
    case leftParen, rightParen, comma
}

struct FilterParser {
    let text: String
    var tokens: [(token: FilterToken, position: Int)] = []
    var index = 0

    init(_ text: String) throws {
        self.text = text
        tokens = try Self.lex(Array(text.unicodeScalars))
    }

    static func error(_ message: String, at position: Int) -> KilnError {
        KilnError.invalid("Invalid filter string: \(message) at position \(position)")
    }

    static func isIdentStart(_ c: Unicode.Scalar) -> Bool {
        c.properties.isAlphabetic || c == "_"
    }

    static func isIdentChar(_ c: Unicode.Scalar) -> Bool {
        c.properties.isAlphabetic || c.properties.numericType != nil || "_.:/-".unicodeScalars.contains(c)
    }

    static func lex(_ s: [Unicode.Scalar]) throws -> [(token: FilterToken, position: Int)] {
        var out: [(token: FilterToken, position: Int)] = []
        var i = 0
        func readQuoted(_ quote: Unicode.Scalar, from start: Int) throws -> (String, Int) {
            var j = start + 1
            var value = String.UnicodeScalarView()
            while j < s.count {
                let c = s[j]
                if c == "\\", j + 1 < s.count, s[j + 1] == quote {
                    value.append(quote); j += 2; continue
                }
                if c == quote {
                    if j + 1 < s.count, s[j + 1] == quote, quote == "'" {
                        value.append(quote); j += 2; continue
                    }
                    return (String(value), j + 1)
                }
                value.append(c)
                j += 1
            }
            throw error("unterminated quoted text", at: start)
        }
        while i < s.count {
            let c = s[i]
            if c.properties.isWhitespace { i += 1; continue }
            let start = i
            switch c {
            case "(": out.append((.leftParen, start)); i += 1
            case ")": out.append((.rightParen, start)); i += 1
            case ",": out.append((.comma, start)); i += 1
            case "'":
                let (value, next) = try readQuoted("'", from: i)
                out.append((.string(value), start)); i = next
            case "\"":
                let (value, next) = try readQuoted("\"", from: i)
                out.append((.doubleQuoted(value), start)); i = next
            case "`":
                let (value, next) = try readQuoted("`", from: i)
                out.append((.quotedIdentifier(value), start)); i = next
            case "=", "!", "<", ">":
                var op = String(c)
                if i + 1 < s.count, s[i + 1] == "=" || (c == "<" && s[i + 1] == ">") {
                    op.unicodeScalars.append(s[i + 1])
                }
                if op == "!" { throw error("unexpected '!'", at: start) }
                if op == "==" { op = "=" }
                if op == "<>" { op = "!=" }
                out.append((.op(op), start))
                i += op == "=" && c == "=" && i + 1 < s.count && s[i + 1] == "=" ? 2 : op.unicodeScalars.count
            default:
                if c == "-" || c == "+" || c == "." || c.properties.numericType != nil {
                    var j = i + 1
                    while j < s.count, s[j].properties.numericType != nil || s[j] == "." || s[j] == "e" || s[j] == "E"
                        || ((s[j] == "-" || s[j] == "+") && (s[j - 1] == "e" || s[j - 1] == "E")) {
                        j += 1
                    }
                    let textValue = String(String.UnicodeScalarView(s[i..<j]))
                    guard let number = Double(textValue) else { throw error("invalid number '\(textValue)'", at: start) }
                    out.append((.number(number, textValue), start))
                    i = j
                } else if isIdentStart(c) {
                    var j = i + 1
                    while j < s.count, isIdentChar(s[j]) { j += 1 }
                    var word = String(String.UnicodeScalarView(s[i..<j]))
                    // `metrics.` followed by a quoted name: one key.
                    if word.hasSuffix("."), j < s.count, s[j] == "`" || s[j] == "\"" {
                        let (name, next) = try readQuoted(s[j], from: j)
                        j = next
                        out.append((.prefixedName(String(word.dropLast()), name), start))
                    } else {
                        out.append((.identifier(word), start))
                    }
                    i = j
                } else {
                    throw error("unexpected character '\(c)'", at: start)
                }
            }
        }
        return out
    }

    var atEnd: Bool { index >= tokens.count }
    var position: Int { atEnd ? text.unicodeScalars.count : tokens[index].position }

    func keyword(_ word: String) -> Bool {
        guard !atEnd, case .identifier(let w) = tokens[index].token else { return false }
        return w.uppercased() == word
    }

    mutating func parseClauses() throws -> [FilterClause] {
        var clauses: [FilterClause] = []
        while true {
            clauses.append(try parseClause())
            if atEnd { return clauses }
            if keyword("AND") {
                index += 1
                if atEnd { throw Self.error("expected a clause after AND", at: position) }
                continue
            }
            if keyword("OR") {
                throw Self.error("Invalid clause(s) in filter string: OR is not supported, only AND", at: position)
            }
            throw Self.error("expected AND between clauses", at: position)
        }
    }

    /// Splits `metrics.acc` into the entity and the key.
    static func splitKey(_ raw: String, quoted: Bool, at position: Int) throws -> (FilterEntity, String) {
        guard let dot = raw.firstIndex(of: ".") else {
            return (.attribute, raw)
        }
        let prefix = raw[..<dot].lowercased()
        let name = String(raw[raw.index(after: dot)...])
        let entity: FilterEntity
        switch prefix {
        case "metric", "metrics": entity = .metric
        case "param", "params", "parameter", "parameters": entity = .param
        case "tag", "tags": entity = .tag
        case "attribute", "attributes", "attr", "run": entity = .attribute
        case "dataset", "datasets": entity = .dataset
        default:
            if quoted { return (.attribute, raw) }
            throw error("invalid entity type '\(raw[..<dot])'; expected metrics, params, tags, attributes or datasets", at: position)
        }
        guard !name.isEmpty else { throw error("missing key name after '\(raw[..<dot]).'", at: position) }
        return (entity, name)
    }

    mutating func parseKey() throws -> (FilterEntity, String, Int) {
        guard !atEnd else { throw Self.error("expected a key", at: position) }
        let (token, start) = tokens[index]
        index += 1
        switch token {
        case .identifier(let word):
            if ["AND", "OR", "IN", "NOT", "LIKE", "ILIKE", "IS", "NULL"].contains(word.uppercased()) {
                throw Self.error("expected a key, found '\(word)'", at: start)
            }
            let (entity, key) = try Self.splitKey(word, quoted: false, at: start)
            return (entity, key, start)
        case .prefixedName(let prefix, let name):
            let (entity, key) = try Self.splitKey(prefix + "." + name, quoted: false, at: start)
            return (entity, key, start)
        case .quotedIdentifier(let word):
            return (.attribute, word, start)
        case .doubleQuoted(let word):
            return (.attribute, word, start)
        default:
            throw Self.error("expected a key", at: start)
        }
    }

    mutating func parseClause() throws -> FilterClause {
        let (entity, key, start) = try parseKey()
        guard !atEnd else { throw Self.error("expected an operator after '\(key)'", at: position) }
        let op: FilterOperator
        switch tokens[index].token {
        case .op(let symbol):
            op = FilterOperator(rawValue: symbol)!
            index += 1
        case .identifier(let word):
            switch word.uppercased() {
            case "LIKE": op = .like; index += 1
            case "ILIKE": op = .ilike; index += 1
            case "IN": op = .in; index += 1
            case "NOT":
                index += 1
                guard keyword("IN") else { throw Self.error("expected IN after NOT", at: position) }
                index += 1
                op = .notIn
            case "IS":
                index += 1
                if keyword("NOT") {
                    index += 1
                    guard keyword("NULL") else { throw Self.error("expected NULL after IS NOT", at: position) }
                    index += 1
                    return FilterClause(entity: entity, key: key, op: .isNotNull, value: .none, position: start)
                }
                guard keyword("NULL") else { throw Self.error("expected NULL after IS", at: position) }
                index += 1
                return FilterClause(entity: entity, key: key, op: .isNull, value: .none, position: start)
            default:
                throw Self.error("invalid comparator '\(word)'", at: tokens[index].position)
            }
        default:
            throw Self.error("expected an operator after '\(key)'", at: tokens[index].position)
        }
        guard !atEnd else { throw Self.error("expected a value after '\(op.rawValue)'", at: position) }
        let (token, valueStart) = tokens[index]
        index += 1
        let value: FilterValue
        switch token {
        case .number(let number, let textValue): value = .number(number, text: textValue)
        case .string(let string), .doubleQuoted(let string): value = .string(string)
        case .leftParen:
            var items: [String] = []
            while true {
                guard !atEnd else { throw Self.error("unterminated value list", at: valueStart) }
                switch tokens[index].token {
                case .string(let s), .doubleQuoted(let s): items.append(s)
                case .number(_, let t): items.append(t)
                default: throw Self.error("expected a quoted value in the list", at: tokens[index].position)
                }
                index += 1
                guard !atEnd else { throw Self.error("unterminated value list", at: valueStart) }
                if tokens[index].token == .comma { index += 1; continue }
                if tokens[index].token == .rightParen { index += 1; break }
                throw Self.error("expected ',' or ')' in the value list", at: tokens[index].position)
            }
            value = .list(items)
        case .identifier(let word):
            throw Self.error("expected a value, found '\(word)'; quote strings with single quotes", at: valueStart)
        default:
            throw Self.error("expected a value", at: valueStart)
        }
        if op == .in || op == .notIn {
            guard case .list = value else { throw Self.error("\(op.rawValue) needs a parenthesized list", at: valueStart) }
        } else if case .list = value {
            throw Self.error("a value list is only allowed with IN and NOT IN", at: valueStart)
        }
        return FilterClause(entity: entity, key: key, op: op, value: value, position: start)
    }

    mutating func parseOrder() throws -> OrderClause {
        let (entity, key, _) = try parseKey()
        var ascending = true
        if !atEnd {
            if keyword("ASC") { index += 1 } else if keyword("DESC") { ascending = false; index += 1 } else {
                throw Self.error("expected ASC or DESC in order_by '\(text)'", at: position)
            }
        }
        guard atEnd else { throw Self.error("unexpected text in order_by '\(text)'", at: position) }
        return OrderClause(entity: entity, key: key, ascending: ascending)
    }
}
