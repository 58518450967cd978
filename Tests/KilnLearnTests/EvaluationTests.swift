import Foundation
import KilnCore
import KilnFrame
import KilnLearn
import Testing

@Suite("Evaluation")
struct EvaluationTests {
    @Test("McNemar: exact binomial below 25 disagreements, χ² with continuity correction above (SciPy's values)")
    func mcnemar() {
        #expect(abs(Evaluation.mcnemar(b: 3, c: 9).pValue - 0.14599609375) < 1e-15)
        #expect(abs(Evaluation.mcnemar(b: 0, c: 7).pValue - 0.015625) < 1e-15)
        #expect(Evaluation.mcnemar(b: 5, c: 5).pValue == 1)
        #expect(abs(Evaluation.mcnemar(b: 12, c: 1).pValue - 0.00341796875) < 1e-15)
        let large = Evaluation.mcnemar(b: 20, c: 40)
        #expect(abs(large.statistic - 6.016666666666667) < 1e-12)
        #expect(abs(large.pValue - 0.014171388254012323) < 1e-12)
        #expect(Evaluation.mcnemar(b: 0, c: 0).pValue == 1)
    }

    @Test("paired bootstrap: the interval holds the observed difference; identical models differ by nothing")
    func bootstrap() throws {
        let y = (0..<200).map { Double($0) }
        let good = y.map { $0 + 1 }, bad = y.enumerated().map { $1 + ($0 % 2 == 0 ? 5 : -5) }
        let r = try Evaluation.pairedBootstrap(labels: y, a: good, b: bad, seed: 1)
        #expect(r.difference == -4 && r.low <= -4 && r.high >= -4 && r.high < 0)
        let same = try Evaluation.pairedBootstrap(labels: y, a: good, b: good, seed: 1)
        #expect(same.difference == 0 && same.low == 0 && same.high == 0)
    }

    @Test("k-means++ finds well-separated clusters; silhouette is near 1 for them")
    func kmeans() throws {
        var features: [Double] = []
        var generator = SplitMix64(seed: 9)
        for i in 0..<600 {
            let center = Double(i % 3) * 100
            features += [center + Double(generator.next() % 1000) / 1000, center - Double(generator.next() % 1000) / 1000]
        }
        let data = Dataset(features: features, width: 2, featureNames: ["a", "b"], labels: [], task: .clustering)
        var estimator = KMeans()
        estimator.k = 3
        let model = try estimator.fit(data)
        let (clusters, distances) = model.assign(features, rows: 600)
        for i in 0..<597 { #expect(clusters[i] == clusters[i + 3]) }
        #expect(Set(clusters.prefix(3)).count == 3)
        let s = try Metrics.silhouette(features: features, width: 2, clusters: clusters.map { Int($0) }, seed: 0)
        #expect(s! > 0.99)
        #expect(abs(distances.reduce(0, +) - model.inertia) < 1e-9)
    }

    @Test("calibration bins match scikit-learn's uniform calibration_curve")
    func calibration() {
        let (curve, error) = Evaluation.calibration(scores: [0.05, 0.1, 0.15, 0.8, 0.9, 1.0], positive: [false, false, true, true, false, true])
        // 0.1 falls in the first bin (np.searchsorted, side left); 0.9 in the ninth, 1.0 in the last.
        #expect(curve.map(\.count) == [2, 1, 1, 1, 1])
        #expect(abs(curve[0].predicted - 0.075) < 1e-15 && curve[0].observed == 0)
        #expect(error > 0)
    }
}
