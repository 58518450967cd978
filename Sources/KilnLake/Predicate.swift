import Foundation
import KilnCore

/// A SQL boolean expression over a table's top-level columns: `region = 'us' AND (x < 0.5 OR x IS NULL)`,
/// `day IN ('2024-01-01', '2024-01-02')`, `NOT flag`. Rows are evaluated with SQL's three-valued logic; files
/// are skipped when their partition values or statistics prove no row can match.
public indirect enum LakePredicate: Sendable, Equatable {
    case comparison(String, Op, Literal)
    case isNull(String, negated: Bool)
    case inList(String, [Literal], negated: Bool)
    case column(String)
    case and(LakePredicate, LakePredicate)
    case or(LakePredicate, LakePredicate)
    case not(LakePredicate)
    case constant(Bool)

    public enum Op: String, Sendable {
        case eq = "=", ne = "!=", lt = "<", le = "<=", gt = ">", ge = ">="

        /// Whether `value <op> literal` holds when `order` is the sign of (value − literal).
        func holds(_ order: Int) -> Bool {
            switch self {
            case .eq: order == 0
            case .ne: order != 0
            case .lt: order < 0
            case .le: order <= 0
            case .gt: order > 0
            case .ge: order >= 0
            }
        }
    }

    /// A literal as written: its text and whether it was quoted.
    public enum Literal: Sendable, Equatable {
        case number(String)
        case text(String)
        case bool(Bool)
        case null
    }

    /// Parses a predicate. - Throws: `INVALID_PARAMETER_VALUE` saying where it could not be read.
    public static func parse(_ text: String) throws -> LakePredicate {
        var parser = PredicateParser(text)
        let result = try parser.expression()
        parser.skip()
        guard parser.atEnd else { throw parser.fail("unexpected text") }
        return result
    }

    /// The columns the predicate reads.
    public var columns: Set<String> {
        switch self {
        case .comparison(let c, _, _), .isNull(let c, _), .inList(let c, _, _), .column(let c): [c.lowercased()]
        case .and(let a, let b), .or(let a, let b): a.columns.union(b.columns)
        case .not(let a): a.columns
        case .constant: []
        }
    }

    /// Checks that every column exists and literals fit their types.
    func validate(_ schema: DeltaSchema) throws {
        for name in columns {
            guard let field = schema.field(name) else {
                throw KilnError.invalid("The predicate names column '\(name)', which the table does not have; columns are \(schema.fields.map(\.name).joined(separator: ", "))")
            }
            guard case .primitive = field.type else {
                if case .decimal = field.type { continue }
                throw KilnError.invalid("The predicate compares '\(name)', a \(field.type.sqlName); only primitive columns can be compared")
            }
        }
    }

    /// Three-valued evaluation against one row: `value(column)` gives the row's value of a column.
    public func evaluate(_ value: (String) -> (LakeValue, DeltaType)?) -> Bool? {
        switch self {
        case .constant(let b): return b
        case .column(let c):
            guard let (v, _) = value(c.lowercased()) else { return nil }
            if case .bool(let b) = v { return b }
            return nil
        case .isNull(let c, let negated):
            guard let (v, _) = value(c.lowercased()) else { return nil }
            return (v == .null) != negated
        case .comparison(let c, let op, let literal):
            guard let (v, type) = value(c.lowercased()), v != .null, let l = Self.value(literal, type: type), l != .null,
                  let order = v.compare(l) else { return nil }
            return op.holds(order)
        case .inList(let c, let literals, let negated):
            guard let (v, type) = value(c.lowercased()), v != .null else { return nil }
            var sawNull = false
            for literal in literals {
                guard let l = Self.value(literal, type: type), l != .null else { sawNull = true; continue }
                if v.compare(l) == 0 { return !negated }
            }
            return sawNull ? nil : negated
        case .and(let a, let b):
            let x = a.evaluate(value), y = b.evaluate(value)
            if x == false || y == false { return false }
            return x == true && y == true ? true : nil
        case .or(let a, let b):
            let x = a.evaluate(value), y = b.evaluate(value)
            if x == true || y == true { return true }
            return x == false && y == false ? false : nil
        case .not(let a):
            return a.evaluate(value).map { !$0 }
        }
    }

    static func value(_ literal: Literal, type: DeltaType) -> LakeValue? {
        switch literal {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .number(let n): return Int64(n).map(LakeValue.int) ?? Double(n).map(LakeValue.double)
        case .text(let t): return LakeValue.literal(t, type: type)
        }
    }

    /// False only when the range `[min, max]` of each column (nil = unknown) proves no row can match.
    /// `range(column)` gives (type, min, max, mayBeNull, allNull).
    func mayMatch(_ range: (String) -> ColumnRange?) -> Bool {
        switch self {
        case .constant(let b): return b
        case .column: return true
        case .isNull(let c, let negated):
            guard let r = range(c.lowercased()) else { return true }
            return negated ? !r.allNull : r.mayBeNull
        case .comparison(let c, let op, let literal):
            guard let r = range(c.lowercased()) else { return true }
            if r.allNull { return false }
            guard let l = Self.value(literal, type: r.type), l != .null else { return false }
            guard let lo = r.min, let hi = r.max, let a = lo.compare(l), let b = hi.compare(l) else { return true }
            switch op {
            case .eq: return a <= 0 && b >= 0
            case .ne: return !(a == 0 && b == 0)
            case .lt: return a < 0
            case .le: return a <= 0
            case .gt: return b > 0
            case .ge: return b >= 0
            }
        case .inList(let c, let literals, let negated):
            if negated { return true }
            return literals.contains { LakePredicate.comparison(c, .eq, $0).mayMatch(range) }
        case .and(let a, let b): return a.mayMatch(range) && b.mayMatch(range)
        case .or(let a, let b): return a.mayMatch(range) || b.mayMatch(range)
        case .not(let inner):
            // Only exact single-value ranges (partition columns) can prove a negation false.
            if case .comparison(let c, let op, let literal) = inner, let r = range(c.lowercased()), let lo = r.min, lo == r.max, !r.mayBeNull,
               let l = Self.value(literal, type: r.type), let order = lo.compare(l) {
                return !op.holds(order)
            }
            return true
        }
    }
}

/// What a file says about one column: its type, bounds and nulls.
struct ColumnRange {
    var type: DeltaType
    var min: LakeValue?
    var max: LakeValue?
    var mayBeNull: Bool
    var allNull: Bool
}

struct PredicateParser {
    let text: [Character]
    var position = 0

    init(_ text: String) { self.text = Array(text) }

    var atEnd: Bool { position >= text.count }

    func fail(_ message: String) -> KilnError {
        KilnError.invalid("Cannot read the predicate at character \(position + 1): \(message). Write it like: region = 'us' AND x < 0.5")
    }

    mutating func skip() { while position < text.count, text[position].isWhitespace { position += 1 } }

    mutating func keyword(_ word: String) -> Bool {
        skip()
        let end = position + word.count
        guard end <= text.count, String(text[position..<end]).uppercased() == word else { return false }
        if end < text.count, text[end].isLetter || text[end].isNumber || text[end] == "_" { return false }
        position = end
        return true
    }

    mutating func symbol(_ s: String) -> Bool {
        skip()
        let end = position + s.count
        guard end <= text.count, String(text[position..<end]) == s else { return false }
        position = end
        return true
    }

    mutating func expression() throws -> LakePredicate {
        var left = try conjunction()
        while keyword("OR") { left = .or(left, try conjunction()) }
        return left
    }

    mutating func conjunction() throws -> LakePredicate {
        var left = try negation()
        while keyword("AND") { left = .and(left, try negation()) }
        return left
    }

    mutating func negation() throws -> LakePredicate {
        if keyword("NOT") { return .not(try negation()) }
        return try primary()
    }

    mutating func primary() throws -> LakePredicate {
        if symbol("(") {
            let inner = try expression()
            guard symbol(")") else { throw fail("expected ')'") }
            return inner
        }
        if keyword("TRUE") { return .constant(true) }
        if keyword("FALSE") { return .constant(false) }
        let column = try identifier()
        if keyword("IS") {
            let negated = keyword("NOT")
            guard keyword("NULL") else { throw fail("expected NULL after IS") }
            return .isNull(column, negated: negated)
        }
        let save = position
        let negated = keyword("NOT")
        if keyword("IN") {
            guard symbol("(") else { throw fail("expected '(' after IN") }
            var items = [try literal()]
            while symbol(",") { items.append(try literal()) }
            guard symbol(")") else { throw fail("expected ')' to close IN") }
            return .inList(column, items, negated: negated)
        }
        position = save
        for (text, op) in [("<=", LakePredicate.Op.le), (">=", .ge), ("!=", .ne), ("<>", .ne), ("==", .eq), ("=", .eq), ("<", .lt), (">", .gt)] where symbol(text) {
            return .comparison(column, op, try literal())
        }
        return .column(column)
    }

    mutating func identifier() throws -> String {
        skip()
        if position < text.count, text[position] == "`" {
            position += 1
            let start = position
            while position < text.count, text[position] != "`" { position += 1 }
            guard position < text.count else { throw fail("unclosed backquote") }
            defer { position += 1 }
            return String(text[start..<position])
        }
        let start = position
        while position < text.count, text[position].isLetter || text[position].isNumber || text[position] == "_" || text[position] == "." { position += 1 }
        guard position > start else { throw fail("expected a column name") }
        return String(text[start..<position])
    }

    mutating func literal() throws -> LakePredicate.Literal {
        skip()
        if keyword("NULL") { return .null }
        if keyword("TRUE") { return .bool(true) }
        if keyword("FALSE") { return .bool(false) }
        _ = keyword("DATE") || keyword("TIMESTAMP") || keyword("TIMESTAMP_NTZ")
        skip()
        if position < text.count, text[position] == "'" {
            position += 1
            var value = ""
            while true {
                guard position < text.count else { throw fail("unclosed quote") }
                if text[position] == "'" {
                    if position + 1 < text.count, text[position + 1] == "'" {
                        value.append("'")
                        position += 2
                        continue
                    }
                    position += 1
                    return .text(value)
                }
                value.append(text[position])
                position += 1
            }
        }
        let start = position
        if position < text.count, text[position] == "-" || text[position] == "+" { position += 1 }
        while position < text.count, text[position].isNumber || text[position] == "." || text[position] == "e" || text[position] == "E" { position += 1 }
        let number = String(text[start..<position])
        guard Double(number) != nil else { throw fail("expected a literal: a number, 'text', TRUE, FALSE or NULL") }
        return .number(number)
    }
}
