import Foundation
import KilnCore
import KilnFrame
import KilnModelFormat

/// Everything that decides a training run: data, algorithm, parameters, seed. Logged with the run so
/// `kiln runs reproduce` can fit the same model again.
public struct TrainingSpec: Codable, Sendable, Equatable {
    public var algorithm: Algorithm
    public var task: LearningTask
    public var target: String
    public var features: [String]
    /// Algorithm parameters by name (values as text, as they are logged).
    public var params: [String: String]
    public var seed: UInt64
    /// The training table (three-level name or path) and the version read.
    public var table: String?
    public var tableVersion: Int64?
    /// A separate test table, or the share of rows kept for training in a seeded split.
    public var testTable: String?
    public var testTableVersion: Int64?
    public var trainFraction: Double?
    /// Feature stages run before the estimator (definitions; fitted with the model).
    public var pipeline: Pipeline?
    /// k-fold cross-validation on the training rows, when asked for.
    public var folds: Int?
    /// Columns whose values slice the test metrics.
    public var cohorts: [String]?

    public init(algorithm: Algorithm, task: LearningTask, target: String, features: [String], params: [String: String] = [:], seed: UInt64 = 0,
                table: String? = nil, tableVersion: Int64? = nil, testTable: String? = nil, testTableVersion: Int64? = nil, trainFraction: Double? = nil) {
        self.algorithm = algorithm
        self.task = task
        self.target = target
        self.features = features
        self.params = params
        self.seed = seed
        self.table = table
        self.tableVersion = tableVersion
        self.testTable = testTable
        self.testTableVersion = testTableVersion
        self.trainFraction = trainFraction
    }
}

/// The algorithms `kiln train` offers.
public enum Algorithm: String, Codable, Sendable, CaseIterable {
    case linear, logistic, xgboost
    case decisionTree = "decision_tree", randomForest = "random_forest"
    case kmeans

    /// The task the algorithm solves, when it decides it.
    public var fixedTask: LearningTask? {
        switch self {
        case .linear: .regression
        case .logistic: .classification
        case .kmeans: .clustering
        case .xgboost, .decisionTree, .randomForest: nil
        }
    }

    /// Parameters the algorithm reads (XGBoost takes any of its own besides these).
    public var knownParams: [String] {
        switch self {
        case .linear: ["alpha", "l1_ratio", "fit_intercept", "standardize", "max_iter", "tol"]
        case .logistic: ["C", "penalty", "l1_ratio", "standardize", "max_iter", "tol", "class_weight"]
        case .xgboost: ["num_boost_round", "early_stopping_rounds", "validation_fraction"]
        case .decisionTree: ["max_depth", "min_samples_split", "min_samples_leaf", "max_features"]
        case .randomForest: ["n_estimators", "max_depth", "min_samples_split", "min_samples_leaf", "max_features", "bootstrap"]
        case .kmeans: ["k", "n_clusters", "max_iter", "tol", "n_init", "init"]
        }
    }
}

/// A fitted Kiln model: the spec it came from, the class names, and the fitted state.
public struct KilnModel: Sendable {
    public static let formatVersion = 1
    public enum State: Sendable {
        case linear(LinearModel)
        case booster(Booster)
        case trees(TreeEnsemble)
        case kmeans(KMeansModel)
    }

    public let spec: TrainingSpec
    public let classes: [String]
    public let state: State
    /// The fitted feature pipeline that turns table columns into the estimator's features.
    public var pipeline: Pipeline?

    public init(spec: TrainingSpec, classes: [String], state: State, pipeline: Pipeline? = nil) {
        self.spec = spec
        self.classes = classes
        self.state = state
        self.pipeline = pipeline
    }

    /// The estimator's features: the pipeline's vector slots, or the spec's columns.
    public var featureNames: [String] { pipeline?.slotNames ?? spec.features }

    /// The estimator's input for the rows of `frame` (through the pipeline when there is one) and, when the pipeline
    /// dropped rows (handle_invalid=skip), the frame rows the matrix rows came from.
    public func features(of frame: Frame) throws -> (matrix: [Double], rows: [Int]?) {
        guard let pipeline else { return (try Dataset.features(of: frame, columns: spec.features), nil) }
        let (vectors, rows) = try pipeline.transform(frame)
        return (vectors.dense(), rows.count == frame.rowCount ? nil : rows)
    }

    /// The labelled rows of `frame` as this model sees them: features through its pipeline, the target as its class
    /// indices (or values). Rows with a null target must be dropped first.
    public func dataset(of frame: Frame) throws -> Dataset {
        let (matrix, rows) = try features(of: frame)
        guard spec.task != .clustering else { return Dataset(features: matrix, width: featureNames.count, featureNames: featureNames, labels: [], task: spec.task) }
        let y = try frame.column(spec.target)
        return Dataset(features: matrix, width: featureNames.count, featureNames: featureNames,
                       labels: try Dataset.labels(rows.map { y.take($0) } ?? y, task: spec.task, classes: classes, target: spec.target),
                       task: spec.task, classes: classes)
    }

    /// Predictions for row-major `features` in `featureNames` order: class probabilities (rows × classes) for
    /// classification, values for regression.
    public func predict(_ features: [Double], rows: Int) throws -> [Double] {
        switch state {
        case .linear(let m): return m.predict(features, rows: rows)
        case .kmeans(let m): return m.assign(features, rows: rows).clusters
        case .trees(let t): return t.predict(features, rows: rows, width: featureNames.count)
        case .booster(let b):
            let (values, _) = try b.predict(features, rows: rows, width: featureNames.count)
            if spec.task == .classification, classes.count == 2 {
                var out = [Double](repeating: 0, count: values.count * 2)
                for (i, p) in values.enumerated() { (out[2 * i], out[2 * i + 1]) = (1 - p, p) }
                return out
            }
            return values
        }
    }

    /// The class (index into `classes`) or value per row, from `predict`'s output.
    public func decide(_ predictions: [Double]) -> [Double] {
        guard spec.task == .classification else { return predictions }
        let k = classes.count
        return stride(from: 0, to: predictions.count, by: k).map { start in
            var best = 0
            for c in 1..<k where predictions[start + c] > predictions[start + best] { best = c }
            return Double(best)
        }
    }

    /// SHAP values for rows of features: rows × (features + 1), the last column the expected value; for a binary
    /// classifier they explain class 1 (boosters: in log-odds, trees: in probability). Nil for models without them
    /// (linear models) and multiclass models.
    public func shap(_ features: [Double], rows: Int) throws -> [Double]? {
        let width = featureNames.count
        guard spec.task == .regression || spec.task == .ranking || classes.count == 2 else { return nil }
        switch state {
        case .linear, .kmeans: return nil
        case .booster(let b): return try b.predict(features, rows: rows, width: width, contributions: true).values
        case .trees(let t):
            let all = t.shap(features, rows: rows, width: width)
            let outputs = spec.task == .regression ? 1 : 2, block = width + 1
            // Class 1's block of each row.
            var out: [Double] = []
            out.reserveCapacity(rows * block)
            for i in 0..<rows {
                let start: Int = (i * outputs + outputs - 1) * block
                out += all[start..<(start + block)]
            }
            return out
        }
    }

    /// mlflow.evaluate's default metrics of this model on `data`.
    public func evaluate(_ data: Dataset) throws -> [String: Double] {
        let p = try predict(data.features, rows: data.rows)
        switch spec.task {
        case .classification: return Metrics.classification(labels: data.labels.map { Int($0) }, probabilities: p, classes: classes.count)
        case .regression: return Metrics.regression(labels: data.labels, predictions: p)
        case .ranking:
            return Metrics.ranking(labels: data.labels, scores: p, groupSizes: data.groupSizes)
        case .clustering:
            guard case .kmeans(let m) = state else { return [:] }
            let (clusters, distances) = m.assign(data.features, rows: data.rows)
            return try Metrics.clustering(features: data.features, width: data.width, clusters: clusters.map { Int($0) }, distances: distances, seed: spec.seed)
        }
    }

    // MARK: Persistence

    /// The `kiln` flavor's document: format version, spec, classes and the fitted state (a booster's trees live in
    /// XGBoost's own JSON file next to it).
    struct Document: Codable {
        var formatVersion: Int
        var kilnVersion: String
        var spec: TrainingSpec
        var classes: [String]
        var linear: LinearModel?
        var trees: TreeEnsemble?
        var kmeans: KMeansModel?
        var xgboostFile: String?
        var pipeline: Pipeline?

        enum CodingKeys: String, CodingKey {
            case formatVersion = "format_version", kilnVersion = "kiln_version", spec, classes, linear, trees, xgboostFile = "xgboost_file", pipeline, kmeans
        }
    }

    static let documentFile = "kiln_model.json", boosterFile = "model.json"

    /// Writes an MLflow model directory: `MLmodel`, the `kiln` flavor document, and for a booster the `xgboost` and
    /// `python_function` flavors as `mlflow.xgboost.save_model(..., model_format="json")` writes them (so
    /// `mlflow.xgboost.load_model` and `mlflow.pyfunc.load_model` load it in Python). Linear models carry only the
    /// `kiln` flavor and say in the MLmodel metadata that Python cannot load them.
    public func write(to directory: URL, runID: String? = nil, artifactPath: String? = nil, createdAt: Date = Date()) throws -> MLmodel {
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        var document = Document(formatVersion: Self.formatVersion, kilnVersion: kilnVersion, spec: spec, classes: classes, pipeline: pipeline)
        var flavors: [String: ModelValue] = [:]
        var metadata: [String: ModelValue] = ["kiln_algorithm": .string(spec.algorithm.rawValue), "kiln_task": .string(spec.task.rawValue)]
        switch state {
        case .linear, .trees, .kmeans:
            if case .kmeans(let m) = state { document.kmeans = m }
            if case .linear(let m) = state { document.linear = m }
            if case .trees(let t) = state { document.trees = t }
            metadata["python_loadable"] = .bool(false)
            metadata["note"] = .string("A Kiln-native \(spec.algorithm.rawValue) model: Kiln loads and serves it; Python has no loader for it.")
        case .booster(let b) where pipeline != nil:
            // XGBoost in Python could load the booster but not the feature pipeline before it: say so.
            document.xgboostFile = Self.boosterFile
            try Data(try b.json()).write(to: directory.appendingPathComponent(Self.boosterFile))
            metadata["python_loadable"] = .bool(false)
            metadata["note"] = .string("A Kiln feature pipeline feeds this booster: Kiln loads and serves it; Python has no loader for the pipeline.")
        case .booster(let b):
            document.xgboostFile = Self.boosterFile
            try Data(try b.json()).write(to: directory.appendingPathComponent(Self.boosterFile))
            flavors["xgboost"] = .map(["xgb_version": .string(Booster.libraryVersion), "data": .string(Self.boosterFile),
                                       "model_class": .string("xgboost.core.Booster"), "model_format": .string("json"), "code": .null])
            flavors["python_function"] = .map(["loader_module": .string("mlflow.xgboost"), "data": .string(Self.boosterFile),
                                               "env": .map(["conda": .string("conda.yaml"), "virtualenv": .string("python_env.yaml")]),
                                               "python_version": .string("3.11")])
            let requirements = "mlflow\nxgboost>=\(Booster.libraryVersion)\n"
            try requirements.write(to: directory.appendingPathComponent("requirements.txt"), atomically: true, encoding: .utf8)
            try "python: 3.11\nbuild_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n"
                .write(to: directory.appendingPathComponent("python_env.yaml"), atomically: true, encoding: .utf8)
            try "name: mlflow-env\nchannels:\n- conda-forge\ndependencies:\n- python=3.11\n- pip\n- pip:\n  - mlflow\n  - xgboost>=\(Booster.libraryVersion)\n"
                .write(to: directory.appendingPathComponent("conda.yaml"), atomically: true, encoding: .utf8)
        }
        let encoder = LearnJSON.encoder(pretty: true)
        try encoder.encode(document).write(to: directory.appendingPathComponent(Self.documentFile))
        flavors["kiln"] = .map(["kiln_version": .string(kilnVersion), "format_version": .int(Self.formatVersion),
                                "data": .string(Self.documentFile), "algorithm": .string(spec.algorithm.rawValue)])
        let textInputs = Set(pipeline?.textInputs ?? [])
        let inputs = "[" + spec.features.map { name in
            let type = textInputs.contains(name) ? "string" : "double"
            return "{\"type\": \"\(type)\", \"name\": \(jsonString(name)), \"required\": true}"
        }.joined(separator: ", ") + "]"
        let outputs: String
        switch (spec.task, state) {
        case (_, .booster) where pipeline != nil: outputs = "[{\"type\": \"double\", \"required\": true}]"
        case (.classification, .booster) where classes.count > 2:
            outputs = "[{\"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float32\", \"shape\": [-1, \(classes.count)]}}]"
        case (_, .booster): outputs = "[{\"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float32\", \"shape\": [-1]}}]"
        default: outputs = "[{\"type\": \"double\", \"required\": true}]"
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSSSSS"
        let model = MLmodel(flavors: flavors, artifactPath: artifactPath, runID: runID,
                            modelUUID: UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""),
                            utcTimeCreated: formatter.string(from: createdAt), signature: ModelSignature(inputs: inputs, outputs: outputs),
                            metadata: .map(metadata))
        try model.yaml().write(to: directory.appendingPathComponent("MLmodel"), atomically: true, encoding: .utf8)
        return model
    }

    /// Reads a model directory written by `write(to:)`.
    /// - Throws: when the directory has no `kiln` flavor (a Python-logged model) or a newer format version.
    public static func read(from directory: URL) throws -> KilnModel {
        let mlmodelURL = directory.appendingPathComponent("MLmodel")
        guard let text = try? String(contentsOf: mlmodelURL, encoding: .utf8) else { throw KilnError.notFound("No MLmodel file in \(directory.path)") }
        let mlmodel = try MLmodel.parse(text)
        guard let flavor = mlmodel.flavors["kiln"], let file = flavor["data"]?.text else {
            throw KilnError.invalid("The model at \(directory.path) has no kiln flavor (flavors: \(mlmodel.flavors.keys.sorted().joined(separator: ", "))); Kiln loads models it trained")
        }
        let data = try Data(contentsOf: directory.appendingPathComponent(file))
        let document = try LearnJSON.decoder().decode(Document.self, from: data)
        guard document.formatVersion <= formatVersion else {
            throw KilnError.invalid("The model was written by a newer Kiln (format \(document.formatVersion)); this Kiln reads up to \(formatVersion)")
        }
        let state: State
        if let linear = document.linear { state = .linear(linear) }
        else if let trees = document.trees { state = .trees(trees) }
        else if let kmeans = document.kmeans { state = .kmeans(kmeans) }
        else if let boosterFile = document.xgboostFile {
            state = .booster(try Booster.load(Array(try Data(contentsOf: directory.appendingPathComponent(boosterFile)))))
        } else { throw KilnError.invalid("The kiln model document has no fitted state") }
        return KilnModel(spec: document.spec, classes: document.classes, state: state, pipeline: document.pipeline)
    }
}

func jsonString(_ s: String) -> String {
    let data = try? JSONSerialization.data(withJSONObject: [s])
    return data.flatMap { String(data: $0, encoding: .utf8) }.map { String($0.dropFirst().dropLast()) } ?? "\"\(s)\""
}

/// One row's answer from a served model, in the shape MLflow's pyfunc flavors return.
public enum ServedPrediction: Sendable, Equatable {
    case number(Double)
    case integer(Int64)
    case text(String)
    case vector([Double])
}

extension KilnModel {
    /// Whether Python loads this model as an MLflow xgboost pyfunc (a booster without a Kiln pipeline).
    public var isPythonBooster: Bool {
        if case .booster = state, pipeline == nil { return true }
        return false
    }

    /// The input columns a served request must carry.
    public var inputColumns: [String] { pipeline?.inputColumns ?? spec.features }

    /// Predictions for serving, per row of `frame` (rows a pipeline drops answer nothing): for a Python-loadable
    /// booster exactly what `mlflow.pyfunc.load_model(...).predict` returns — class-1 probability (binary), the
    /// probability vector (multiclass) or the value; for Kiln-native models the class label (as an integer when every
    /// class is one), the value, the cluster or the ranking score.
    public func servedPredictions(_ frame: Frame) throws -> [ServedPrediction] {
        let (matrix, kept) = try features(of: frame)
        let rows = kept?.count ?? frame.rowCount
        let p = try predict(matrix, rows: rows)
        if isPythonBooster {
            if spec.task == .classification {
                let k = classes.count
                if k == 2 { return (0..<rows).map { .number(p[$0 * 2 + 1]) } }
                return (0..<rows).map { .vector(Array(p[($0 * k)..<(($0 + 1) * k)])) }
            }
            return p.map { .number($0) }
        }
        switch spec.task {
        case .classification:
            let integers = classes.allSatisfy { Int64($0) != nil }
            return decide(p).map { integers ? .integer(Int64(classes[Int($0)])!) : .text(classes[Int($0)]) }
        case .clustering: return p.map { .integer(Int64($0)) }
        case .regression, .ranking: return p.map { .number($0) }
        }
    }
}
