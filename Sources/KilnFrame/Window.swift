import Foundation
import KilnCore

/// A window function call: ranking (`row_number`, `rank`, `dense_rank`, `percent_rank`, `ntile`), offsets (`lag`,
/// `lead`, `first_value`, `last_value`, `nth_value`) and aggregates (`sum`, `avg`, `count`, `min`, `max`) over the
/// rows of a partition, in order.
///
/// The frame is Spark's default unless given: with ORDER BY, from the partition's start to the current row and its
/// peers (RANGE); without, the whole partition. `ROWS BETWEEN a AND b` takes offsets (nil: unbounded).
public struct Window: Sendable, Equatable {
    public struct Order: Sendable, Equatable {
        public var expr: Expr
        public var descending: Bool
        public var nullsFirst: Bool?
        public init(expr: Expr, descending: Bool, nullsFirst: Bool?) {
            self.expr = expr
            self.descending = descending
            self.nullsFirst = nullsFirst
        }
    }

    public var function: String
    public var args: [Expr]
    public var partitionBy: [Expr]
    public var orderBy: [Order]
    /// ROWS frame bounds relative to the current row (-n preceding, +n following; nil unbounded); nil: default frame.
    public var rows: (start: Int?, end: Int?)?

    public init(function: String, args: [Expr], partitionBy: [Expr], orderBy: [Order], rows: (start: Int?, end: Int?)?) {
        self.function = function
        self.args = args
        self.partitionBy = partitionBy
        self.orderBy = orderBy
        self.rows = rows
    }

    public static func == (a: Window, b: Window) -> Bool {
        a.function == b.function && a.args == b.args && a.partitionBy == b.partitionBy && a.orderBy == b.orderBy
            && a.rows?.start == b.rows?.start && a.rows?.end == b.rows?.end
    }

    static let ranking: Set<String> = ["row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile"]
    static let offsets: Set<String> = ["lag", "lead", "first_value", "first", "last_value", "last", "nth_value"]
    static let aggregates: Set<String> = ["sum", "avg", "mean", "count", "min", "max"]
    public static var functions: Set<String> { ranking.union(offsets).union(aggregates) }

    func map(_ f: (Expr) throws -> Expr) rethrows -> Window {
        var w = self
        w.args = try args.map(f)
        w.partitionBy = try partitionBy.map(f)
        w.orderBy = try orderBy.map { Order(expr: try f($0.expr), descending: $0.descending, nullsFirst: $0.nullsFirst) }
        return w
    }

    func evaluate(_ frame: Frame) throws -> Column {
        let n = frame.rowCount
        let name = function.lowercased()
        guard Self.functions.contains(name) else { throw KilnError.invalid("\(function.uppercased()) cannot be used as a window function") }
        if Self.ranking.contains(name) || name == "lag" || name == "lead" {
            guard !orderBy.isEmpty else { throw KilnError.invalid("\(function.uppercased()) needs ORDER BY in its window") }
        }
        let partition = Grouping(keys: try partitionBy.map { try $0.evaluate(frame) }, rows: n)
        let orderColumns = try orderBy.map { try $0.expr.evaluate(frame) }
        let partitionKey = Column(type: .int64, values: .int(partition.groupOf.map(Int64.init)))
        let order = Frame.sortOrder([(partitionKey, false, nil)] + zip(orderColumns, orderBy).map { ($0, $1.descending, $1.nullsFirst) }, count: n)
        let args = try self.args.map { try $0.evaluate(frame) }
        // Peers: rows whose ORDER BY values are equal.
        func peers(_ a: Int, _ b: Int) -> Bool { orderColumns.allSatisfy { $0.sameValue(a, b) } }
        if ["row_number", "rank", "dense_rank"].contains(name) {
            // Numbers straight into an integer column, partition by partition along the sorted order.
            var numbers = [Int64](repeating: 0, count: n)
            var k = 0, rank: Int64 = 1, dense: Int64 = 1
            for (position, row) in order.enumerated() {
                if position == 0 || partition.groupOf[row] != partition.groupOf[order[position - 1]] {
                    (k, rank, dense) = (0, 1, 1)
                } else if !peers(order[position - 1], row) {
                    rank = Int64(k + 1)
                    dense += 1
                }
                numbers[row] = name == "row_number" ? Int64(k + 1) : name == "rank" ? rank : dense
                k += 1
            }
            return Column(type: .int64, values: .int(numbers))
        }
        if rows == nil, let column = try runningAggregate(name, args: args, order: order, partition: partition, peers: peers) { return column }
        var out = [Value](repeating: .null, count: n)
        var type = FrameType.int64
        var start = 0
        while start < n {
            var end = start + 1
            while end < n, partition.groupOf[order[end]] == partition.groupOf[order[start]] { end += 1 }
            let rows = Array(order[start..<end])
            try compute(name, rows: rows, args: args, peers: peers, out: &out, type: &type)
            start = end
        }
        return Column.from(out, type: type)
    }

    private func compute(_ name: String, rows: [Int], args: [Column], peers: (Int, Int) -> Bool, out: inout [Value], type: inout FrameType) throws {
        let count = rows.count
        // The end (exclusive) of each row's peer group.
        var peerEnd = [Int](repeating: count, count: count)
        if !orderBy.isEmpty {
            var i = count - 1
            var groupEnd = count
            while i >= 0 {
                if i + 1 < count, !peers(rows[i], rows[i + 1]) { groupEnd = i + 1 }
                peerEnd[i] = groupEnd
                i -= 1
            }
        }
        switch name {
        case "row_number":
            for (k, r) in rows.enumerated() { out[r] = .int(Int64(k + 1)) }
        case "rank", "dense_rank", "percent_rank", "cume_dist":
            var rank = 1, dense = 1
            for (k, r) in rows.enumerated() {
                if k > 0, !peers(rows[k - 1], r) {
                    rank = k + 1
                    dense += 1
                }
                switch name {
                case "rank": out[r] = .int(Int64(rank))
                case "dense_rank": out[r] = .int(Int64(dense))
                case "percent_rank": out[r] = .double(count > 1 ? Double(rank - 1) / Double(count - 1) : 0); type = .float64
                default: out[r] = .double(Double(peerEnd[k]) / Double(count)); type = .float64
                }
            }
        case "ntile":
            guard let buckets = args.first?.value(0).int, buckets > 0 else { throw KilnError.invalid("NTILE needs a positive number of buckets") }
            let b = Int(buckets)
            let size = count / b, extra = count % b
            var k = 0
            for bucket in 0..<b {
                let length = size + (bucket < extra ? 1 : 0)
                for _ in 0..<length where k < count {
                    out[rows[k]] = .int(Int64(bucket + 1))
                    k += 1
                }
            }
        case "lag", "lead":
            guard let x = args.first else { throw KilnError.invalid("\(name.uppercased()) needs a column") }
            type = x.type
            let offset = args.count > 1 ? Int(args[1].value(0).int ?? 1) : 1
            for (k, r) in rows.enumerated() {
                let source = name == "lag" ? k - offset : k + offset
                if source >= 0, source < count { out[r] = x.value(rows[source]) } else if args.count > 2 { out[r] = args[2].value(r) }
            }
            if args.count > 2, x.type != args[2].type, args[2].type.isNumeric, x.type.isNumeric { type = .float64 }
        default:
            // Offsets and aggregates over the frame.
            guard let x = args.first ?? (name == "count" ? Column(type: .int64, values: .int([Int64](repeating: 1, count: out.count))) : nil) else {
                throw KilnError.invalid("\(name.uppercased()) needs an argument")
            }
            // Frames that start at the partition's first row (the default, UNBOUNDED PRECEDING) only grow: one
            // running aggregate serves every row, so a partition costs linear time. Sliding frames start afresh.
            let growing = self.rows.map { $0.start == nil } ?? true
            var running = FrameAggregate(name: name, x: x)
            var added = 0
            for (k, r) in rows.enumerated() {
                let (lo, hi) = bounds(k, count: count, peerEnd: peerEnd[k])
                guard lo < hi else {
                    out[r] = name == "count" ? .int(0) : .null
                    continue
                }
                let window = rows[lo..<hi]
                switch name {
                case "first_value", "first": out[r] = x.value(window.first!); type = x.type
                case "last_value", "last": out[r] = x.value(window.last!); type = x.type
                case "nth_value":
                    let nth = Int(args.count > 1 ? args[1].value(0).int ?? 1 : 1)
                    out[r] = nth >= 1 && nth <= window.count ? x.value(window[window.startIndex + nth - 1]) : .null
                    type = x.type
                default:  // count, min, max, sum, avg, mean
                    if growing {
                        while added < hi { running.add(rows[added]); added += 1 }
                        (out[r], type) = running.result
                    } else {
                        var fresh = FrameAggregate(name: name, x: x)
                        for i in window { fresh.add(i) }
                        (out[r], type) = fresh.result
                    }
                }
            }
        }
    }

    /// `count`, `sum` and `avg` over the default frame (the partition's start to the current row and its peers,
    /// or the whole partition without ORDER BY) of an integer or floating-point column, straight into a typed
    /// column: the values, types and summation order of ``FrameAggregate`` without a `Value` per row. Nil for
    /// other functions and types.
    private func runningAggregate(_ name: String, args: [Column], order: [Int], partition: Grouping, peers: (Int, Int) -> Bool) throws -> Column? {
        guard ["count", "sum", "avg", "mean"].contains(name) else { return nil }
        let n = order.count
        var ints: [Int64] = [], doubles: [Double] = []
        let x = args.first
        if let x {
            switch (x.type, x.values) {
            case (.int8, .int(let v)), (.int16, .int(let v)), (.int32, .int(let v)), (.int64, .int(let v)): ints = v
            case (.float32, .double(let v)), (.float64, .double(let v)): doubles = v
            default: return nil
            }
        } else if name != "count" {
            return nil
        }
        let integer = x == nil || !ints.isEmpty || x!.type.isInteger
        let validity = x?.validity
        var outInts = name == "count" || (name == "sum" && integer) ? [Int64](repeating: 0, count: n) : []
        var outDoubles = outInts.isEmpty ? [Double](repeating: 0, count: n) : []
        var outValid = [Bool](repeating: true, count: n)
        var start = 0
        while start < n {
            var seen = 0, intTotal: Int64 = 0, total = 0.0
            var k = start
            while k < n, k == start || partition.groupOf[order[k]] == partition.groupOf[order[start]] {
                // One peer group (the rest of the partition without ORDER BY) enters the frame at once.
                var end = k + 1
                while end < n, partition.groupOf[order[end]] == partition.groupOf[order[start]], orderBy.isEmpty || peers(order[end - 1], order[end]) {
                    end += 1
                }
                for i in k..<end where validity?[order[i]] ?? true {
                    seen += 1
                    if integer { if !ints.isEmpty { intTotal &+= ints[order[i]] } } else { total += doubles[order[i]] }
                }
                for i in k..<end {
                    let row = order[i]
                    switch name {
                    case "count": outInts[row] = Int64(seen)
                    case "sum" where integer: outInts[row] = intTotal; outValid[row] = seen > 0
                    case "sum": outDoubles[row] = total; outValid[row] = seen > 0
                    default: outDoubles[row] = seen > 0 ? (integer ? Double(intTotal) : total) / Double(seen) : 0; outValid[row] = seen > 0
                    }
                }
                k = end
            }
            start = k
        }
        let valid = outValid.contains(false) ? outValid : nil
        if !outInts.isEmpty { return Column(type: .int64, values: .int(outInts), validity: valid) }
        return Column(type: .float64, values: .double(outDoubles), validity: valid)
    }

    /// Row positions [lo, hi) of the frame of the row at position k.
    private func bounds(_ k: Int, count: Int, peerEnd: Int) -> (Int, Int) {
        guard let rows else { return orderBy.isEmpty ? (0, count) : (0, peerEnd) }
        let lo = rows.start.map { max(0, k + $0) } ?? 0
        let hi = rows.end.map { min(count, k + $0 + 1) } ?? count
        return (lo, hi)
    }

    static func less(_ a: Value, _ b: Value) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)): return x.utf8.lexicographicallyPrecedes(y.utf8)
        case (.bool(let x), .bool(let y)): return !x && y
        default:
            if let x = a.double ?? a.int.map(Double.init), let y = b.double ?? b.int.map(Double.init) { return x < y }
            return false
        }
    }
}

/// An aggregate over a window frame, fed one row at a time.
struct FrameAggregate {
    let name: String
    let x: Column
    var total = 0.0, intTotal: Int64 = 0, seen = 0
    var best: Value = .null

    init(name: String, x: Column) {
        self.name = name
        self.x = x
    }

    mutating func add(_ i: Int) {
        guard !x.isNull(i) else { return }
        seen += 1
        switch name {
        case "count": break
        case "min", "max":
            let v = x.value(i)
            if best == .null { best = v } else if name == "min" ? Window.less(v, best) : Window.less(best, v) { best = v }
        default:
            if x.type.isInteger, let v = x.value(i).int { intTotal &+= v } else { total += x.value(i).double ?? 0 }
        }
    }

    /// The value so far and its type.
    var result: (Value, FrameType) {
        switch name {
        case "count": return (.int(Int64(seen)), .int64)
        case "min", "max": return (best, x.type)
        default:
            let sumType: FrameType = x.type != .float32 ? (x.type.isNumeric ? x.type : .float64) : .float64
            var averageType = FrameType.float64
            if case .decimal(_, let s) = x.type { averageType = .decimal(precision: 38, scale: s + 4) }
            let type = name == "sum" ? (x.type.isInteger ? .int64 : sumType) : averageType
            if seen == 0 { return (.null, type) }
            if name == "sum", x.type.isInteger { return (.int(intTotal), .int64) }
            let sum = x.type.isInteger ? Double(intTotal) : total
            return (.double(name == "sum" ? sum : sum / Double(seen)), type)
        }
    }
}
