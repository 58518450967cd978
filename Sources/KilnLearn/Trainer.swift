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
        guard (spec.task == .clustering) == (spec.algorithm == .kmeans) else {
            throw KilnError.invalid(spec.algorithm == .kmeans ? "kmeans does only clustering" : "\(spec.algorithm.rawValue) does classification or regression, not clustering; use kmeans")
        }
        switch spec.algorithm {
        case .kmeans:
            var estimator = KMeans()
            estimator.seed = spec.seed
            estimator.k = try take("k", Int.init) ?? take("n_clusters", Int.init) ?? estimator.k
            estimator.maxIterations = try take("max_iter", Int.init) ?? estimator.maxIterations
            estimator.tolerance = try take("tol", Double.init) ?? estimator.tolerance
            estimator.starts = try take("n_init", Int.init) ?? estimator.starts
            if let initialization = params.removeValue(forKey: "init") {
                guard ["k-means++", "random"].contains(initialization) else { throw KilnError.invalid("init is k-means++ or random") }
                estimator.initialization = initialization
            }
            try rejectRest()
            return Fit(model: KilnModel(spec: spec, classes: [], state: .kmeans(try estimator.fit(train))))
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
            let ratio = try take("l1_ratio", Double.init)
            // scikit-learn ≥ 1.8 style: l1_ratio alone chooses the mix.
            estimator.penalty = params.removeValue(forKey: "penalty") ?? (ratio == nil ? "l2" : "elasticnet")
            estimator.l1Ratio = ratio ?? estimator.l1Ratio
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
            _ = params.removeValue(forKey: "group_column")  // read when the data was prepared
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
                case (.regression, _), (.clustering, _): d.append(("objective", "reg:squarederror"))
                case (.ranking, _): d.append(("objective", "rank:ndcg"))
                case (.classification, 2): d.append(("objective", "binary:logistic"))
                case (.classification, let k): d += [("objective", "multi:softprob"), ("num_class", String(k))]
                }
                return d
            }()
            for (k, v) in defaults where params[k] == nil { xgb.append((k, v)) }
            for (k, v) in params.sorted(by: { $0.key < $1.key }) { xgb.append((k, v)) }
            var fitData = train, validation: Dataset?
            if spec.task == .ranking, validationFraction > 0 {
                throw KilnError.invalid("Early stopping is not available for ranking yet (it needs a validation split by query group)")
            }
            if validationFraction > 0 {
                // A shuffle independent of the train/test split's (same seed, another stream).
                var stream = SplitMix64.stream(1, of: spec.seed)
                let (a, b) = train.split(trainFraction: 1 - validationFraction, seed: stream.next())
                fitData = a
                validation = b
            }
            let result = try Booster.train(
                parameters: xgb, rounds: rounds,
                train: (fitData.features, fitData.rows, fitData.width, fitData.labels), groups: fitData.groupSizes,
                validation: validation.map { ($0.features, $0.rows, $0.labels) }, earlyStoppingRounds: earlyStopping,
                progress: { progress?($0.round + 1, rounds) })
            var history: [String: [Double]] = [:]
            for evaluation in result.history { for (k, v) in evaluation.values { history[k, default: []].append(v) } }
            return Fit(model: KilnModel(spec: spec, classes: train.classes, state: .booster(result.booster)), history: history,
                       bestIteration: earlyStopping == nil ? nil : result.bestRound)
        }
    }
}

/// Training and test data for a spec, from frames: the target's null rows dropped, the seeded split (or the test
/// frame), and the spec's pipeline fitted on the training rows only.
public struct PreparedData: Sendable {
    public var train: Dataset
    public var test: Dataset
    /// The fitted pipeline, when the spec has one.
    public var pipeline: Pipeline?
    /// The values of each of the spec's cohort columns in the test rows (nil where null).
    public var testCohorts: [String: [String?]] = [:]

    /// Prepares `frame` (and `testFrame`, else a split of `frame` by `spec.trainFraction`, default 0.8) for `spec`.
    /// When the spec has no pipeline and a feature is text, an automatic one is set on `spec` (see
    /// `Pipeline.automatic`), so the logged spec re-creates it.
    /// - Throws: for text features with no pipeline possible, unknown test classes, or an empty side of the split.
    public init(spec: inout TrainingSpec, frame: Frame, testFrame: Frame?) throws {
        if spec.pipeline == nil {
            let text = try spec.features.filter { try frame.column($0).type == .string }
            if !text.isEmpty {
                let numeric = spec.features.filter { !text.contains($0) }
                spec.pipeline = Pipeline.automatic(numeric: numeric, text: text, oneHot: [.linear, .logistic].contains(spec.algorithm))
            }
        }
        let clustering = spec.task == .clustering
        let all = clustering ? frame : try Dataset.droppingNullTargets(frame, target: spec.target)
        let classes = spec.task == .classification ? try Dataset.classes(of: try all.column(spec.target), target: spec.target) : []
        if spec.task == .ranking {
            // Whole query groups go to one side of the split, and each side's rows are ordered by group.
            if spec.pipeline != nil { throw KilnError.invalid("Pipelines are not available for ranking yet; give numeric features") }
            guard let groupColumn = spec.params["group_column"] else {
                throw KilnError.invalid("Ranking needs the query column: --params group_column=<column> (with objective=rank:ndcg, rank:pairwise or rank:map)")
            }
            func keys(_ frame: Frame) throws -> [String] {
                let column = try frame.column(groupColumn)
                return (0..<frame.rowCount).map { column.isNull($0) ? "" : column.value($0).text }
            }
            func grouped(_ frame: Frame) throws -> (Frame, [Int]) {
                let k = try keys(frame)
                let order = k.indices.sorted { k[$0] != k[$1] ? k[$0] < k[$1] : $0 < $1 }
                var sizes: [Int] = []
                for (n, i) in order.enumerated() { if n == 0 || k[i] != k[order[n - 1]] { sizes.append(1) } else { sizes[sizes.count - 1] += 1 } }
                return (frame.take(order), sizes)
            }
            var trainSide = all, testSide = testFrame.map { $0 }
            if testFrame == nil {
                let k = try keys(all)
                var distinct = Array(Set(k)).sorted()
                var generator = SplitMix64(seed: spec.seed)
                distinct.shuffle(using: &generator)
                let trainGroups = Set(distinct.prefix(Int((Double(distinct.count) * (spec.trainFraction ?? 0.8)).rounded())))
                trainSide = all.take(k.indices.filter { trainGroups.contains(k[$0]) })
                testSide = all.take(k.indices.filter { !trainGroups.contains(k[$0]) })
            }
            guard trainSide.rowCount > 0, let testRows = testSide, testRows.rowCount > 0 else {
                throw KilnError.invalid("The split left no \(trainSide.rowCount == 0 ? "training" : "test") query groups; use more groups or another split")
            }
            let (trainOrdered, trainSizes) = try grouped(trainSide), (testOrdered, testSizes) = try grouped(testRows)
            let features = spec.features
            train = Dataset(features: try Dataset.features(of: trainOrdered, columns: features), width: features.count, featureNames: features,
                            labels: try Dataset.labels(try trainOrdered.column(spec.target), task: .ranking, classes: [], target: spec.target), task: .ranking)
            train.groupSizes = trainSizes
            test = Dataset(features: try Dataset.features(of: testOrdered, columns: features), width: features.count, featureNames: features,
                           labels: try Dataset.labels(try testOrdered.column(spec.target), task: .ranking, classes: [], target: spec.target), task: .ranking)
            test.groupSizes = testSizes
            if testFrame == nil { spec.trainFraction = spec.trainFraction ?? 0.8 }
            return
        }
        // Each side is a source frame and, for a split, the rows of it: numeric features are gathered straight from
        // the source (no copy of the split frames: at 10M × 50 that copy alone is 4 GB).
        let trainSource = all, testSource: Frame
        var trainIndex: [Int]?, testIndex: [Int]?
        if let testFrame {
            testSource = clustering ? testFrame : try Dataset.droppingNullTargets(testFrame, target: spec.target)
            spec.trainFraction = nil
        } else {
            let fraction = spec.trainFraction ?? 0.8
            spec.trainFraction = fraction
            let (a, b) = Dataset.splitRows(all.rowCount, trainFraction: fraction, seed: spec.seed)
            (testSource, trainIndex, testIndex) = (all, a, b)
        }
        let trainCount = trainIndex?.count ?? trainSource.rowCount, testCount = testIndex?.count ?? testSource.rowCount
        guard trainCount > 0, testCount > 0 else {
            throw KilnError.invalid("The split left no \(trainCount == 0 ? "training" : "test") rows; use more data or another split")
        }
        let s = spec
        /// The dataset of `source`'s rows `index` (nil: all), whose features are `matrix` for the rows `kept` of them.
        func dataset(_ source: Frame, _ index: [Int]?, matrix: [Double], names: [String], kept: [Int]?) throws -> Dataset {
            guard !clustering else { return Dataset(features: matrix, width: names.count, featureNames: names, labels: [], task: s.task) }
            let y = try source.column(s.target)
            let rows = kept.map { k in index.map { i in k.map { i[$0] } } ?? k } ?? index
            return Dataset(features: matrix, width: names.count, featureNames: names,
                           labels: try Dataset.labels(rows.map { y.take($0) } ?? y, task: s.task, classes: classes, target: s.target),
                           task: s.task, classes: classes)
        }
        var testKept: [Int]?
        if let definition = spec.pipeline {
            let trainPart = trainIndex.map { trainSource.take($0) } ?? trainSource, testPart = testIndex.map { testSource.take($0) } ?? testSource
            let fitted = try definition.fit(trainPart)
            let names = fitted.pipeline.slotNames ?? []
            train = try dataset(trainPart, nil, matrix: fitted.features.dense(), names: names, kept: fitted.rows)
            let scored = try fitted.pipeline.transform(testPart)
            test = try dataset(testPart, nil, matrix: scored.features.dense(), names: names, kept: scored.rows)
            pipeline = fitted.pipeline
            testKept = scored.rows.map { testIndex?[$0] ?? $0 }
        } else {
            train = try dataset(trainSource, trainIndex, matrix: try Dataset.features(of: trainSource, columns: spec.features, rows: trainIndex),
                                names: spec.features, kept: nil)
            test = try dataset(testSource, testIndex, matrix: try Dataset.features(of: testSource, columns: spec.features, rows: testIndex),
                               names: spec.features, kept: nil)
            testKept = testIndex
        }
        for name in spec.cohorts ?? [] {
            let column = try testSource.column(name)
            testCohorts[name] = (testKept ?? Array(0..<testSource.rowCount)).map { column.isNull($0) ? nil : column.value($0).text }
        }
    }
}
