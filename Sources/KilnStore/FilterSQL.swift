import KilnCore
import SQLKit

/// Turns search-filter clauses into SQL conditions, the same way for every service and backend:
/// LIKE is case-sensitive, ILIKE is not, values are always bound.
public enum FilterSQL {
    public static func stringValue(_ clause: FilterClause) throws -> String {
        switch clause.value {
        case .string(let s): return s
        case .number(_, let text): return text
        default: throw KilnError.invalid("Invalid filter string: expected a quoted string value for '\(clause.key)' at position \(clause.position)")
        }
    }

    public static func numberValue(_ clause: FilterClause) throws -> Double {
        switch clause.value {
        case .number(let n, _): return n
        case .string(let s):
            if let n = Double(s) { return n }
            fallthrough
        default:
            throw KilnError.invalid("Invalid filter string: expected a numeric value for '\(clause.key)' at position \(clause.position)")
        }
    }

    public static func listValue(_ clause: FilterClause) -> [String] {
        if case .list(let items) = clause.value { return items }
        return []
    }

    /// `column OP value` for a string comparison; LIKE is case-sensitive, ILIKE is not, on every backend.
    public static func stringComparison(_ column: String, _ clause: FilterClause) throws -> SQLQueryString {
        var q = SQLQueryString("")
        switch clause.op {
        case .equal, .notEqual:
            q.appendLiteral("\(column) \(clause.op.rawValue) ")
            q.appendInterpolation(bind: try stringValue(clause))
        case .like:
            q.appendLiteral("\(column) LIKE ")
            q.appendInterpolation(bind: try stringValue(clause))
        case .ilike:
            q.appendLiteral("LOWER(\(column)) LIKE LOWER(")
            q.appendInterpolation(bind: try stringValue(clause))
            q.appendLiteral(")")
        case .in, .notIn:
            let items = listValue(clause)
            guard !items.isEmpty else {
                return clause.op == .in ? "1 = 0" : "1 = 1"
            }
            q.appendLiteral("\(column) \(clause.op == .in ? "IN" : "NOT IN") (")
            q.appendInterpolation(binds: items)
            q.appendLiteral(")")
        default:
            throw KilnError.invalid("Invalid comparator '\(clause.op.rawValue)' for '\(clause.key)' at position \(clause.position); use =, !=, LIKE, ILIKE, IN or NOT IN")
        }
        return q
    }

    public static func numberComparison(_ column: String, _ clause: FilterClause) throws -> SQLQueryString {
        guard clause.op.isComparison else {
            throw KilnError.invalid("Invalid comparator '\(clause.op.rawValue)' for numeric key '\(clause.key)' at position \(clause.position); use =, !=, <, <=, > or >=")
        }
        var q = SQLQueryString("\(column) \(clause.op.rawValue) ")
        q.appendInterpolation(bind: try numberValue(clause))
        return q
    }


    /// Renders `order_by` entries (`name DESC`) as `col ASC, col2 DESC, ` using `columns` (accepted key → column).
    /// - Throws: `INVALID_PARAMETER_VALUE` naming the accepted keys for anything else.
    public static func orderBy(_ entries: [String], columns: [String: String]) throws -> String {
        var sql = ""
        for raw in entries where !raw.allSatisfy(\.isWhitespace) {
            let order = try OrderClause.parse(raw)
            guard order.entity == .attribute, let column = columns[order.key.lowercased()] else {
                throw KilnError.invalid("Invalid order_by key '\(order.key)'; use \(columns.keys.sorted().joined(separator: ", "))")
            }
            sql += "\(column) \(order.ascending ? "ASC" : "DESC"), "
        }
        return sql
    }

    /// The condition for `<entity>.<key> <op> <value>` over a key/value table (params, tags), aliased `t`;
    /// `owner` ties its rows to the outer row, e.g. `t.run_uuid = r.run_uuid`.
    ///
    /// `IS NULL` / `IS NOT NULL` test whether the key exists. `!=` follows MLflow's run search (the key must exist
    /// with another value) unless `notEqualIncludesMissing`, as the registry needs for the client's own
    /// ``tags.`mlflow.prompt.is_prompt` != 'true'`` filter.
    public static func keyValueCondition(_ clause: FilterClause, table: String, owner: String,
                                         notEqualIncludesMissing: Bool = false) throws -> SQLQueryString {
        var q = SQLQueryString("")
        func keyExists(negated: Bool) {
            q.appendLiteral("\(negated ? "NOT " : "")EXISTS (SELECT 1 FROM \(table) t WHERE \(owner) AND t.key = ")
            q.appendInterpolation(bind: clause.key)
        }
        switch clause.op {
        case .isNull, .isNotNull:
            keyExists(negated: clause.op == .isNull)
        case .notEqual where notEqualIncludesMissing:
            keyExists(negated: true)
            q.appendLiteral(" AND t.value = ")
            q.appendInterpolation(bind: try stringValue(clause))
        default:
            keyExists(negated: false)
            q.appendLiteral(" AND ")
            q += try stringComparison("t.value", clause)
        }
        q.appendLiteral(")")
        return q
    }
}
