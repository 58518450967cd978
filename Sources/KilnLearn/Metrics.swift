import Foundation

/// Evaluation metrics under the names `mlflow.evaluate` gives them, computed as scikit-learn computes them.
public enum Metrics {
    /// Metrics of class predictions. `probabilities` is row-major, `classes` values per row (for two classes the
    /// second column is the positive class). Binary: confusion counts, accuracy, precision/recall/F1 of class 1,
    /// log loss, ROC AUC, PR AUC and the expected calibration error (10 uniform bins). More classes: accuracy, weighted precision/recall/F1, log loss, weighted
    /// one-vs-rest ROC AUC.
    public static func classification(labels: [Int], probabilities: [Double], classes: Int) -> [String: Double] {
        let n = labels.count
        precondition(probabilities.count == n * classes)
        let predicted = (0..<n).map { i -> Int in
            var best = 0
            for k in 1..<classes where probabilities[i * classes + k] > probabilities[i * classes + best] { best = k }
            return best
        }
        var out: [String: Double] = ["example_count": Double(n)]
        out["accuracy_score"] = Double(zip(labels, predicted).filter { $0 == $1 }.count) / Double(max(n, 1))
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        for (t, p) in zip(labels, predicted) { confusion[t][p] += 1 }
        func prf(_ k: Int) -> (precision: Double, recall: Double, f1: Double, support: Int) {
            let tp = Double(confusion[k][k])
            let predictedK = Double((0..<classes).reduce(0) { $0 + confusion[$1][k] })
            let actualK = confusion[k].reduce(0, +)
            let precision = predictedK > 0 ? tp / predictedK : 0
            let recall = actualK > 0 ? tp / Double(actualK) : 0
            let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
            return (precision, recall, f1, actualK)
        }
        if classes == 2 {
            out["true_negatives"] = Double(confusion[0][0])
            out["false_positives"] = Double(confusion[0][1])
            out["false_negatives"] = Double(confusion[1][0])
            out["true_positives"] = Double(confusion[1][1])
            let m = prf(1)
            (out["precision_score"], out["recall_score"], out["f1_score"]) = (m.precision, m.recall, m.f1)
            let scores = (0..<n).map { probabilities[$0 * 2 + 1] }
            let positive = labels.map { $0 == 1 }
            out["roc_auc"] = rocAUC(scores: scores, positive: positive)
            out["precision_recall_auc"] = prAUC(scores: scores, positive: positive)
            out["calibration_error"] = Evaluation.calibration(scores: scores, positive: positive).error
        } else {
            var (p, r, f) = (0.0, 0.0, 0.0)
            var auc = 0.0
            for k in 0..<classes {
                let m = prf(k)
                let w = Double(m.support) / Double(max(n, 1))
                p += w * m.precision
                r += w * m.recall
                f += w * m.f1
                if m.support > 0, m.support < n {
                    auc += w * (rocAUC(scores: (0..<n).map { probabilities[$0 * classes + k] }, positive: labels.map { $0 == k }) ?? 0)
                }
            }
            (out["precision_score"], out["recall_score"], out["f1_score"]) = (p, r, f)
            out["roc_auc"] = auc
        }
        out["log_loss"] = logLoss(labels: labels, probabilities: probabilities, classes: classes)
        return out.compactMapValues { $0 }
    }

    /// Mean negative log-likelihood; each row's probabilities are renormalized and clipped like scikit-learn's.
    public static func logLoss(labels: [Int], probabilities: [Double], classes: Int) -> Double {
        let eps = Double.ulpOfOne
        var total = 0.0
        for (i, t) in labels.enumerated() {
            let row = probabilities[(i * classes)..<((i + 1) * classes)]
            let sum = row.reduce(0, +)
            let p = min(max(row[row.startIndex + t] / (sum > 0 ? sum : 1), eps), 1 - eps)
            total -= Foundation.log(p)
        }
        return total / Double(max(labels.count, 1))
    }

    /// Area under the ROC curve (ties count half: the Mann–Whitney statistic); nil with only one class present.
    public static func rocAUC(scores: [Double], positive: [Bool]) -> Double? {
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        let positives = positive.filter { $0 }.count, negatives = positive.count - positives
        guard positives > 0, negatives > 0 else { return nil }
        var rankSum = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let rank = Double(i + j) / 2 + 1  // average rank of the tie block
            for k in i...j where positive[order[k]] { rankSum += rank }
            i = j + 1
        }
        return (rankSum - Double(positives) * Double(positives + 1) / 2) / (Double(positives) * Double(negatives))
    }

    /// Cumulative (true positives, false positives) at each distinct score, highest first: the points of ROC and
    /// precision–recall curves.
    static func thresholdCounts(scores: [Double], positive: [Bool]) -> [(tp: Double, fp: Double)] {
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        var out: [(tp: Double, fp: Double)] = []
        var tp = 0.0, fp = 0.0, i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            for k in i...j { if positive[order[k]] { tp += 1 } else { fp += 1 } }
            out.append((tp, fp))
            i = j + 1
        }
        return out
    }

    /// Precision–recall points (recall, precision), starting at recall 0, precision 1 as scikit-learn's curve does.
    static func precisionRecallPoints(scores: [Double], positive: [Bool]) -> [(x: Double, y: Double)] {
        let total = Double(positive.filter { $0 }.count)
        return [(0, 1)] + thresholdCounts(scores: scores, positive: positive).map { (total > 0 ? $0.tp / total : 0, $0.tp / ($0.tp + $0.fp)) }
    }

    /// Area under the precision–recall curve by the trapezoidal rule over its points, as
    /// `sklearn.metrics.auc(recall, precision)` on `precision_recall_curve` (what mlflow logs as PR AUC).
    public static func prAUC(scores: [Double], positive: [Bool]) -> Double? {
        guard positive.contains(true) else { return nil }
        let points = precisionRecallPoints(scores: scores, positive: positive)
        var area = 0.0
        for k in 1..<points.count { area += (points[k].x - points[k - 1].x) * (points[k].y + points[k - 1].y) / 2 }
        return area
    }

    /// Regression metrics: example_count, mean_absolute_error, mean_squared_error, root_mean_squared_error,
    /// sum_on_target, mean_on_target, r2_score, max_error, mean_absolute_percentage_error.
    public static func regression(labels y: [Double], predictions p: [Double]) -> [String: Double] {
        let n = Double(max(y.count, 1))
        var abs = 0.0, sq = 0.0, maxError = 0.0, pct = 0.0
        for (t, q) in zip(y, p) {
            let e = t - q
            abs += Swift.abs(e)
            sq += e * e
            maxError = max(maxError, Swift.abs(e))
            pct += Swift.abs(e) / max(Swift.abs(t), Double.ulpOfOne)
        }
        let sum = y.reduce(0, +)
        let mean = sum / n
        let total = y.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
        return [
            "example_count": Double(y.count), "mean_absolute_error": abs / n, "mean_squared_error": sq / n,
            "root_mean_squared_error": (sq / n).squareRoot(), "sum_on_target": sum, "mean_on_target": mean,
            "r2_score": total > 0 ? 1 - sq / total : (sq == 0 ? 1 : 0), "max_error": maxError,
            "mean_absolute_percentage_error": pct / n,
        ]
    }

    /// Ranking metrics over query groups (rows of a group contiguous, `groupSizes` in order; nil: one group):
    /// `ndcg_at_5`, `ndcg_at_10` and `ndcg` (all positions), averaged over groups, with XGBoost's definition — gain
    /// 2^relevance − 1, discount log2(position + 1), ties in score kept in row order, a group with no relevant rows
    /// scoring 1 — and `example_count`, `group_count`.
    public static func ranking(labels: [Double], scores: [Double], groupSizes: [Int]?) -> [String: Double] {
        let sizes = groupSizes ?? [labels.count]
        var totals = [5: 0.0, 10: 0.0, Int.max: 0.0]
        var start = 0
        for size in sizes {
            let rows = Array(start..<(start + size))
            let ranked = rows.enumerated().sorted { scores[$0.element] != scores[$1.element] ? scores[$0.element] > scores[$1.element] : $0.offset < $1.offset }.map(\.element)
            let ideal = rows.sorted { labels[$0] > labels[$1] }
            for k in totals.keys {
                func dcg(_ order: [Int]) -> Double {
                    order.prefix(k).enumerated().reduce(0) { $0 + (pow(2, labels[$1.element]) - 1) / log2(Double($1.offset) + 2) }
                }
                let best = dcg(ideal)
                totals[k]! += best > 0 ? dcg(ranked) / best : 1
            }
            start += size
        }
        let groups = Double(max(sizes.count, 1))
        return ["ndcg_at_5": totals[5]! / groups, "ndcg_at_10": totals[10]! / groups, "ndcg": totals[Int.max]! / groups,
                "example_count": Double(labels.count), "group_count": Double(sizes.count)]
    }
}
