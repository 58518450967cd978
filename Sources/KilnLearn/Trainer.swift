import Foundation
import KilnCore
import KilnFrame

/// Fits a `TrainingSpec` on a dataset. Same spec, same data → the same model, bit for bit.
public enum Trainer {
    /// Progress of a long fit (boosting rounds), for progress bars.
    public typealias Progress = @Sendable (_ done: Int, _ total: Int) -> Void

    /// Fits the spec's algorithm on `train`. Parameters are checked first: unknown or malformed ones are errors that
    /// name the accepted ones.
    /// A fitted model with what the fit saw: per-round evaluation history (boosters: `train-logloss`, …) and the
    /// best round when early stopping chose one.
    public struct Fit: Sendable {
        public var model: KilnModel
        public var history: [String: [Double]] = [:]
        public var bestIteration: Int?
    }

    public static func fit(_ spec: TrainingSpec, _ train: Dataset, progress: Progress? = nil) throws -> Fit {
        guard train.rows > 0 else { throw KilnError.invalid("The training data has no rows") }
        var params = spec.params
        func take<T>(_ key: String, _ parse: (String) -> T?) throws -> T? {
            guard let text = params.removeValue(forKey: key) else { return nil }
            guard let value = parse(text) else { throw KilnError.invalid("Parameter \(key)=\(text) is not valid") }
            return value
        }
        func rejectRest() throws {
            guard params.isEmpty else {
                throw KilnError.invalid("Unknown parameter\(params.count > 1 ? "s" : "") for \(spec.algorithm.rawValue): \(params.keys.sorted().joined(separator: ", ")); accepted: \(spec.algorithm.knownParams.joined(separator: ", "))")
            }
        }
        let bool: (String) -> Bool? = { ["true": true, "1": true, "false": false, "0": false][$0.lowercased()] }
        switch spec.algorithm {
        case .linear:
            var estimator = LinearRegression()
            estimator.alpha = try take("alpha", Double.init) ?? estimator.alpha
            estimator.l1Ratio = try take("l1_ratio", Double.init) ?? estimator.l1Ratio
            estimator.fitIntercept = try take("fit_intercept", bool) ?? estimator.fitIntercept
            estimator.standardize = try take("standardize", bool) ?? estimator.standardize
            estimator.maxIterations = try take("max_iter", Int.init) ?? estimator.maxIterations
            estimator.tolerance = try take("tol", Double.init) ?? estimator.tolerance
            try rejectRest()
            return Fit(model: KilnModel(spec: spec, classes: [], state: .linear(try estimator.fit(train))))
        case .logistic:
            var estimator = LogisticRegression()
            estimator.c = try take("C", Double.init) ?? estimator.c
            estimator.standardize = try take("standardize", bool) ?? estimator.standardize
            estimator.maxIterations = try take("max_iter", Int.init) ?? estimator.maxIterations
            estimator.tolerance = try take("tol", Double.init) ?? estimator.tolerance
            if let weighting = params.removeValue(forKey: "class_weight") {
                guard weighting == "balanced" else { throw KilnError.invalid("class_weight takes 'balanced'") }
                let counts = (0..<train.classCount).map { k in train.labels.filter { Int($0) == k }.count }
                estimator.classWeights = counts.map { Double(train.rows) / (Double(train.classCount) * Double(max($0, 1))) }
            }
            try rejectRest()
            return Fit(model: KilnModel(spec: spec, classes: train.classes, state: .linear(try estimator.fit(train))))
        case .decisionTree, .randomForest:
            var options = TreeEnsemble.Options()
            let forest = spec.algorithm == .randomForest
            options.trees = try take("n_estimators", Int.init) ?? (forest ? 100 : 1)
            options.bootstrap = try take("bootstrap", bool) ?? forest
            options.maxDepth = try take("max_depth", Int.init)
            options.minSamplesSplit = try take("min_samples_split", Int.init) ?? 2
            options.minSamplesLeaf = try take("min_samples_leaf", Int.init) ?? 1
            if let text = params.removeValue(forKey: "max_features") {
                let d = Double(train.width)
                switch text {
                case "sqrt": options.maxFeatures = max(1, Int(d.squareRoot()))
                case "log2": options.maxFeatures = max(1, Int(Foundation.log2(d)))
                default:
                    if let n = Int(text), n > 0 { options.maxFeatures = n }
                    else if let f = Double(text), f > 0, f <= 1 { options.maxFeatures = max(1, Int(f * d)) }
                    else { throw KilnError.invalid("Parameter max_features=\(text) is not valid: use sqrt, log2, a count or a fraction") }
                }
            } else if forest {
                options.maxFeatures = spec.task == .classification ? max(1, Int(Double(train.width).squareRoot())) : train.width
            }
            if let depth = options.maxDepth, depth < 1 { throw KilnError.invalid("max_depth must be ≥ 1") }
            options.seed = spec.seed
            try rejectRest()
            let ensemble = try TreeEnsemble.fit(train, options)
            return Fit(model: KilnModel(spec: spec, classes: train.classes, state: .trees(ensemble)))
        case .xgboost:
            let rounds = try take("num_boost_round", Int.init) ?? take("n_estimators", Int.init) ?? 100
            let earlyStopping = try take("early_stopping_rounds", Int.init)
            let validationFraction = try take("validation_fraction", Double.init) ?? (earlyStopping == nil ? 0 : 0.1)
            guard rounds > 0 else { throw KilnError.invalid("num_boost_round must be > 0") }
            guard (0..<1).contains(validationFraction) else { throw KilnError.invalid("validation_fraction must be in [0, 1)") }
            var xgb: [(String, String)] = []
            let defaults: [(String, String)] = {
                var d: [(String, String)] = [("tree_method", "hist"), ("seed", String(spec.seed)),
                                             ("nthread", String(ProcessInfo.processInfo.activeProcessorCount))]
                switch (spec.task, train.classCount) {
                case (.regression, _): d.append(("objective", "reg:squarederror"))
                case (.classification, 2): d.append(("objective", "binary:logistic"))
                case (.classification, let k): d += [("objective", "multi:softprob"), ("num_class", String(k))]
                }
                return d
            }()
            for (k, v) in defaults where params[k] == nil { xgb.append((k, v)) }
            for (k, v) in params.sorted(by: { $0.key < $1.key }) { xgb.append((k, v)) }
            var fitData = train, validation: Dataset?
            if validationFraction > 0 {
                // A shuffle independent of the train/test split's (same seed, another stream).
                var stream = SplitMix64.stream(1, of: spec.seed)
                let (a, b) = train.split(trainFraction: 1 - validationFraction, seed: stream.next())
                fitData = a
                validation = b
            }
            let result = try Booster.train(
                parameters: xgb, rounds: rounds,
                train: (fitData.features, fitData.rows, fitData.width, fitData.labels),
                validation: validation.map { ($0.features, $0.rows, $0.labels) }, earlyStoppingRounds: earlyStopping,
                progress: { progress?($0.round + 1, rounds) })
            var history: [String: [Double]] = [:]
            for evaluation in result.history { for (k, v) in evaluation.values { history[k, default: []].append(v) } }
            return Fit(model: KilnModel(spec: spec, classes: train.classes, state: .booster(result.booster)), history: history,
                       bestIteration: earlyStopping == nil ? nil : result.bestRound)
        }
    }
}
