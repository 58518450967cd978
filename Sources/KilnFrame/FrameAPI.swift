import Foundation
import KilnCore

/// The DataFrame API: the same operations SQL runs, called from Swift.
///
///     let top = try frame
///         .filter(.binary(">", .column("amount"), .literal(.double(10))))
///         .groupBy("region").agg(("count", nil, "n"), ("sum", "amount", "total"))
///         .sort(("total", descending: true))
///         .limit(5)
extension Frame {
    /// Rows where `condition` is true.
    public func filter(_ condition: Expr) throws -> Frame {
        filter(try condition.evaluate(self))
    }

    /// Columns computed from expressions, named.
    public func select(_ items: [(expr: Expr, name: String)]) throws -> Frame {
        Frame(names: items.map(\.name), columns: try items.map { try $0.expr.evaluate(self) })
    }

    /// Some columns, by name.
    public func select(_ names: String...) throws -> Frame {
        Frame(names: names, columns: try names.map { try column($0) })
    }

    /// Adds (or replaces) a column.
    public func withColumn(_ name: String, _ expr: Expr) throws -> Frame {
        let value = try expr.evaluate(self)
        var out = self
        if let i = index(of: name) { out.columns[i] = value } else {
            out.names.append(name)
            out.columns.append(value)
        }
        return out
    }

    public func drop(_ names: String...) -> Frame {
        let gone = Set(names.map { $0.lowercased() })
        let keep = self.names.indices.filter { !gone.contains(self.names[$0].lowercased()) }
        return Frame(names: keep.map { self.names[$0] }, columns: keep.map { columns[$0] })
    }

    public func rename(_ old: String, to new: String) throws -> Frame {
        guard let i = index(of: old) else { throw KilnError.invalid("No column '\(old)'") }
        var out = self
        out.names[i] = new
        return out
    }

    /// Sorted by columns (stable; nulls first ascending, last descending).
    public func sort(_ keys: (String, descending: Bool)...) throws -> Frame {
        take(Frame.sortOrder(try keys.map { (try column($0.0), $0.descending, nil) }, count: rowCount))
    }

    public func limit(_ n: Int) -> Frame { slice(0..<min(n, rowCount)) }

    /// One row per distinct combination of `columns` (all columns when empty), the first occurrence kept.
    public func dropDuplicates(_ names: [String] = []) throws -> Frame {
        let keys = names.isEmpty ? columns : try names.map { try column($0) }
        return take(Grouping(keys: keys, rows: rowCount).firstRow)
    }

    /// Rows with no null in `columns` (all when empty).
    public func dropna(_ names: [String] = []) throws -> Frame {
        let checked = names.isEmpty ? columns : try names.map { try column($0) }
        return take((0..<rowCount).filter { row in !checked.contains { $0.isNull(row) } })
    }

    /// Nulls of the given columns replaced by values (cast to each column's type).
    public func fillna(_ values: [String: Value]) throws -> Frame {
        var out = self
        for (name, value) in values {
            guard let i = index(of: name) else { throw KilnError.invalid("No column '\(name)'") }
            let column = columns[i]
            let fill = try Column.broadcast(value, count: rowCount).cast(to: column.type)
            out.columns[i] = column.replacing((0..<rowCount).filter { column.isNull($0) }, from: fill)
        }
        return out
    }

    /// Rows of frames with the same columns (by position; types meet in a common type).
    public func union(_ other: Frame) throws -> Frame {
        guard other.columns.count == columns.count else { throw KilnError.invalid("UNION needs the same number of columns") }
        return Frame(names: names, columns: try zip(columns, other.columns).map { a, b in
            let type = FrameType.common([a.type, b.type])
            return Column.concatenate([try a.cast(to: type), try b.cast(to: type)])
        })
    }

    /// Splits the rows at random by `weights` (normalized), reproducibly for a seed.
    public func randomSplit(_ weights: [Double], seed: UInt64) -> [Frame] {
        let total = weights.reduce(0, +)
        var bounds: [Double] = []
        var acc = 0.0
        for w in weights { acc += w / total; bounds.append(acc) }
        var generator = SplitMix64(seed: seed)
        var parts = [[Int]](repeating: [], count: weights.count)
        for row in 0..<rowCount {
            let u = generator.nextDouble()
            parts[bounds.firstIndex { u < $0 } ?? weights.count - 1].append(row)
        }
        return parts.map { take($0) }
    }

    /// About `fraction` of the rows, chosen at random, reproducibly for a seed.
    public func sample(fraction: Double, seed: UInt64) -> Frame {
        var generator = SplitMix64(seed: seed)
        return take((0..<rowCount).filter { _ in generator.nextDouble() < fraction })
    }

    /// A hash join on equal key columns: `inner`, `left`, `right`, `full`, `semi` or `anti`.
    public func join(_ other: Frame, on keys: [(left: String, right: String)], how: String = "inner") throws -> Frame {
        let pairs = try Frame.equiJoinPairs(leftKeys: try keys.map { try column($0.left) }, rightKeys: try keys.map { try other.column($0.right) },
                                            leftRows: rowCount, rightRows: other.rowCount)
        var l = pairs.left, r = pairs.right
        switch how {
        case "inner": break
        case "semi", "anti":
            let matched = Set(pairs.left)
            return take((0..<rowCount).filter { matched.contains($0) == (how == "semi") })
        case "left", "right", "full":
            if how != "right" { let m = Set(l); for i in 0..<rowCount where !m.contains(i) { l.append(i); r.append(-1) } }
            if how != "left" { let m = Set(pairs.right); for j in 0..<other.rowCount where !m.contains(j) { l.append(-1); r.append(j) } }
        default: throw KilnError.invalid("Unknown join type '\(how)': use inner, left, right, full, semi or anti")
        }
        // The right side's key columns duplicate the left's in an inner join on same-named keys: keep both, renamed.
        let rightNames = other.names.map { name in names.contains { $0.lowercased() == name.lowercased() } ? name + "_right" : name }
        return Frame(names: names + rightNames, columns: columns.map { $0.take(optional: l) } + other.columns.map { $0.take(optional: r) })
    }

    /// Groups rows by columns, for `agg`.
    public func groupBy(_ names: String...) -> GroupedFrame { GroupedFrame(frame: self, keys: names) }

    /// count, mean, stddev, min and max of the numeric columns (as Spark's `describe`).
    public func describe() throws -> Frame {
        let numeric = names.indices.filter { columns[$0].type.isNumeric }
        let stats = ["count", "mean", "stddev", "min", "max"]
        let one = [Int](repeating: 0, count: rowCount)
        var out: [Column] = [Column.from(stats.map(Value.string), type: .string)]
        for i in numeric {
            let c = columns[i]
            let values = try ["count", "avg", "stddev", "min", "max"].map { f -> Value in
                let v = try Aggregates.compute(f, [c], groupOf: one, groups: 1, rows: rowCount).value(0)
                return v.double.map(Value.double) ?? v.int.map { .double(Double($0)) } ?? .null
            }
            out.append(Column.from(values, type: .float64))
        }
        return Frame(names: ["summary"] + numeric.map { names[$0] }, columns: out)
    }
}

/// A frame grouped by key columns.
public struct GroupedFrame: Sendable {
    let frame: Frame
    let keys: [String]

    /// One row per group: the keys, then each aggregate (function, input column or nil for count(*), output name).
    public func agg(_ aggregates: (function: String, column: String?, name: String)...) throws -> Frame {
        let keyColumns = try keys.map { try frame.column($0) }
        let grouping = Grouping(keys: keyColumns, rows: frame.rowCount)
        let groups = keys.isEmpty ? 1 : grouping.count
        var columns = keyColumns.map { $0.take(grouping.firstRow) }
        for a in aggregates {
            let inputs = try a.column.map { [try frame.column($0)] } ?? []
            columns.append(try Aggregates.compute(a.function.lowercased(), inputs, groupOf: grouping.groupOf, groups: groups, rows: frame.rowCount))
        }
        return Frame(names: keys + aggregates.map(\.name), columns: columns)
    }
}

/// A small, fast, seedable generator (same seed → same sequence on every platform).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func nextDouble() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// A generator for stream `stream` of `seed`, independent of the others. (Seeding with `seed + k` is not: the
    /// state advances by a constant per draw, so nearby seeds give the same numbers shifted by a few draws.)
    public static func stream(_ stream: UInt64, of seed: UInt64) -> SplitMix64 {
        var mixer = SplitMix64(seed: seed ^ 0x5851_F42D_4C95_7F2D)
        var state = mixer.next()
        for _ in 0..<stream { state = mixer.next() }
        var second = SplitMix64(seed: state ^ stream)
        return SplitMix64(seed: second.next())
    }
}
