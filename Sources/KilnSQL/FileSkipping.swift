import KilnFrame
import KilnLake
import KilnParquet

/// What of a table's read filter can skip files: its conjuncts (and ORs of them) that compare a plain column of the
/// table with a literal, `IN` lists, `IS [NOT] NULL`, `LIKE 'prefix%'` and semi-join key ranges, as a
/// ``LakePredicate`` checked against each file's partition values and statistics. Anything else is left to the
/// rows (it never skips a file), so the predicate only ever says "cannot match" when no row can.
enum FileSkipping {
    static func predicate(_ filter: Expr?, schema: DeltaSchema) -> LakePredicate? {
        filter.flatMap { translate($0, schema) }
    }

    static let operators: [String: LakePredicate.Op] = ["=": .eq, "==": .eq, "!=": .ne, "<>": .ne, "<": .lt, "<=": .le, ">": .gt, ">=": .ge]
    static let mirrored: [String: LakePredicate.Op] = ["=": .eq, "==": .eq, "!=": .ne, "<>": .ne, "<": .gt, "<=": .ge, ">": .lt, ">=": .le]

    static func translate(_ e: Expr, _ schema: DeltaSchema) -> LakePredicate? {
        switch e {
        case .binary("AND", let a, let b):
            switch (translate(a, schema), translate(b, schema)) {
            case let (x?, y?): return .and(x, y)
            case let (x?, nil): return x
            case let (nil, y?): return y
            default: return nil
            }
        case .binary("OR", let a, let b):
            guard let x = translate(a, schema), let y = translate(b, schema) else { return nil }
            return .or(x, y)
        case .binary(let op, let a, let b) where operators[op] != nil:
            if let (name, type) = column(a, schema), case .literal(let v) = b, let l = literal(v, type) { return .comparison(name, operators[op]!, l) }
            if let (name, type) = column(b, schema), case .literal(let v) = a, let l = literal(v, type) { return .comparison(name, mirrored[op]!, l) }
            return nil
        case .isNull(let a, let negated):
            guard let (name, _) = column(a, schema) else { return nil }
            return .isNull(name, negated: negated)
        case .inList(let a, let items, negated: false):
            guard let (name, type) = column(a, schema) else { return nil }
            var literals: [LakePredicate.Literal] = []
            for item in items {
                guard case .literal(let v) = item, let l = literal(v, type) else { return nil }
                literals.append(l)
            }
            return .inList(name, literals, negated: false)
        case .inKeys(let a, let keys):
            guard let (name, type) = column(a, schema), let bounds = keys.bounds, isInteger(type) else { return nil }
            if keys.count == 0 { return .constant(false) }
            return .and(.comparison(name, .ge, .number(String(bounds.lowerBound))), .comparison(name, .le, .number(String(bounds.upperBound))))
        case .like(let a, .literal(.string(let pattern)), negated: false):
            // `LIKE 'abc%'`: the strings from 'abc' up to (not including) 'abd'; ASCII prefixes only.
            guard let (name, type) = column(a, schema), type == .primitive("string"), pattern.hasSuffix("%") else { return nil }
            let prefix = pattern.dropLast()
            guard !prefix.isEmpty, prefix.utf8.allSatisfy({ $0 < 0x7e && $0 != UInt8(ascii: "%") && $0 != UInt8(ascii: "_") && $0 != UInt8(ascii: "\\") }) else { return nil }
            var upper = Array(prefix.utf8)
            upper[upper.count - 1] += 1
            return .and(.comparison(name, .ge, .text(String(prefix))), .comparison(name, .lt, .text(String(decoding: upper, as: UTF8.self))))
        default:
            return nil
        }
    }

    /// A plain column of the table (qualified or not) and its type; nil for anything else.
    static func column(_ e: Expr, _ schema: DeltaSchema) -> (String, DeltaType)? {
        guard case .column(let reference) = e else { return nil }
        let name = String(reference.split(separator: ".").last ?? Substring(reference))
        guard let field = schema.field(name) else { return nil }
        switch field.type {
        case .primitive, .decimal: return (field.name, field.type)
        default: return nil
        }
    }

    static func isInteger(_ type: DeltaType) -> Bool {
        [.primitive("long"), .primitive("integer"), .primitive("short"), .primitive("byte")].contains(type)
    }

    /// The literal as the statistics compare it, when its kind is the column's (dates and timestamps as their
    /// day / microsecond numbers); nil when SQL would convert one side first, so no file is ever skipped on a
    /// comparison the rows would answer differently.
    static func literal(_ v: Value, _ type: DeltaType) -> LakePredicate.Literal? {
        switch (v, type) {
        case (.int(let n), _) where isInteger(type) || isFloating(type): return .number(String(n))
        case (.double(let d), _) where (isInteger(type) || isFloating(type)) && d.isFinite: return .number("\(d)")
        case (.string(let s), .primitive("string")): return .text(s)
        case (.bool(let b), .primitive("boolean")): return .bool(b)
        case (.date(let days), .primitive("date")): return date(days)
        case (.string(let s), .primitive("date")): return Dates.parseDate(s).flatMap(date)
        case (.timestamp(let micros), .primitive("timestamp")), (.timestamp(let micros), .primitive("timestamp_ntz")): return .number(String(micros))
        default: return nil
        }
    }

    /// A date as `YYYY-MM-DD` text (readable in EXPLAIN), when the statistics' reader reads it back as the same day.
    static func date(_ days: Int64) -> LakePredicate.Literal? {
        let text = Value.date(days).text
        return TextValues.date(text) == days ? .text(text) : nil
    }

    static func isFloating(_ type: DeltaType) -> Bool {
        if case .decimal = type { return true }
        return type == .primitive("double") || type == .primitive("float")
    }
}
