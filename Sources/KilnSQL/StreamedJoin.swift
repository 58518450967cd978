import Foundation
import KilnCore
import KilnFrame

/// When a join's largest table streams through a hash index of the others (``SQLEngine/streamedJoins``; the
/// environment variable `KILN_SQL_STREAMED_JOINS` = `auto`, `always` or `never` sets it for a process).
public enum StreamedJoinMode: String, Sendable {
    /// When the largest table has at least 2^18 rows and twice the rows of any other (Delta statistics).
    case auto
    case always
    case never
}

/// The FROM items of a SELECT as scopes: which item a column reference belongs to.
struct ItemScopes {
    /// Per item: its alias and lower-cased column names (nil when it is not a catalog or Delta table).
    let scopes: [(alias: String, columns: Set<String>)?]

    /// Whether every item is a table with a known schema, under an alias no other item uses.
    var complete: Bool {
        let known = scopes.compactMap { $0 }
        return known.count == scopes.count && Set(known.map(\.alias)).count == known.count
    }

    /// The item a reference (`alias.column` or a column only one item has) belongs to; nil when unknown or ambiguous.
    func owner(_ reference: String) -> Int? {
        let lower = reference.lowercased()
        let dot = lower.lastIndex(of: ".")
        let qualifier = dot.map { String(lower[..<$0]) }, column = dot.map { String(lower[lower.index(after: $0)...]) } ?? lower
        let holders = scopes.indices.filter { i in
            guard let scope = scopes[i] else { return false }
            return scope.columns.contains(column) && (qualifier == nil || scope.alias == qualifier)
        }
        return holders.count == 1 ? holders[0] : nil
    }

    /// The items an expression reads; nil when a reference has no single owner, or it holds a subquery or window.
    func owners(_ e: Expr) -> Set<Int>? {
        var out = Set<Int>(), unknown = false
        e.visit { node in
            switch node {
            case .column(let c): if let i = owner(c) { out.insert(i) } else { unknown = true }
            case .call(let f, _) where f.hasPrefix("__"): unknown = true
            case .window: unknown = true
            default: break
            }
        }
        return unknown ? nil : out
    }
}

/// The probe half of a join whose largest table is read chunk by chunk: the other tables, joined and filtered,
/// indexed on their join keys; each chunk of the large table finds its matches there and goes, joined, into
/// the next step (a partial aggregate), so the large table and the joined rows are never whole in memory.
struct StreamedProbe: Sendable {
    /// The joined other tables: only the columns the query reads.
    let build: [Column]
    let index: JoinIndex
    /// The large table's key expressions, bound to its chunks (`#i` = its i-th column).
    let keys: [Expr]
    /// Conditions over both sides that are not key equalities, bound to the joined chunk.
    let residual: Expr?

    /// One chunk of the large table (with the mask of its own filter) joined to the build side, with the
    /// residual condition's mask.
    func join(_ chunk: Frame, _ mask: Column?) throws -> (Frame, Column?) {
        var frame = Frame(names: chunk.names.indices.map { "#\($0)" }, columns: chunk.columns)
        // Plain key columns probe the whole chunk and the mask drops rows as they probe (the gather below copies
        // only matched rows, once); key expressions only see rows that pass (they may fail on the others).
        var keep = mask
        if let mask, !keys.allSatisfy({ if case .column = $0 { return true } else { return false } }) {
            frame = frame.filter(mask)
            keep = nil
        }
        let keyColumns = try keys.map { try $0.evaluate(frame) }
        let (left, right) = try index.pairs(keyColumns, rows: frame.rowCount, keep: keep)
        let columns = (Joins.isIdentity(left, frame.rowCount) ? frame.columns : frame.columns.map { $0.take(left) })
            + build.map { $0.take(right) }
        let joined = Frame(names: columns.indices.map { "#\($0)" }, columns: columns)
        return (joined, try residual.map { try $0.evaluate(joined) })
    }
}

extension Execution {
    /// `A JOIN B ON c1 JOIN C ON c2` (inner joins of tables) as `FROM A, B, C WHERE c1 AND c2 AND ...`: the
    /// comma-item planner then joins small tables first, pushes each table's conditions into its scan, narrows a
    /// large table by the keys of a small one and may stream the largest. Nil for any other shape, or when a name
    /// in an ON condition could mean another column once every table is in scope.
    func flattenedInnerJoins(_ s: Select, env: [String: Relation]) -> Select? {
        guard s.from.count == 1, case .join = s.from[0] else { return nil }
        var leaves: [FromItem] = [], conditions: [Expr] = []
        func walk(_ item: FromItem) -> Bool {
            switch item {
            case .join(let a, let b, let kind, let on, let using):
                guard kind == .inner || kind == .cross, using.isEmpty, walk(a), walk(b) else { return false }
                if let on { conditions.append(on) }
                return true
            case .table:
                leaves.append(item)
                return true
            default:
                return false
            }
        }
        guard walk(s.from[0]) else { return nil }
        let scopes = ItemScopes(scopes: leaves.map { catalogScope($0, env: env) })
        guard scopes.complete, conditions.allSatisfy({ scopes.owners($0) != nil }) else { return nil }
        var flat = s
        flat.from = leaves
        let all = conditions + (s.whereClause.map { [$0] } ?? [])
        flat.whereClause = all.isEmpty ? nil : all.dropFirst().reduce(all[0]) { .binary("AND", $0, $1) }
        return flat
    }

    /// Plans a join of comma-separated tables whose largest one streams: the others are read, joined and indexed
    /// on the equality keys that connect them to it; the conjuncts that read it are taken from `conjuncts`. Nil
    /// (nothing read, `conjuncts` untouched) when the shape does not fit: an item that is not a table, no equality
    /// to the large table or equalities to several others, a key that is not a plain column of the others, or (in
    /// auto mode) no table large enough.
    /// `reads` are the query's other expressions (outputs, grouping, HAVING, ORDER BY): the build columns they
    /// name travel with each chunk.
    func streamedProbe(_ items: [FromItem], pushed: [Expr?], conjuncts: inout [Expr], reads: [Expr], env: [String: Relation])
        throws -> (stream: StreamSource, template: Relation, probe: StreamedProbe)? {
        guard engine.streamedJoins != .never, items.count >= 2 else { return nil }
        let scopes = ItemScopes(scopes: items.map { catalogScope($0, env: env) })
        guard scopes.complete else { return nil }
        let sizes = items.map { item -> Int64 in
            guard let table = deltaTable(item, env: env), let (_, snapshot) = try? cache.table(table.path, version: table.version) else { return .max }
            return snapshot.numRecords ?? .max
        }
        guard let large = sizes.indices.max(by: { sizes[$0] < sizes[$1] }), sizes[large] < .max else { return nil }
        let others = sizes.indices.filter { $0 != large }
        if engine.streamedJoins == .auto {
            guard sizes[large] >= 1 << 18, others.allSatisfy({ 2 * sizes[$0] <= sizes[large] }) else { return nil }
        }
        guard let table = deltaTable(items[large], env: env), table.timestamp == nil,
              let (_, snapshot) = try? cache.table(table.path, version: table.version) else { return nil }
        // Each conjunct: over the other tables only, a key equality (the large table's side any expression of it,
        // the other side a plain column of another table), or a residual condition over both sides.
        var rest: [Expr] = [], keys: [(stream: Expr, build: Expr, item: Int)] = [], residual: [Expr] = []
        for c in conjuncts {
            guard let owners = scopes.owners(c) else { return nil }
            guard owners.contains(large) else { rest.append(c); continue }
            if case .binary("=", let a, let b) = c,
               let key = [(a, b), (b, a)].lazy.compactMap({ x, y -> (stream: Expr, build: Expr, item: Int)? in
                   guard scopes.owners(x) == [large], case .column(let name) = y, let owner = scopes.owner(name), owner != large else { return nil }
                   return (x, y, owner)
               }).first {
                keys.append(key)
                continue
            }
            residual.append(c)
        }
        // The large table must hang off one other table: joined without it, tables it connects (TPC-H q5's orders
        // and supplier, tied otherwise only through nations) would pair up many-to-many.
        guard let neighbour = keys.first?.item, keys.allSatisfy({ $0.item == neighbour }),
              residual.allSatisfy({ scopes.owners($0)!.isSubset(of: [large, neighbour]) }) else { return nil }
        // The key types, from the schemas: integer keys index by value; others group the build side again for each
        // chunk, so only a small build side is worth it.
        let wide = try Frame.empty(snapshot.schema, columns: nil)
        let wideRelation = Relation(frame: wide, qualifier: table.qualifier)
        var types: [FrameType] = []
        for key in keys {
            guard let streamType = try? wideRelation.bind(key.stream).evaluate(wideRelation.frame).type,
                  case .column(let name) = key.build, let other = deltaTable(items[key.item], env: env),
                  let (_, otherSnapshot) = try? cache.table(other.path, version: other.version),
                  let field = otherSnapshot.schema.field(String(name.split(separator: ".").last!)),
                  let buildType = FrameType(delta: field.type) else { return nil }
            types.append(FrameType.common([streamType, buildType]))
        }
        let integerKeys = types.allSatisfy { $0.isInteger || $0 == .date || $0 == .timestamp }
        if !integerKeys, engine.streamedJoins == .auto, others.reduce(Int64(0), { $0 + sizes[$1] }) > 65_536 { return nil }

        // The other tables, read (smallest first, narrowing each other), joined and filtered.
        var relations = try readCommaItems(others.map { items[$0] }, pushed: others.map { pushed[$0] }, conjuncts: rest, env: env)
        var build = try joinCommaItems(&relations, conjuncts: &rest)
        if !rest.isEmpty {
            let condition = rest.dropFirst().reduce(rest[0]) { .binary("AND", $0, $1) }
            let input = build
            build = try step("Filter", SQLText.of(condition) + rowsIn(input.rowCount), rows: { $0.rowCount }) {
                input.filter(try input.bind(condition).evaluate(input.frame))
            }
        }
        guard let found = try streamSource(items[large], filter: pushed[large], env: env) else {
            throw KilnError(.internalError, "The table \(table.qualifier) cannot be streamed")
        }
        var streamed = Relation(frame: try Frame.empty(found.plan.snapshot.schema, columns: found.columns), qualifier: found.qualifier)
        streamed.known = found.plan.snapshot.schema.fields.map(\.name)
        // Only the build columns the query reads travel with each chunk.
        var used = Set<Int>()
        for e in reads + residual {
            for name in e.columns where scopes.owner(name) != large {
                if let i = (try? build.resolve(name)) ?? nil { used.insert(i) }
            }
        }
        let picked = used.sorted()
        var template = Relation(columns: streamed.frame.columns + picked.map { build.frame.columns[$0].take([]) },
                                qualifiers: streamed.qualifiers + picked.map { build.qualifiers[$0] },
                                names: streamed.names + picked.map { build.names[$0] })
        template.known = streamed.known + (build.known.isEmpty ? build.names : build.known)
        let buildKeys = try keys.map { try build.bind($0.build).evaluate(build.frame) }
        let input = build
        let index = try step("Hash index", keys.map { SQLText.of($0.build) }.joined(separator: ", ") + rowsIn(input.rowCount),
                             rows: { (_: JoinIndex) in input.rowCount }) {
            try JoinIndex(keys: buildKeys, rows: input.rowCount, types: types)
        }
        let probe = StreamedProbe(build: picked.map { build.frame.columns[$0] }, index: index,
                                  keys: try keys.map { try streamed.bind($0.stream) },
                                  residual: try residual.isEmpty ? nil : template.bind(residual.dropFirst().reduce(residual[0]) { .binary("AND", $0, $1) }))
        conjuncts = []
        return (found, template, probe)
    }
}
