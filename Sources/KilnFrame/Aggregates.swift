import Foundation
import KilnCore
import KilnParquet

/// Aggregate functions over groups of rows (`Grouping.groupOf`), one result row per group.
public enum Aggregates {
    /// Computes aggregate `name` over `inputs` (its argument columns) for `groups` groups.
    public static func compute(_ name: String, _ inputs: [Column], groupOf: [Int], groups: Int, rows: Int) throws -> Column {
        func argument(_ k: Int = 0) throws -> Column {
            guard inputs.count > k else { throw KilnError.invalid("\(name.uppercased()) needs \(k + 1) argument\(k == 0 ? "" : "s")") }
            return inputs[k]
        }
        switch name {
        case "count":
            var counts = [Int64](repeating: 0, count: groups)
            if let valid = inputs.first?.validity {
                for i in 0..<rows where valid[i] { counts[groupOf[i]] += 1 }
            } else {
                counts.withUnsafeMutableBufferPointer { counts in
                    groupOf.withUnsafeBufferPointer { groupOf in for i in 0..<rows { counts[groupOf[i]] += 1 } }
                }
            }
            return Column(type: .int64, values: .int(counts))
        case "count_if":
            let x = try argument()
            guard case .bool(let bits) = x.values else { throw KilnError.invalid("COUNT_IF needs a condition") }
            var counts = [Int64](repeating: 0, count: groups)
            for i in 0..<rows where bits[i] && !x.isNull(i) { counts[groupOf[i]] += 1 }
            return Column(type: .int64, values: .int(counts))
        case "sum", "avg", "mean":
            let x = try argument()
            var seen = [Int64](repeating: 0, count: groups)
            if name == "sum", x.type.isInteger, case .int(let v) = x.values {
                var sums = [Int64](repeating: 0, count: groups)
                for i in 0..<rows where !x.isNull(i) {
                    sums[groupOf[i]] &+= v[i]
                    seen[groupOf[i]] += 1
                }
                return Column(type: .int64, values: .int(sums), validity: seen.map { $0 > 0 })
            }
            guard x.type.isNumeric || x.allNull else { throw KilnError.invalid("\(name.uppercased()) needs numbers, got \(x.type)") }
            let v = try numbers(x)
            // Kahan-compensated sums keep float totals stable whatever the row order. Two interleaved accumulator
            // lanes per group (even and odd rows) halve the dependency chain; the lanes combine at the end.
            var lanes = [Double](repeating: 0, count: 4 * groups)  // per group: sum0, carry0, sum1, carry1
            let valid = x.validity
            lanes.withUnsafeMutableBufferPointer { lanes in
                seen.withUnsafeMutableBufferPointer { seen in
                    v.withUnsafeBufferPointer { v in
                        groupOf.withUnsafeBufferPointer { groupOf in
                            @inline(__always) func add(_ i: Int) {
                                let g = groupOf[i]
                                let base = 4 * g + 2 * (i & 1)
                                let y = v[i] - lanes[base + 1]
                                let t = lanes[base] + y
                                lanes[base + 1] = (t - lanes[base]) - y
                                lanes[base] = t
                                seen[g] += 1
                            }
                            if let valid {
                                for i in 0..<rows where valid[i] { add(i) }
                            } else {
                                for i in 0..<rows { add(i) }
                            }
                        }
                    }
                }
            }
            var sums = (0..<groups).map { g in
                let base = 4 * g
                return (lanes[base] + lanes[base + 2]) - (lanes[base + 1] + lanes[base + 3])
            }
            if name != "sum" { for g in 0..<groups where seen[g] > 0 { sums[g] /= Double(seen[g]) } }
            var type = FrameType.float64
            if case .decimal(_, let s) = x.type { type = .decimal(precision: 38, scale: name == "sum" ? s : s + 4) }
            return Column(type: type, values: .double(sums), validity: seen.map { $0 > 0 })
        case "min", "max":
            let x = try argument()
            var best = [Int](repeating: -1, count: groups)
            let wantLess = name == "min"
            switch x.values {
            case .int(let v):
                for i in 0..<rows where !x.isNull(i) {
                    let g = groupOf[i], b = best[g]
                    if b < 0 || (wantLess ? v[i] < v[b] : v[i] > v[b]) { best[g] = i }
                }
            case .double(let v):
                for i in 0..<rows where !x.isNull(i) {
                    let g = groupOf[i], b = best[g]
                    if b < 0 || (wantLess ? v[i] < v[b] : v[i] > v[b]) { best[g] = i }
                }
            case .bool(let v):
                for i in 0..<rows where !x.isNull(i) {
                    let g = groupOf[i], b = best[g]
                    if b < 0 || (wantLess ? !v[i] && v[b] : v[i] && !v[b]) { best[g] = i }
                }
            case .bytes(let v):
                for i in 0..<rows where !x.isNull(i) {
                    let g = groupOf[i], b = best[g]
                    if b < 0 || (wantLess ? v[i].lexicographicallyPrecedes(v[b]) : v[b].lexicographicallyPrecedes(v[i])) { best[g] = i }
                }
            }
            return x.take(optional: best)
        case "max_by", "min_by":
            let x = try argument(), key = try argument(1)
            let order = try compute(name == "max_by" ? "max" : "min", [key], groupOf: groupOf, groups: groups, rows: rows)
            // The row of each group whose key equals the extreme (the first such row).
            var pick = [Int](repeating: -1, count: groups)
            let eq = key
            for i in 0..<rows where pick[groupOf[i]] < 0 && !eq.isNull(i) && eq.value(i) == order.value(groupOf[i]) { pick[groupOf[i]] = i }
            return x.take(optional: pick)
        case "first", "first_value", "any_value", "last", "last_value":
            let x = try argument()
            var pick = [Int](repeating: -1, count: groups)
            let last = name.hasPrefix("last")
            for i in 0..<rows where !x.isNull(i) && (last || pick[groupOf[i]] < 0) { pick[groupOf[i]] = i }
            return x.take(optional: pick)
        case "count_distinct", "approx_count_distinct", "sum_distinct", "avg_distinct":
            let x = try argument()
            // Distinct (group, value) pairs.
            let pairs = Grouping(keys: [Column(type: .int64, values: .int(groupOf.map(Int64.init))), x], rows: rows)
            let keep = pairs.firstRow.filter { !x.isNull($0) }
            if name == "count_distinct" || name == "approx_count_distinct" {
                var counts = [Int64](repeating: 0, count: groups)
                for r in keep { counts[groupOf[r]] += 1 }
                return Column(type: .int64, values: .int(counts))
            }
            return try compute(name == "sum_distinct" ? "sum" : "avg", [x.take(keep)], groupOf: keep.map { groupOf[$0] }, groups: groups, rows: keep.count)
        case "stddev", "stddev_samp", "std", "stddev_pop", "variance", "var_samp", "var_pop":
            let x = try argument()
            let v = try numbers(x)
            // Welford's algorithm per group.
            var n = [Double](repeating: 0, count: groups), mean = [Double](repeating: 0, count: groups), m2 = [Double](repeating: 0, count: groups)
            for i in 0..<rows where !x.isNull(i) {
                let g = groupOf[i]
                n[g] += 1
                let d = v[i] - mean[g]
                mean[g] += d / n[g]
                m2[g] += d * (v[i] - mean[g])
            }
            let population = name.hasSuffix("_pop")
            let variance = name.hasPrefix("var")
            var valid = [Bool](repeating: true, count: groups)
            let out = (0..<groups).map { g -> Double in
                let denominator = population ? n[g] : n[g] - 1
                guard n[g] > 0, denominator > 0 else { valid[g] = false; return 0 }
                let s2 = m2[g] / denominator
                return variance ? s2 : s2.squareRoot()
            }
            return Column(type: .float64, values: .double(out), validity: valid)
        case "bool_and", "every", "bool_or", "some":
            let x = try argument()
            guard case .bool(let bits) = x.values else { throw KilnError.invalid("\(name.uppercased()) needs booleans") }
            let all = name == "bool_and" || name == "every"
            var out = [Bool](repeating: all, count: groups), seen = [Bool](repeating: false, count: groups)
            for i in 0..<rows where !x.isNull(i) {
                let g = groupOf[i]
                seen[g] = true
                out[g] = all ? out[g] && bits[i] : out[g] || bits[i]
            }
            return Column(type: .bool, values: .bool(out), validity: seen)
        case "median", "percentile", "approx_percentile", "percentile_approx":
            let x = try argument()
            var fraction = 0.5
            if name != "median" {
                guard let p = try argument(1).value(0).double, (0...1).contains(p) else { throw KilnError.invalid("\(name.uppercased()) needs a fraction between 0 and 1") }
                fraction = p
            }
            let v = try numbers(x)
            var members = [[Double]](repeating: [], count: groups)
            for i in 0..<rows where !x.isNull(i) { members[groupOf[i]].append(v[i]) }
            var valid = [Bool](repeating: true, count: groups)
            let exact = name == "median" || name == "percentile"
            let out = members.enumerated().map { g, values -> Double in
                guard !values.isEmpty else { valid[g] = false; return 0 }
                let sorted = values.sorted()
                if !exact {
                    // approx_percentile: the smallest value with at least that share at or below it.
                    let rank = max(0, Int((fraction * Double(sorted.count)).rounded(.up)) - 1)
                    return sorted[min(rank, sorted.count - 1)]
                }
                let position = fraction * Double(sorted.count - 1)
                let low = Int(position.rounded(.down)), high = Int(position.rounded(.up))
                return sorted[low] + (sorted[high] - sorted[low]) * (position - Double(low))
            }
            return Column(type: .float64, values: .double(out), validity: valid)
        default:
            throw KilnError.invalid("Unknown aggregate function \(name.uppercased())")
        }
    }

    /// COUNT or SUM of the rows where `keep` holds (every row when nil) as one group, without a per-row group array:
    /// an ungrouped aggregate over a filtered scan. Same result, bit for bit, as `compute` with every kept row in group
    /// 0; nil for other functions and types (use `compute`).
    public static func ungrouped(_ name: String, _ inputs: [Column], keep: [Bool]?, rows: Int) -> Column? {
        // One mask of the rows that count: kept and not null.
        var mask = keep
        if let valid = inputs.first?.validity { mask = keep.map { zip($0, valid).map { $0 && $1 } } ?? valid }
        let all = mask == nil
        let include = mask ?? []
        switch name {
        case "count" where inputs.count <= 1:
            var n: Int64 = 0
            if all { n = Int64(rows) } else { include.withUnsafeBufferPointer { m in for i in 0..<rows where m[i] { n += 1 } } }
            return Column(type: .int64, values: .int([n]))
        case "sum" where inputs.count == 1:
            let x = inputs[0]
            var seen = 0
            if x.type.isInteger, case .int(let v) = x.values {
                var total: Int64 = 0
                for i in 0..<rows where all || include[i] {
                    total &+= v[i]
                    seen += 1
                }
                return Column(type: .int64, values: .int([total]), validity: [seen > 0])
            }
            guard x.type == .float64 || x.type == .float32, case .double(let v) = x.values else { return nil }
            // The lanes of `compute` (even and odd rows, Kahan-compensated), so the sum is the same.
            var lanes: (Double, Double, Double, Double) = (0, 0, 0, 0)
            v.withUnsafeBufferPointer { v in
                @inline(__always) func add(_ i: Int) {
                    if i & 1 == 0 {
                        let y = v[i] - lanes.1, t = lanes.0 + y
                        lanes.1 = (t - lanes.0) - y
                        lanes.0 = t
                    } else {
                        let y = v[i] - lanes.3, t = lanes.2 + y
                        lanes.3 = (t - lanes.2) - y
                        lanes.2 = t
                    }
                    seen += 1
                }
                if all {
                    for i in 0..<rows { add(i) }
                } else {
                    include.withUnsafeBufferPointer { m in for i in 0..<rows where m[i] { add(i) } }
                }
            }
            return Column(type: .float64, values: .double([(lanes.0 + lanes.2) - (lanes.1 + lanes.3)]), validity: [seen > 0])
        default:
            return nil
        }
    }

    static func numbers(_ x: Column) throws -> [Double] {
        switch x.values {
        case .double(let v): return v
        case .int(let v): return v.map(Double.init)
        case .bool(let v): return v.map { $0 ? 1 : 0 }
        case .bytes:
            if x.allNull { return [Double](repeating: 0, count: x.count) }
            throw KilnError.invalid("Expected numbers, got \(x.type)")
        }
    }
}

extension Frame {
    /// One group id per row of the left rows followed by the right rows, by their key values (cast to a common
    /// type), so equal keys on either side share a group; and whether a row (by that numbering) has a null key.
    static func sharedKeyGroups(_ leftKeys: [Column], _ rightKeys: [Column], rows: Int) throws -> (Grouping, (Int) -> Bool) {
        var combined: [Column] = []
        for (a, b) in zip(leftKeys, rightKeys) {
            let type = FrameType.common([a.type, b.type])
            combined.append(Column.concatenate([try a.cast(to: type), try b.cast(to: type)]))
        }
        let keys = combined
        return (Grouping(keys: keys, rows: rows), { row in keys.contains { $0.isNull(row) } })
    }

    /// As-of join pairs: for each left row, the one right row with equal keys whose `rightOn` value is the closest
    /// to the left row's `leftOn` value in the direction `op` says — `>=` (the left value is at or after it: the
    /// latest right value not after the left one, the point-in-time rule), `>` (strictly before), `<=` (the earliest
    /// not before), `<` (strictly after). Ties on (keys, value) go to the right row that comes last (the newest in
    /// table order). Null keys or values never match; `outer` keeps unmatched left rows with right index -1.
    /// Pairs come in left row order.
    public static func asofJoinPairs(leftKeys: [Column], rightKeys: [Column], leftOn: Column, rightOn: Column, op: String,
                                     leftRows: Int, rightRows: Int, outer: Bool) throws -> (left: [Int], right: [Int]) {
        let (grouping, hasNull) = try sharedKeyGroups(leftKeys, rightKeys, rows: leftRows + rightRows)
        // The as-of values as one comparable Double each (integers, dates and timestamps exactly up to 2^53).
        let onType = FrameType.common([leftOn.type, rightOn.type])
        guard onType.isNumeric || onType == .date || onType == .timestamp else {
            throw KilnError.invalid("An ASOF JOIN compares numbers, dates or timestamps, not \(onType)")
        }
        func values(_ c: Column) throws -> [Double] {
            switch try c.cast(to: onType).values {
            case .int(let v): return v.map(Double.init)
            case .double(let v): return v
            default: throw KilnError.invalid("An ASOF JOIN compares numbers, dates or timestamps")
            }
        }
        let lv = try values(leftOn), rv = try values(rightOn)
        // Which rows have a null key, once (not a closure call per row).
        let nullKey: [Bool]? = leftKeys.contains(where: { $0.validity != nil }) || rightKeys.contains(where: { $0.validity != nil })
            ? (0..<(leftRows + rightRows)).map(hasNull) : nil
        // Right rows by group, each group's (value, row) pairs laid out contiguously and sorted: the searches below
        // then read neighbouring memory instead of jumping through row numbers.
        let groupOf = grouping.groupOf
        func usable(_ j: Int) -> Bool { !(nullKey?[leftRows + j] ?? false) && !rightOn.isNull(j) && !rv[j].isNaN }
        var start = [Int](repeating: 0, count: grouping.count + 1)
        for j in 0..<rightRows where usable(j) { start[groupOf[leftRows + j] + 1] += 1 }
        for g in 0..<grouping.count { start[g + 1] += start[g] }
        var fill = start
        var rows = [Int](repeating: 0, count: start[grouping.count])
        var sorted = [Double](repeating: 0, count: start[grouping.count])
        for j in 0..<rightRows where usable(j) {
            let g = groupOf[leftRows + j]
            rows[fill[g]] = j
            sorted[fill[g]] = rv[j]
            fill[g] += 1
        }
        // Rows went in ascending, so sorting each group by (value, row) keeps ties in table order (the last wins).
        // Groups already in order (tables written in time order) are left alone; the rest sort in parallel.
        let starts = start, filledRows = rows, filledValues = sorted
        let groupCount = grouping.count
        let pieces = Swift.max(1, Swift.min(64, groupCount / 1024))
        let parts = try concurrentMap(pieces) { piece -> [(at: Int, values: [Double], rows: [Int])] in
            var out: [(at: Int, values: [Double], rows: [Int])] = []
            for g in (groupCount * piece / pieces)..<(groupCount * (piece + 1) / pieces) {
                let lo = starts[g], hi = starts[g + 1]
                guard hi - lo > 1 else { continue }
                var ordered = true
                for k in (lo + 1)..<hi where filledValues[k] < filledValues[k - 1] {
                    ordered = false
                    break
                }
                if ordered { continue }
                var pairs = (lo..<hi).map { (filledValues[$0], filledRows[$0]) }
                pairs.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
                out.append((lo, pairs.map(\.0), pairs.map(\.1)))
            }
            return out
        }
        for part in parts {
            for piece in part {
                sorted.replaceSubrange(piece.at..<(piece.at + piece.values.count), with: piece.values)
                rows.replaceSubrange(piece.at..<(piece.at + piece.rows.count), with: piece.rows)
            }
        }
        // Each left row's match, searched in parallel over chunks of rows.
        let groupValues = sorted, groupRows = rows
        let chunks = Swift.max(1, Swift.min(64, leftRows / 16_384))
        let matches = try concurrentMap(chunks) { chunk -> [Int] in
            let lower = leftRows * chunk / chunks, upper = leftRows * (chunk + 1) / chunks
            var out = [Int](repeating: -1, count: upper - lower)
            for i in lower..<upper {
                guard !(nullKey?[i] ?? false), !leftOn.isNull(i), !lv[i].isNaN else { continue }
                let g = groupOf[i], x = lv[i]
                var lo = starts[g], hi = starts[g + 1]
                switch op {
                case ">=", ">":
                    // The last member with value <= x (< x): the first position past them, minus one.
                    while lo < hi {
                        let mid = (lo + hi) / 2
                        if op == ">=" ? groupValues[mid] <= x : groupValues[mid] < x { lo = mid + 1 } else { hi = mid }
                    }
                    if lo > starts[g] { out[i - lower] = groupRows[lo - 1] }
                default:
                    // The first member with value >= x (> x), then the last of its equal values.
                    while lo < hi {
                        let mid = (lo + hi) / 2
                        if op == "<=" ? groupValues[mid] < x : groupValues[mid] <= x { lo = mid + 1 } else { hi = mid }
                    }
                    if lo < starts[g + 1] {
                        var k = lo
                        while k + 1 < starts[g + 1], groupValues[k + 1] == groupValues[lo] { k += 1 }
                        out[i - lower] = groupRows[k]
                    }
                }
            }
            return out
        }
        var left: [Int] = [], right: [Int] = []
        left.reserveCapacity(leftRows)
        right.reserveCapacity(leftRows)
        var i = 0
        for chunk in matches {
            for match in chunk {
                if match >= 0 || outer {
                    left.append(i)
                    right.append(match)
                }
                i += 1
            }
        }
        return (left, right)
    }

    /// Row pairs of an equality join: `left[i]` with `right[j]` where every key pair is equal and non-null.
    /// Keys are cast to a common type. Returns the matched (left, right) row pairs, left rows in order.
    public static func equiJoinPairs(leftKeys: [Column], rightKeys: [Column], leftRows: Int, rightRows: Int) throws -> (left: [Int], right: [Int]) {
        let types = zip(leftKeys, rightKeys).map { FrameType.common([$0.type, $1.type]) }
        return try JoinIndex(keys: rightKeys, rows: rightRows, types: types).pairs(leftKeys, rows: leftRows)
    }
}
