import Foundation
import KilnCore
import KilnFrame
import KilnLearn
import KilnModelFormat
import Testing

@Suite("Learn")
struct LearnTests {
    /// y = 2·a − 3·b + 1 (+ small noise when asked), and a class label from the sign of a − b.
    static func synthetic(rows: Int, noise: Double = 0, seed: UInt64 = 1) -> Frame {
        var generator = SplitMix64(seed: seed)
        func uniform() -> Double { Double(generator.next() >> 11) / Double(1 << 53) * 2 - 1 }
        var a: [Double] = [], b: [Double] = [], y: [Double] = [], label: [Int64] = []
        for _ in 0..<rows {
            let x1 = uniform(), x2 = uniform()
            a.append(x1)
            b.append(x2)
            y.append(2 * x1 - 3 * x2 + 1 + noise * uniform())
            label.append(x1 - x2 + 0.3 * uniform() > 0 ? 1 : 0)
        }
        return Frame(names: ["a", "b", "y", "label"], columns: [
            Column(type: .float64, values: .double(a)), Column(type: .float64, values: .double(b)),
            Column(type: .float64, values: .double(y)), Column(type: .int64, values: .int(label)),
        ])
    }

    @Test("metrics match scikit-learn's definitions on small cases")
    func metrics() {
        #expect(Metrics.rocAUC(scores: [0.1, 0.4, 0.35, 0.8], positive: [false, false, true, true]) == 0.75)
        #expect(Metrics.rocAUC(scores: [0.5, 0.5], positive: [false, true]) == 0.5)
        #expect(Metrics.rocAUC(scores: [0.5, 0.6], positive: [true, true]) == nil)
        // sklearn: auc(recall, precision) for this curve = 0.7916666…
        let pr = Metrics.prAUC(scores: [0.1, 0.4, 0.35, 0.8], positive: [false, false, true, true])!
        #expect(abs(pr - 0.7916666666666666) < 1e-12)
        let m = Metrics.classification(labels: [0, 1, 1, 0], probabilities: [0.9, 0.1, 0.2, 0.8, 0.6, 0.4, 0.3, 0.7], classes: 2)
        #expect(m["accuracy_score"] == 0.5 && m["true_positives"] == 1 && m["false_positives"] == 1 && m["precision_score"] == 0.5)
        #expect(abs(m["log_loss"]! - (-(log(0.9) + log(0.8) + log(0.4) + log(0.3)) / 4)) < 1e-12)
        let r = Metrics.regression(labels: [3, -0.5, 2, 7], predictions: [2.5, 0.0, 2, 8])
        #expect(r["mean_squared_error"] == 0.375 && r["mean_absolute_error"] == 0.5 && r["max_error"] == 1)
        #expect(abs(r["r2_score"]! - 0.9486081370449679) < 1e-12)
    }

    @Test("linear regression recovers the coefficients; elastic net shrinks them")
    func linear() throws {
        let data = try Dataset(Self.synthetic(rows: 500), target: "y", features: ["a", "b"], task: .regression)
        let fit = try LinearRegression().fit(data)
        #expect(abs(fit.coefficients[0][0] - 2) < 1e-9 && abs(fit.coefficients[0][1] + 3) < 1e-9 && abs(fit.intercepts[0] - 1) < 1e-9)
        var lasso = LinearRegression()
        lasso.alpha = 0.5
        lasso.l1Ratio = 1
        let shrunk = try lasso.fit(data)
        #expect(abs(shrunk.coefficients[0][0]) < 2 && abs(shrunk.coefficients[0][1]) < 3)
        #expect(throws: KilnError.self) { try LinearRegression().fit(Dataset(Self.synthetic(rows: 10), target: "label", features: ["a"], task: .classification)) }
    }

    @Test("logistic regression: binary and multinomial probabilities, deterministic")
    func logistic() throws {
        let frame = Self.synthetic(rows: 2000)
        let data = try Dataset(frame, target: "label", features: ["a", "b"])
        #expect(data.task == .classification && data.classes == ["0", "1"])
        let spec = TrainingSpec(algorithm: .logistic, task: .classification, target: "label", features: ["a", "b"])
        let model = try Trainer.fit(spec, data).model
        let metrics = try model.evaluate(data)
        #expect(metrics["accuracy_score"]! > 0.9 && metrics["roc_auc"]! > 0.95)
        let again = try Trainer.fit(spec, data).model
        #expect(try model.predict(data.features, rows: data.rows) == again.predict(data.features, rows: data.rows))
        // Three classes from the sign pattern of a and b.
        let three = Frame(names: ["a", "b", "c"], columns: [frame.columns[0], frame.columns[1],
            Column(type: .string, values: .bytes({ var b = ByteColumn(); for i in 0..<frame.rowCount {
                guard case .double(let a) = frame.columns[0].values, case .double(let c) = frame.columns[1].values else { break }
                b.append(a[i] > 0.3 ? "high" : c[i] > 0 ? "mid" : "low") }; return b }()))])
        let multi = try Dataset(three, target: "c")
        let m = try Trainer.fit(TrainingSpec(algorithm: .logistic, task: .classification, target: "c", features: ["a", "b"]), multi).model
        let p = try m.predict(multi.features, rows: multi.rows)
        #expect(p.count == multi.rows * 3 && abs(p[0] + p[1] + p[2] - 1) < 1e-12)
        #expect(try m.evaluate(multi)["accuracy_score"]! > 0.9)
    }

    @Test("XGBoost boosters train, early-stop, explain and round-trip through a model directory")
    func booster() throws {
        let data = try Dataset(Self.synthetic(rows: 3000, noise: 0.1), target: "y", features: ["a", "b"], task: .regression)
        let (train, test) = data.split(trainFraction: 0.8, seed: 3)
        #expect(train.rows + test.rows == 3000 && train.rows == 2400)
        let spec = TrainingSpec(algorithm: .xgboost, task: .regression, target: "y", features: ["a", "b"],
                                params: ["num_boost_round": "200", "max_depth": "4", "early_stopping_rounds": "5"], seed: 9)
        let fit = try Trainer.fit(spec, train)
        #expect(fit.bestIteration != nil && fit.history["validation-rmse"] != nil && fit.history["train-rmse"] == nil)
        let metrics = try fit.model.evaluate(test)
        #expect(metrics["r2_score"]! > 0.98)
        guard case .booster(let booster) = fit.model.state else { Issue.record("not a booster"); return }
        // SHAP contributions sum to the margin prediction.
        let (contrib, shape) = try booster.predict(test.features, rows: 5, width: 2, contributions: true)
        let (margin, _) = try booster.predict(test.features, rows: 5, width: 2, margin: true)
        #expect(shape == [5, 3])
        for i in 0..<5 { #expect(abs(contrib[(i * 3)..<(i * 3 + 3)].reduce(0, +) - margin[i]) < 1e-4) }
        #expect(try !booster.importance("gain").isEmpty)

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-learn-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let mlmodel = try fit.model.write(to: directory)
        #expect(Set(mlmodel.flavors.keys) == ["kiln", "xgboost", "python_function"] && mlmodel.pythonLoaderModule == "mlflow.xgboost")
        let loaded = try KilnModel.read(from: directory)
        #expect(try loaded.predict(test.features, rows: test.rows) == fit.model.predict(test.features, rows: test.rows))
        #expect(loaded.spec == spec)

        // Same seed and data: the same trees.
        #expect(try Trainer.fit(spec, train).model.predict(test.features, rows: test.rows) == fit.model.predict(test.features, rows: test.rows))
        // Bad parameters are named.
        var bad = spec
        bad.params["max_depth"] = "deep"
        #expect(throws: KilnError.self) { try Trainer.fit(bad, train) }
        #expect(throws: KilnError.self) { try Trainer.fit(TrainingSpec(algorithm: .linear, task: .regression, target: "y", features: ["a"], params: ["depth": "3"]), train) }
    }

    @Test("evaluation plots: ROC, PR, calibration, confusion matrix, importance for classifiers; residuals for regressors")
    func plots() throws {
        let frame = Self.synthetic(rows: 400)
        let data = try Dataset(frame, target: "label", features: ["a", "b"])
        let model = try Trainer.fit(TrainingSpec(algorithm: .logistic, task: .classification, target: "label", features: ["a", "b"]), data).model
        let svgs = try model.plots(on: data)
        #expect(Set(svgs.keys) == ["roc_curve.svg", "precision_recall_curve.svg", "calibration_curve.svg", "confusion_matrix.svg", "feature_importance.svg"])
        for svg in svgs.values {
            #expect(svg.hasPrefix("<svg ") && svg.hasSuffix("</svg>\n"))
            #expect(!["=\"nan", ",nan", "nan,", "=\"inf", ">nan<"].contains { svg.contains($0) })  // no NaN coordinates
        }
        #expect(svgs["roc_curve.svg"]!.contains("AUC 0.9"))
        let regression = try Dataset(frame, target: "y", features: ["a", "b"], task: .regression)
        let linear = try Trainer.fit(TrainingSpec(algorithm: .linear, task: .regression, target: "y", features: ["a", "b"]), regression).model
        #expect(Set(try linear.plots(on: regression).keys) == ["residuals.svg", "feature_importance.svg"])
        // |coefficient| × std: b (−3) matters more than a (2) on uniform features.
        let importance = Dictionary(uniqueKeysWithValues: try linear.importance(on: regression).map { ($0.name, $0.value) })
        #expect(importance["b"]! > importance["a"]!)
    }

    @Test("linear models write a kiln-only MLmodel that says Python cannot load it")
    func nativeModelDirectory() throws {
        let data = try Dataset(Self.synthetic(rows: 100), target: "y", features: ["a", "b"], task: .regression)
        let model = try Trainer.fit(TrainingSpec(algorithm: .linear, task: .regression, target: "y", features: ["a", "b"]), data).model
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-learn-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let mlmodel = try model.write(to: directory)
        #expect(Array(mlmodel.flavors.keys) == ["kiln"] && mlmodel.metadata?["python_loadable"] == .bool(false))
        let loaded = try KilnModel.read(from: directory)
        #expect(try loaded.predict(data.features, rows: data.rows) == model.predict(data.features, rows: data.rows))
    }
}

@Suite("Trees")
struct TreeTests {
    @Test("trees and forests fit, predict, and round-trip; TreeSHAP equals brute-force Shapley values")
    func trees() throws {
        let frame = LearnTests.synthetic(rows: 1500, noise: 0.2)
        let data = try Dataset(frame, target: "y", features: ["a", "b"], task: .regression)
        let (train, test) = data.split(trainFraction: 0.8, seed: 1)
        let tree = try Trainer.fit(TrainingSpec(algorithm: .decisionTree, task: .regression, target: "y", features: ["a", "b"], params: ["max_depth": "6"]), train).model
        #expect(try tree.evaluate(test)["r2_score"]! > 0.9)
        let forestSpec = TrainingSpec(algorithm: .randomForest, task: .regression, target: "y", features: ["a", "b"], params: ["n_estimators": "30"], seed: 4)
        let forest = try Trainer.fit(forestSpec, train).model
        #expect(try forest.evaluate(test)["r2_score"]! > 0.95)
        // Deterministic for a seed.
        #expect(try Trainer.fit(forestSpec, train).model.predict(test.features, rows: test.rows) == forest.predict(test.features, rows: test.rows))

        // A small classification tree on 3 features; SHAP against the definition.
        let labels = try Dataset(frame, target: "label", features: ["a", "b", "y"], task: .classification)
        let small = try Trainer.fit(TrainingSpec(algorithm: .decisionTree, task: .classification, target: "label", features: ["a", "b", "y"],
                                                 params: ["max_depth": "4"]), labels).model
        guard case .trees(let ensemble) = small.state else { Issue.record("not trees"); return }
        let tree0 = ensemble.trees[0]
        let rows = 20
        let shap = try small.shap(labels.features, rows: rows)!
        let predictions = try small.predict(labels.features, rows: rows)
        for i in 0..<rows {
            let x = Array(labels.row(i))
            // v(S): expected class-1 probability given the features in S (cover-weighted over the others).
            func value(_ s: Set<Int>, _ node: Int = 0) -> Double {
                if tree0.left[node] < 0 { return tree0.values[node * 2 + 1] }
                let f = Int(tree0.feature[node]), l = Int(tree0.left[node]), r = Int(tree0.right[node])
                if s.contains(f) { return x[f].isNaN || Double(Float(x[f])) <= tree0.threshold[node] ? value(s, l) : value(s, r) }
                return (tree0.cover[l] * value(s, l) + tree0.cover[r] * value(s, r)) / tree0.cover[node]
            }
            let m = 3
            func factorial(_ n: Int) -> Double { n <= 1 ? 1 : Double(n) * factorial(n - 1) }
            for feature in 0..<m {
                var phi = 0.0
                let others = (0..<m).filter { $0 != feature }
                for mask in 0..<(1 << others.count) {
                    let s = Set(others.enumerated().filter { mask & (1 << $0.offset) != 0 }.map(\.element))
                    phi += factorial(s.count) * factorial(m - s.count - 1) / factorial(m) * (value(s.union([feature])) - value(s))
                }
                #expect(abs(shap[i * 4 + feature] - phi) < 1e-12)
            }
            let total = shap[(i * 4)..<(i * 4 + 4)].reduce(0, +)
            #expect(abs(total - predictions[i * 2 + 1]) < 1e-12)
        }
        // Round trip through a model directory.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-trees-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try forest.write(to: directory)
        #expect(try KilnModel.read(from: directory).predict(test.features, rows: test.rows) == forest.predict(test.features, rows: test.rows))
        #expect(throws: KilnError.self) { try Trainer.fit(TrainingSpec(algorithm: .randomForest, task: .regression, target: "y", features: ["a"], params: ["max_features": "half"]), train) }
    }
}
