import Foundation
import KilnFrame
import KilnLake

/// The steps a query ran (EXPLAIN ANALYZE) or would run (EXPLAIN): each scan with the filter pushed into it, the
/// part of that filter file statistics can use and the files it kept; joins, filters, aggregates, sorts and
/// projections; with rows and time when the query really ran. Nested queries (subqueries, WITH) are indented.
///
/// The engine decides its plan as it goes (the smaller side of a join is read first, and its keys then filter the
/// larger one), so plain EXPLAIN runs the statement without reading data: every step is planned as for a run, scans
/// keep the files they would read and produce no rows. Values a subquery would compute are not known then (they
/// show as NULL); EXPLAIN ANALYZE shows them.
final class ExecutionTrace: @unchecked Sendable {
    struct Step {
        var depth: Int
        var name: String
        var detail: String
        var rows: Int?
        var milliseconds: Double?
    }

    private let lock = NSLock()
    private var steps: [Step] = []
    private var depth = 0
    /// Whether scans read data (EXPLAIN ANALYZE) or only plan (EXPLAIN).
    let analyze: Bool

    init(analyze: Bool) { self.analyze = analyze }

    func nested<T>(_ body: () throws -> T) rethrows -> T {
        lock.withLock { depth += 1 }
        defer { lock.withLock { depth -= 1 } }
        return try body()
    }

    func record(_ name: String, _ detail: String, rows: Int?, since start: DispatchTime?) {
        let ms = start.map { Double(DispatchTime.now().uptimeNanoseconds - $0.uptimeNanoseconds) / 1e6 }
        lock.withLock { steps.append(Step(depth: depth, name: name, detail: detail, rows: analyze ? rows : nil, milliseconds: analyze ? ms : nil)) }
    }

    /// The steps as a frame: `step` (indented by nesting) and `detail`, plus `rows` and `time_ms` under ANALYZE.
    func frame(total: Double?, resultRows: Int?) -> Frame {
        var steps = lock.withLock { self.steps }
        let top = steps.map(\.depth).min() ?? 0
        for i in steps.indices { steps[i].depth -= top }
        if analyze {
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            steps.append(Step(depth: 0, name: "Total", detail: String(format: "peak memory of the process %.1f MiB", Double(usage.ru_maxrss) / 1024),
                              rows: resultRows, milliseconds: total))
        }
        var columns = [Column.from(steps.map { .string(String(repeating: "  ", count: $0.depth) + $0.name) }, type: .string),
                       Column.from(steps.map { .string($0.detail) }, type: .string)]
        var names = ["step", "detail"]
        if analyze {
            columns.append(Column.from(steps.map { $0.rows.map { .int(Int64($0)) } ?? .null }, type: .int64))
            columns.append(Column.from(steps.map { $0.milliseconds.map { .double(($0 * 100).rounded() / 100) } ?? .null }, type: .float64))
            names += ["rows", "time_ms"]
        }
        return Frame(names: names, columns: columns)
    }
}

extension Execution {
    /// Runs `body` and records it as a step (when tracing), its detail computed only then.
    /// One step of a query: recorded for EXPLAIN, and checked against the statement's memory limit when done.
    func step<T>(_ name: String, _ detail: @autoclosure () -> String, rows: (T) -> Int?, _ body: () throws -> T) throws -> T {
        let start = DispatchTime.now()
        let result = try body()
        cache.trace?.record(name, detail(), rows: rows(result), since: start)
        try cache.memory?.check("the step \(name)")
        return result
    }

    /// `"; N rows in"` for a step's detail when the query really runs (EXPLAIN ANALYZE).
    func rowsIn(_ n: Int) -> String { cache.dryRun ? "" : "; \(n) rows in" }

    /// A join, recorded as a step.
    func joined(_ left: Relation, _ right: Relation, kind: JoinKind, condition: Expr?) throws -> Relation {
        try step("Join", "\(kind) \(condition.map { "on " + SQLText.of($0) } ?? "(every pair)")" + (cache.dryRun ? "" : "; \(left.rowCount) × \(right.rowCount) rows in"),
                 rows: { $0.rowCount }) {
            try Joins.join(left, right, kind: kind, condition: condition)
        }
    }

    /// The EXPLAIN detail of a planned scan.
    static func scanDetail(_ plan: ScanPlan, filter: Expr?, columns: [String]?) -> String {
        var parts: [String] = []
        if let filter { parts.append("filter: " + SQLText.of(filter)) }
        if let predicate = plan.predicate { parts.append("skipping on: " + SQLText.of(predicate)) }
        let total = plan.files.count + plan.skippedFiles
        parts.append("files: \(plan.files.count) of \(total)" + (plan.skippedFiles > 0 ? " (\(plan.skippedFiles) skipped by partition values and statistics)" : ""))
        if let columns { parts.append("columns: " + columns.joined(separator: ", ")) }
        return parts.joined(separator: "; ")
    }
}

/// SQL text of expressions and file-skipping predicates, for EXPLAIN.
enum SQLText {
    static func of(_ e: Expr) -> String {
        switch e {
        case .column(let c): return c.hasPrefix("#") ? "column \(c.dropFirst())" : c
        case .literal(let v): return literal(v)
        case .negate(let a): return "-" + of(a)
        case .not(let a): return "NOT (" + of(a) + ")"
        case .binary(let op, let a, let b): return "(\(of(a)) \(op) \(of(b)))"
        case .call(let f, let args):
            switch f {
            case "__scalar_subquery", "__exists_subquery", "__in_subquery": return "(subquery)"
            default: return "\(f)(\(args.map(of).joined(separator: ", ")))"
            }
        case .caseWhen(let branches, let otherwise):
            return "CASE " + branches.map { "WHEN \(of($0.when)) THEN \(of($0.then))" }.joined(separator: " ") + (otherwise.map { " ELSE " + of($0) } ?? "") + " END"
        case .cast(let a, let type): return "CAST(\(of(a)) AS \(type))"
        case .isNull(let a, let negated): return "\(of(a)) IS \(negated ? "NOT " : "")NULL"
        case .inList(let a, let items, let negated):
            let shown = items.prefix(8).map(of).joined(separator: ", ") + (items.count > 8 ? ", … \(items.count) values" : "")
            return "\(of(a)) \(negated ? "NOT " : "")IN (\(shown))"
        case .like(let a, let pattern, let negated): return "\(of(a)) \(negated ? "NOT " : "")LIKE \(of(pattern))"
        case .interval(let n, let unit): return "INTERVAL \(n) \(unit.uppercased())"
        case .window(let w): return "\(w.function)(\(w.args.map(of).joined(separator: ", "))) OVER (…)"
        case .inKeys(let a, let keys): return "\(of(a)) IN (\(keys.count) keys read from the other side of a join)"
        }
    }

    static func literal(_ v: Value) -> String {
        switch v {
        case .null: return "NULL"
        case .string(let s): return "'" + s.replacingOccurrences(of: "'", with: "''") + "'"
        case .date: return "DATE '\(v.text)'"
        case .timestamp: return "TIMESTAMP '\(v.text)'"
        default: return v.text
        }
    }

    static func of(_ p: LakePredicate) -> String {
        switch p {
        case .comparison(let c, let op, let l): return "\(c) \(op.rawValue) \(literal(l))"
        case .isNull(let c, let negated): return "\(c) IS \(negated ? "NOT " : "")NULL"
        case .inList(let c, let ls, let negated): return "\(c) \(negated ? "NOT " : "")IN (\(ls.map(literal).joined(separator: ", ")))"
        case .column(let c): return c
        case .and(let a, let b): return "(\(of(a)) AND \(of(b)))"
        case .or(let a, let b): return "(\(of(a)) OR \(of(b)))"
        case .not(let a): return "NOT (\(of(a)))"
        case .constant(let b): return b ? "TRUE" : "FALSE"
        }
    }

    static func literal(_ l: LakePredicate.Literal) -> String {
        switch l {
        case .number(let n): return n
        case .text(let t): return "'" + t.replacingOccurrences(of: "'", with: "''") + "'"
        case .bool(let b): return b ? "TRUE" : "FALSE"
        case .null: return "NULL"
        }
    }
}
