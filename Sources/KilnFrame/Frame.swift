import Foundation
import KilnCore
import KilnParquet

/// A named, typed set of equally long columns: the unit every Frame and SQL operation works on.
public struct Frame: Sendable, Equatable {
    public var names: [String]
    public var columns: [Column]

    public init(names: [String], columns: [Column]) {
        precondition(names.count == columns.count, "one name per column")
        self.names = names
        self.columns = columns
    }

    public static let empty = Frame(names: [], columns: [])

    public var rowCount: Int { columns.first?.count ?? 0 }
    public var types: [FrameType] { columns.map(\.type) }

    /// The column named `name` (case-insensitive). - Throws: when there is none.
    public func column(_ name: String) throws -> Column {
        guard let i = index(of: name) else {
            throw KilnError.invalid("No column '\(name)'; columns are \(names.joined(separator: ", "))")
        }
        return columns[i]
    }

    public func index(of name: String) -> Int? {
        let lower = name.lowercased()
        return names.firstIndex { $0.lowercased() == lower }
    }

    /// Rows `rows`, in order.
    public func take(_ rows: [Int]) -> Frame {
        Frame(names: names, columns: columns.map { $0.take(rows) })
    }

    /// The rows where `mask` is true (null counts as false).
    public func filter(_ mask: Column) -> Frame {
        guard case .bool(let bits) = mask.values else { return self }
        var rows: [Int] = []
        rows.reserveCapacity(bits.count / 2)
        if let valid = mask.validity {
            for i in bits.indices where bits[i] && valid[i] { rows.append(i) }
        } else {
            for i in bits.indices where bits[i] { rows.append(i) }
        }
        return rows.count == rowCount ? self : take(rows)
    }

    /// Rows `range`.
    public func slice(_ range: Range<Int>) -> Frame {
        take(Array(range.clamped(to: 0..<rowCount)))
    }

    /// Frames with the same column types one after another (names from the first).
    public static func concatenate(_ frames: [Frame]) -> Frame {
        guard let first = frames.first else { return .empty }
        if frames.count == 1 { return first }
        // Columns are independent: copy them in parallel when there is enough to copy.
        let width = first.columns.count
        guard width > 1, frames.reduce(0, { $0 + $1.rowCount }) > 100_000 else {
            return Frame(names: first.names, columns: first.columns.indices.map { i in Column.concatenate(frames.map { $0.columns[i] }) })
        }
        // The body cannot throw.
        let columns = try! concurrentMap(width) { i in Column.concatenate(frames.map { $0.columns[i] }) }
        return Frame(names: first.names, columns: columns)
    }

    /// Row `i` as scalars.
    public func row(_ i: Int) -> [Value] { columns.map { $0.value(i) } }

    /// The row order that sorts by `keys` (stable; nulls first when ascending, last when descending, as Spark).
    public static func sortOrder(_ keys: [(column: Column, descending: Bool, nullsFirst: Bool?)], count: Int) -> [Int] {
        sortOrder(keys, count: count, limit: nil)
    }

    /// The first `limit` rows of ``sortOrder(_:count:)`` (all of them when nil): for a small limit, a bounded heap
    /// over the rows (n log k, no n-sized sort), the same rows in the same order as sorting everything.
    public static func sortOrder(_ keys: [(column: Column, descending: Bool, nullsFirst: Bool?)], count: Int, limit: Int?) -> [Int] {
        let comparators: [(Int, Int) -> Int] = keys.map { key in
            let column = key.column
            let nullsFirst = key.nullsFirst ?? !key.descending
            let direction = key.descending ? -1 : 1
            func nulls(_ a: Int, _ b: Int) -> Int? {
                let na = column.isNull(a), nb = column.isNull(b)
                if na && nb { return 0 }
                if na { return nullsFirst ? -1 : 1 }
                if nb { return nullsFirst ? 1 : -1 }
                return nil
            }
            switch column.values {
            case .bool(let v): return { a, b in nulls(a, b) ?? direction * (v[a] == v[b] ? 0 : (!v[a] ? -1 : 1)) }
            case .int(let v): return { a, b in nulls(a, b) ?? direction * (v[a] < v[b] ? -1 : v[a] > v[b] ? 1 : 0) }
            case .double(let v):
                return { a, b in
                    if let n = nulls(a, b) { return n }
                    let x = v[a], y = v[b]
                    // NaN sorts above every number, as in Spark.
                    if x.isNaN || y.isNaN { return direction * (x.isNaN == y.isNaN ? 0 : x.isNaN ? 1 : -1) }
                    return direction * (x < y ? -1 : x > y ? 1 : 0)
                }
            case .bytes(let v):
                return { a, b in
                    if let n = nulls(a, b) { return n }
                    let x = v[a], y = v[b]
                    return direction * (x == y ? 0 : x.lexicographicallyPrecedes(y) ? -1 : 1)
                }
            }
        }
        func before(_ a: Int, _ b: Int) -> Bool {
            for compare in comparators {
                let c = compare(a, b)
                if c != 0 { return c < 0 }
            }
            return a < b
        }
        if let limit, limit < count / 4 {
            // One or two fixed-width keys: compare their order-preserving encodings instead of through closures.
            if let encoded = normalizedKeys(keys, count: count), (1...2).contains(encoded.count) {
                let a = encoded[0], b = encoded.count == 2 ? encoded[1] : nil
                return a.withUnsafeBufferPointer { a in
                    guard let b else { return topRows(count: count, limit: max(0, limit)) { x, y in a[x] < a[y] || (a[x] == a[y] && x < y) } }
                    return b.withUnsafeBufferPointer { b in
                        topRows(count: count, limit: max(0, limit)) { x, y in
                            a[x] < a[y] || (a[x] == a[y] && (b[x] < b[y] || (b[x] == b[y] && x < y)))
                        }
                    }
                }
            }
            // A leading string key without nulls: compare the first eight bytes as one integer, the rest only on ties.
            if let first = keys.first, case .bytes(let v) = first.column.values, first.column.validity?.contains(false) != true {
                let prefix = Self.bytePrefixes(v, descending: first.descending)
                return prefix.withUnsafeBufferPointer { p in
                    topRows(count: count, limit: max(0, limit)) { x, y in p[x] != p[y] ? p[x] < p[y] : before(x, y) }
                }
            }
            return topRows(count: count, limit: max(0, limit), before: before)
        }
        if count > 64, let fast = normalizedOrder(keys, count: count) { return fast }
        var order = Array(0..<count)
        order.sort(by: before)
        return order
    }

    /// The same order as the comparators of ``sortOrder(_:count:limit:)``, for up to five encoded fixed-width keys (integers,
    /// doubles, booleans; a key with nulls counts twice): each key becomes an order-preserving `UInt64` (integers with
    /// the sign bit flipped; doubles by their IEEE bits, negatives inverted, -0 as 0 and every NaN as one NaN above
    /// every number; descending keys inverted; nulls a rank before the value), and rows sort as plain tuples ending in
    /// the row number — no closure per comparison. Nil for strings or more keys.
    static func normalizedOrder(_ keys: [(column: Column, descending: Bool, nullsFirst: Bool?)], count: Int) -> [Int]? {
        guard let encoded = normalizedKeys(keys, count: count) else { return nil }
        switch encoded.count {
        case 1:
            let a = encoded[0]
            var rows = (0..<count).map { (a[$0], $0) }
            rows.sort(by: <)
            return rows.map(\.1)
        case 2:
            let a = encoded[0], b = encoded[1]
            var rows = (0..<count).map { (a[$0], b[$0], $0) }
            rows.sort(by: <)
            return rows.map(\.2)
        case 3:
            let a = encoded[0], b = encoded[1], c = encoded[2]
            var rows = (0..<count).map { (a[$0], b[$0], c[$0], $0) }
            rows.sort(by: <)
            return rows.map(\.3)
        case 4:
            let a = encoded[0], b = encoded[1], c = encoded[2], d = encoded[3]
            var rows = (0..<count).map { (a[$0], b[$0], c[$0], d[$0], $0) }
            rows.sort(by: <)
            return rows.map(\.4)
        case 5:
            let a = encoded[0], b = encoded[1], c = encoded[2], d = encoded[3], e = encoded[4]
            var rows = (0..<count).map { (a[$0], b[$0], c[$0], d[$0], e[$0], $0) }
            rows.sort(by: <)
            return rows.map(\.5)
        default:
            return nil
        }
    }

    /// Each key as order-preserving `UInt64`s (see ``normalizedOrder(_:count:)``; a key with nulls gives two), or nil
    /// for strings or more than five.
    static func normalizedKeys(_ keys: [(column: Column, descending: Bool, nullsFirst: Bool?)], count: Int) -> [[UInt64]]? {
        var encoded: [[UInt64]] = []
        for key in keys {
            var values = [UInt64](repeating: 0, count: count)
            switch key.column.values {
            case .int(let v):
                for i in 0..<count { values[i] = UInt64(bitPattern: v[i]) ^ (1 << 63) }
            case .double(let v):
                for i in 0..<count {
                    var x = v[i]
                    if x.isNaN { x = .nan } else if x == 0 { x = 0 }
                    let bits = x.bitPattern
                    values[i] = bits & (1 << 63) != 0 ? ~bits : bits | (1 << 63)
                }
            case .bool(let v):
                for i in 0..<count { values[i] = v[i] ? 1 : 0 }
            case .bytes:
                return nil
            }
            if key.descending { for i in 0..<count { values[i] = ~values[i] } }
            if let validity = key.column.validity, validity.contains(false) {
                let nullsFirst = key.nullsFirst ?? !key.descending
                var rank = [UInt64](repeating: nullsFirst ? 1 : 0, count: count)
                for i in 0..<count where !validity[i] {
                    rank[i] = nullsFirst ? 0 : 1
                    values[i] = 0
                }
                encoded.append(rank)
            }
            encoded.append(values)
            if encoded.count > 5 { return nil }
        }
        return encoded
    }

    /// Each value's first eight bytes as a big-endian integer (zero-padded), inverted when `descending`: where two
    /// values' prefixes differ they order as the values do; equal prefixes say nothing.
    static func bytePrefixes(_ v: ByteColumn, descending: Bool) -> [UInt64] {
        [UInt64](unsafeUninitializedCapacity: v.count) { out, initialized in
            v.offsets.withUnsafeBufferPointer { o in
                v.data.withUnsafeBufferPointer { d in
                    for i in 0..<v.count {
                        let start = o[i], length = min(8, o[i + 1] - start)
                        var key: UInt64 = 0
                        for k in 0..<length { key |= UInt64(d[start + k]) << (56 - 8 * UInt64(k)) }
                        (out.baseAddress! + i).initialize(to: descending ? ~key : key)
                    }
                }
            }
            initialized = v.count
        }
    }

    /// The `limit` rows that come first by `before` (a strict total order), in that order: a max-heap of the best so
    /// far whose root is the worst kept; a row replaces it only when it comes before it.
    static func topRows(count: Int, limit: Int, before: (Int, Int) -> Bool) -> [Int] {
        guard limit > 0 else { return [] }
        var heap: [Int] = []
        heap.reserveCapacity(limit)
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var worst = i
                if l < heap.count, before(heap[worst], heap[l]) { worst = l }
                if r < heap.count, before(heap[worst], heap[r]) { worst = r }
                if worst == i { return }
                heap.swapAt(i, worst)
                i = worst
            }
        }
        for row in 0..<count {
            if heap.count < limit {
                heap.append(row)
                var i = heap.count - 1
                while i > 0 {
                    let parent = (i - 1) / 2
                    guard before(heap[parent], heap[i]) else { break }
                    heap.swapAt(parent, i)
                    i = parent
                }
            } else if before(row, heap[0]) {
                heap[0] = row
                siftDown(0)
            }
        }
        heap.sort(by: before)
        return heap
    }
}

/// Dense group ids for rows by the values of key columns (nulls form their own group, as GROUP BY does).
public struct Grouping: Sendable {
    /// The group of each row.
    public var groupOf: [Int]
    /// The first row of each group, in order of first appearance.
    public var firstRow: [Int]
    public var count: Int { firstRow.count }

    public init(keys: [Column], rows: Int) {
        guard !keys.isEmpty else {
            groupOf = [Int](repeating: 0, count: rows)
            firstRow = rows > 0 ? [0] : []
            return
        }
        // Each key column becomes dense codes; codes combine into one integer key per row when they fit.
        var codes: [[Int]] = []
        var cardinalities: [Int] = []
        for key in keys {
            let (c, n) = Grouping.codes(key)
            codes.append(c)
            cardinalities.append(n)
        }
        if codes.count == 1 {
            // Codes are dense in order of first appearance already: they are the groups.
            var firstRow = [Int](repeating: 0, count: cardinalities[0])
            var seen = 0
            codes[0].withUnsafeBufferPointer { c in
                for i in 0..<rows where c[i] == seen {
                    firstRow[seen] = i
                    seen += 1
                }
            }
            self.groupOf = codes[0]
            self.firstRow = Array(firstRow.prefix(seen))
            return
        }
        var combined = [Int](repeating: 0, count: rows)
        var space = 1
        var overflow = false
        for (c, n) in zip(codes, cardinalities) {
            let (product, o) = space.multipliedReportingOverflow(by: n)
            if o { overflow = true; break }
            space = product
            for i in 0..<rows { combined[i] = combined[i] * n + c[i] }
        }
        var groupOf = [Int](repeating: 0, count: rows)
        var firstRow: [Int] = []
        if !overflow && space <= max(1 << 20, rows * 2) {
            var map = [Int](repeating: -1, count: space)
            for i in 0..<rows {
                let k = combined[i]
                if map[k] < 0 {
                    map[k] = firstRow.count
                    firstRow.append(i)
                }
                groupOf[i] = map[k]
            }
        } else if !overflow {
            var map: [Int: Int] = [:]
            map.reserveCapacity(rows / 4)
            for i in 0..<rows {
                if let g = map[combined[i]] { groupOf[i] = g } else {
                    map[combined[i]] = firstRow.count
                    groupOf[i] = firstRow.count
                    firstRow.append(i)
                }
            }
        } else {
            var map: [[Int]: Int] = [:]
            for i in 0..<rows {
                let k = codes.map { $0[i] }
                if let g = map[k] { groupOf[i] = g } else {
                    map[k] = firstRow.count
                    groupOf[i] = firstRow.count
                    firstRow.append(i)
                }
            }
        }
        self.groupOf = groupOf
        self.firstRow = firstRow
    }

    /// Keeps only the rows where `mask` is true (not null): those rows get dense groups in order of first appearance,
    /// the others all go to one extra group, numbered `count` (the last), which callers drop.
    public mutating func restrict(to mask: Column) {
        guard case .bool(let bits) = mask.values else { return }
        let valid = mask.validity
        var renumber = [Int](repeating: -1, count: count)
        var kept: [Int] = []
        for i in groupOf.indices where bits[i] && (valid?[i] ?? true) {
            let g = groupOf[i]
            if renumber[g] < 0 {
                renumber[g] = kept.count
                kept.append(i)
            }
        }
        let rest = kept.count
        groupOf.withUnsafeMutableBufferPointer { groupOf in
            for i in groupOf.indices { groupOf[i] = bits[i] && (valid?[i] ?? true) ? renumber[groupOf[i]] : rest }
        }
        firstRow = kept
    }

    /// Dense codes 0..<n for a column's distinct values, in order of first appearance (null is one more value).
    static func codes(_ column: Column) -> (codes: [Int], count: Int) {
        let rows = column.count
        var next = 0
        let valid = column.validity
        /// Fills codes with `lookup` for non-null rows; the loop has no captured mutable state (no exclusivity checks).
        func fill(_ lookup: (Int, inout Int) -> Int) -> [Int] {
            [Int](unsafeUninitializedCapacity: rows) { out, initialized in
                var n = 0, nulls = -1
                if let valid {
                    for i in 0..<rows {
                        if valid[i] { out[i] = lookup(i, &n) } else {
                            if nulls < 0 { nulls = n; n += 1 }
                            out[i] = nulls
                        }
                    }
                } else {
                    for i in 0..<rows { out[i] = lookup(i, &n) }
                }
                initialized = rows
                next = n
            }
        }
        // Integers with a small value range: codes through an array indexed by value, no hashing.
        if case .int(let v) = column.values, rows > 0 {
            var lo = Int64.max, hi = Int64.min
            v.withUnsafeBufferPointer { v in
                for i in 0..<rows where valid?[i] ?? true { lo = Swift.min(lo, v[i]); hi = Swift.max(hi, v[i]) }
            }
            if lo > hi { lo = 0; hi = 0 }
            let (span, overflow) = hi.subtractingReportingOverflow(lo)
            if !overflow, span < Int64(Swift.max(1 << 22, 2 * rows)) {
                var table = [Int32](repeating: -1, count: Int(span) + 1)
                let codes = v.withUnsafeBufferPointer { v in
                    table.withUnsafeMutableBufferPointer { table in
                        fill { i, n in
                            let slot = Int(v[i] &- lo)
                            let c = table[slot]
                            if c >= 0 { return Int(c) }
                            table[slot] = Int32(n)
                            n += 1
                            return n - 1
                        }
                    }
                }
                return (codes, max(next, 1))
            }
        }
        let codes: [Int]
        switch column.values {
        case .bool(let v):
            var seen = [-1, -1]
            codes = fill { i, n in
                let b = v[i] ? 1 : 0
                if seen[b] < 0 { seen[b] = n; n += 1 }
                return seen[b]
            }
        case .int(let v):
            var map = U64CodeTable()
            codes = fill { i, n in map.code(UInt64(bitPattern: v[i]), next: &n) }
        case .double(let v):
            var map = U64CodeTable()
            codes = fill { i, n in
                // -0.0 groups with 0.0, and every NaN with every other NaN.
                let d = v[i] == 0 ? 0 : v[i].isNaN ? Double.nan : v[i]
                return map.code(d.bitPattern, next: &n)
            }
        case .bytes(let v) where v.offsets.withUnsafeBufferPointer({ o in (0..<v.count).allSatisfy { o[$0 + 1] - o[$0] <= 7 } }):
            // Short strings (flags, codes): packed with their length into one integer; a direct table when the
            // strings are at most two bytes, else a hash map.
            var small = [Int32](repeating: -1, count: 3 << 16)
            var map = U64CodeTable()
            codes = v.data.withUnsafeBufferPointer { data in
                v.offsets.withUnsafeBufferPointer { offsets in
                    small.withUnsafeMutableBufferPointer { small in
                        fill { i, n in
                            let start = offsets[i], end = offsets[i + 1]
                            var key = UInt64(end - start)
                            for k in start..<end { key = key << 8 | UInt64(data[k]) }
                            if end - start <= 2 {
                                let index = (end - start) << 16 | Int(key & 0xFFFF)
                                let c = small[index]
                                if c >= 0 { return Int(c) }
                                small[index] = Int32(n)
                                n += 1
                                return n - 1
                            }
                            return map.code(key, next: &n)
                        }
                    }
                }
            }
        case .bytes(let v):
            var map: [ArraySlice<UInt8>: Int] = [:]
            codes = fill { i, n in
                let key = v[i]
                if let c = map[key] { return c }
                map[key] = n
                n += 1
                return n - 1
            }
        }
        return (codes, max(next, 1))
    }
}

/// Dense codes for 64-bit keys (grouping's integers, doubles and short strings): open addressing with linear probing
/// and a multiplicative hash under a per-process random seed — several times cheaper than `Dictionary`'s SipHash on
/// millions of rows, and keys a query's data cannot line up against (the seed is not known to it).
struct U64CodeTable {
    static let seed = UInt64.random(in: .min ... .max) | 1
    private var keys: [UInt64]
    private var codes: [Int32]
    private var mask: Int
    private var filled = 0

    init(capacity: Int = 1024) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: 0, count: size)
        codes = [Int32](repeating: -1, count: size)
        mask = size - 1
    }

    @inline(__always) func slot(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: ((key ^ Self.seed) &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    /// The code of `key`: the one it has, or `next` (then advanced).
    @inline(__always) mutating func code(_ key: UInt64, next: inout Int) -> Int {
        var i = slot(key)
        while true {
            let c = codes[i]
            if c < 0 { break }
            if keys[i] == key { return Int(c) }
            i = (i + 1) & mask
        }
        let c = next
        keys[i] = key
        codes[i] = Int32(truncatingIfNeeded: c)
        next += 1
        filled += 1
        if filled * 2 > keys.count { grow() }
        return c
    }

    private mutating func grow() {
        let (oldKeys, oldCodes) = (keys, codes)
        keys = [UInt64](repeating: 0, count: oldKeys.count * 2)
        codes = [Int32](repeating: -1, count: oldKeys.count * 2)
        mask = keys.count - 1
        for j in oldKeys.indices where oldCodes[j] >= 0 {
            var i = slot(oldKeys[j])
            while codes[i] >= 0 { i = (i + 1) & mask }
            keys[i] = oldKeys[j]
            codes[i] = oldCodes[j]
        }
    }
}
