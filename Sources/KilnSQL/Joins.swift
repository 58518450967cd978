import Foundation
import KilnCore
import KilnFrame

/// Joins of two relations: hash joins on the equality conjuncts of the condition, the rest evaluated on the pairs.
enum Joins {
    /// The most row pairs a join without equality keys may produce.
    static let maxCrossPairs = 50_000_000

    static func join(_ left: Relation, _ right: Relation, kind: JoinKind, condition: Expr?) throws -> Relation {
        var left = left, right = right
        var conjuncts = condition?.conjuncts ?? []
        // A condition on one side only filters that side first when the join drops its unmatched rows anyway (the
        // right side of a LEFT JOIN, either side of an inner join): TPC-H q13's `o_comment NOT LIKE ...` runs on
        // the orders' own strings, not on copies gathered for every pair.
        let narrowLeft = [.inner, .cross, .right, .semi].contains(kind), narrowRight = [.inner, .cross, .left, .semi, .anti].contains(kind)
        for (side, allowed) in [(0, narrowLeft), (1, narrowRight)] where allowed {
            // Every name resolves on this side and none on the other (an unqualified name both have is left open).
            let (mine, other) = side == 0 ? (left, right) : (right, left)
            let own = conjuncts.filter { c in
                Execution.binds(c, in: mine) && !c.columns.contains { ((try? other.resolve($0)) ?? nil) != nil }
            }
            guard !own.isEmpty, (try? own.map { try mine.bind($0) }) != nil else { continue }
            let condition = own.dropFirst().reduce(own[0]) { .binary("AND", $0, $1) }
            if side == 0 { left = left.filter(try left.bind(condition).evaluate(left.frame)) }
            else { right = right.filter(try right.bind(condition).evaluate(right.frame)) }
            conjuncts.removeAll { c in own.contains(c) }
        }
        var leftKeys: [Column] = [], rightKeys: [Column] = []
        var residual: [Expr] = []
        for c in conjuncts {
            if case .binary("=", let a, let b) = c {
                if let l = try? left.bind(a), let r = try? right.bind(b), Execution.binds(a, in: left), Execution.binds(b, in: right) {
                    leftKeys.append(try l.evaluate(left.frame))
                    rightKeys.append(try r.evaluate(right.frame))
                    continue
                }
                if let l = try? left.bind(b), let r = try? right.bind(a), Execution.binds(b, in: left), Execution.binds(a, in: right) {
                    leftKeys.append(try l.evaluate(left.frame))
                    rightKeys.append(try r.evaluate(right.frame))
                    continue
                }
            }
            residual.append(c)
        }
        var pairs: (left: [Int], right: [Int])
        if kind == .asof || kind == .asofLeft {
            // The ON clause: equalities (the keys, possibly none) and exactly one inequality between the two sides.
            let inequality: (op: String, left: Column, right: Column)
            do {
                guard residual.count == 1, case .binary(let op, let a, let b) = residual[0], ["<", "<=", ">", ">="].contains(op) else {
                    throw KilnError.invalid("An ASOF JOIN's ON clause needs equalities and one inequality between the two sides, e.g. ON l.id = f.id AND l.ts >= f.ts")
                }
                let mirrored = ["<": ">", "<=": ">=", ">": "<", ">=": "<="]
                if let l = try? left.bind(a), let r = try? right.bind(b), Execution.binds(a, in: left), Execution.binds(b, in: right) {
                    inequality = (op, try l.evaluate(left.frame), try r.evaluate(right.frame))
                } else if let l = try? left.bind(b), let r = try? right.bind(a), Execution.binds(b, in: left), Execution.binds(a, in: right) {
                    inequality = (mirrored[op]!, try l.evaluate(left.frame), try r.evaluate(right.frame))
                } else {
                    throw KilnError.invalid("An ASOF JOIN's inequality must compare a column of the left side with one of the right side")
                }
            }
            pairs = try Frame.asofJoinPairs(leftKeys: leftKeys, rightKeys: rightKeys, leftOn: inequality.left, rightOn: inequality.right,
                                            op: inequality.op, leftRows: left.rowCount, rightRows: right.rowCount, outer: kind == .asofLeft)
            residual = []
        } else if leftKeys.isEmpty {
            guard left.rowCount * right.rowCount <= maxCrossPairs else {
                throw KilnError.invalid("A join without an equality condition would pair \(left.rowCount) × \(right.rowCount) rows; add an equality to the ON clause")
            }
            pairs = ([], [])
            for i in 0..<left.rowCount {
                for j in 0..<right.rowCount {
                    pairs.left.append(i)
                    pairs.right.append(j)
                }
            }
        } else {
            pairs = try Frame.equiJoinPairs(leftKeys: leftKeys, rightKeys: rightKeys, leftRows: left.rowCount, rightRows: right.rowCount)
        }
        let combined = { (l: [Int], r: [Int]) -> Relation in
            // A side whose every row appears once, in order (the probe side of a many-to-one join) is kept, not copied.
            let keepLeft = isIdentity(l, left.rowCount), keepRight = isIdentity(r, right.rowCount)
            var joined = Relation(columns: (keepLeft ? left.frame.columns : left.frame.columns.map { $0.take(optional: l) })
                                  + (keepRight ? right.frame.columns : right.frame.columns.map { $0.take(optional: r) }),
                                  qualifiers: left.qualifiers + right.qualifiers, names: left.names + right.names)
            joined.known = (left.known.isEmpty ? left.names : left.known) + (right.known.isEmpty ? right.names : right.known)
            return joined
        }
        if !residual.isEmpty, !pairs.left.isEmpty {
            let paired = combined(pairs.left, pairs.right)
            let condition = residual.dropFirst().reduce(residual[0]) { .binary("AND", $0, $1) }
            let mask = try paired.bind(condition).evaluate(paired.frame)
            guard case .bool(let bits) = mask.values else { throw KilnError.invalid("A join condition must be boolean") }
            var l: [Int] = [], r: [Int] = []
            for k in bits.indices where bits[k] && !mask.isNull(k) {
                l.append(pairs.left[k])
                r.append(pairs.right[k])
            }
            pairs = (l, r)
        }
        switch kind {
        case .inner, .cross, .asof, .asofLeft:
            return combined(pairs.left, pairs.right)
        case .semi, .anti:
            var matched = [Bool](repeating: false, count: left.rowCount)
            for i in pairs.left { matched[i] = true }
            return left.take((0..<left.rowCount).filter { matched[$0] == (kind == .semi) })
        case .left, .right, .full:
            var l = pairs.left, r = pairs.right
            if kind != .right {
                var matched = [Bool](repeating: false, count: left.rowCount)
                for i in pairs.left { matched[i] = true }
                for i in 0..<left.rowCount where !matched[i] {
                    l.append(i)
                    r.append(-1)
                }
            }
            if kind != .left {
                var matched = [Bool](repeating: false, count: right.rowCount)
                for j in pairs.right { matched[j] = true }
                for j in 0..<right.rowCount where !matched[j] {
                    l.append(-1)
                    r.append(j)
                }
            }
            return combined(l, r)
        }
    }

    /// Whether `rows` is `0..<count`.
    static func isIdentity(_ rows: [Int], _ count: Int) -> Bool {
        guard rows.count == count else { return false }
        return rows.withUnsafeBufferPointer { p in
            for i in 0..<count where p[i] != i { return false }
            return true
        }
    }

}

extension Execution {
    /// Whether every column of `e` resolves in `relation` (and it has at least one).
    static func binds(_ e: Expr, in relation: Relation) -> Bool {
        let columns = e.columns
        return !columns.isEmpty && columns.allSatisfy { ((try? relation.resolve($0)) ?? nil) != nil }
    }
}
