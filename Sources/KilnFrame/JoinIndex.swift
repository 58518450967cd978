import Foundation
import KilnCore

/// The build side of an equality join, indexed once and probed by any number of row batches (a streamed probe
/// side goes through it chunk by chunk).
///
/// Integer keys (one, or several whose value ranges multiply within 2^62, packed into one) chain the build rows per
/// key: in an array indexed by value when the range is at most 8 values per build row (or 4M), else in an
/// open-addressing hash table. Other keys (strings, doubles, a
/// mix) keep the build keys and group both sides together at each probe, which costs the build side again per
/// probe: ``isGeneral`` tells a planner not to stream many batches through a large one.
public struct JoinIndex: Sendable {
    /// The types both sides' keys are cast to before they are compared.
    public let types: [FrameType]
    /// Build-side rows.
    public let rows: Int
    private let storage: Storage
    /// Per key: the smallest build value and how many values its range holds (integer storage).
    private let ranges: [(lo: Int64, span: Int64)]

    private enum Storage: Sendable {
        case none
        case dense(head: [Int32], next: [Int32])
        /// Open addressing with linear probing: `slots` keys, `heads` their first build rows (-1: empty slot).
        case hashed(slots: [Int64], heads: [Int32], next: [Int32], shift: UInt64)
        case general([Column])
    }

    /// Whether probes group the build keys again (keys that are not all integers, or whose ranges do not pack).
    public var isGeneral: Bool {
        if case .general = storage { return true }
        return false
    }

    /// Indexes `keys` (the build side, `rows` rows) cast to `types`.
    public init(keys: [Column], rows: Int, types: [FrameType]) throws {
        precondition(keys.count == types.count)
        self.types = types
        self.rows = rows
        let cast = try zip(keys, types).map { try $0.cast(to: $1) }
        guard !cast.isEmpty, rows < Int(Int32.max), let integers = Self.integers(cast) else {  // no keys: every pair
            storage = .general(cast)
            ranges = []
            return
        }
        // Each key's range over the rows whose keys are all present.
        let valid = Self.allValid(cast, rows: rows)
        var lows = [Int64](repeating: .max, count: cast.count), highs = [Int64](repeating: .min, count: cast.count)
        for (k, values) in integers.enumerated() {
            values.withUnsafeBufferPointer { v in
                for j in 0..<rows where valid?[j] ?? true {
                    lows[k] = min(lows[k], v[j])
                    highs[k] = max(highs[k], v[j])
                }
            }
        }
        guard lows[0] <= highs[0] else {
            storage = .none
            ranges = []
            return
        }
        var spans: [(lo: Int64, span: Int64)] = []
        var product: Int64 = 1
        for k in cast.indices {
            let (difference, o1) = highs[k].subtractingReportingOverflow(lows[k])
            let (span, o2) = difference.addingReportingOverflow(1)
            let (next, o3) = product.multipliedReportingOverflow(by: span)
            guard !o1, !o2, !o3, next < 1 << 62 else {
                storage = .general(cast)
                ranges = []
                return
            }
            spans.append((lows[k], span))
            product = next
        }
        ranges = spans
        let packed = Self.pack(integers, valid: valid, rows: rows, ranges: spans)
        var next = [Int32](repeating: -1, count: rows)
        if product <= Int64(max(1 << 22, 8 * rows)) {
            var head = [Int32](repeating: -1, count: Int(product))
            head.withUnsafeMutableBufferPointer { head in
                next.withUnsafeMutableBufferPointer { next in
                    packed.withUnsafeBufferPointer { p in
                        // Inserted in reverse so each chain lists build rows in order.
                        for j in (0..<rows).reversed() where p[j] >= 0 {
                            next[j] = head[Int(p[j])]
                            head[Int(p[j])] = Int32(j)
                        }
                    }
                }
            }
            storage = .dense(head: head, next: next)
        } else {
            var bits = 4
            while 1 << bits < 2 * rows { bits += 1 }
            var slots = [Int64](repeating: 0, count: 1 << bits), heads = [Int32](repeating: -1, count: 1 << bits)
            let shift = UInt64(64 - bits), mask = (1 << bits) - 1
            slots.withUnsafeMutableBufferPointer { slots in
                heads.withUnsafeMutableBufferPointer { heads in
                    next.withUnsafeMutableBufferPointer { next in
                        packed.withUnsafeBufferPointer { p in
                            for j in (0..<rows).reversed() where p[j] >= 0 {
                                var slot = Self.slot(p[j], shift)
                                while heads[slot] >= 0, slots[slot] != p[j] { slot = (slot + 1) & mask }
                                slots[slot] = p[j]
                                next[j] = heads[slot]
                                heads[slot] = Int32(j)
                            }
                        }
                    }
                }
            }
            storage = .hashed(slots: slots, heads: heads, next: next, shift: shift)
        }
    }

    /// The matching (probe row, build row) pairs for probe keys of `rows` rows: probe rows in order, each one's build
    /// rows in order. Null keys match nothing, nor do rows `keep` (a filter's mask, nulls false) leaves out.
    public func pairs(_ keys: [Column], rows: Int, keep: Column? = nil) throws -> (left: [Int], right: [Int]) {
        precondition(keys.count == types.count)
        var cast = try zip(keys, types).map { try $0.cast(to: $1) }
        if let keep, case .bool(let bits) = keep.values {
            // The mask joins the keys' validity: a row it drops is a row without a key.
            let valid = keep.validity.map { v in zip(bits, v).map { $0 && $1 } } ?? bits
            cast[0].validity = cast[0].validity.map { v in zip(v, valid).map { $0 && $1 } } ?? valid
        }
        switch storage {
        case .none:
            return ([], [])
        case .general(let build):
            return try Self.groupedPairs(cast, build, leftRows: rows, rightRows: self.rows)
        case .dense, .hashed:
            guard let integers = Self.integers(cast) else { throw KilnError(.internalError, "Join keys of \(types) are not integers") }
            let valid = Self.allValid(cast, rows: rows)
            var left: [Int] = [], right: [Int] = []
            left.reserveCapacity(rows)
            right.reserveCapacity(rows)
            // One key probes its values straight; several pack first (a value outside a build range matches nothing).
            let probe = integers.count == 1 && valid == nil ? integers[0] : Self.pack(integers, valid: valid, rows: rows, ranges: ranges)
            let offset = integers.count == 1 && valid == nil ? ranges[0].lo : 0
            let limit = integers.count == 1 && valid == nil ? ranges[0].span : Int64.max
            probe.withUnsafeBufferPointer { p in
                switch storage {
                case .dense(let head, let next):
                    head.withUnsafeBufferPointer { head in
                        next.withUnsafeBufferPointer { next in
                            let size = UInt64(head.count)
                            for i in 0..<rows {
                                let slot = UInt64(bitPattern: p[i] &- offset)
                                guard slot < size else { continue }  // below the range wraps past it; -1 is "no key"
                                var j = head[Int(slot)]
                                while j >= 0 {
                                    left.append(i)
                                    right.append(Int(j))
                                    j = next[Int(j)]
                                }
                            }
                        }
                    }
                case .hashed(let slots, let heads, let next, let shift):
                    slots.withUnsafeBufferPointer { slots in
                        heads.withUnsafeBufferPointer { heads in
                            next.withUnsafeBufferPointer { next in
                                let mask = slots.count - 1
                                for i in 0..<rows {
                                    let key = p[i] &- offset
                                    guard key >= 0, key < limit else { continue }
                                    var slot = Self.slot(key, shift)
                                    while heads[slot] >= 0, slots[slot] != key { slot = (slot + 1) & mask }
                                    var j = heads[slot]
                                    while j >= 0 {
                                        left.append(i)
                                        right.append(Int(j))
                                        j = next[Int(j)]
                                    }
                                }
                            }
                        }
                    }
                default: break
                }
            }
            return (left, right)
        }
    }

    /// A key's home slot in a table of 2^(64 - shift) slots (Fibonacci hashing: the high bits of a multiplication).
    @inline(__always) private static func slot(_ key: Int64, _ shift: UInt64) -> Int {
        Int(truncatingIfNeeded: (UInt64(bitPattern: key) &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The integer values of every key, or nil when one is not stored as plain integers.
    private static func integers(_ keys: [Column]) -> [[Int64]]? {
        var out: [[Int64]] = []
        for key in keys {
            guard case .int(let values) = key.values, key.unscaled == nil else { return nil }
            out.append(values)
        }
        return out
    }

    /// Whether each row has every key (nil: all do).
    private static func allValid(_ keys: [Column], rows: Int) -> [Bool]? {
        let masks = keys.compactMap(\.validity)
        guard var valid = masks.first else { return nil }
        for mask in masks.dropFirst() {
            for i in 0..<rows where !mask[i] { valid[i] = false }
        }
        return valid
    }

    /// One packed value per row, `(v0 - lo0) + span0 * ((v1 - lo1) + span1 * ...)`; -1 where a key is null or out
    /// of its range.
    private static func pack(_ keys: [[Int64]], valid: [Bool]?, rows: Int, ranges: [(lo: Int64, span: Int64)]) -> [Int64] {
        var packed = [Int64](repeating: 0, count: rows)
        var multiplier: Int64 = 1
        for (values, range) in zip(keys, ranges) {
            values.withUnsafeBufferPointer { v in
                packed.withUnsafeMutableBufferPointer { p in
                    for i in 0..<rows where p[i] >= 0 {
                        let offset = v[i] &- range.lo
                        p[i] = UInt64(bitPattern: offset) < UInt64(range.span) ? p[i] + offset * multiplier : -1
                    }
                }
            }
            multiplier *= range.span
        }
        if let valid {
            for i in 0..<rows where !valid[i] { packed[i] = -1 }
        }
        return packed
    }

    /// Pairs of keys of any types: both sides grouped together, build rows listed per group.
    static func groupedPairs(_ leftKeys: [Column], _ rightKeys: [Column], leftRows: Int, rightRows: Int) throws -> (left: [Int], right: [Int]) {
        let (grouping, hasNull) = try Frame.sharedKeyGroups(leftKeys, rightKeys, rows: leftRows + rightRows)
        // Right rows by group: counting sort into one array.
        var start = [Int](repeating: 0, count: grouping.count + 1)
        for j in 0..<rightRows where !hasNull(leftRows + j) { start[grouping.groupOf[leftRows + j] + 1] += 1 }
        for g in 0..<grouping.count { start[g + 1] += start[g] }
        var fill = start
        var members = [Int](repeating: 0, count: start[grouping.count])
        for j in 0..<rightRows where !hasNull(leftRows + j) {
            let g = grouping.groupOf[leftRows + j]
            members[fill[g]] = j
            fill[g] += 1
        }
        var left: [Int] = [], right: [Int] = []
        left.reserveCapacity(leftRows)
        right.reserveCapacity(leftRows)
        for i in 0..<leftRows where !hasNull(i) {
            let g = grouping.groupOf[i]
            for k in start[g]..<start[g + 1] {
                left.append(i)
                right.append(members[k])
            }
        }
        return (left, right)
    }
}
