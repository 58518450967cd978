import Foundation
import KilnCore
import KilnFrame
import KilnParquet

/// One fitted CART tree in flat arrays. Node 0 is the root; a leaf has `left == -1`. A row goes left when its
/// feature value (rounded to float32) is ≤ the threshold or missing (NaN). `values` holds, per node, the class distribution
/// (probabilities, `outputs` of them) or the mean target, and `cover` the (weighted) training rows that reached it.
public struct DecisionTree: Sendable, Codable, Equatable {
    public var feature: [Int32]
    public var threshold: [Double]
    public var left: [Int32]
    public var right: [Int32]
    public var values: [Double]
    public var cover: [Double]
    public var outputs: Int

    public var nodeCount: Int { feature.count }

    /// The leaf a row of features reaches (values compared in float32 precision, as they were binned).
    @inline(__always)
    func leaf(_ x: UnsafeBufferPointer<Double>, _ row: Int) -> Int {
        var node = 0
        while left[node] >= 0 {
            let v = Double(Float(x[row + Int(feature[node])]))
            node = Int(v.isNaN || v <= threshold[node] ? left[node] : right[node])
        }
        return node
    }
}

/// Bins per feature: every distinct value its own bin (exact split points, as scikit-learn searches) up to 1,024
/// values, 1,024 quantile bins beyond (split points then sit on quantiles; scanning more bins per node cost more than
/// it bought on 150,000-row sets).
struct FeatureBins: Sendable {
    /// Upper edges per feature: bin b holds values in (edges[b-1], edges[b]]; the last bin has no upper edge.
    var edges: [[Double]]
    /// The distinct value of each bin, for features binned exactly (nil when quantile-binned).
    var distinct: [[Double]?]
    /// Column-major bin index of every row (missing values in bin 0).
    var codes: [UInt16]
    var rows: Int

    init(_ data: Dataset, maxBins: Int = 1024) {
        rows = data.rows
        let d = data.width
        var edges: [[Double]] = []
        var exact: [[Double]?] = []
        var codes = [UInt16](repeating: 0, count: d * rows)
        for j in 0..<d {
            // Values in float32 precision, with thresholds midway in double: scikit-learn's (and XGBoost's) convention.
            var column = (0..<rows).map { Double(Float(data.features[$0 * d + j])) }.filter { !$0.isNaN }
            column.sort()
            var distinct: [Double] = []
            for v in column where distinct.last != v { distinct.append(v) }
            var cuts: [Double] = []
            if distinct.count <= maxBins {
                for k in 1..<max(distinct.count, 1) { cuts.append((distinct[k - 1] + distinct[k]) / 2) }
            } else {
                // Quantiles of the values; duplicates collapse.
                for q in 1..<maxBins {
                    let v = column[min(column.count - 1, q * column.count / maxBins)]
                    if cuts.last.map({ v > $0 }) ?? true, v < distinct.last! { cuts.append(v) }
                }
            }
            edges.append(cuts)
            exact.append(distinct.count <= maxBins ? distinct : nil)
            for i in 0..<rows {
                let v = Double(Float(data.features[i * d + j]))
                guard !v.isNaN else { continue }
                // First edge ≥ v (binary search).
                var lo = 0, hi = cuts.count
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if cuts[mid] < v { lo = mid + 1 } else { hi = mid }
                }
                codes[j * rows + i] = UInt16(lo)
            }
        }
        self.edges = edges
        self.distinct = exact
        self.codes = codes
    }
}

/// CART decision trees and random forests (scikit-learn's defaults: Gini / squared error, grown until leaves are
/// pure or hold `minSamplesLeaf`; forests bootstrap rows and try √d features per split for classification, all for
/// regression). Splits are exact (between consecutive distinct values) for features with up to 1,024 values. Trees of a forest
/// grow in parallel, each from its own seed, so the forest is the same on any number of cores.
public struct TreeEnsemble: Sendable, Codable, Equatable {
    public var trees: [DecisionTree]
    public var classification: Bool
    /// Impurity decrease per feature, normalized to sum to 1 (scikit-learn's `feature_importances_`).
    public var importances: [Double]

    public struct Options: Sendable {
        public var trees = 1
        public var maxDepth: Int?
        public var minSamplesSplit = 2
        public var minSamplesLeaf = 1
        /// Features tried per split; nil: all for a single tree or regression, √d for a classification forest.
        public var maxFeatures: Int?
        public var bootstrap = false
        public var seed: UInt64 = 0
        public init() {}
    }

    /// Fits on `data` (class indices or targets in `labels`).
    public static func fit(_ data: Dataset, _ options: Options) throws -> TreeEnsemble {
        guard data.rows > 0 else { throw KilnError.invalid("No training rows") }
        guard options.trees >= 1, options.minSamplesLeaf >= 1, options.minSamplesSplit >= 2 else {
            throw KilnError.invalid("n_estimators ≥ 1, min_samples_leaf ≥ 1 and min_samples_split ≥ 2 are required")
        }
        let classification = data.task == .classification
        let bins = FeatureBins(data)
        let d = data.width
        let maxFeatures = min(d, max(1, options.maxFeatures ?? (classification && options.trees > 1 ? Int(Double(d).squareRoot()) : d)))
        let trees = try concurrentMap(options.trees) { t -> (DecisionTree, [Double]) in
            var generator = SplitMix64.stream(UInt64(t), of: options.seed)
            var weights = [Double](repeating: 1, count: data.rows)
            if options.bootstrap {
                weights = [Double](repeating: 0, count: data.rows)
                for _ in 0..<data.rows { weights[Int(generator.next() % UInt64(data.rows))] += 1 }
            }
            var grower = Grower(data: data, bins: bins, weights: weights, classification: classification, options: options,
                                maxFeatures: maxFeatures, generator: generator)
            return grower.grow()
        }
        var importances = [Double](repeating: 0, count: d)
        for (_, gains) in trees {
            let total = gains.reduce(0, +)
            if total > 0 { for j in 0..<d { importances[j] += gains[j] / total } }
        }
        let sum = importances.reduce(0, +)
        if sum > 0 { importances = importances.map { $0 / sum } }
        return TreeEnsemble(trees: trees.map { $0.0 }, classification: classification, importances: importances)
    }

    /// Class probabilities (rows × classes) or values: the mean over trees.
    public func predict(_ features: [Double], rows: Int, width: Int) -> [Double] {
        let outputs = trees.first?.outputs ?? 1
        let n = Double(trees.count), blockRows = 2048
        // Row blocks in parallel; each row sums its trees in order, so the result does not depend on the cores.
        let blocks = (try? concurrentMap((rows + blockRows - 1) / blockRows) { b -> [Double] in
            let start = b * blockRows, end = min(rows, start + blockRows)
            var out = [Double](repeating: 0, count: (end - start) * outputs)
            features.withUnsafeBufferPointer { x in
                for tree in trees {
                    for i in start..<end {
                        let leaf = tree.leaf(x, i * width)
                        for k in 0..<outputs { out[(i - start) * outputs + k] += tree.values[leaf * outputs + k] }
                    }
                }
            }
            return out.map { $0 / n }
        }) ?? []
        return blocks.flatMap { $0 }
    }
}

/// Grows one tree depth-first over a row index array partitioned in place.
private struct Grower {
    let data: Dataset
    let bins: FeatureBins
    let weights: [Double]
    let classification: Bool
    let options: TreeEnsemble.Options
    let maxFeatures: Int
    var generator: SplitMix64

    var feature: [Int32] = [], threshold: [Double] = [], left: [Int32] = [], right: [Int32] = []
    var values: [Double] = [], cover: [Double] = []
    var gains: [Double]

    init(data: Dataset, bins: FeatureBins, weights: [Double], classification: Bool, options: TreeEnsemble.Options, maxFeatures: Int, generator: SplitMix64) {
        self.data = data
        self.bins = bins
        self.weights = weights
        self.classification = classification
        self.options = options
        self.maxFeatures = maxFeatures
        self.generator = generator
        gains = [Double](repeating: 0, count: data.width)
    }

    var outputs: Int { classification ? data.classCount : 1 }

    mutating func grow() -> (DecisionTree, [Double]) {
        var rows = (0..<data.rows).filter { weights[$0] > 0 }
        var stack: [(node: Int, start: Int, end: Int, depth: Int)] = []
        stack.append((addNode(rows[...]), 0, rows.count, 0))
        while let (node, start, end, depth) = stack.popLast() {
            let slice = rows[start..<end]
            let count = slice.count
            if let maxDepth = options.maxDepth, depth >= maxDepth { continue }
            guard count >= options.minSamplesSplit, impurity(node) > 1e-12 else { continue }
            guard let split = bestSplit(slice) else { continue }
            // Partition: left rows (bin ≤ split.bin) first.
            let codes = bins.codes, base = split.feature * bins.rows
            var i = start, j = end - 1
            var leftMax = 0, rightMin = Int.max
            while i <= j {
                let c = Int(codes[base + rows[i]])
                if c <= split.bin {
                    leftMax = max(leftMax, c)
                    i += 1
                } else {
                    rightMin = min(rightMin, c)
                    rows.swapAt(i, j)
                    j -= 1
                }
            }
            let l = addNode(rows[start..<i]), r = addNode(rows[i..<end])
            feature[node] = Int32(split.feature)
            if let values = bins.distinct[split.feature] {
                // Midway between the node's values on either side, as scikit-learn places thresholds.
                let low = values[leftMax], high = values[rightMin]
                let middle = (low + high) / 2
                threshold[node] = middle == high ? low : middle
            } else {
                threshold[node] = bins.edges[split.feature][split.bin]
            }
            left[node] = Int32(l)
            right[node] = Int32(r)
            gains[split.feature] += split.gain
            stack.append((r, i, end, depth + 1))
            stack.append((l, start, i, depth + 1))
        }
        return (DecisionTree(feature: feature, threshold: threshold, left: left, right: right, values: values, cover: cover, outputs: outputs), gains)
    }

    /// A leaf for `rows`: its class distribution or mean, and cover.
    mutating func addNode(_ rows: ArraySlice<Int>) -> Int {
        var total = 0.0
        var v = [Double](repeating: 0, count: outputs)
        for r in rows {
            let w = weights[r]
            total += w
            if classification { v[Int(data.labels[r])] += w } else { v[0] += w * data.labels[r] }
        }
        if total > 0 { v = v.map { $0 / total } }
        feature.append(-1)
        threshold.append(0)
        left.append(-1)
        right.append(-1)
        values += v
        cover.append(total)
        return feature.count - 1
    }

    func impurity(_ node: Int) -> Double {
        if classification { return 1 - values[(node * outputs)..<((node + 1) * outputs)].reduce(0) { $0 + $1 * $1 } }
        return 1  // regression: let the split search decide (a constant node finds no gain)
    }

    /// Weighted cost of a node from its statistics: Gini × weight, or the sum of squared errors.
    func cost(_ s: [Double], _ w: Double) -> Double {
        guard w > 0 else { return 0 }
        if classification { return w * (1 - s.reduce(0) { $0 + ($1 / w) * ($1 / w) }) }
        return s[1] - s[0] * s[0] / w
    }

    /// `cost(totals − left, w)` without building the difference (it ran once per candidate bin).
    @inline(__always)
    func remainderCost(_ totals: [Double], _ left: [Double], _ w: Double) -> Double {
        guard w > 0 else { return 0 }
        if classification {
            var s = 0.0
            for c in 0..<totals.count { let v = (totals[c] - left[c]) / w; s += v * v }
            return w * (1 - s)
        }
        let s0 = totals[0] - left[0]
        return (totals[1] - left[1]) - s0 * s0 / w
    }

    /// Adds row `r`'s statistics (class weight, or Σwy and Σwy²) to `stats`.
    @inline(__always)
    func accumulate(_ stats: inout [Double], at base: Int, _ r: Int) {
        let w = weights[r]
        if classification { stats[base + Int(data.labels[r])] += w } else {
            let y = data.labels[r]
            stats[base] += w * y
            stats[base + 1] += w * y * y
        }
    }

    /// The best split of feature `j` found by sorting the node's rows by bin.
    func sortedSplit(_ rows: ArraySlice<Int>, feature j: Int) -> (feature: Int, bin: Int, gain: Double)? {
        let base = j * bins.rows
        let ordered = rows.sorted { bins.codes[base + $0] < bins.codes[base + $1] }
        let width = classification ? outputs : 2
        var totals = [Double](repeating: 0, count: width), totalWeight = 0.0
        for r in ordered { accumulate(&totals, at: 0, r); totalWeight += weights[r] }
        let parent = cost(totals, totalWeight)
        var leftStats = [Double](repeating: 0, count: width), leftWeight = 0.0
        var best: (feature: Int, bin: Int, gain: Double)?
        let minLeaf = options.minSamplesLeaf
        for (k, r) in ordered.enumerated() {
            accumulate(&leftStats, at: 0, r)
            leftWeight += weights[r]
            guard k + 1 < ordered.count, bins.codes[base + ordered[k + 1]] != bins.codes[base + r] else { continue }
            guard k + 1 >= minLeaf, ordered.count - k - 1 >= minLeaf else { continue }
            let gain = parent - cost(leftStats, leftWeight) - remainderCost(totals, leftStats, totalWeight - leftWeight)
            if gain > 1e-12 * max(1, parent), gain > (best?.gain ?? 0) { best = (j, Int(bins.codes[base + r]), gain) }
        }
        return best
    }

    /// The split with the largest weighted impurity decrease over a random subset of features (deterministic for
    /// the tree's seed); nil when none decreases it or every split leaves fewer than `minSamplesLeaf` rows a side.
    mutating func bestSplit(_ rows: ArraySlice<Int>) -> (feature: Int, bin: Int, gain: Double)? {
        let d = data.width
        var candidates = Array(0..<d)
        if maxFeatures < d {
            for k in 0..<maxFeatures {
                let pick = k + Int(generator.next() % UInt64(d - k))
                candidates.swapAt(k, pick)
            }
            candidates = Array(candidates[..<maxFeatures])
        }
        let k = outputs
        var best: (feature: Int, bin: Int, gain: Double)?
        let minLeaf = Double(options.minSamplesLeaf)
        for j in candidates {
            let edges = bins.edges[j]
            guard !edges.isEmpty else { continue }
            let nb = edges.count + 1
            if rows.count * 8 < nb {
                // Few rows, many bins: sort the node's rows by bin instead of scanning every bin.
                if let found = sortedSplit(rows, feature: j), found.gain > (best?.gain ?? 0) { best = found }
                continue
            }
            // Per bin: weight, count, and class weights or (Σwy, Σwy²).
            var weight = [Double](repeating: 0, count: nb), count = [Double](repeating: 0, count: nb)
            var stats = [Double](repeating: 0, count: nb * (classification ? k : 2))
            let base = j * bins.rows
            let width = classification ? k : 2
            bins.codes.withUnsafeBufferPointer { codes in
                for r in rows {
                    let b = Int(codes[base + r])
                    weight[b] += weights[r]
                    count[b] += 1
                    accumulate(&stats, at: b * width, r)
                }
            }
            let totalWeight = weight.reduce(0, +), totalCount = count.reduce(0, +)
            var totals = [Double](repeating: 0, count: width)
            for b in 0..<nb { for c in totals.indices { totals[c] += stats[b * width + c] } }
            let parent = cost(totals, totalWeight)
            var leftStats = [Double](repeating: 0, count: totals.count)
            var leftWeight = 0.0, leftCount = 0.0
            for b in 0..<(nb - 1) {
                leftWeight += weight[b]
                leftCount += count[b]
                for c in leftStats.indices { leftStats[c] += stats[b * totals.count + c] }
                guard leftCount >= minLeaf, totalCount - leftCount >= minLeaf else { continue }
                let gain = parent - cost(leftStats, leftWeight) - remainderCost(totals, leftStats, totalWeight - leftWeight)
                if gain > 1e-12 * max(1, parent), gain > (best?.gain ?? 0) { best = (j, b, gain) }
            }
        }
        return best
    }
}
