import Foundation
import KilnCore

/// Per-column statistics of a frame, as `kiln profile` shows them.
public struct ColumnProfile: Sendable {
    public var name: String
    public var type: FrameType
    public var count: Int
    public var nulls: Int
    public var distinct: Int
    public var min: Value
    public var max: Value
    /// Numbers only.
    public var mean: Double?
    public var stddev: Double?
    /// 25th, 50th and 75th percentiles (numbers only; linear interpolation).
    public var quantiles: [Double] = []
    /// Ten equal-width bins over [min, max] (numbers only): (lower bound, rows).
    public var histogram: [(lower: Double, count: Int)] = []
    /// The most frequent values (up to five), most frequent first.
    public var topValues: [(value: Value, count: Int)] = []
}

extension Frame {
    /// Profiles every column.
    public func profile() throws -> [ColumnProfile] {
        try zip(names, columns).map { name, column in
            let n = column.count
            let valid = (0..<n).filter { !column.isNull($0) }
            let one = [Int](repeating: 0, count: n)
            let grouping = Grouping(keys: [column], rows: n)
            var profile = ColumnProfile(name: name, type: column.type, count: n, nulls: n - valid.count,
                                        distinct: grouping.count - (valid.count < n ? 1 : 0),
                                        min: try Aggregates.compute("min", [column], groupOf: one, groups: 1, rows: n).value(0),
                                        max: try Aggregates.compute("max", [column], groupOf: one, groups: 1, rows: n).value(0))
            // Top values: group sizes.
            var sizes = [Int](repeating: 0, count: grouping.count)
            for i in valid { sizes[grouping.groupOf[i]] += 1 }
            profile.topValues = sizes.indices.filter { sizes[$0] > 0 }.sorted { sizes[$0] > sizes[$1] || (sizes[$0] == sizes[$1] && $0 < $1) }
                .prefix(5).map { (column.value(grouping.firstRow[$0]), sizes[$0]) }
            guard column.type.isNumeric, !valid.isEmpty else { return profile }
            let numbers = try Aggregates.numbers(column)
            let values = valid.map { numbers[$0] }.filter { !$0.isNaN }.sorted()
            guard let low = values.first, let high = values.last else { return profile }
            let mean = values.reduce(0, +) / Double(values.count)
            profile.mean = mean
            if values.count > 1 {
                profile.stddev = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)).squareRoot()
            }
            profile.quantiles = [0.25, 0.5, 0.75].map { q in
                let position = q * Double(values.count - 1)
                let a = Int(position.rounded(.down)), b = Int(position.rounded(.up))
                return values[a] + (values[b] - values[a]) * (position - Double(a))
            }
            let width = (high - low) / 10
            var bins = [Int](repeating: 0, count: 10)
            for v in values { bins[width > 0 ? Swift.min(9, Int((v - low) / width)) : 0] += 1 }
            profile.histogram = (0..<10).map { (low + Double($0) * width, bins[$0]) }
            return profile
        }
    }
}
