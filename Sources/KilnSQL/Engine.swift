import Foundation
import KilnCore
import KilnFrame
import KilnLake
import KilnParquet

/// Runs SQL queries over Delta tables and Parquet files, in memory.
public struct SQLEngine: Sendable {
    public var catalog: Catalog
    /// Values of `:name` parameters.
    public var parameters: [String: Value] = [:]
    /// Tables computed before the statement runs (the `information_schema` views), by lower-cased
    /// `catalog.schema.table`.
    public var virtualTables: [String: Frame] = [:]
    /// Rows a caller hands the statement under a one-part, lower-cased name (a feature table write's upload); they
    /// hide a table of that name in the default schema.
    public var inputs: [String: Frame] = [:]
    /// Whether aggregates over one side of a join are computed before the join (`EagerAggregation.swift`).
    public var eagerAggregation = EagerAggregationMode.auto
    /// Whether the largest table of an inner join streams through a hash index of the others (`StreamedJoin.swift`).
    public var streamedJoins = StreamedJoinMode.auto
    /// How much one statement may grow the process's resident memory (nil: no limit); the environment variable
    /// `KILN_SQL_MEMORY_LIMIT` (e.g. `4GB`) sets it for a process.
    public var memoryLimit: MemoryLimit?
    /// A `KILN_SQL_MEMORY_LIMIT` that is not a size: every statement fails with this, rather than run unlimited.
    private var memoryLimitProblem: KilnError?

    public init(catalog: Catalog, parameters: [String: Value] = [:]) {
        self.catalog = catalog
        self.parameters = parameters
        // A switch for comparing plans (the compatibility suites run half their seeds with `always`).
        if let mode = ProcessInfo.processInfo.environment["KILN_SQL_STREAMED_JOINS"].flatMap(StreamedJoinMode.init(rawValue:)) {
            streamedJoins = mode
        }
        if let text = ProcessInfo.processInfo.environment["KILN_SQL_MEMORY_LIMIT"], !text.isEmpty {
            do { memoryLimit = try MemoryLimit(parsing: text) } catch { memoryLimitProblem = KilnError.invalid("KILN_SQL_MEMORY_LIMIT: \((error as? KilnError)?.message ?? "\(error)")") }
        }
    }

    /// Runs one statement and returns its result. - Throws: `KilnError` (file-format problems become
    /// `INVALID_PARAMETER_VALUE`).
    public func execute(_ sql: String) throws -> Frame {
        do {
            return try run(sql)
        } catch let error as ParquetError {
            throw KilnError.invalid(error.message)
        }
    }

    /// Runs a statement parsed already (by ``Parser/parse(_:functions:)`` with this catalog's resolver).
    public func execute(_ parsed: ParsedStatement) throws -> Frame {
        do {
            return try run(parsed)
        } catch let error as ParquetError {
            throw KilnError.invalid(error.message)
        }
    }

    func run(_ sql: String) throws -> Frame {
        try run(try Parser.parse(sql, functions: catalog.functionResolver))
    }

    func run(_ parsed: ParsedStatement) throws -> Frame {
        if let memoryLimitProblem { throw memoryLimitProblem }
        let (statement, subqueries) = (parsed.statement, parsed.subqueries)
        var run = Execution(engine: self, subqueries: subqueries)
        run.cache = ExecutionCache(memory: memoryLimit?.startingNow())
        switch statement {
        case .query(let q):
            run.needed = Execution.columnsNeeded(q, subqueries: subqueries)
            return try run.query(q, env: [:]).visible()
        case .explain(let q, let analyze):
            let trace = ExecutionTrace(analyze: analyze)
            run.cache = ExecutionCache(trace: trace, memory: run.cache.memory)
            run.needed = Execution.columnsNeeded(q, subqueries: subqueries)
            let start = DispatchTime.now()
            let rows = try run.query(q, env: [:]).rowCount
            let ms = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
            return trace.frame(total: ms, resultRows: rows)
        default:
            return try run.command(statement)
        }
    }
}

/// A frame plus, for each column, the table alias that qualifies it and its visible name.
struct Relation {
    var frame: Frame
    var qualifiers: [String?]
    var names: [String]
    /// Every column of the tables read, including those not read because the query does not mention them (for
    /// error messages).
    var known: [String] = []

    init(frame: Frame, qualifier: String?) {
        self.init(columns: frame.columns, qualifiers: [String?](repeating: qualifier, count: frame.columns.count), names: frame.names)
    }

    init(columns: [Column], qualifiers: [String?], names: [String]) {
        frame = Frame(names: columns.indices.map { "#\($0)" }, columns: columns)
        self.qualifiers = qualifiers
        self.names = names
    }

    var rowCount: Int { frame.rowCount }

    /// The index of a column reference `name` or `alias.name`. - Throws: unknown or ambiguous names.
    func resolve(_ reference: String) throws -> Int? {
        let parts = reference.split(separator: ".", maxSplits: 1).map { $0.lowercased() }
        var found: [Int] = []
        for i in names.indices {
            if parts.count == 2 {
                if qualifiers[i]?.lowercased() == parts[0], names[i].lowercased() == parts[1] { found.append(i) }
            } else if names[i].lowercased() == parts[0] {
                found.append(i)
            }
        }
        if found.count > 1 {
            throw KilnError.invalid("Column '\(reference)' is ambiguous; qualify it with a table name or alias")
        }
        if found.isEmpty, parts.count == 2, names.contains(where: { $0.lowercased() == reference.lowercased() }) {
            return names.firstIndex { $0.lowercased() == reference.lowercased() }
        }
        return found.first
    }

    /// Rewrites column references to this relation's internal names.
    func bind(_ e: Expr) throws -> Expr {
        try e.rewrite { node in
            guard case .column(let name) = node, !name.hasPrefix("#") else { return nil }
            guard let i = try resolve(name) else {
                let all = Set((known.isEmpty ? names : known).filter { !$0.isEmpty && !$0.hasPrefix("#") }).sorted()
                throw KilnError.invalid("Column '\(name)' does not exist" + (all.isEmpty ? "" : "; available: \(all.joined(separator: ", "))"))
            }
            return .column("#\(i)")
        }
    }

    func take(_ rows: [Int]) -> Relation {
        var r = Relation(columns: frame.columns.map { $0.take(rows) }, qualifiers: qualifiers, names: names)
        r.known = known
        return r
    }

    func filter(_ mask: Column) -> Relation {
        let f = frame.filter(mask)
        var r = Relation(columns: f.columns, qualifiers: qualifiers, names: names)
        r.known = known
        return r
    }

    /// The frame with visible names (result sets).
    func visible() -> Frame { Frame(names: names, columns: frame.columns) }
}

/// One table read chunk by chunk for a streaming aggregation.
struct StreamSource: Sendable {
    var table: DeltaTable
    var plan: ScanPlan
    var columns: [String]?
    var filter: Expr?
    var qualifier: String
}

/// What one statement's execution remembers: table snapshots by path and version (one log replay each), and the
/// results of subqueries (run once, whether to inline them or to find out that they stand alone).
final class ExecutionCache: @unchecked Sendable {
    private let lock = NSLock()
    private var snapshots: [String: (DeltaTable, DeltaSnapshot)] = [:]
    private var results: [Int: Relation] = [:]
    private var ctes: [String: Relation] = [:]
    /// The steps recorded for EXPLAIN (nil when not explaining).
    let trace: ExecutionTrace?
    /// Plain EXPLAIN: plan every scan, read nothing.
    var dryRun: Bool { trace.map { !$0.analyze } ?? false }

    /// The statement's memory limit, from its start (nil: none).
    let memory: MemoryLimit?

    init(trace: ExecutionTrace? = nil, memory: MemoryLimit? = nil) {
        self.trace = trace
        self.memory = memory
    }

    /// The WITH queries computed so far, by lower-cased name: what a subquery used as an expression may read (it runs
    /// apart from the query around it).
    var commonTables: [String: Relation] {
        get { lock.withLock { ctes } }
    }

    func define(_ name: String, _ relation: Relation) {
        lock.withLock { ctes[name] = relation }
    }

    /// The table at `path` and its snapshot at `version` (the newest when nil).
    func table(_ path: String, version: Int64?) throws -> (DeltaTable, DeltaSnapshot) {
        let key = path + "@" + (version.map(String.init) ?? "latest")
        if let hit = lock.withLock({ snapshots[key] }) { return hit }
        let table = try DeltaTable.open(path)
        let entry = (table, try table.snapshot(version: version))
        lock.withLock { snapshots[key] = entry }
        return entry
    }

    func result(_ id: Int, _ run: () throws -> Relation) throws -> Relation {
        if let hit = lock.withLock({ results[id] }) { return hit }
        let relation = try run()
        lock.withLock { results[id] = relation }
        return relation
    }
}

struct Execution {
    let engine: SQLEngine
    let subqueries: [Query]
    var cache = ExecutionCache()
    /// Lower-cased column names the query mentions (nil: every column, for `*`).
    var needed: Set<String>?

    // MARK: Queries

    func query(_ q: Query, env: [String: Relation]) throws -> Relation {
        guard let trace = cache.trace else { return try runQuery(q, env: env) }
        return try trace.nested { try runQuery(q, env: env) }
    }

    func runQuery(_ q: Query, env: [String: Relation]) throws -> Relation {
        var env = env
        for (name, cte) in q.ctes {
            let relation = try query(cte, env: env)
            env[name.lowercased()] = relation
            cache.define(name.lowercased(), relation)
        }
        if case .select(let s) = q.body {
            return try select(s, orderBy: q.orderBy, limit: q.limit, offset: q.offset, env: env)
        }
        var result = try setExpr(q.body, env: env)
        if !q.orderBy.isEmpty {
            let keys = try q.orderBy.map { item -> (column: Column, descending: Bool, nullsFirst: Bool?) in
                (try outputColumn(item.expr, result), item.descending, item.nullsFirst)
            }
            result = result.take(Frame.sortOrder(keys, count: result.rowCount))
        }
        return limit(result, q.limit, q.offset)
    }

    func limit(_ r: Relation, _ limit: Int?, _ offset: Int?) -> Relation {
        guard limit != nil || offset != nil else { return r }
        let start = min(offset ?? 0, r.rowCount)
        let end = limit.map { $0 >= r.rowCount - start ? r.rowCount : start + $0 } ?? r.rowCount  // no overflow near Int.max
        return r.take(Array(start..<end))
    }

    /// An ORDER BY item of a set operation: an output name or a 1-based position.
    func outputColumn(_ e: Expr, _ r: Relation) throws -> Column {
        if case .literal(.int(let n)) = e {
            guard n >= 1, n <= r.names.count else { throw KilnError.invalid("ORDER BY position \(n) is not in the select list") }
            return r.frame.columns[Int(n) - 1]
        }
        return try r.bind(e).evaluate(r.frame)
    }

    func setExpr(_ s: SetExpr, env: [String: Relation]) throws -> Relation {
        switch s {
        case .select(let sel): return try select(sel, orderBy: [], limit: nil, offset: nil, env: env)
        case .query(let q): return try query(q, env: env)
        case .values(let rows):
            let one = Frame(names: ["#0"], columns: [Column(type: .int64, values: .int([0]))])
            let cells = try rows.map { row in try row.map { try prepare($0).evaluate(one) } }
            let columns = try (0..<(rows.first?.count ?? 0)).map { c -> Column in
                let parts = cells.map { $0[c] }
                let type = commonType(parts)
                return Column.concatenate(try parts.map { try $0.cast(to: type) })
            }
            return Relation(columns: columns, qualifiers: [String?](repeating: nil, count: columns.count),
                            names: columns.indices.map { "col\($0 + 1)" })
        case .setOperation(let op, let a, let b, let all):
            let left = try setExpr(a, env: env), right = try setExpr(b, env: env)
            guard left.names.count == right.names.count else {
                throw KilnError.invalid("\(op.uppercased()) needs the same number of columns on both sides (\(left.names.count) and \(right.names.count))")
            }
            // Columns meet in a common type.
            var lc: [Column] = [], rc: [Column] = []
            for (x, y) in zip(left.frame.columns, right.frame.columns) {
                let type = commonType([x, y])
                lc.append(try x.cast(to: type))
                rc.append(try y.cast(to: type))
            }
            let names = left.names
            let qualifiers = [String?](repeating: nil, count: names.count)
            switch op {
            case "union":
                let joined = Relation(columns: zip(lc, rc).map { Column.concatenate([$0, $1]) }, qualifiers: qualifiers, names: names)
                return all ? joined : distinct(joined)
            default:
                // INTERSECT / EXCEPT [ALL]: by row identity over both sides.
                let n = left.rowCount
                let both = zip(lc, rc).map { Column.concatenate([$0, $1]) }
                let grouping = Grouping(keys: both, rows: n + right.rowCount)
                var rightCount = [Int: Int]()
                for i in n..<(n + right.rowCount) { rightCount[grouping.groupOf[i], default: 0] += 1 }
                var seen = [Int: Int]()
                var rows: [Int] = []
                for i in 0..<n {
                    let g = grouping.groupOf[i]
                    let used = seen[g, default: 0]
                    let inRight = rightCount[g, default: 0]
                    let keep: Bool
                    if op == "intersect" { keep = all ? used < inRight : (used == 0 && inRight > 0) }
                    else { keep = all ? used >= inRight : (used == 0 && inRight == 0) }
                    seen[g] = used + 1
                    if keep { rows.append(i) }
                }
                return Relation(columns: lc.map { $0.take(rows) }, qualifiers: qualifiers, names: names)
            }
        }
    }

    func distinct(_ r: Relation) -> Relation {
        let grouping = Grouping(keys: r.frame.columns, rows: r.rowCount)
        return grouping.count == r.rowCount ? r : r.take(grouping.firstRow)
    }

    func commonType(_ columns: [Column]) -> FrameType {
        let typed = columns.filter { !$0.allNull || $0.count == 0 }
        return FrameType.common((typed.isEmpty ? columns : typed).map(\.type))
    }

    // MARK: SELECT

    func select(_ s: Select, orderBy: [OrderItem], limit count: Int?, offset: Int?, env: [String: Relation]) throws -> Relation {
        if let (eager, order) = eagerAggregation(s, orderBy: orderBy, env: env) {
            return try select(eager, orderBy: order, limit: count, offset: offset, env: env)
        }
        if let flat = flattenedInnerJoins(s, env: env) {
            return try select(flat, orderBy: orderBy, limit: count, offset: offset, env: env)
        }
        // FROM and WHERE: joins planned with the WHERE conjuncts.
        // Correlated [NOT] EXISTS conjuncts become semi/anti joins once the FROM clause is built; the rest are
        // prepared (parameters and uncorrelated subqueries inlined).
        var correlated: [(id: Int, negated: Bool, match: Expr?)] = []
        var scalarCorrelated: [Expr] = []
        var conjuncts: [Expr] = []
        for conjunct in s.whereClause.map(splitAnd) ?? [] {
            if let (id, negated) = Self.existsCall(conjunct), !isUncorrelated(id) {
                correlated.append((id, negated, nil))
                continue
            }
            if Self.scalarSubqueries(conjunct).contains(where: { !isUncorrelated($0) }) {
                scalarCorrelated.append(conjunct)
                continue
            }
            if case .call("__in_subquery", let args) = conjunct, case .literal(.int(let id)) = args[1], !isUncorrelated(Int(id)) {
                guard case .literal(.bool(false)) = args[2] else {
                    throw KilnError.invalid("A correlated NOT IN subquery is not supported; write it as NOT EXISTS")
                }
                correlated.append((Int(id), false, try prepare(args[0])))
                continue
            }
            conjuncts.append(contentsOf: splitAnd(Self.foldConstants(try prepare(conjunct))).flatMap(factorOr))
        }
        var source: Relation
        var stream: StreamSource?
        var probe: StreamedProbe?
        if s.from.isEmpty {
            source = Relation(columns: [Column(type: .int64, values: .int([0]))], qualifiers: [nil], names: [""])
        } else {
            // Conditions on one catalog table's columns are applied while it is read, chunk by chunk in parallel.
            let pushed = try pushdown(s.from, conjuncts: &conjuncts, env: env)
            if conjuncts.isEmpty, correlated.isEmpty, scalarCorrelated.isEmpty, s.from.count == 1,
               Self.streamable(s, orderBy: orderBy) || Self.streamableTopN(s, orderBy: orderBy, limit: count, offset: offset),
               let found = try streamSource(s.from[0], filter: pushed[0], env: env) {
                stream = found
                source = Relation(frame: try Frame.empty(found.plan.snapshot.schema, columns: found.columns), qualifier: found.qualifier)
                source.known = found.plan.snapshot.schema.fields.map(\.name)
            } else if correlated.isEmpty, scalarCorrelated.isEmpty, Self.streamable(s, orderBy: orderBy),
                      let planned = try streamedProbe(s.from, pushed: pushed, conjuncts: &conjuncts, reads: Self.expressions(s) + orderBy.map(\.expr), env: env) {
                // The largest table streams through a hash index of the others, straight into the aggregate.
                (stream, source, probe) = planned
            } else {
                var items = try readCommaItems(s.from, pushed: pushed, conjuncts: conjuncts, env: env)
                source = try joinCommaItems(&items, conjuncts: &conjuncts)
            }
        }
        if !conjuncts.isEmpty {
            let condition = conjuncts.dropFirst().reduce(conjuncts[0]) { .binary("AND", $0, $1) }
            let input = source
            source = try step("Filter", SQLText.of(condition) + rowsIn(input.rowCount), rows: { $0.rowCount }) {
                input.filter(try input.bind(condition).evaluate(input.frame))
            }
        }
        for (id, negated, match) in correlated { source = try decorrelate(subqueries[id], into: source, negated: negated, match: match, env: env) }
        for conjunct in scalarCorrelated { source = try filterWithScalarSubqueries(conjunct, source, env: env) }
        // Expand * and name the outputs.
        var outputs: [(expr: Expr, name: String)] = []
        for item in s.items {
            switch item {
            case .star(let qualifier):
                for i in source.names.indices where !source.names[i].isEmpty {
                    if let qualifier, source.qualifiers[i]?.lowercased() != qualifier.lowercased() { continue }
                    outputs.append((.column("#\(i)"), source.names[i]))
                }
            case .expr(let e, let alias):
                let prepared = try prepare(e)
                outputs.append((prepared, alias ?? Self.name(of: e)))
            }
        }
        var having = try s.having.map { try prepare($0) }
        var order = try orderBy.map { item -> OrderItem in
            var o = item
            o.expr = try prepare(item.expr)
            return o
        }
        // ORDER BY and GROUP BY may name an output alias or position.
        func substituteOutput(_ e: Expr) -> Expr {
            if case .literal(.int(let n)) = e, n >= 1, n <= outputs.count { return outputs[Int(n) - 1].expr }
            if case .column(let name) = e, !name.contains("."), (try? source.resolve(name)) == nil,
               let match = outputs.first(where: { $0.name.lowercased() == name.lowercased() }) { return match.expr }
            return e
        }
        let groupBy = try s.groupBy.map { try prepare($0) }.map(substituteOutput)
        // In ORDER BY an output's name wins over a column of the same name (as in DuckDB, PostgreSQL and Spark).
        order = order.map { item in
            var o = item
            if case .column(let name) = o.expr, !name.contains("."),
               let match = outputs.first(where: { $0.name.lowercased() == name.lowercased() }) { o.expr = match.expr }
            else { o.expr = substituteOutput(o.expr) }
            return o
        }

        let aggregating = !groupBy.isEmpty || outputs.contains { Self.hasAggregate($0.expr) } || (having.map(Self.hasAggregate) ?? false)
        var frame: Relation
        if aggregating {
            let expressions = outputs.map(\.expr) + (having.map { [$0] } ?? []) + order.map(\.expr)
            let keys = groupBy.isEmpty ? "one group" : "by " + groupBy.map(SQLText.of).joined(separator: ", ")
            let name = stream == nil ? "Aggregate" : probe == nil ? "Aggregate (while scanning)" : "Aggregate (while scanning and joining)"
            let (aggregated, rewrite) = try step(name, keys, rows: { $0.0.rowCount }) {
                try stream.map { try streamingAggregate($0, template: source, groupBy: groupBy, expressions: expressions, probe: probe) }
                    ?? aggregate(source, groupBy: groupBy, expressions: expressions)
            }
            frame = aggregated
            outputs = try outputs.map { (try $0.expr.rewriteTopDown(rewrite), $0.name) }
            having = try having?.rewriteTopDown(rewrite)
            order = try order.map { var o = $0; o.expr = try $0.expr.rewriteTopDown(rewrite); return o }
        } else {
            frame = source
        }
        if let having { frame = frame.filter(try frame.bind(having).evaluate(frame.frame)) }
        // ORDER BY ... LIMIT k (no DISTINCT, no window function in the outputs): pick the k rows by their sort keys
        // first (a bounded heap), then compute the outputs for those rows only.
        if !order.isEmpty, let count, case (let wanted, false) = count.addingReportingOverflow(offset ?? 0), !s.distinct,
           !outputs.contains(where: { Self.hasWindow($0.expr) }) {
            let input = frame
            frame = try step("Top-N", "\(wanted) by " + orderBy.map { SQLText.of($0.expr) + ($0.descending ? " DESC" : "") }.joined(separator: ", ")
                             + rowsIn(input.rowCount), rows: { $0.rowCount }) {
                if let stream, !aggregating { return try topRows(stream, template: input, order: order, wanted: wanted) }
                let keys = try order.map { (try input.bind($0.expr).evaluate(input.frame), $0.descending, $0.nullsFirst) }
                return input.take(Frame.sortOrder(keys, count: input.rowCount, limit: wanted))
            }
            let top = frame
            let picked = try step("Project", outputs.map(\.name).joined(separator: ", "), rows: { $0.first?.count }) {
                try outputs.map { try top.bind($0.expr).evaluate(top.frame) }
            }
            return limit(Relation(columns: picked, qualifiers: [String?](repeating: nil, count: picked.count), names: outputs.map(\.name)), count, offset)
        }
        let projected = frame
        let windows = outputs.contains { Self.hasWindow($0.expr) }
        var columns = try step(windows ? "Project (with window functions)" : "Project", outputs.map(\.name).joined(separator: ", "),
                               rows: { $0.first?.count }) {
            try outputs.map { try projected.bind($0.expr).evaluate(projected.frame) }
        }
        var result = Relation(columns: columns, qualifiers: [String?](repeating: nil, count: columns.count), names: outputs.map(\.name))
        if s.distinct {
            let grouping = try step("Distinct", rowsIn(result.rowCount), rows: { $0.count }) { Grouping(keys: columns, rows: result.rowCount) }
            if !order.isEmpty {
                // Sorting a DISTINCT result may only use its columns.
                for item in order where !outputs.contains(where: { $0.expr == item.expr }) {
                    throw KilnError.invalid("ORDER BY of a SELECT DISTINCT must use selected columns")
                }
            }
            frame = frame.take(grouping.firstRow)
            result = result.take(grouping.firstRow)
            columns = result.frame.columns
        }
        if !order.isEmpty {
            let keys = try order.map { item -> (column: Column, descending: Bool, nullsFirst: Bool?) in
                if let i = outputs.firstIndex(where: { $0.expr == item.expr }) { return (columns[i], item.descending, item.nullsFirst) }
                return (try frame.bind(item.expr).evaluate(frame.frame), item.descending, item.nullsFirst)
            }
            let unsorted = result
            result = try step("Sort", orderBy.map { SQLText.of($0.expr) + ($0.descending ? " DESC" : "") }.joined(separator: ", "), rows: { $0.rowCount }) {
                unsorted.take(Frame.sortOrder(keys, count: unsorted.rowCount))
            }
        }
        return limit(result, count, offset)
    }

    /// Whether a SELECT is a top-N over its one table (ORDER BY ... LIMIT, no grouping, aggregate, window or
    /// DISTINCT): then each chunk keeps its own first rows as it is decoded, and the table is never whole in memory.
    static func streamableTopN(_ s: Select, orderBy: [OrderItem], limit: Int?, offset: Int?) -> Bool {
        guard let limit, !orderBy.isEmpty, !s.distinct, s.groupBy.isEmpty, s.having == nil,
              !limit.addingReportingOverflow(offset ?? 0).overflow, limit + (offset ?? 0) <= 100_000 else { return false }
        for item in s.items {
            if case .expr(let e, _) = item, hasAggregate(e) || hasWindow(e) { return false }
        }
        return !orderBy.contains { hasAggregate($0.expr) || hasWindow($0.expr) }
    }

    /// The first `wanted` rows by `order` of a streamed table: each chunk's own first rows (a bounded heap, in
    /// parallel as chunks are decoded), then the first of those — the same rows, in the same order, as sorting
    /// the whole table (chunks arrive in table order, so ties still break by position).
    func topRows(_ stream: StreamSource, template: Relation, order: [OrderItem], wanted: Int) throws -> Relation {
        let qualifier = stream.qualifier
        @Sendable func first(_ frame: Frame) throws -> Frame {
            let relation = Relation(frame: frame, qualifier: qualifier)
            let keys = try order.map { (try relation.bind($0.expr).evaluate(relation.frame), $0.descending, $0.nullsFirst) }
            return frame.take(Array(Frame.sortOrder(keys, count: frame.rowCount, limit: wanted).prefix(wanted)))
        }
        let parts = try Frame.mapChunks(stream.table, plan: stream.plan, columns: stream.columns, filter: stream.filter, limit: cache.memory) { try first($0) }
        guard !parts.isEmpty else { return template }
        var result = Relation(frame: try first(Frame.concatenate(parts)), qualifier: qualifier)
        result.known = template.known
        return result
    }

    /// Whether a SELECT can aggregate its one table chunk by chunk: it groups or aggregates, every aggregate merges
    /// exactly, and it is not DISTINCT and has no `*`.
    static func streamable(_ s: Select, orderBy: [OrderItem]) -> Bool {
        guard !s.items.contains(where: { if case .star = $0 { return true }; return false }) else { return false }
        let expressions = expressions(s) + orderBy.map(\.expr)
        guard !s.distinct, !s.groupBy.isEmpty || expressions.contains(where: hasAggregate) else { return false }
        var ok = true
        var distinctArgs: [[Expr]] = []
        for e in expressions {
            e.visit { node in
                if case .call(let f, _) = node, (aggregates.contains(f) && !mergeable.contains(f)) || f.hasPrefix("__") { ok = false }
                if case .call(let f, let args) = node, distinctCounts.contains(f), !distinctArgs.contains(args) { distinctArgs.append(args) }
            }
        }
        return ok && distinctArgs.count <= 1 && distinctArgs.allSatisfy { $0.count == 1 }
    }

    /// The select list's expressions, GROUP BY and HAVING.
    static func expressions(_ s: Select) -> [Expr] {
        s.items.compactMap { if case .expr(let e, _) = $0 { return e }; return nil } + s.groupBy + (s.having.map { [$0] } ?? [])
    }

    /// The catalog table a FROM item reads, planned, when it is one.
    func streamSource(_ item: FromItem, filter: Expr?, env: [String: Relation]) throws -> StreamSource? {
        guard let source = deltaTable(item, env: env) else { return nil }
        if source.name != nil, !FileManager.default.fileExists(atPath: source.path + "/_delta_log") { return nil }
        let start = DispatchTime.now()
        let (table, plan, columns) = try planRead(source.path, version: source.version, timestamp: source.timestamp, filter: filter, name: source.name)
        if let trace = cache.trace, trace.analyze {
            trace.record("Scan " + (source.name?.joined(separator: ".") ?? source.path),
                         Self.scanDetail(plan, filter: filter, columns: columns) + "; rows go straight into the next step", rows: nil, since: start)
        }
        return StreamSource(table: table, plan: plan, columns: columns, filter: filter, qualifier: source.qualifier)
    }

    /// A display name for an unaliased select item, as Spark names it.
    static func name(of e: Expr) -> String {
        switch e {
        case .column(let c): return String(c.split(separator: ".").last ?? Substring(c))
        case .literal(let v): return v.text
        case .call(let f, let args):
            if f == "count", args.isEmpty { return "count(1)" }
            if f.hasSuffix("_distinct") { return "\(f.dropLast(9))(DISTINCT \(args.map(name).joined(separator: ", ")))" }
            return "\(f)(\(args.map(name).joined(separator: ", ")))"
        case .binary(let op, let a, let b): return "(\(name(of: a)) \(op) \(name(of: b)))"
        case .cast(let x, let t): return "CAST(\(name(of: x)) AS \(t))"
        case .negate(let x): return "(- \(name(of: x)))"
        case .not(let x): return "(NOT \(name(of: x)))"
        case .window(let w): return "\(w.function)(\(w.args.map(name).joined(separator: ", "))) OVER (...)"
        default: return "expr"
        }
    }

    /// Replaces parameters and uncorrelated subqueries with their values.
    func prepare(_ e: Expr) throws -> Expr {
        try e.rewrite { node in
            guard case .call(let name, let args) = node else { return nil }
            switch name {
            case "current_catalog" where args.isEmpty: return .literal(.string(engine.catalog.defaultCatalog))
            case "current_schema" where args.isEmpty, "current_database" where args.isEmpty:
                return .literal(.string(engine.catalog.defaultSchema))
            case "__parameter":
                guard case .literal(.string(let key))? = args.first else { return nil }
                guard let value = engine.parameters[key] else { throw KilnError.invalid("No value for the parameter :\(key)") }
                return .literal(value)
            case "__scalar_subquery":
                let r = try subquery(args[0])
                guard r.names.count == 1 else { throw KilnError.invalid("A scalar subquery must return one column") }
                guard r.rowCount <= 1 else { throw KilnError.invalid("A scalar subquery returned \(r.rowCount) rows; it must return at most one") }
                return .literal(r.rowCount == 0 ? .null : r.frame.columns[0].value(0))
            case "__exists_subquery":
                return .literal(.bool(try subquery(args[0]).rowCount > 0))
            case "__in_subquery":
                let r = try subquery(args[1])
                guard r.names.count == 1 else { throw KilnError.invalid("An IN subquery must return one column") }
                guard case .literal(.bool(let negated)) = args[2] else { return nil }
                let values = Grouping(keys: [r.frame.columns[0]], rows: r.rowCount).firstRow.map { r.frame.columns[0].value($0) }
                return .inList(args[0], values.map { .literal($0) }, negated: negated)
            default: return nil
            }
        }
    }

    /// Computes once the parts of a condition that read no column (`DATE '1994-01-01' + INTERVAL 1 YEAR`), so they
    /// are not recomputed for every row and file skipping sees a literal. Subqueries, windows and aggregates stay, and
    /// so do results whose literal would not keep their type (NULL, decimals, binary, nested values).
    static func foldConstants(_ e: Expr) -> Expr {
        let one = Frame(names: ["#one"], columns: [Column(type: .int64, values: .int([0]))])
        return e.rewriteTopDown { node in
            switch node {
            case .literal, .column, .interval: return node
            default: break
            }
            guard node.columns.isEmpty else { return nil }
            var foldable = true
            node.visit { inner in
                switch inner {
                case .window, .inKeys: foldable = false
                case .call(let f, _) where f.hasPrefix("__") || aggregates.contains(f): foldable = false
                default: break
                }
            }
            guard foldable, let value = try? node.evaluate(one), value.count == 1, !value.isNull(0),
                  [.bool, .int8, .int16, .int32, .int64, .float64, .string, .date, .timestamp].contains(value.type) else { return nil }
            return .literal(value.value(0))
        }
    }

    /// The ids of the scalar subqueries in an expression.
    static func scalarSubqueries(_ e: Expr) -> [Int] {
        var ids: [Int] = []
        e.visit { if case .call("__scalar_subquery", let args) = $0, case .literal(.int(let id))? = args.first { ids.append(Int(id)) } }
        return ids
    }

    /// Filters `outer` by a condition holding correlated scalar subqueries (`x < (SELECT avg(y) FROM t WHERE t.k =
    /// outer.k)`): each subquery is computed once per correlation key (inner rows grouped by the inner sides of its
    /// equalities), left-joined to the outer rows on the outer sides, and read as a column.
    func filterWithScalarSubqueries(_ conjunct: Expr, _ outer: Relation, env: [String: Relation]) throws -> Relation {
        var current = outer
        let width = outer.names.count
        var replaced = conjunct
        for id in Self.scalarSubqueries(conjunct) {
            let q = subqueries[id]
            guard isUncorrelated(id) == false else { continue }
            guard q.ctes.isEmpty, q.limit == nil, case .select(let inner) = q.body, inner.groupBy.isEmpty, inner.items.count == 1,
                  case .expr(let item, _) = inner.items[0], !inner.from.isEmpty else {
                throw KilnError.invalid("A correlated scalar subquery must be SELECT <aggregate> FROM ... WHERE inner.key = outer.key")
            }
            let run = self  // `needed` covers the subquery's columns too
            // Tables are only read once the conditions are sorted: empty stand-ins with their schemas resolve names
            // the same way (the query mentions every column it reads).
            let scopes = ItemScopes(scopes: inner.from.map { catalogScope($0, env: env) })
            var items = try scopes.complete && !cache.dryRun ? inner.from.map { item -> Relation in
                let table = deltaTable(item, env: env)!
                let (_, snapshot) = try cache.table(table.path, version: table.version)
                return Relation(frame: try Frame.empty(snapshot.schema), qualifier: table.qualifier)
            } : inner.from.map { try run.fromItem($0, env: env) }
            var innerConditions: [Expr] = [], innerKeys: [Expr] = [], outerKeys: [Expr] = []
            for c in try inner.whereClause.map({ try splitAnd(Self.foldConstants(try prepare($0))) }) ?? [] {
                let resolvesInner = { (e: Expr) in !e.columns.isEmpty && e.columns.allSatisfy { name in items.contains { ((try? $0.resolve(name)) ?? nil) != nil } } }
                let resolvesOuter = { (e: Expr) in !e.columns.isEmpty && e.columns.allSatisfy { name in ((try? outer.resolve(name)) ?? nil) != nil } }
                if c.columns.allSatisfy({ name in items.contains { ((try? $0.resolve(name)) ?? nil) != nil } }) {
                    innerConditions.append(c)
                } else if case .binary("=", let l, let r) = c, resolvesInner(l) || resolvesInner(r) {
                    if resolvesInner(l), resolvesOuter(r) { innerKeys.append(l); outerKeys.append(r) }
                    else if resolvesInner(r), resolvesOuter(l) { innerKeys.append(r); outerKeys.append(l) }
                    else { throw KilnError.invalid("A correlated scalar subquery can only link to the outer query by equalities") }
                } else {
                    throw KilnError.invalid("A correlated scalar subquery can only link to the outer query by equalities")
                }
            }
            if scopes.complete, !cache.dryRun {
                // Each table's own conditions go into its scan, and so do the outer rows' integer keys: inner rows
                // no outer row asks for are never read into the groups (TPC-H q20 groups 8k keys, not 910k).
                var pushed = try pushdown(inner.from, conjuncts: &innerConditions, env: env)
                for (innerKey, outerKey) in zip(innerKeys, outerKeys) {
                    guard case .column(let name) = innerKey, let i = scopes.owner(name),
                          let table = deltaTable(inner.from[i], env: env), let (_, snapshot) = try? cache.table(table.path, version: table.version),
                          let plain = name.split(separator: ".").last.map(String.init), let field = snapshot.schema.field(plain),
                          let type = FrameType(delta: field.type), type.isInteger,
                          let column = try? outer.bind(outerKey).evaluate(outer.frame), let member = Self.keyMembership(plain, of: column) else { continue }
                    pushed[i] = pushed[i].map { .binary("AND", $0, member) } ?? member
                }
                items = try inner.from.enumerated().map { i, item in try run.fromItem(item, env: env, filter: pushed[i]) }
            }
            var relation = try run.joinCommaItems(&items, conjuncts: &innerConditions)
            if !innerConditions.isEmpty {
                let condition = innerConditions.dropFirst().reduce(innerConditions[0]) { .binary("AND", $0, $1) }
                relation = relation.filter(try relation.bind(condition).evaluate(relation.frame))
            }
            // One value per key: group the inner rows by the inner key expressions.
            let prepared = try prepare(item)
            let (grouped, rewrite) = try aggregate(relation, groupBy: innerKeys, expressions: [prepared])
            let value = try grouped.bind(try prepared.rewriteTopDown(rewrite)).evaluate(grouped.frame)
            let keyNames = innerKeys.indices.map { "__sq\(id)k\($0)" }
            var perKey = Relation(columns: Array(grouped.frame.columns.prefix(innerKeys.count)) + [value],
                                  qualifiers: [String?](repeating: nil, count: innerKeys.count + 1), names: keyNames + ["__sq\(id)"])
            perKey.known = perKey.names
            let on = zip(outerKeys, keyNames).map { Expr.binary("=", $0, .column($1)) }
            current = try joined(current, perKey, kind: .left, condition: on.dropFirst().reduce(on[0]) { .binary("AND", $0, $1) })
            // An outer row no inner row matches gets the subquery's value over no rows (count(*) is 0, not NULL).
            let (none, noneRewrite) = try aggregate(relation.take([]), groupBy: [], expressions: [prepared])
            let empty = try none.bind(try prepared.rewriteTopDown(noneRewrite)).evaluate(none.frame).value(0)
            if empty != .null, let k = current.names.firstIndex(of: keyNames[0]), let v = current.names.firstIndex(of: "__sq\(id)") {
                let keys = current.frame.columns[k], values = current.frame.columns[v]
                var columns = current.frame.columns
                columns[v] = Column.from((0..<current.rowCount).map { keys.isNull($0) ? empty : values.value($0) }, type: values.type)
                var filled = Relation(columns: columns, qualifiers: current.qualifiers, names: current.names)
                filled.known = current.known
                current = filled
            }
            replaced = replaced.rewriteTopDown { node in
                if case .call("__scalar_subquery", let args) = node, case .literal(.int(Int64(id)))? = args.first { return .column("__sq\(id)") }
                return nil
            }
        }
        let filtered = current.filter(try current.bind(try prepare(replaced)).evaluate(current.frame))
        // Drop the helper columns again.
        var out = Relation(columns: Array(filtered.frame.columns.prefix(width)), qualifiers: Array(filtered.qualifiers.prefix(width)),
                           names: Array(filtered.names.prefix(width)))
        out.known = outer.known
        return out
    }

    /// `EXISTS (...)` or `NOT EXISTS (...)` as a conjunct: its subquery id.
    static func existsCall(_ e: Expr) -> (Int, Bool)? {
        switch e {
        case .call("__exists_subquery", let args): if case .literal(.int(let id))? = args.first { return (Int(id), false) }
        case .not(.call("__exists_subquery", let args)): if case .literal(.int(let id))? = args.first { return (Int(id), true) }
        default: break
        }
        return nil
    }

    /// A FROM item that is a catalog table (not a CTE, not a path): its alias and lower-cased column names.
    func catalogScope(_ item: FromItem, env: [String: Relation]) -> (alias: String, columns: Set<String>)? {
        guard let table = deltaTable(item, env: env), let (_, snapshot) = try? cache.table(table.path, version: table.version) else { return nil }
        return (table.qualifier.lowercased(), Set(snapshot.schema.fields.map { $0.name.lowercased() }))
    }

    /// The Delta table a FROM item reads, when it is one: a catalog table (`name` set) or `delta.\`path\`` (`name`
    /// nil). Nil for CTEs, inputs, Parquet paths and views. Both are planned, filtered and streamed the same way.
    func deltaTable(_ item: FromItem, env: [String: Relation]) -> (path: String, name: [String]?, qualifier: String, version: Int64?, timestamp: String?)? {
        guard case .table(let parts, let alias, let version, let timestamp) = item, !(parts.count == 1 && env[parts[0].lowercased()] != nil) else { return nil }
        if parts.count == 2, parts[0].lowercased() == "delta" { return (parts[1], nil, alias ?? "delta", version, timestamp) }
        guard !(parts.count == 2 && parts[0].lowercased() == "parquet"), let path = try? engine.catalog.path(parts) else { return nil }
        return (path, parts, alias ?? parts.last!, version, timestamp)
    }

    /// Whether a subquery runs on its own (it names no column of an enclosing query). A plain SELECT over catalog
    /// tables is checked against their schemas without reading them; anything else is tried (and the result kept).
    func isUncorrelated(_ id: Int) -> Bool {
        let q = subqueries[id]
        if q.ctes.isEmpty, case .select(let inner) = q.body {
            var scopes: [(alias: String, columns: Set<String>)] = []
            for item in inner.from {
                guard let scope = catalogScope(item, env: [:]) else { return (try? subquery(.literal(.int(Int64(id))))) != nil }
                scopes.append(scope)
            }
            var names = Set<String>()
            for e in (inner.whereClause.map { [$0] } ?? []) + inner.items.compactMap({ if case .expr(let e, _) = $0 { return e }; return nil }) {
                names.formUnion(e.columns)
            }
            return names.allSatisfy { name in
                let parts = name.split(separator: ".").map(String.init)
                if parts.count == 2 { return scopes.contains { $0.alias == parts[0] && $0.columns.contains(parts[1]) } }
                return scopes.contains { $0.columns.contains(name) }
            }
        }
        return (try? subquery(.literal(.int(Int64(id))))) != nil
    }

    /// A correlated `[NOT] EXISTS (SELECT ... FROM inner WHERE inner-conditions AND conditions-on-outer-columns)` as a
    /// semi (anti) join of `outer` with the inner rows, on the conditions that mention outer columns.
    /// With `match` (a correlated `match IN (SELECT item ...)`), the join also needs `match = item`.
    func decorrelate(_ q: Query, into outer: Relation, negated: Bool, match: Expr? = nil, env: [String: Relation]) throws -> Relation {
        guard q.ctes.isEmpty, q.limit == nil, case .select(let inner) = q.body, inner.groupBy.isEmpty, inner.having == nil, !inner.from.isEmpty,
              !inner.items.contains(where: { if case .expr(let e, _) = $0 { return Self.hasAggregate(e) }; return false }) else {
            throw KilnError.invalid("Correlated subqueries are supported as [NOT] EXISTS over a plain SELECT ... FROM ... WHERE (no GROUP BY, aggregates or LIMIT)")
        }
        // The inner tables are read with the statement's column set (`needed` covers every subquery's columns).
        let run = self
        // Conditions that only read the inner tables filter them (pushed into their scans when they are catalog
        // tables, so only matching rows are decoded); the rest connect them to the outer row.
        var innerConditions: [Expr] = [], linking: [Expr] = []
        let conjuncts = try inner.whereClause.map({ try splitAnd(try prepare($0)) }) ?? []
        let scopes = inner.from.map { catalogScope($0, env: env) }
        var items: [Relation]
        if !scopes.contains(where: { $0 == nil }) {
            func isInner(_ name: String) -> Bool {
                let parts = name.lowercased().split(separator: ".").map(String.init)
                if parts.count == 2 { return scopes.contains { $0!.alias == parts[0] && $0!.columns.contains(parts[1]) } }
                return scopes.contains { $0!.columns.contains(parts[0]) }
            }
            for conjunct in conjuncts {
                if !conjunct.columns.isEmpty, conjunct.columns.allSatisfy(isInner) { innerConditions.append(conjunct) } else { linking.append(conjunct) }
            }
            let pushed = try run.pushdown(inner.from, conjuncts: &innerConditions, env: env)
            items = try run.readCommaItems(inner.from, pushed: pushed, conjuncts: innerConditions, env: env)
        } else {
            items = try inner.from.map { try run.fromItem($0, env: env) }
            for conjunct in conjuncts {
                let innerOnly = conjunct.columns.allSatisfy { name in items.contains { ((try? $0.resolve(name)) ?? nil) != nil } }
                    && !conjunct.columns.contains { name in ((try? outer.resolve(name)) ?? nil) != nil && !items.contains { ((try? $0.resolve(name)) ?? nil) != nil } }
                if innerOnly { innerConditions.append(conjunct) } else { linking.append(conjunct) }
            }
        }
        var relation = try run.joinCommaItems(&items, conjuncts: &innerConditions)
        if !innerConditions.isEmpty {
            let condition = innerConditions.dropFirst().reduce(innerConditions[0]) { .binary("AND", $0, $1) }
            relation = relation.filter(try relation.bind(condition).evaluate(relation.frame))
        }
        if let match {
            guard inner.items.count == 1, case .expr(let item, _) = inner.items[0] else { throw KilnError.invalid("An IN subquery must select one column") }
            linking.append(.binary("=", match, try prepare(item)))
        }
        let condition = linking.isEmpty ? nil : linking.dropFirst().reduce(linking[0]) { .binary("AND", $0, $1) }
        return try joined(outer, relation, kind: negated ? .anti : .semi, condition: condition)
    }

    func subquery(_ id: Expr) throws -> Relation {
        guard case .literal(.int(let i)) = id else { throw KilnError.invalid("Bad subquery") }
        do {
            return try cache.result(Int(i)) { try query(subqueries[Int(i)], env: cache.commonTables) }
        } catch let error as KilnError where error.message.contains("does not exist") {
            throw KilnError.invalid("\(error.message) (correlated subqueries are not supported yet)")
        }
    }

    /// `(a AND b) OR (a AND c)` as `a` and `b OR c` (TPC-H q19's join key sits in every branch of an OR): the
    /// conjuncts every branch shares become conjuncts of their own, so joins and pushdown can use them. Exact in
    /// three-valued logic; an OR left with an empty branch is dropped (it held whenever the shared part did).
    func factorOr(_ e: Expr) -> [Expr] {
        func branches(_ e: Expr) -> [Expr] {
            if case .binary("OR", let a, let b) = e { return branches(a) + branches(b) }
            return [e]
        }
        let ors = branches(e)
        guard ors.count > 1 else { return [e] }
        let parts = ors.map(splitAnd)
        let shared = parts[0].enumerated().filter { i, c in
            parts[0][..<i].firstIndex(of: c) == nil && parts.dropFirst().allSatisfy { $0.contains(c) }
        }.map(\.element)
        guard !shared.isEmpty else { return [e] }
        let rest = parts.map { $0.filter { !shared.contains($0) } }
        if rest.contains(where: \.isEmpty) { return shared }
        let and = { (cs: [Expr]) in cs.dropFirst().reduce(cs[0]) { Expr.binary("AND", $0, $1) } }
        return shared + [rest.dropFirst().reduce(and(rest[0])) { .binary("OR", $0, and($1)) }]
    }

    func splitAnd(_ e: Expr) -> [Expr] { e.conjuncts }

    // MARK: Aggregation

    static let aggregates: Set<String> = ["count", "sum", "avg", "mean", "min", "max", "count_distinct", "sum_distinct", "avg_distinct",
                                          "stddev", "stddev_samp", "stddev_pop", "std", "variance", "var_samp", "var_pop", "first",
                                          "first_value", "last", "last_value", "any_value", "approx_count_distinct", "bool_and",
                                          "bool_or", "every", "some", "max_by", "min_by", "count_if", "median", "percentile",
                                          "approx_percentile", "percentile_approx"]

    static func hasWindow(_ e: Expr) -> Bool {
        var found = false
        e.visit { if case .window = $0 { found = true } }
        return found
    }

    static func hasAggregate(_ e: Expr) -> Bool {
        var found = false
        e.visit { if case .call(let f, _) = $0, aggregates.contains(f) { found = true } }
        return found
    }

    /// Groups `source` by `groupBy`, computes every aggregate in `expressions`; returns the grouped relation (keys
    /// then aggregates) and a rewrite that maps group keys and aggregates to its columns.
    func aggregate(_ source: Relation, groupBy: [Expr], expressions: [Expr]) throws -> (Relation, (Expr) throws -> Expr?) {
        let bound = try groupBy.map { try source.bind($0) }
        let keys = try bound.map { try $0.evaluate(source.frame) }
        let grouping = Grouping(keys: keys, rows: source.rowCount)
        let calls = try Self.aggregateCalls(expressions)
        let groups = groupBy.isEmpty ? 1 : grouping.count
        var columns = keys.map { $0.take(grouping.firstRow) }
        for call in calls {
            guard case .call(let f, let args) = call else { continue }
            let inputs = try args.map { try source.bind($0).evaluate(source.frame) }
            columns.append(try Aggregates.compute(f, inputs, groupOf: grouping.groupOf, groups: groups, rows: source.rowCount))
        }
        return (Self.grouped(columns, keys: groupBy.count, calls: calls.count), Self.rewrite(source, bound: bound, calls: calls))
    }

    /// The distinct aggregate calls of the expressions, in order of appearance. - Throws: for nested aggregates.
    static func aggregateCalls(_ expressions: [Expr]) throws -> [Expr] {
        var calls: [Expr] = []
        for e in expressions {
            e.visit { node in
                if case .call(let f, _) = node, aggregates.contains(f), !calls.contains(node) { calls.append(node) }
            }
        }
        for call in calls {
            guard case .call(_, let args) = call else { continue }
            for arg in args where hasAggregate(arg) { throw KilnError.invalid("Aggregate functions cannot be nested: \(name(of: call))") }
        }
        return calls
    }

    static func grouped(_ columns: [Column], keys: Int, calls: Int) -> Relation {
        let names = (0..<keys).map { "#g\($0)" } + (0..<calls).map { "#a\($0)" }
        return Relation(columns: columns, qualifiers: [String?](repeating: nil, count: columns.count), names: names)
    }

    /// Maps group keys and aggregate calls to the grouped relation's columns. Keys match by their bound form, so
    /// `t.x` and `x` are the same key.
    static func rewrite(_ source: Relation, bound: [Expr], calls: [Expr]) -> (Expr) throws -> Expr? {
        { node in
            if let i = calls.firstIndex(of: node) { return .column("#\(bound.count + i)") }
            if case .literal = node { return nil }
            if let boundNode = try? source.bind(node), let i = bound.firstIndex(of: boundNode) { return .column("#\(i)") }
            if case .column(let name) = node, !name.hasPrefix("#") {
                throw KilnError.invalid("Column '\(name)' must appear in GROUP BY or inside an aggregate function")
            }
            return nil
        }
    }

    /// Aggregates whose partial results per row group merge exactly.
    static let mergeable: Set<String> = ["count", "count_if", "sum", "avg", "mean", "min", "max", "count_distinct", "approx_count_distinct"]
    /// Distinct counts: streamed when every one counts the same single argument (it becomes a key of the partials).
    static let distinctCounts: Set<String> = ["count_distinct", "approx_count_distinct"]

    /// GROUP BY over one table without materializing it: each row group (filtered as it is read) is grouped and
    /// partially aggregated in parallel, then the partial results are grouped again and merged
    /// (counts and sums add up, averages are sums over counts, min of mins, max of maxes).
    /// With a `probe`, each chunk is first joined to the other tables of the FROM clause (`template` is then the
    /// joined shape).
    func streamingAggregate(_ stream: StreamSource, template: Relation, groupBy: [Expr], expressions: [Expr],
                            probe: StreamedProbe? = nil) throws -> (Relation, (Expr) throws -> Expr?) {
        let bound = try groupBy.map { try template.bind($0) }
        let calls = try Self.aggregateCalls(expressions)
        let boundArgs = try calls.map { call -> (String, [Expr]) in
            guard case .call(let f, let args) = call else { return ("", []) }
            return (f, try args.map { try template.bind($0) })
        }
        // Partial functions of each call; calls sharing a partial (sum(v) and avg(v) both need sum(v) and count(v))
        // compute it once.
        func partials(_ f: String) -> [String] {
            switch f {
            case "sum", "avg", "mean": return ["sum", "count"]
            default: return [f]
            }
        }
        struct PartialKey: Equatable { let function: String, args: [Expr] }
        var slots: [PartialKey] = []
        let callSlots = boundArgs.map { f, args in
            Self.distinctCounts.contains(f) ? [] : partials(f).map { p -> Int in
                let key = PartialKey(function: p, args: args)
                if let i = slots.firstIndex(of: key) { return i }
                slots.append(key)
                return slots.count - 1
            }
        }
        let partialSlots = slots
        // COUNT(DISTINCT x) (one x for every such call): x joins the keys of the partial groups, and the merge counts
        // the distinct non-null x of each group's partial rows (the other partials add up over them as before).
        let distinctArg = boundArgs.first { Self.distinctCounts.contains($0.0) }.map { $0.1[0] }
        let partialKeys = bound + (distinctArg.map { [$0] } ?? [])
        /// One chunk's partial aggregates. With a mask that keeps most rows, rows that fail it go to an extra group
        /// that is dropped (no copy of the chunk); a selective mask filters first.
        @Sendable func partial(_ chunk: Frame, _ mask: Column?) throws -> Frame {
            var frame = Frame(names: chunk.names.indices.map { "#\($0)" }, columns: chunk.columns)
            var restrict: Column?
            if let mask, case .bool(let bits) = mask.values {
                let passing = mask.validity.map { v in zip(bits, v).reduce(0) { $0 + ($1.0 && $1.1 ? 1 : 0) } } ?? bits.reduce(0) { $0 + ($1 ? 1 : 0) }
                if passing * 2 < frame.rowCount || passing == 0 { frame = frame.filter(mask) } else if passing < frame.rowCount { restrict = mask }
            }
            // No GROUP BY and only counts and sums: skip the rows a mask that keeps most of them drops as they are
            // summed (no copy, no per-row groups).
            if partialKeys.isEmpty, partialSlots.allSatisfy({ ["count", "sum"].contains($0.function) }) {
                var keep: [Bool]?
                if let restrict, case .bool(let bits) = restrict.values {
                    keep = restrict.validity.map { valid in zip(bits, valid).map { $0 && $1 } } ?? bits
                }
                var columns: [Column] = []
                for slot in partialSlots {
                    let values = try slot.args.map { try $0.evaluate(frame) }
                    guard let column = Aggregates.ungrouped(slot.function, values, keep: keep, rows: frame.rowCount) else { break }
                    columns.append(column)
                }
                if columns.count == partialSlots.count { return Frame(names: columns.indices.map { "p\($0)" }, columns: columns) }
            }
            let keys = try partialKeys.map { try $0.evaluate(frame) }
            var grouping = Grouping(keys: keys, rows: frame.rowCount)
            if let restrict {
                if partialKeys.isEmpty { grouping = Grouping(keys: [], rows: frame.rowCount); grouping.firstRow = [0] }
                grouping.restrict(to: restrict)
                if partialKeys.isEmpty { grouping.firstRow = [0] }  // the one global group, even if nothing passes
            }
            let kept = partialKeys.isEmpty ? 1 : grouping.count
            let groups = restrict == nil ? kept : kept + 1  // plus the dropped rows' group
            let firstRows = grouping.firstRow
            var columns = keys.map { $0.take(firstRows) }
            var inputs: [(args: [Expr], values: [Column])] = []
            var countAll: Column?  // count(x) of a column without nulls is count(*)
            for slot in partialSlots {
                let values = try inputs.first { $0.args == slot.args }?.values ?? slot.args.map { try $0.evaluate(frame) }
                inputs.append((slot.args, values))
                let plainCount = slot.function == "count" && values.allSatisfy { $0.validity == nil }
                var column = try plainCount && countAll != nil ? countAll!
                    : Aggregates.compute(slot.function, plainCount ? [] : values, groupOf: grouping.groupOf, groups: groups, rows: frame.rowCount)
                if plainCount { countAll = column }
                if groups > kept { column = column.take(Array(0..<kept)) }
                columns.append(column)
            }
            return Frame(names: columns.indices.map { "p\($0)" }, columns: columns)
        }
        var parts = try Frame.mapChunks(stream.table, plan: stream.plan, columns: stream.columns, filter: stream.filter, limit: cache.memory) { chunk, mask in
            guard let probe else { return try partial(chunk, mask) }
            let (joined, residualMask) = try probe.join(chunk, mask)
            return try partial(joined, residualMask)
        }
        if parts.isEmpty || (partialKeys.isEmpty && parts.allSatisfy { $0.rowCount == 0 }) { parts = [try partial(template.visible(), nil)] }
        // Zero-row partials still carry the column types (a grouped or distinct partial of nothing).
        let all = Frame.concatenate(parts.contains { $0.rowCount > 0 } ? parts.filter { $0.rowCount > 0 } : [parts[0]])
        let keys = Array(all.columns.prefix(groupBy.count))
        let grouping = Grouping(keys: keys, rows: all.rowCount)
        let groups = groupBy.isEmpty ? 1 : grouping.count
        var columns = keys.map { $0.take(grouping.firstRow) }
        // Each partial merges once (counts and sums add up, min of mins, max of maxes).
        let merged = try partialSlots.enumerated().map { i, slot in
            var column = try Aggregates.compute(["count", "count_if", "sum"].contains(slot.function) ? "sum" : slot.function,
                                                [all.columns[partialKeys.count + i]], groupOf: grouping.groupOf, groups: groups, rows: all.rowCount)
            // A count over no partial rows (nothing passed a distinct count's filter) is 0, not NULL.
            if ["count", "count_if"].contains(slot.function), column.validity != nil, case .int(let counts) = column.values {
                column = Column(type: column.type, values: .int(zip(counts, column.validity!).map { $1 ? $0 : 0 }))
            }
            return column
        }
        for ((f, _), slot) in zip(boundArgs, callSlots) {
            switch f {
            case "count_distinct", "approx_count_distinct":
                columns.append(try Aggregates.compute("count_distinct", [all.columns[groupBy.count]], groupOf: grouping.groupOf, groups: groups, rows: all.rowCount))
            case "avg", "mean":
                let sums = merged[slot[0]], counts = merged[slot[1]]
                guard case .int(let n) = counts.values else { throw KilnError(.internalError, "Bad partial counts") }
                let totals = try sums.cast(to: .float64)
                guard case .double(let t) = totals.values else { throw KilnError(.internalError, "Bad partial sums") }
                var type = FrameType.float64
                if case .decimal(_, let scale) = sums.type { type = .decimal(precision: 38, scale: scale + 4) }
                columns.append(Column(type: type, values: .double(zip(t, n).map { $1 > 0 ? $0 / Double($1) : 0 }), validity: n.map { $0 > 0 }))
            default: columns.append(merged[slot[0]])
            }
        }
        return (Self.grouped(columns, keys: groupBy.count, calls: calls.count), Self.rewrite(template, bound: bound, calls: calls))
    }

    // MARK: FROM

    /// For each FROM item that is a catalog table, the WHERE conjuncts that only read its columns (unqualified names
    /// must belong to no other item); they are removed from `conjuncts`. Items that are not plain tables take none,
    /// and their presence makes unqualified names unsafe to push.
    func pushdown(_ items: [FromItem], conjuncts: inout [Expr], env: [String: Relation]) throws -> [Expr?] {
        let schemas = items.map { catalogScope($0, env: env) }
        let everyItemKnown = !schemas.contains { $0 == nil }
        var out = [Expr?](repeating: nil, count: items.count)
        conjuncts.removeAll { conjunct in
            var hasSubquery = false
            conjunct.visit { if case .call(let f, _) = $0, f.hasPrefix("__") { hasSubquery = true } }
            let columns = conjunct.columns
            guard !hasSubquery, !columns.isEmpty else { return false }
            for (i, schema) in schemas.enumerated() {
                guard let schema else { continue }
                let mine = columns.allSatisfy { name in
                    let parts = name.split(separator: ".").map(String.init)
                    if parts.count == 2 { return parts[0] == schema.alias && schema.columns.contains(parts[1]) }
                    guard everyItemKnown, schema.columns.contains(name) else { return false }
                    return !schemas.enumerated().contains { k, other in k != i && other!.columns.contains(name) }
                }
                guard mine else { continue }
                // Read with plain column names: drop the qualifier.
                let plain = conjunct.rewriteTopDown { node in
                    if case .column(let name) = node, let dot = name.firstIndex(of: ".") { return .column(String(name[name.index(after: dot)...])) }
                    return nil
                }
                out[i] = out[i].map { .binary("AND", $0, plain) } ?? plain
                return true
            }
            return false
        }
        // An OR over several tables still implies, for each table that every branch constrains, the OR of those
        // constraints (TPC-H q7: `(n1.n_name = 'FRANCE' AND n2.n_name = 'GERMANY') OR (n1... 'GERMANY' AND n2...)`
        // reads only two nations on each side). The OR itself stays to be checked on the joined rows.
        for conjunct in conjuncts {
            guard case .binary("OR", _, _) = conjunct else { continue }
            var hasSubquery = false
            conjunct.visit { if case .call(let f, _) = $0, f.hasPrefix("__") { hasSubquery = true } }
            guard !hasSubquery else { continue }
            func branches(_ e: Expr) -> [Expr] {
                if case .binary("OR", let a, let b) = e { return branches(a) + branches(b) }
                return [e]
            }
            func owner(_ e: Expr) -> Int? {
                let columns = e.columns
                guard !columns.isEmpty else { return nil }
                return schemas.indices.first { i in
                    guard let schema = schemas[i] else { return false }
                    return columns.allSatisfy { name in
                        let parts = name.split(separator: ".").map(String.init)
                        if parts.count == 2 { return parts[0] == schema.alias && schema.columns.contains(parts[1]) }
                        guard everyItemKnown, schema.columns.contains(name) else { return false }
                        return !schemas.enumerated().contains { k, other in k != i && other!.columns.contains(name) }
                    }
                }
            }
            let parts = branches(conjunct).map { splitAnd($0).map { ($0, owner($0)) } }
            for i in schemas.indices where schemas[i] != nil {
                let mine = parts.map { branch in branch.filter { $0.1 == i }.map(\.0) }
                guard !mine.contains(where: \.isEmpty) else { continue }
                let and = { (cs: [Expr]) in cs.dropFirst().reduce(cs[0]) { Expr.binary("AND", $0, $1) } }
                let implied = mine.dropFirst().reduce(and(mine[0])) { .binary("OR", $0, and($1)) }.rewriteTopDown { node in
                    if case .column(let name) = node, let dot = name.firstIndex(of: ".") { return .column(String(name[name.index(after: dot)...])) }
                    return nil
                }
                out[i] = out[i].map { .binary("AND", $0, implied) } ?? implied
            }
        }
        return out
    }

    func fromItem(_ item: FromItem, env: [String: Relation], filter: Expr? = nil) throws -> Relation {
        switch item {
        case .table(let parts, let alias, let version, let timestamp):
            let qualifier = alias ?? parts.last!
            if parts.count == 1, version == nil, let cte = env[parts[0].lowercased()] {
                var r = cte
                r.qualifiers = [String?](repeating: qualifier, count: r.names.count)
                return r
            }
            if parts.count == 1, version == nil, timestamp == nil, let frame = engine.inputs[parts[0].lowercased()] {
                return Relation(frame: frame, qualifier: qualifier)
            }
            if parts.count == 2, ["delta", "parquet"].contains(parts[0].lowercased()) {
                let path = parts[1]
                if parts[0].lowercased() == "parquet" { return Relation(frame: try readParquet(path), qualifier: alias ?? "parquet") }
                var relation = Relation(frame: try readDelta(path, version: version, timestamp: timestamp, filter: filter), qualifier: alias ?? "delta")
                relation.known = (try? cache.table(path, version: version))?.1.schema.fields.map(\.name) ?? []
                return relation
            }
            if let n = try? engine.catalog.tableName(parts), n.schema.lowercased() == "information_schema" {
                guard let frame = engine.virtualTables["\(n.catalog).\(n.schema).\(n.table)".lowercased()] else {
                    throw KilnError.notFound("\(n.catalog).information_schema.\(n.table) is not a view Kiln has (catalogs, schemata, tables, columns, table_privileges, schema_privileges, volumes, routines), or this SQL runs without a server: use kiln sql --url")
                }
                return Relation(frame: frame, qualifier: qualifier)
            }
            let path = try engine.catalog.path(parts)
            guard FileManager.default.fileExists(atPath: path + "/_delta_log") else {
                throw KilnError.notFound("Table \(parts.joined(separator: ".")) does not exist")
            }
            var relation = Relation(frame: try readDelta(path, version: version, timestamp: timestamp, filter: filter, name: parts), qualifier: qualifier)
            relation.known = (try? cache.table(path, version: version))?.1.schema.fields.map(\.name) ?? []
            return relation
        case .subquery(let q, let alias):
            var r = try query(q, env: env)
            r.qualifiers = [String?](repeating: alias, count: r.names.count)
            return r
        case .function(let name, let args, let named, let alias):
            switch name {
            case "read_files":
                guard case .literal(.string(let path))? = args.first else { throw KilnError.invalid("read_files needs a path: read_files('/data/x.parquet')") }
                var format: String?
                if case .literal(.string(let f))? = named["format"] { format = f.lowercased() }
                var options: [String: String] = [:]
                for (key, value) in named where key != "format" {
                    guard case .literal(let v) = value else { throw KilnError.invalid("read_files option \(key) must be a literal") }
                    options[key] = v.text
                }
                return Relation(frame: try readFiles(path, format: format, csv: try CSVOptions(options)), qualifier: alias ?? "read_files")
            case "table_changes":
                guard case .literal(.string(let name))? = args.first, args.count >= 2, case .literal(let from) = args[1], let start = from.int else {
                    throw KilnError.invalid("table_changes takes a table name and a start version: table_changes('sales', 2[, 5])")
                }
                var end: Int64?
                if args.count > 2, case .literal(let to) = args[2] { end = to.int }
                let path = try engine.catalog.path(name.split(separator: ".").map(String.init))
                guard FileManager.default.fileExists(atPath: path + "/_delta_log") else { throw KilnError.notFound("Table \(name) does not exist") }
                let table = try DeltaTable.open(path)
                let fields = try table.snapshot(version: end).schema.fields
                let types = fields.map { FrameType(delta: $0.type) }
                let flat = fields.indices.filter { types[$0] != nil }
                var cells = [[Value]](repeating: [], count: flat.count + 3)
                try table.changes(from: start, to: end) { change in
                    for (k, i) in flat.enumerated() { cells[k].append(Value(cell: change.cells[i], type: types[i]!)) }
                    cells[flat.count].append(.string(change.changeType))
                    cells[flat.count + 1].append(.int(change.version))
                    cells[flat.count + 2].append(.timestamp(change.timestamp * 1000))
                    return true
                }
                let columns = flat.enumerated().map { k, i in Column.from(cells[k], type: types[i]!) }
                    + [Column.from(cells[flat.count], type: .string), Column.from(cells[flat.count + 1], type: .int64),
                       Column.from(cells[flat.count + 2], type: .timestamp)]
                let names = flat.map { fields[$0].name } + ["_change_type", "_commit_version", "_commit_timestamp"]
                return Relation(frame: Frame(names: names, columns: columns), qualifier: alias ?? "table_changes")
            case "range":
                let bounds = try args.map { arg -> Int64 in
                    guard case .literal(let v) = arg, let n = v.int else { throw KilnError.invalid("range takes integers") }
                    return n
                }
                guard !bounds.isEmpty else { throw KilnError.invalid("range needs an end") }
                let start = bounds.count > 1 ? bounds[0] : 0, end = bounds.count > 1 ? bounds[1] : bounds[0]
                let step = bounds.count > 2 ? bounds[2] : 1
                guard step != 0, (end - start) / step < 100_000_000 else { throw KilnError.invalid("range is empty-stepped or too large") }
                let values = Array(stride(from: start, to: end, by: Int(step)))
                return Relation(frame: Frame(names: ["id"], columns: [Column(type: .int64, values: .int(values))]), qualifier: alias ?? "range")
            default:
                throw KilnError.invalid("Unknown table function \(name)")
            }
        case .join(let a, let b, let kind, let on, let using):
            let left = try fromItem(a, env: env), right = try fromItem(b, env: env)
            var condition = try on.map { try prepare($0) }
            if !using.isEmpty {
                condition = using.map { name -> Expr in
                    .binary("=", .column("\(left.qualifiers.first.flatMap { $0 } ?? "").\(name)"), .column("\(right.qualifiers.first.flatMap { $0 } ?? "").\(name)"))
                }.reduce(nil) { acc, e in acc.map { .binary("AND", $0, e) } ?? e }
            }
            return try joined(left, right, kind: kind, condition: condition)
        }
    }

    func readDelta(_ path: String, version: Int64?, timestamp: String?, filter: Expr? = nil, name: [String]? = nil) throws -> Frame {
        let start = DispatchTime.now()
        let (table, plan, columns) = try planRead(path, version: version, timestamp: timestamp, filter: filter, name: name)
        if cache.dryRun { return try Frame.empty(plan.snapshot.schema, columns: columns) }
        let frame = try Frame.read(table, plan: plan, columns: columns, filter: filter, limit: cache.memory)
        cache.trace?.record("Scan " + (name?.joined(separator: ".") ?? path), Self.scanDetail(plan, filter: filter, columns: columns),
                            rows: frame.rowCount, since: start)
        return frame
    }

    /// Opens and plans a table read at a version or time, skipping the files `filter` cannot match
    /// (``FileSkipping``), and picks the columns the query needs (nil: all; when it needs none, as for count(*), the
    /// first, for the row count). The scan is noted for EXPLAIN under `name`.
    func planRead(_ path: String, version: Int64?, timestamp: String?, filter: Expr? = nil, name: [String]? = nil) throws -> (DeltaTable, ScanPlan, [String]?) {
        var target = version
        if let timestamp {
            guard let micros = Dates.parseTimestamp(timestamp) else { throw KilnError.invalid("Cannot read the timestamp '\(timestamp)'") }
            target = try DeltaTable.open(path).log.version(at: micros / 1000)
        }
        let (table, snapshot) = try cache.table(path, version: target)
        var plan = try table.plan(snapshot, predicate: FileSkipping.predicate(filter, schema: snapshot.schema))
        var columns = needed.map { set in plan.snapshot.schema.fields.map(\.name).filter { set.contains($0.lowercased()) } }
        if columns?.isEmpty == true, let first = plan.snapshot.schema.fields.first(where: { FrameType(delta: $0.type) != nil }) {
            columns = [first.name]
        }
        if cache.dryRun {
            cache.trace?.record("Scan " + (name?.joined(separator: ".") ?? path), Self.scanDetail(plan, filter: filter, columns: columns), rows: nil, since: nil)
            plan.files = []  // EXPLAIN reads nothing
        }
        return (table, plan, columns)
    }

    /// A file, or every file of a directory (of `format`), as one frame: CSV and JSON typed by inference, flat
    /// columns only; files with different columns meet by name (missing ones null).
    func readFiles(_ given: String, format: String?, csv: CSVOptions = CSVOptions()) throws -> Frame {
        let path = given.hasPrefix("/Volumes/") ? try engine.catalog.volumePath(given).local : given
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw KilnError.notFound("No file or directory at \(path)") }
        var files = [path]
        if isDirectory.boolValue {
            files = try DeltaTable.dataFiles(in: path, format: format).map { path + "/" + $0 }
        }
        var frames: [Frame] = []
        for file in files {
            var input = try InputSource(path: file, batchRows: nil, csv: csv)
            input.adapt(overrides: [:], rescue: csv.mode == .permissive)
            try input.batches { schema, columns in
                var names: [String] = [], out: [Column] = []
                for node in schema.root.children {
                    guard node.isLeaf, let leaf = node.leafIndex else { continue }
                    let descriptor = schema.columns[leaf]
                    names.append(node.name)
                    out.append(try Column(parquet: columns[leaf], descriptor: descriptor, type: FrameType(parquetLeaf: descriptor.element)))
                }
                frames.append(Frame(names: names, columns: out))
            }
        }
        guard var result = frames.first else { throw KilnError.notFound("No \(format ?? "data") files under \(path)") }
        for frame in frames.dropFirst() {
            // Align by name: add missing columns as nulls on either side.
            for (name, column) in zip(frame.names, frame.columns) where result.index(of: name) == nil {
                result.names.append(name)
                result.columns.append(Column.nulls(column.type, count: result.rowCount))
            }
            let aligned = try result.names.map { name -> Column in
                guard let i = frame.index(of: name) else { return Column.nulls(try result.column(name).type, count: frame.rowCount) }
                return frame.columns[i]
            }
            result = try result.union(Frame(names: result.names, columns: aligned))
        }
        return result
    }

    func readParquet(_ path: String) throws -> Frame {
        guard FileManager.default.fileExists(atPath: path) else { throw KilnError.notFound("No file at \(path)") }
        let all = try Frame.read(parquet: path)
        guard let needed else { return all }
        var keep = all.names.indices.filter { needed.contains(all.names[$0].lowercased()) }
        if keep.isEmpty, !all.names.isEmpty { keep = [0] }
        return Frame(names: keep.map { all.names[$0] }, columns: keep.map { all.columns[$0] })
    }

    /// Reads comma-separated FROM items with their pushed filters. Catalog tables are read smallest first, and an
    /// equality `a.x = b.y` between a table already read and a larger one still to read adds `y IN (the x values)`
    /// to the larger one's read filter (semi-join reduction): an inner join keeps no other rows, and the big side
    /// then drops them chunk by chunk as it is decoded instead of after it is materialized.
    func readCommaItems(_ from: [FromItem], pushed: [Expr?], conjuncts: [Expr], env: [String: Relation]) throws -> [Relation] {
        var filters = pushed
        let scopes = from.map { catalogScope($0, env: env) }
        guard from.count > 1, !scopes.contains(where: { $0 == nil }) else {
            return try from.enumerated().map { i, item in try fromItem(item, env: env, filter: filters[i]) }
        }
        let sizes = from.map { item -> Int64 in
            guard case .table(let parts, _, let version, _) = item, let path = try? engine.catalog.path(parts),
                  let (_, snapshot) = try? cache.table(path, version: version) else { return .max }
            return snapshot.numRecords ?? .max
        }
        /// The item a column belongs to (qualified by alias, or unqualified and in exactly one item) and its plain name.
        func owner(_ name: String) -> (Int, String)? {
            let parts = name.lowercased().split(separator: ".").map(String.init)
            if parts.count == 2 {
                guard let i = scopes.firstIndex(where: { $0!.alias == parts[0] && $0!.columns.contains(parts[1]) }) else { return nil }
                return (i, parts[1])
            }
            let holders = scopes.indices.filter { scopes[$0]!.columns.contains(parts[0]) }
            return holders.count == 1 ? (holders[0], parts[0]) : nil
        }
        var edges: [(a: Int, x: String, b: Int, y: String)] = []
        for c in conjuncts {
            guard case .binary("=", .column(let l), .column(let r)) = c, let (i, x) = owner(l), let (j, y) = owner(r), i != j else { continue }
            edges.append((i, x, j, y))
            edges.append((j, y, i, x))
        }
        var out = [Relation?](repeating: nil, count: from.count)
        for i in from.indices.sorted(by: { sizes[$0] < sizes[$1] }) {
            let relation = try fromItem(from[i], env: env, filter: filters[i])
            out[i] = relation
            for edge in edges where edge.a == i && out[edge.b] == nil && sizes[edge.b] > 4 * Int64(relation.rowCount) && !cache.dryRun {
                // Integer keys on both sides (a cast could change which values are equal otherwise).
                guard let index = try relation.resolve(edge.x),
                      case .table(let parts, _, let version, _) = from[edge.b], let path = try? engine.catalog.path(parts),
                      let (_, snapshot) = try? cache.table(path, version: version),
                      let field = snapshot.schema.field(edge.y), let type = FrameType(delta: field.type), type.isInteger,
                      let member = Self.keyMembership(edge.y, of: relation.frame.columns[index]) else { continue }
                filters[edge.b] = filters[edge.b].map { .binary("AND", $0, member) } ?? member
            }
        }
        return out.map { $0! }
    }

    /// `name IN (the column's non-null values)` for an integer column: the keys one side of a join holds, as a
    /// filter the other side applies while it is read (and a key range for file skipping). Integers on both sides
    /// only: a cast could change which values are equal otherwise.
    static func keyMembership(_ name: String, of column: Column) -> Expr? {
        guard column.type.isInteger, case .int(let values) = column.values else { return nil }
        let present = column.validity.map { valid in values.indices.filter { valid[$0] }.map { values[$0] } } ?? values
        return .inKeys(.column(name), KeySet(present))
    }

    /// Joins comma-separated FROM items: equality conjuncts between them become hash joins (smallest first), the
    /// conjuncts that touch one item filter it first; what is left stays in `conjuncts` for the WHERE filter.
    func joinCommaItems(_ items: inout [Relation], conjuncts: inout [Expr]) throws -> Relation {
        // Push single-item conjuncts down.
        for i in items.indices {
            var mine: [Expr] = []
            conjuncts.removeAll { c in
                guard items.count > 1 || true, let bound = try? items[i].bind(c), Self.bindsOnly(c, items: items, index: i) else { return false }
                mine.append(bound)
                return true
            }
            if !mine.isEmpty {
                let condition = mine.dropFirst().reduce(mine[0]) { .binary("AND", $0, $1) }
                items[i] = items[i].filter(try condition.evaluate(items[i].frame))
            }
        }
        // Which FROM item each column of the result comes from: the result's columns go back to FROM order at the
        // end (`SELECT *` lists them as written, whatever order the joins ran in).
        var origins = items.enumerated().map { i, item in [Int](repeating: i, count: item.names.count) }
        var current = items.removeFirst()
        var origin = origins.removeFirst()
        while !items.isEmpty {
            // The next item: one connected to the current result by an equality, else the first (a cross join).
            var pick = 0
            var joinConds: [Expr] = []
            search: for (k, candidate) in items.enumerated() {
                for c in conjuncts where Self.connects(c, current, candidate) {
                    pick = k
                    break search
                }
            }
            let next = items.remove(at: pick)
            origin += origins.remove(at: pick)
            conjuncts.removeAll { c in
                guard Self.connects(c, current, next) || Self.spans(c, current, next) else { return false }
                joinConds.append(c)
                return true
            }
            let condition = joinConds.isEmpty ? nil : joinConds.dropFirst().reduce(joinConds[0]) { .binary("AND", $0, $1) }
            current = try joined(current, next, kind: condition == nil ? .cross : .inner, condition: condition)
        }
        let order = origin.indices.sorted { (origin[$0], $0) < (origin[$1], $1) }
        guard order != Array(origin.indices) else { return current }
        var ordered = Relation(columns: order.map { current.frame.columns[$0] }, qualifiers: order.map { current.qualifiers[$0] },
                               names: order.map { current.names[$0] })
        ordered.known = current.known
        return ordered
    }

    /// Whether every column of `e` resolves in item `index` and in no other item.
    static func bindsOnly(_ e: Expr, items: [Relation], index: Int) -> Bool {
        let columns = e.columns
        guard !columns.isEmpty else { return false }
        for name in columns {
            guard (try? items[index].resolve(name)) ?? nil != nil else { return false }
            for (k, other) in items.enumerated() where k != index {
                if (try? other.resolve(name)) ?? nil != nil { return false }
            }
        }
        return true
    }

    /// `a.x = b.y` with one side in each relation.
    static func connects(_ e: Expr, _ a: Relation, _ b: Relation) -> Bool {
        guard case .binary("=", let l, let r) = e else { return false }
        func side(_ x: Expr, _ rel: Relation) -> Bool {
            let cols = x.columns
            return !cols.isEmpty && cols.allSatisfy { ((try? rel.resolve($0)) ?? nil) != nil }
        }
        return (side(l, a) && side(r, b)) || (side(l, b) && side(r, a))
    }

    /// Whether `e` needs both relations (and nothing else).
    static func spans(_ e: Expr, _ a: Relation, _ b: Relation) -> Bool {
        let cols = e.columns
        guard !cols.isEmpty else { return false }
        var inA = false, inB = false
        for c in cols {
            let x = ((try? a.resolve(c)) ?? nil) != nil, y = ((try? b.resolve(c)) ?? nil) != nil
            guard x || y else { return false }
            inA = inA || x
            inB = inB || y
        }
        return inA && inB
    }

    // MARK: Column pruning

    /// The lower-cased last parts of every column name a query mentions; nil when some SELECT uses `*` (except the
    /// top SELECT of an `EXISTS (SELECT * ...)`, whose columns nothing reads).
    static func columnsNeeded(_ q: Query, subqueries: [Query]) -> Set<String>? {
        var names = Set<String>()
        var star = false
        var existsIDs = Set<Int>()
        func expr(_ e: Expr) {
            for c in e.columns { names.insert(String(c.split(separator: ".").last ?? Substring(c))) }
            e.visit { node in
                if case .call("__exists_subquery", let args) = node, case .literal(.int(let id))? = args.first { existsIDs.insert(Int(id)) }
            }
        }
        func from(_ f: FromItem) {
            switch f {
            case .table: break
            case .subquery(let q, _): query(q)
            case .join(let a, let b, _, let on, let using):
                from(a); from(b)
                on.map(expr)
                using.forEach { names.insert($0.lowercased()) }
            case .function(_, let args, let named, _): args.forEach(expr); named.values.forEach(expr)
            }
        }
        func set(_ s: SetExpr) {
            switch s {
            case .select(let sel):
                for item in sel.items {
                    switch item {
                    case .star: star = true
                    case .expr(let e, _): expr(e)
                    }
                }
                sel.from.forEach(from)
                sel.whereClause.map(expr)
                sel.groupBy.forEach(expr)
                sel.having.map(expr)
            case .query(let q): query(q)
            case .values(let rows): rows.joined().forEach(expr)
            case .setOperation(_, let a, let b, _): set(a); set(b)
            }
        }
        func query(_ q: Query) {
            q.ctes.forEach { query($0.query) }
            set(q.body)
            q.orderBy.forEach { expr($0.expr) }
        }
        query(q)
        subqueries.forEach(query)
        guard star else { return names }
        // Again, with the stars of EXISTS subqueries' own SELECT lists left out.
        star = false
        query(q)
        for (id, sub) in subqueries.enumerated() {
            guard existsIDs.contains(id), case .select(var inner) = sub.body else { query(sub); continue }
            inner.items = inner.items.filter { if case .star = $0 { return false }; return true }
            var trimmed = sub
            trimmed.body = .select(inner)
            query(trimmed)
        }
        return star ? nil : names
    }
}
