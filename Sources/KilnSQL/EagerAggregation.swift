import Foundation
import KilnCore
import KilnFrame

/// Aggregation pushed below a join (eager aggregation): in
/// `SELECT d.name, count(*), sum(f.v) FROM facts f JOIN dim d ON f.k = d.k GROUP BY d.name`, every aggregate reads
/// only `facts` and every group key only `dim`, so `facts` is first grouped by its join key (`count(*)`, `sum(v)` per
/// `k`, streamed and in parallel as it is read) and only those few rows are joined and grouped again: counts add up,
/// sums of sums, min of mins, max of maxes, averages as sums over counts. The answer is the same for any inner
/// equi-join (a dimension row matching several partial rows, or a partial row matching several dimension rows,
/// counts each pair once, as the plain join does); floating-point sums may differ in the last bits, as any change
/// of summation order does.
/// When to push aggregates below a join (``SQLEngine/eagerAggregation``).
public enum EagerAggregationMode: Sendable {
    /// When the aggregated table has at least 8 times the rows of the other (Delta statistics).
    case auto
    case always
    case never
}

extension Execution {
    /// The rewritten SELECT and ORDER BY, or nil when the statement does not have the shape (or is not worth it).
    func eagerAggregation(_ s: Select, orderBy: [OrderItem], env: [String: Relation]) -> (Select, [OrderItem])? {
        guard engine.eagerAggregation != .never, !s.distinct, s.from.count == 1,
              case .join(let left, let right, .inner, let on?, let using) = s.from[0], using.isEmpty,
              let leftScope = catalogScope(left, env: env), let rightScope = catalogScope(right, env: env),
              leftScope.alias != rightScope.alias else { return nil }
        let scopes = ItemScopes(scopes: [leftScope, rightScope])
        /// Which side (0 left, 1 right) a column reference belongs to; nil when unknown or ambiguous.
        let side = scopes.owner
        /// The sides an expression reads; nil with a reference of no single side, a subquery or a window.
        let sides = scopes.owners
        // The join condition: equalities of a column of each side.
        var keys: [(Expr, Expr)] = []
        for conjunct in splitAnd(on) {
            guard case .binary("=", let a, let b) = conjunct, case .column(let ca) = a, case .column(let cb) = b,
                  let sa = side(ca), let sb = side(cb), sa != sb else { return nil }
            keys.append(sa == 0 ? (a, b) : (b, a))
        }
        // The aggregated side: the one every aggregate argument reads.
        let expressions = s.items.compactMap { if case .expr(let e, _) = $0 { return e }; return nil } + (s.having.map { [$0] } ?? [])
            + orderBy.map(\.expr)
        guard s.items.allSatisfy({ if case .expr = $0 { return true }; return false }) else { return nil }
        var calls: [Expr] = []
        for e in expressions {
            e.visit { node in if case .call(let f, _) = node, Self.aggregates.contains(f), !calls.contains(node) { calls.append(node) } }
        }
        guard !calls.isEmpty else { return nil }
        var aggregated: Int?
        for call in calls {
            guard case .call(let f, let args) = call, ["count", "sum", "min", "max", "avg", "mean"].contains(f), args.count <= 1,
                  f == "count" || args.count == 1 else { return nil }
            guard let used = sides(call) else { return nil }
            if used.count > 1 { return nil }
            if let only = used.first {
                if aggregated == nil { aggregated = only } else if aggregated != only { return nil }
            }
        }
        let fact = aggregated ?? 0, other = 1 - fact
        // Everything outside the aggregates reads only the other side (group keys, outputs, HAVING, ORDER BY).
        func outsideAggregates(_ e: Expr) -> Expr {
            e.rewriteTopDown { node in
                if case .call(let f, _) = node, Self.aggregates.contains(f) { return .literal(.null) }
                return nil
            }
        }
        // HAVING and ORDER BY may name an output by its alias.
        let aliases = Set(s.items.compactMap { if case .expr(_, let a?) = $0 { return a.lowercased() }; return nil })
        func withoutAliases(_ e: Expr) -> Expr {
            e.rewriteTopDown { node in
                if case .column(let c) = node, aliases.contains(c.lowercased()) { return .literal(.null) }
                return nil
            }
        }
        let outputs = s.items.compactMap { if case .expr(let e, _) = $0 { return e }; return nil }
        for e in outputs + s.groupBy + (s.having.map { [withoutAliases($0)] } ?? []) + orderBy.map({ withoutAliases($0.expr) }) {
            guard let used = sides(outsideAggregates(e)), used.isSubset(of: [other]) else { return nil }
        }
        var factWhere: [Expr] = [], otherWhere: [Expr] = []
        for conjunct in s.whereClause.map(splitAnd) ?? [] {
            guard let used = sides(conjunct), used.count <= 1 else { return nil }
            if used == [fact] { factWhere.append(conjunct) } else { otherWhere.append(conjunct) }
        }
        let factItem = fact == 0 ? left : right, otherItem = fact == 0 ? right : left
        if engine.eagerAggregation == .auto {
            guard let factRows = rowCount(factItem), let otherRows = rowCount(otherItem), factRows >= 8 * max(otherRows, 1) else { return nil }
        }
        // The partial aggregation of the fact side, grouped by its join keys.
        let alias = "__eager"
        var inner = Select()
        inner.from = [factItem]
        inner.whereClause = factWhere.isEmpty ? nil : factWhere.dropFirst().reduce(factWhere[0]) { .binary("AND", $0, $1) }
        inner.groupBy = keys.map { fact == 0 ? $0.0 : $0.1 }
        inner.items = inner.groupBy.enumerated().map { .expr($0.element, alias: "__k\($0.offset)") }
        var replacement: [(Expr, Expr)] = []
        func partial(_ call: Expr) -> Expr {
            let name = "__p\(inner.items.count)"
            inner.items.append(.expr(call, alias: name))
            return .column("\(alias).\(name)")
        }
        for call in calls {
            guard case .call(let f, let args) = call else { continue }
            switch f {
            case "count": replacement.append((call, .call("coalesce", [.call("sum", [partial(call)]), .literal(.int(0))])))
            case "sum", "min", "max": replacement.append((call, .call(f, [partial(call)])))
            default:  // avg, mean
                let sum = partial(.call("sum", args)), count = partial(.call("count", args))
                replacement.append((call, .binary("/", .cast(.call("sum", [sum]), .float64), .call("sum", [count]))))
            }
        }
        func replaced(_ e: Expr) -> Expr { e.rewriteTopDown { node in replacement.first { $0.0 == node }?.1 } }
        let joinKeys = keys.enumerated().map { i, pair -> Expr in .binary("=", .column("\(alias).__k\(i)"), fact == 0 ? pair.1 : pair.0) }
        var outer = s
        outer.from = [.join(.subquery(Query(body: .select(inner)), alias: alias), otherItem, kind: .inner,
                            on: joinKeys.dropFirst().reduce(joinKeys[0]) { .binary("AND", $0, $1) }, using: [])]
        outer.whereClause = otherWhere.isEmpty ? nil : otherWhere.dropFirst().reduce(otherWhere[0]) { .binary("AND", $0, $1) }
        outer.items = s.items.map { item in
            guard case .expr(let e, let name) = item else { return item }
            // An unnamed output keeps the name the original expression gives it.
            return .expr(replaced(e), alias: name ?? Self.name(of: e))
        }
        outer.having = s.having.map(replaced)
        let order = orderBy.map { item -> OrderItem in
            var o = item
            o.expr = replaced(item.expr)
            return o
        }
        return (outer, order)
    }

    /// Rows of a catalog table from its Delta statistics; nil when they are not known.
    func rowCount(_ item: FromItem) -> Int64? {
        guard case .table(let parts, _, let version, _) = item, let path = try? engine.catalog.path(parts),
              let (_, snapshot) = try? cache.table(path, version: version) else { return nil }
        return snapshot.numRecords
    }
}
