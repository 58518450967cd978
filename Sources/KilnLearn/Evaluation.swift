import Foundation
import KilnCore
import KilnFrame
import KilnParquet

/// Evaluation beyond one test set: k-fold cross-validation, metrics per cohort, calibration, permutation importance,
/// SHAP summaries, and significance tests comparing two models on the same rows.
public enum Evaluation {
    /// k-fold cross-validation of `spec` on `data`: rows shuffled with the seed (its own stream) into `folds` folds;
    /// each fold's metrics from a model fitted on the others. Folds are fitted concurrently.
    public static func crossValidate(_ spec: TrainingSpec, _ data: Dataset, folds: Int) throws -> [[String: Double]] {
        guard folds >= 2 else { throw KilnError.invalid("Cross-validation needs at least 2 folds") }
        guard spec.task != .ranking else { throw KilnError.invalid("Cross-validation is not available for ranking yet (folds would split query groups)") }
        guard data.rows >= folds else { throw KilnError.invalid("Cross-validation with \(folds) folds needs at least \(folds) rows") }
        var order = Array(0..<data.rows)
        var generator = SplitMix64.stream(3, of: spec.seed)
        order.shuffle(using: &generator)
        let assignment = order.enumerated().reduce(into: [Int](repeating: 0, count: data.rows)) { $0[$1.element] = $1.offset % folds }
        return try concurrentMap(folds) { fold in
            let train = data.subset((0..<data.rows).filter { assignment[$0] != fold })
            let test = data.subset((0..<data.rows).filter { assignment[$0] == fold })
            return try Trainer.fit(spec, train).model.evaluate(test)
        }
    }

    /// Mean and (population) standard deviation of each metric over folds, as `<metric>_mean` and `<metric>_std`.
    public static func summarize(_ folds: [[String: Double]]) -> [String: Double] {
        var out: [String: Double] = [:]
        let keys = Set(folds.flatMap(\.keys))
        for key in keys {
            let values = folds.compactMap { $0[key] }
            let mean = values.reduce(0, +) / Double(values.count)
            out[key + "_mean"] = mean
            out[key + "_std"] = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)).squareRoot()
        }
        return out
    }

    /// Metrics of `model` on the rows of `data` sharing each value of a cohort column (`values` aligned with the rows;
    /// nil = null), for at most `limit` most frequent values.
    public static func cohorts(_ model: KilnModel, _ data: Dataset, values: [String?], limit: Int = 50) throws -> [String: [String: Double]] {
        var rows: [String: [Int]] = [:]
        for (i, v) in values.enumerated() { rows[v ?? "null", default: []].append(i) }
        var out: [String: [String: Double]] = [:]
        for (value, members) in rows.sorted(by: { $0.value.count != $1.value.count ? $0.value.count > $1.value.count : $0.key < $1.key }).prefix(limit) {
            out[value] = try model.evaluate(data.subset(members))
        }
        return out
    }

    /// Reliability of class-1 probabilities: `bins` equal-width bins (scikit-learn's `calibration_curve` with
    /// strategy="uniform"): per non-empty bin the mean predicted probability, the observed share of positives and the
    /// count; and the expected calibration error (bin-size-weighted mean |observed − predicted|).
    public static func calibration(scores: [Double], positive: [Bool], bins: Int = 10) -> (curve: [(predicted: Double, observed: Double, count: Int)], error: Double) {
        var sum = [Double](repeating: 0, count: bins), hits = sum, count = [Int](repeating: 0, count: bins)
        // np.linspace(0, 1, bins + 1)'s inner edges; a score goes to the bin np.searchsorted(edges, s) names.
        let step = 1.0 / Double(bins)
        let edges = (1..<bins).map { Double($0) * step }
        for (s, p) in zip(scores, positive) {
            let b = edges.reduce(0) { $0 + ($1 < s ? 1 : 0) }
            sum[b] += s
            hits[b] += p ? 1 : 0
            count[b] += 1
        }
        var curve: [(Double, Double, Int)] = []
        var error = 0.0
        for b in 0..<bins where count[b] > 0 {
            let predicted = sum[b] / Double(count[b]), observed = hits[b] / Double(count[b])
            curve.append((predicted, observed, count[b]))
            error += Double(count[b]) * abs(observed - predicted)
        }
        return (curve, error / Double(max(scores.count, 1)))
    }

    /// The score permutation importance uses: accuracy for classifiers, R² for regressors, silhouette for clusters,
    /// NDCG@10 for rankers.
    static func score(_ model: KilnModel, _ data: Dataset) throws -> Double {
        let predictions = try model.predict(data.features, rows: data.rows)
        switch model.spec.task {
        case .classification:
            let decided = model.decide(predictions)
            var right = 0
            for i in 0..<data.rows where decided[i] == data.labels[i] { right += 1 }
            return Double(right) / Double(max(data.rows, 1))
        case .regression: return Metrics.regression(labels: data.labels, predictions: predictions)["r2_score"] ?? 0
        case .clustering: return try model.evaluate(data)["silhouette_score"] ?? 0
        case .ranking: return Metrics.ranking(labels: data.labels, scores: predictions, groupSizes: data.groupSizes)["ndcg_at_10"] ?? 0
        }
    }

    /// Permutation importance (scikit-learn's definition): the drop in score when one feature's values are shuffled
    /// among rows, mean and standard deviation over `repeats` seeded shuffles, on at most `maxRows` rows of `data`.
    public static func permutationImportance(_ model: KilnModel, _ data: Dataset, repeats: Int = 5, seed: UInt64, maxRows: Int = 10_000)
        throws -> [(name: String, mean: Double, std: Double)] {
        let sample: Dataset
        if data.rows > maxRows, data.task != .ranking {  // rankers keep whole query groups
            var rows = Array(0..<data.rows)
            var generator = SplitMix64.stream(4, of: seed)
            rows.shuffle(using: &generator)
            sample = data.subset(Array(rows.prefix(maxRows)).sorted())
        } else {
            sample = data
        }
        let base = try score(model, sample)
        let width = sample.width
        let drops = try concurrentMap(width) { j -> [Double] in
            var generator = SplitMix64.stream(UInt64(5 + j), of: seed)
            var shuffled = sample
            return try (0..<repeats).map { _ in
                var column = (0..<sample.rows).map { sample.features[$0 * width + j] }
                column.shuffle(using: &generator)
                for i in 0..<sample.rows { shuffled.features[i * width + j] = column[i] }
                return base - (try score(model, shuffled))
            }
        }
        return zip(model.featureNames, drops).map { name, d in
            let mean = d.reduce(0, +) / Double(d.count)
            return (name, mean, (d.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(d.count)).squareRoot())
        }
    }

    /// McNemar's test of two classifiers on the same rows: `b` rows only A got right, `c` rows only B got right.
    /// Exact two-sided binomial p-value when b + c < 25, else χ² with continuity correction (statsmodels' defaults).
    public static func mcnemar(b: Int, c: Int) -> (statistic: Double, pValue: Double) {
        let n = b + c
        guard n > 0 else { return (0, 1) }
        if n < 25 {
            // P(X ≤ min(b, c)) doubled, X ~ Binomial(n, 1/2).
            let k = min(b, c)
            var tail = 0.0, term = pow(0.5, Double(n))  // C(n, 0) / 2^n
            for i in 0...k {
                if i > 0 { term *= Double(n - i + 1) / Double(i) }
                tail += term
            }
            return (Double(k), min(1, 2 * tail))
        }
        let statistic = pow(abs(Double(b - c)) - 1, 2) / Double(n)
        return (statistic, chiSquareOneSurvival(statistic))
    }

    /// P(χ²₁ > x) = erfc(√(x/2)).
    static func chiSquareOneSurvival(_ x: Double) -> Double { erfc((x / 2).squareRoot()) }

    /// Paired bootstrap of the difference in a regression metric between models A and B on the same rows: the
    /// observed difference (A − B) and a `level` percentile interval over `resamples` seeded resamples of rows.
    public static func pairedBootstrap(labels: [Double], a: [Double], b: [Double], metric: String = "root_mean_squared_error",
                                       resamples: Int = 1000, level: Double = 0.95, seed: UInt64) throws -> (difference: Double, low: Double, high: Double) {
        let n = labels.count
        guard n > 0 else { throw KilnError.invalid("No rows to compare on") }
        @Sendable func value(_ rows: [Int]?) throws -> Double {
            let idx = rows ?? Array(0..<n)
            let y = idx.map { labels[$0] }
            let ma = Metrics.regression(labels: y, predictions: idx.map { a[$0] }), mb = Metrics.regression(labels: y, predictions: idx.map { b[$0] })
            guard let x = ma[metric], let z = mb[metric] else { throw KilnError.invalid("Unknown regression metric '\(metric)'") }
            return x - z
        }
        let observed = try value(nil)
        let diffs = try concurrentMap(resamples) { r -> Double in
            var generator = SplitMix64.stream(UInt64(r), of: seed)
            return try value((0..<n).map { _ in Int(generator.next() % UInt64(n)) })
        }.sorted()
        let alpha = (1 - level) / 2
        func quantile(_ q: Double) -> Double {
            let position = q * Double(resamples - 1)
            let lo = Int(position.rounded(.down)), hi = min(lo + 1, resamples - 1)
            return diffs[lo] + (diffs[hi] - diffs[lo]) * (position - Double(lo))
        }
        return (observed, quantile(alpha), quantile(1 - alpha))
    }
}
