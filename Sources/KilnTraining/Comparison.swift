import Foundation
import KilnCore
import KilnFrame
import KilnLake
import KilnLearn

/// Two models scored on the same rows, with a significance test of their difference.
public struct ModelComparison: Sendable {
    public var labelA: String
    public var labelB: String
    public var rows: Int
    public var tableVersion: Int64
    public var metricsA: [String: Double]
    public var metricsB: [String: Double]
    /// "mcnemar" (classifiers) or "paired_bootstrap" (regressors: RMSE of A − RMSE of B, 95% interval).
    public var test: String
    /// McNemar: rows only A got right (b), only B got right (c), the statistic and p-value.
    public var onlyA: Int?
    public var onlyB: Int?
    public var statistic: Double?
    public var pValue: Double?
    /// Paired bootstrap: the observed difference and its interval.
    public var difference: Double?
    public var low: Double?
    public var high: Double?
    /// "a" or "b" when that model is significantly better at the 5% level, else "neither".
    public var better: String
}

extension TrainingService {
    /// Scores `table` (pinned `version`, default newest) with both models and tests whether one is better: McNemar's
    /// test on which rows each classifier gets right, a paired bootstrap interval of the RMSE difference for
    /// regressors. Both models must predict the same target (and classes).
    public func compare(modelA: String, modelB: String, table: String, version: Int64? = nil, seed: UInt64 = 0) async throws -> ModelComparison {
        let (a, labelA) = try await loadModel(modelA)
        let (b, labelB) = try await loadModel(modelB)
        guard a.spec.task == b.spec.task, a.spec.target == b.spec.target, a.spec.task != .clustering else {
            throw KilnError.invalid("Compare two classifiers or two regressors of the same target (\(labelA): \(a.spec.task.rawValue) of '\(a.spec.target)', \(labelB): \(b.spec.task.rawValue) of '\(b.spec.target)')")
        }
        guard a.spec.task == .regression || a.classes == b.classes else {
            throw KilnError.invalid("The classifiers know different classes (\(a.classes.joined(separator: ", ")) vs \(b.classes.joined(separator: ", ")))")
        }
        let source = try DeltaTable.open(tablePath(table))
        let plan = try source.plan(version: version)
        let frame = try KilnLearn.Dataset.droppingNullTargets(try Frame.read(source, plan: plan), target: a.spec.target)
        let (dataA, dataB) = try await offload { (try a.dataset(of: frame), try b.dataset(of: frame)) }
        guard dataA.rows == dataB.rows, dataA.rows > 0 else {
            throw KilnError.invalid("The models' pipelines keep different rows of the table (\(dataA.rows) vs \(dataB.rows)); compare on rows both can score")
        }
        let predictionsA = try a.predict(dataA.features, rows: dataA.rows), predictionsB = try b.predict(dataB.features, rows: dataB.rows)
        var out = ModelComparison(labelA: labelA, labelB: labelB, rows: dataA.rows, tableVersion: plan.snapshot.version,
                                  metricsA: try a.evaluate(dataA), metricsB: try b.evaluate(dataB), test: "", better: "neither")
        if a.spec.task == .classification {
            let decidedA = a.decide(predictionsA), decidedB = b.decide(predictionsB)
            var onlyA = 0, onlyB = 0
            for i in 0..<dataA.rows {
                let rightA = decidedA[i] == dataA.labels[i], rightB = decidedB[i] == dataA.labels[i]
                if rightA && !rightB { onlyA += 1 }
                if rightB && !rightA { onlyB += 1 }
            }
            let (statistic, p) = Evaluation.mcnemar(b: onlyA, c: onlyB)
            (out.test, out.onlyA, out.onlyB, out.statistic, out.pValue) = ("mcnemar", onlyA, onlyB, statistic, p)
            if p < 0.05 { out.better = onlyA > onlyB ? "a" : "b" }
        } else {
            let labels = dataA.labels
            let (difference, low, high) = try await offload {
                try Evaluation.pairedBootstrap(labels: labels, a: predictionsA, b: predictionsB, seed: seed)
            }
            (out.test, out.difference, out.low, out.high) = ("paired_bootstrap", difference, low, high)
            if high < 0 { out.better = "a" } else if low > 0 { out.better = "b" }
        }
        return out
    }
}
