import Foundation
import KilnCore
import KilnFrame
import KilnParquet

/// k-means (Lloyd's algorithm) with scikit-learn's greedy k-means++ start: same defaults (tol 1e-4 relative to the
/// mean feature variance, 300 iterations, one start), empty clusters moved to the point farthest from its center.
/// Distances are computed in fixed row blocks on all cores and summed in block order, so results do not depend on
/// the core count.
public struct KMeans: Sendable {
    public var k = 8
    public var maxIterations = 300
    public var tolerance = 1e-4
    /// Independent starts; the one with the least inertia wins.
    public var starts = 1
    /// "k-means++" or "random" (k distinct rows).
    public var initialization = "k-means++"
    public var seed: UInt64 = 0

    public init() {}

    static let block = 4096

    public func fit(_ data: Dataset) throws -> KMeansModel {
        let n = data.rows, d = data.width
        guard k >= 1 else { throw KilnError.invalid("k must be at least 1") }
        guard n >= k else { throw KilnError.invalid("k-means needs at least k=\(k) rows; the training data has \(n)") }
        guard !data.hasMissing else { throw KilnError.invalid("k-means cannot use missing feature values; impute them first (an imputer stage)") }
        // Tolerance relative to the data's mean variance, as scikit-learn.
        var mean = [Double](repeating: 0, count: d), sq = [Double](repeating: 0, count: d)
        data.features.withUnsafeBufferPointer { x in
            for i in 0..<n { for j in 0..<d { mean[j] += x[i * d + j] } }
            for j in 0..<d { mean[j] /= Double(n) }
            for i in 0..<n { for j in 0..<d { let e = x[i * d + j] - mean[j]; sq[j] += e * e } }
        }
        let variance = sq.reduce(0) { $0 + $1 / Double(n) }
        let threshold = tolerance * variance / Double(max(d, 1))
        var best: KMeansModel?
        for start in 0..<max(starts, 1) {
            var generator = SplitMix64.stream(UInt64(start), of: seed)
            var centers = initialization == "random" ? randomStart(data, &generator) : plusPlus(data, &generator)
            var iterations = 0
            for iteration in 0..<maxIterations {
                iterations = iteration + 1
                let step = try Self.assign(data, centers: centers, k: k)
                var next = step.sums
                var farthest = step.farthest.sorted { $0.distance > $1.distance }.makeIterator()
                for c in 0..<k {
                    if step.counts[c] == 0 {
                        // An empty cluster restarts at the worst-served point.
                        let row = farthest.next()?.row ?? 0
                        for j in 0..<d { next[c * d + j] = data.features[row * d + j] }
                    } else {
                        for j in 0..<d { next[c * d + j] /= Double(step.counts[c]) }
                    }
                }
                var shift = 0.0
                for e in 0..<(k * d) { let delta = next[e] - centers[e]; shift += delta * delta }
                centers = next
                if shift <= threshold { break }
            }
            let final = try Self.assign(data, centers: centers, k: k)
            let model = KMeansModel(centers: centers, width: d, inertia: final.inertia, iterations: iterations)
            if best == nil || model.inertia < best!.inertia { best = model }
        }
        return best!
    }

    func randomStart(_ data: Dataset, _ generator: inout SplitMix64) -> [Double] {
        var rows = Array(0..<data.rows)
        rows.shuffle(using: &generator)
        return rows.prefix(k).flatMap { Array(data.row($0)) }
    }

    /// Greedy k-means++: each new center is the best of 2 + ⌊ln k⌋ candidates drawn in proportion to the squared
    /// distance to the nearest chosen center.
    func plusPlus(_ data: Dataset, _ generator: inout SplitMix64) -> [Double] {
        let n = data.rows, d = data.width
        let trials = 2 + Int(Foundation.log(Double(k)))
        // Squared distances of every row to each of `rows`, in fixed row blocks on all cores: one pass over the data
        // for all of a round's candidates.
        func distances(to rows: [Int]) -> [[Double]] {
            let blocks = (n + Self.block - 1) / Self.block, m = rows.count
            let parts = (try? concurrentMap(blocks) { b -> [Double] in
                let start = b * Self.block, end = min(n, (b + 1) * Self.block), size = end - start
                var out = [Double](repeating: 0, count: m * size)
                var tile = [Double](repeating: 0, count: 64 * d)
                data.features.withUnsafeBufferPointer { x in
                    out.withUnsafeMutableBufferPointer { s in
                        tile.withUnsafeMutableBufferPointer { t in
                            // 64 rows at a time, transposed to feature-major so that for each candidate and feature the
                            // 64 independent sums vectorize; each row's sum still runs over the features in order.
                            var lo = start
                            while lo < end {
                                let hi = min(end, lo + 64), width = hi - lo
                                for i in 0..<width { for j in 0..<d { t[j * 64 + i] = x[(lo + i) * d + j] } }
                                for (c, row) in rows.enumerated() {
                                    // Raw pointers and no overflow checks in the innermost loop, so that it vectorizes.
                                    let sums = s.baseAddress! + (c * size + (lo - start))
                                    for j in 0..<d {
                                        let center = x[row * d + j], column = UnsafePointer(t.baseAddress! + j * 64)
                                        var i = 0
                                        while i < width { let e = column[i] - center; sums[i] += e * e; i &+= 1 }
                                    }
                                }
                                lo = hi
                            }
                        }
                    }
                }
                return out
            }) ?? []
            return (0..<m).map { c in
                var all: [Double] = []
                all.reserveCapacity(n)
                for (b, part) in parts.enumerated() {
                    let size = min(n, (b + 1) * Self.block) - b * Self.block
                    all += part[(c * size)..<((c + 1) * size)]
                }
                return all
            }
        }
        let first = Int(generator.next() % UInt64(n))
        var centers = Array(data.row(first))
        var closest = distances(to: [first])[0]
        var potential = closest.reduce(0, +)
        for _ in 1..<k {
            var cumulative = [Double](repeating: 0, count: n)
            var running = 0.0
            for i in 0..<n { running += closest[i]; cumulative[i] = running }
            // The round's candidates: for each draw, the first row whose cumulative distance reaches it.
            let candidates = (0..<trials).map { _ -> Int in
                let target = Double(generator.next() >> 11) / Double(1 << 53) * potential
                var lo = 0, hi = n - 1
                while lo < hi { let mid = (lo + hi) / 2; if cumulative[mid] < target { lo = mid + 1 } else { hi = mid } }
                return lo
            }
            var bestRow = 0, bestPotential = Double.infinity, bestDistances: [Double] = []
            for (candidate, distances) in zip(candidates, distances(to: candidates)) {
                var total = 0.0
                for i in 0..<n { total += min(closest[i], distances[i]) }
                if total < bestPotential { (bestRow, bestPotential, bestDistances) = (candidate, total, distances) }
            }
            centers += data.row(bestRow)
            for i in 0..<n { closest[i] = min(closest[i], bestDistances[i]) }
            potential = bestPotential
        }
        return centers
    }

    struct Step {
        var sums: [Double]
        var counts: [Int]
        var inertia: Double
        /// Per block, the row farthest from its center.
        var farthest: [(row: Int, distance: Double)]
    }

    /// Assigns rows to their nearest centers: per-cluster sums and counts, inertia.
    static func assign(_ data: Dataset, centers: [Double], k: Int) throws -> Step {
        let n = data.rows, d = data.width
        let blocks = (n + block - 1) / block
        let transposed = transpose(centers, k: k, d: d)
        let parts = try concurrentMap(blocks) { b -> Step in
            var part = Step(sums: [Double](repeating: 0, count: k * d), counts: [Int](repeating: 0, count: k), inertia: 0, farthest: [])
            var far = (row: 0, distance: -1.0)
            var scratch = [Double](repeating: 0, count: k)
            data.features.withUnsafeBufferPointer { x in
                transposed.withUnsafeBufferPointer { c in
                    for i in (b * block)..<min(n, (b + 1) * block) {
                        let (best, distance) = nearest(x, i, c, k: k, d: d, scratch: &scratch)
                        part.counts[best] += 1
                        part.inertia += distance
                        for j in 0..<d { part.sums[best * d + j] += x[i * d + j] }
                        if distance > far.distance { far = (i, distance) }
                    }
                }
            }
            part.farthest = [far]
            return part
        }
        var out = Step(sums: [Double](repeating: 0, count: k * d), counts: [Int](repeating: 0, count: k), inertia: 0, farthest: [])
        for part in parts {
            for e in 0..<(k * d) { out.sums[e] += part.sums[e] }
            for c in 0..<k { out.counts[c] += part.counts[c] }
            out.inertia += part.inertia
            out.farthest += part.farthest
        }
        return out
    }

    /// Centers laid out feature-major (`[j * k + cluster]`), for `nearest`.
    static func transpose(_ centers: [Double], k: Int, d: Int) -> [Double] {
        var out = [Double](repeating: 0, count: k * d)
        for c in 0..<k { for j in 0..<d { out[j * k + c] = centers[c * d + j] } }
        return out
    }

    /// The nearest center of row `i` and its squared distance; `c` is transposed (`transpose`). Each cluster's sum
    /// runs over the features in order — the same sums as center by center — but the k sums are independent, so the
    /// inner loop (over clusters) vectorizes.
    @inline(__always)
    static func nearest(_ x: UnsafeBufferPointer<Double>, _ i: Int, _ c: UnsafeBufferPointer<Double>, k: Int, d: Int,
                        scratch: inout [Double]) -> (Int, Double) {
        scratch.withUnsafeMutableBufferPointer { s in
            for cluster in 0..<k { s[cluster] = 0 }
            let row = i * d, sums = s.baseAddress!
            for j in 0..<d {
                // Raw pointers and no overflow checks in the innermost loop, so that it vectorizes.
                let v = x[row + j], centers = c.baseAddress! + j * k
                var cluster = 0
                while cluster < k { let e = v - centers[cluster]; sums[cluster] += e * e; cluster &+= 1 }
            }
            var best = 0, bestDistance = Double.infinity
            for cluster in 0..<k where s[cluster] < bestDistance { (best, bestDistance) = (cluster, s[cluster]) }
            return (best, bestDistance)
        }
    }
}

/// Fitted k-means: the centers (k × width, row-major).
public struct KMeansModel: Codable, Sendable, Equatable {
    public var centers: [Double]
    public var width: Int
    /// Sum of squared distances of the training rows to their centers.
    public var inertia: Double
    public var iterations: Int

    public var k: Int { centers.count / max(width, 1) }

    /// The nearest center of each row (as Double), and the squared distances.
    public func assign(_ features: [Double], rows: Int) -> (clusters: [Double], distances: [Double]) {
        var clusters = [Double](repeating: 0, count: rows), distances = clusters
        var scratch = [Double](repeating: 0, count: k)
        let transposed = KMeans.transpose(centers, k: k, d: width)
        features.withUnsafeBufferPointer { x in
            transposed.withUnsafeBufferPointer { c in
                for i in 0..<rows {
                    let (best, distance) = KMeans.nearest(x, i, c, k: k, d: width, scratch: &scratch)
                    clusters[i] = Double(best)
                    distances[i] = distance
                }
            }
        }
        return (clusters, distances)
    }
}

extension Metrics {
    /// The largest sample the silhouette is computed on (it is quadratic in rows).
    public static let silhouetteSample = 10_000

    /// Clustering metrics: example_count, inertia (sum of squared distances to the assigned centers) and
    /// silhouette_score (scikit-learn's mean silhouette coefficient, on a seeded sample of up to 10,000 rows).
    public static func clustering(features: [Double], width: Int, clusters: [Int], distances: [Double], seed: UInt64) throws -> [String: Double] {
        var out: [String: Double] = ["example_count": Double(clusters.count), "inertia": distances.reduce(0, +)]
        if let s = try silhouette(features: features, width: width, clusters: clusters, seed: seed) { out["silhouette_score"] = s }
        return out
    }

    /// Mean silhouette coefficient (Euclidean); nil with fewer than 2 or more than n−1 clusters.
    public static func silhouette(features: [Double], width d: Int, clusters: [Int], seed: UInt64) throws -> Double? {
        var rows = Array(clusters.indices)
        if rows.count > silhouetteSample {
            var generator = SplitMix64.stream(2, of: seed)
            rows.shuffle(using: &generator)
            rows = Array(rows.prefix(silhouetteSample)).sorted()
        }
        let m = rows.count
        let k = (clusters.max() ?? 0) + 1
        let labels = rows.map { clusters[$0] }
        var sizes = [Int](repeating: 0, count: k)
        for c in labels { sizes[c] += 1 }
        let present = sizes.filter { $0 > 0 }.count
        guard present >= 2, present <= m - 1 else { return nil }
        var gathered = [Double](repeating: 0, count: m * d)
        for (a, i) in rows.enumerated() { for j in 0..<d { gathered[a * d + j] = features[i * d + j] } }
        let sample = gathered, counts = sizes
        let block = 256
        let parts = try concurrentMap((m + block - 1) / block) { b -> Double in
            var total = 0.0
            var sums = [Double](repeating: 0, count: k)
            sample.withUnsafeBufferPointer { x in
                for i in (b * block)..<min(m, (b + 1) * block) {
                    for c in 0..<k { sums[c] = 0 }
                    for other in 0..<m where other != i {
                        var s = 0.0
                        for j in 0..<d { let e = x[i * d + j] - x[other * d + j]; s += e * e }
                        sums[labels[other]] += s.squareRoot()
                    }
                    let own = labels[i]
                    guard counts[own] > 1 else { continue }  // a singleton's coefficient is 0
                    let a = sums[own] / Double(counts[own] - 1)
                    var b = Double.infinity
                    for c in 0..<k where c != own && counts[c] > 0 { b = min(b, sums[c] / Double(counts[c])) }
                    if max(a, b) > 0 { total += (b - a) / max(a, b) }
                }
            }
            return total
        }
        return parts.reduce(0, +) / Double(m)
    }
}
