import Foundation

/// Evaluation plots as standalone SVG documents (what `kiln train` logs under `plots/`): ROC and precision–recall
/// curves, the confusion matrix, residuals, feature importance.
public enum Plots {
    static let width = 480.0, height = 360.0, margin = 56.0

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func number(_ v: Double) -> String { String(format: "%.2f", v) }

    /// A line chart in unit coordinates (both axes 0…1), with an optional diagonal.
    static func curve(_ points: [(x: Double, y: Double)], title: String, xLabel: String, yLabel: String, diagonal: Bool) -> String {
        let plotW = width - 2 * margin, plotH = height - 2 * margin
        func px(_ x: Double) -> String { number(margin + x * plotW) }
        func py(_ y: Double) -> String { number(height - margin - y * plotH) }
        var svg = header(title)
        svg += "<rect x=\"\(number(margin))\" y=\"\(number(margin))\" width=\"\(number(plotW))\" height=\"\(number(plotH))\" fill=\"none\" stroke=\"#999\"/>\n"
        for t in stride(from: 0.0, through: 1.0, by: 0.25) {
            svg += "<text x=\"\(px(t))\" y=\"\(number(height - margin + 16))\" text-anchor=\"middle\" font-size=\"11\">\(String(format: "%.2f", t))</text>\n"
            svg += "<text x=\"\(number(margin - 6))\" y=\"\(py(t))\" text-anchor=\"end\" font-size=\"11\" dominant-baseline=\"middle\">\(String(format: "%.2f", t))</text>\n"
        }
        if diagonal { svg += "<line x1=\"\(px(0))\" y1=\"\(py(0))\" x2=\"\(px(1))\" y2=\"\(py(1))\" stroke=\"#bbb\" stroke-dasharray=\"4 4\"/>\n" }
        let path = points.map { "\(px($0.x)),\(py($0.y))" }.joined(separator: " ")
        svg += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"\(path)\"/>\n"
        svg += axisLabels(xLabel, yLabel)
        return svg + "</svg>\n"
    }

    static func header(_ title: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\">\n"
            + "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
            + "<text x=\"\(number(width / 2))\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">\(escape(title))</text>\n"
    }

    static func axisLabels(_ x: String, _ y: String) -> String {
        "<text x=\"\(number(width / 2))\" y=\"\(number(height - 14))\" text-anchor=\"middle\" font-size=\"12\">\(escape(x))</text>\n"
            + "<text x=\"16\" y=\"\(number(height / 2))\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 16 \(number(height / 2)))\">\(escape(y))</text>\n"
    }

    /// The ROC curve of class-1 scores, with its area in the title.
    public static func roc(scores: [Double], positive: [Bool]) -> String {
        let p = Double(positive.filter { $0 }.count), n = Double(positive.count) - p
        let points = [(x: 0.0, y: 0.0)] + Metrics.thresholdCounts(scores: scores, positive: positive).map { (n > 0 ? $0.fp / n : 0, p > 0 ? $0.tp / p : 0) }
        let auc = Metrics.rocAUC(scores: scores, positive: positive).map { String(format: " (AUC %.4f)", $0) } ?? ""
        return curve(points, title: "ROC curve" + auc, xLabel: "False positive rate", yLabel: "True positive rate", diagonal: true)
    }

    /// The precision–recall curve of class-1 scores.
    public static func precisionRecall(scores: [Double], positive: [Bool]) -> String {
        let auc = Metrics.prAUC(scores: scores, positive: positive).map { String(format: " (AUC %.4f)", $0) } ?? ""
        return curve(Metrics.precisionRecallPoints(scores: scores, positive: positive), title: "Precision–recall curve" + auc,
                     xLabel: "Recall", yLabel: "Precision", diagonal: false)
    }

    /// The confusion matrix as a heat map with counts (rows: true class, columns: predicted).
    public static func confusion(labels: [Int], predicted: [Int], classes: [String]) -> String {
        let k = classes.count
        var counts = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
        for (t, p) in zip(labels, predicted) { counts[t][p] += 1 }
        let most = Double(max(1, counts.flatMap { $0 }.max() ?? 1))
        let size = min((width - 2 * margin) / Double(k), (height - 2 * margin) / Double(k))
        let left = (width - size * Double(k)) / 2, top = margin
        var svg = header("Confusion matrix")
        for t in 0..<k {
            for p in 0..<k {
                let share = Double(counts[t][p]) / most
                let x = left + Double(p) * size, y = top + Double(t) * size
                let shade = Int(255 - share * 190)
                svg += "<rect x=\"\(number(x))\" y=\"\(number(y))\" width=\"\(number(size))\" height=\"\(number(size))\" fill=\"rgb(\(shade),\(shade),255)\" stroke=\"white\"/>\n"
                if k <= 20 {
                    svg += "<text x=\"\(number(x + size / 2))\" y=\"\(number(y + size / 2))\" text-anchor=\"middle\" dominant-baseline=\"middle\" font-size=\"\(k > 10 ? 8 : 12)\">\(counts[t][p])</text>\n"
                }
            }
            if k <= 20 {
                svg += "<text x=\"\(number(left - 4))\" y=\"\(number(top + (Double(t) + 0.5) * size))\" text-anchor=\"end\" dominant-baseline=\"middle\" font-size=\"10\">\(escape(classes[t]))</text>\n"
                svg += "<text x=\"\(number(left + (Double(t) + 0.5) * size))\" y=\"\(number(top + Double(k) * size + 12))\" text-anchor=\"middle\" font-size=\"10\">\(escape(classes[t]))</text>\n"
            }
        }
        svg += axisLabels("Predicted class", "True class")
        return svg + "</svg>\n"
    }

    /// Residuals (true − predicted) against predictions, at most `maxPoints` evenly spaced rows.
    public static func residuals(labels: [Double], predictions: [Double], maxPoints: Int = 2000) -> String {
        let step = max(1, labels.count / maxPoints)
        let rows = Swift.stride(from: 0, to: labels.count, by: step).map { (x: predictions[$0], y: labels[$0] - predictions[$0]) }
        let xs = rows.map(\.x), ys = rows.map(\.y)
        let (x0, x1) = (xs.min() ?? 0, xs.max() ?? 1), (y0, y1) = (ys.min() ?? -1, ys.max() ?? 1)
        let spanX = x1 > x0 ? x1 - x0 : 1, spanY = y1 > y0 ? y1 - y0 : 1
        let plotW = width - 2 * margin, plotH = height - 2 * margin
        var svg = header("Residuals")
        svg += "<rect x=\"\(number(margin))\" y=\"\(number(margin))\" width=\"\(number(plotW))\" height=\"\(number(plotH))\" fill=\"none\" stroke=\"#999\"/>\n"
        if y0 <= 0, y1 >= 0 {
            let zero = height - margin - (0 - y0) / spanY * plotH
            svg += "<line x1=\"\(number(margin))\" y1=\"\(number(zero))\" x2=\"\(number(width - margin))\" y2=\"\(number(zero))\" stroke=\"#bbb\" stroke-dasharray=\"4 4\"/>\n"
        }
        for r in rows {
            let x = margin + (r.x - x0) / spanX * plotW, y = height - margin - (r.y - y0) / spanY * plotH
            svg += "<circle cx=\"\(number(x))\" cy=\"\(number(y))\" r=\"1.8\" fill=\"#1f77b4\" fill-opacity=\"0.5\"/>\n"
        }
        svg += "<text x=\"\(number(margin))\" y=\"\(number(height - margin + 16))\" font-size=\"11\">\(String(format: "%.4g", x0))</text>\n"
        svg += "<text x=\"\(number(width - margin))\" y=\"\(number(height - margin + 16))\" text-anchor=\"end\" font-size=\"11\">\(String(format: "%.4g", x1))</text>\n"
        svg += "<text x=\"\(number(margin - 6))\" y=\"\(number(height - margin))\" text-anchor=\"end\" font-size=\"11\">\(String(format: "%.4g", y0))</text>\n"
        svg += "<text x=\"\(number(margin - 6))\" y=\"\(number(margin + 8))\" text-anchor=\"end\" font-size=\"11\">\(String(format: "%.4g", y1))</text>\n"
        svg += axisLabels("Predicted value", "Residual (true − predicted)")
        return svg + "</svg>\n"
    }

    /// The reliability diagram: mean predicted probability against the observed share of positives per bin.
    public static func calibration(scores: [Double], positive: [Bool]) -> String {
        let (curve, error) = Evaluation.calibration(scores: scores, positive: positive)
        return Plots.curve(curve.map { ($0.predicted, $0.observed) }, title: String(format: "Calibration curve (ECE %.4f)", error),
                           xLabel: "Mean predicted probability", yLabel: "Fraction of positives", diagonal: true)
    }

    /// SHAP beeswarm: per feature (the `top` by mean |SHAP|), each row's SHAP value as a dot colored by the feature's
    /// value (blue low, red high). `shap` is rows × (features + 1) with the base value last, `features` rows × features.
    public static func beeswarm(shap: [Double], features: [Double], names: [String], top: Int = 12) -> String {
        let width = names.count, rows = features.count / max(width, 1), block = width + 1
        var meanAbs = [Double](repeating: 0, count: width)
        for i in 0..<rows { for j in 0..<width { meanAbs[j] += abs(shap[i * block + j]) / Double(rows) } }
        let order = (0..<width).sorted { meanAbs[$0] > meanAbs[$1] }.prefix(top)
        let values = order.flatMap { j in (0..<rows).map { shap[$0 * block + j] } }
        let low = min(values.min() ?? -1, 0), high = max(values.max() ?? 1, 0), span = high > low ? high - low : 1
        let left = 150.0, plotW = Self.width - left - margin
        let rowH = min(24, (height - 2 * margin) / Double(max(order.count, 1)))
        var svg = header("SHAP values (impact on model output)")
        let zero = left + (0 - low) / span * plotW
        svg += "<line x1=\"\(number(zero))\" y1=\"\(number(margin))\" x2=\"\(number(zero))\" y2=\"\(number(height - margin))\" stroke=\"#bbb\"/>\n"
        for (r, j) in order.enumerated() {
            let y = margin + (Double(r) + 0.5) * rowH
            svg += "<text x=\"\(number(left - 6))\" y=\"\(number(y))\" text-anchor=\"end\" dominant-baseline=\"middle\" font-size=\"11\">\(escape(names[j]))</text>\n"
            let column = (0..<rows).map { features[$0 * width + j] }.filter { !$0.isNaN }
            let (f0, f1) = (column.min() ?? 0, column.max() ?? 1)
            for i in 0..<rows {
                let v = shap[i * block + j], f = features[i * width + j]
                let share = f.isNaN ? 0.5 : f1 > f0 ? (f - f0) / (f1 - f0) : 0.5
                // Deterministic jitter from the row number.
                let jitter = (Double((i &* 2_654_435_761) % 1000) / 1000 - 0.5) * rowH * 0.6
                svg += "<circle cx=\"\(number(left + (v - low) / span * plotW))\" cy=\"\(number(y + jitter))\" r=\"1.6\" fill=\"rgb(\(Int(30 + 225 * share)),60,\(Int(255 - 225 * share)))\" fill-opacity=\"0.6\"/>\n"
            }
        }
        svg += axisLabels("SHAP value", "")
        return svg + "</svg>\n"
    }

    /// Horizontal bars of the `top` largest importances.
    public static func importance(_ values: [(name: String, value: Double)], title: String, top: Int = 20) -> String {
        let bars = values.sorted { $0.value > $1.value }.prefix(top)
        let most = max(bars.first?.value ?? 1, 1e-300)
        let rowH = min(24, (height - 2 * margin) / Double(max(bars.count, 1)))
        let left = 150.0, plotW = width - left - margin
        var svg = header(title)
        for (i, bar) in bars.enumerated() {
            let y = margin + Double(i) * rowH
            svg += "<rect x=\"\(number(left))\" y=\"\(number(y + 2))\" width=\"\(number(max(0, bar.value / most) * plotW))\" height=\"\(number(rowH - 4))\" fill=\"#1f77b4\"/>\n"
            svg += "<text x=\"\(number(left - 6))\" y=\"\(number(y + rowH / 2))\" text-anchor=\"end\" dominant-baseline=\"middle\" font-size=\"11\">\(escape(bar.name))</text>\n"
            svg += "<text x=\"\(number(left + max(0, bar.value / most) * plotW + 4))\" y=\"\(number(y + rowH / 2))\" dominant-baseline=\"middle\" font-size=\"10\">\(String(format: "%.4g", bar.value))</text>\n"
        }
        return svg + "</svg>\n"
    }
}

extension KilnModel {
    /// Feature importance by feature name: gain for boosters, impurity decrease for trees and forests, the absolute
    /// coefficient times the feature's standard deviation on `data` for linear models (largest over classes).
    public func importance(on data: Dataset) throws -> [(name: String, value: Double)] {
        let names = featureNames
        switch state {
        case .kmeans: return []
        case .trees(let t): return zip(names, t.importances).map { ($0, $1) }
        case .booster(let b):
            let gains = try b.importance("gain")
            return names.enumerated().map { j, name in (name, gains["f\(j)"] ?? gains[name] ?? 0) }
        case .linear(let m):
            let scaler = Standardization(data, center: true, scale: true)
            return names.enumerated().map { j, name in (name, m.coefficients.map { abs($0[j]) * scaler.scale[j] }.max() ?? 0) }
        }
    }

    /// SHAP values of up to `maxRows` evenly spaced rows of `data` (nil for models without them), with those rows.
    /// Exact TreeSHAP costs about nodes × depth² per row: big forests explain fewer rows (at least 20).
    public func shapSummary(on data: Dataset, maxRows: Int = 1000) throws -> ([Double], Dataset)? {
        var maxRows = maxRows
        if case .trees(let t) = state { maxRows = min(maxRows, max(20, 4_000_000 / max(1, t.trees.reduce(0) { $0 + $1.nodeCount }))) }
        let step = max(1, data.rows / maxRows)
        let sample = data.subset(Array(Swift.stride(from: 0, to: data.rows, by: step).prefix(maxRows)))
        guard let values = try shap(sample.features, rows: sample.rows) else { return nil }
        return (values, sample)
    }

    /// The evaluation plots of this model on `data`, by file name.
    public func plots(on data: Dataset) throws -> [String: String] {
        let predictions = try predict(data.features, rows: data.rows)
        var out: [String: String] = [:]
        switch spec.task {
        case .classification:
            let labels = data.labels.map { Int($0) }
            out["confusion_matrix.svg"] = Plots.confusion(labels: labels, predicted: decide(predictions).map { Int($0) }, classes: classes)
            if classes.count == 2 {
                let scores = (0..<data.rows).map { predictions[$0 * 2 + 1] }, positive = labels.map { $0 == 1 }
                out["roc_curve.svg"] = Plots.roc(scores: scores, positive: positive)
                out["calibration_curve.svg"] = Plots.calibration(scores: scores, positive: positive)
                out["precision_recall_curve.svg"] = Plots.precisionRecall(scores: scores, positive: positive)
            }
        case .regression:
            out["residuals.svg"] = Plots.residuals(labels: data.labels, predictions: predictions)
        case .ranking:
            break
        case .clustering:
            var sizes: [Int: Int] = [:]
            for c in predictions { sizes[Int(c), default: 0] += 1 }
            out["cluster_sizes.svg"] = Plots.importance(sizes.sorted { $0.key < $1.key }.map { ("cluster \($0.key)", Double($0.value)) }, title: "Rows per cluster")
            return out
        }
        out["feature_importance.svg"] = Plots.importance(try importance(on: data), title: "Feature importance")
        if let (values, sample) = try shapSummary(on: data) {
            out["shap_beeswarm_plot.svg"] = Plots.beeswarm(shap: values, features: sample.features, names: featureNames)
            let width = featureNames.count
            let meanAbs = (0..<width).map { j in (0..<sample.rows).reduce(0.0) { $0 + abs(values[$1 * (width + 1) + j]) } / Double(max(sample.rows, 1)) }
            out["shap_feature_importance_plot.svg"] = Plots.importance(Array(zip(featureNames, meanAbs)).map { ($0, $1) }, title: "Mean |SHAP value|")
        }
        return out
    }
}
