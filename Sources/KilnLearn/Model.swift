import Foundation
import KilnCore
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

    /// The task the algorithm solves, when it decides it.
    public var fixedTask: LearningTask? {
        switch self {
        case .linear: .regression
        case .logistic: .classification
        case .xgboost, .decisionTree, .randomForest: nil
        }
    }

    /// Parameters the algorithm reads (XGBoost takes any of its own besides these).
    public var knownParams: [String] {
        switch self {
        case .linear: ["alpha", "l1_ratio", "fit_intercept", "standardize", "max_iter", "tol"]
        case .logistic: ["C", "standardize", "max_iter", "tol", "class_weight"]
        case .xgboost: ["num_boost_round", "early_stopping_rounds", "validation_fraction"]
        case .decisionTree: ["max_depth", "min_samples_split", "min_samples_leaf", "max_features"]
        case .randomForest: ["n_estimators", "max_depth", "min_samples_split", "min_samples_leaf", "max_features", "bootstrap"]
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
    }

    public let spec: TrainingSpec
    public let classes: [String]
    public let state: State

    public init(spec: TrainingSpec, classes: [String], state: State) {
        self.spec = spec
        self.classes = classes
        self.state = state
    }

    /// Predictions for row-major `features` in `spec.features` order: class probabilities (rows × classes) for
    /// classification, values for regression.
    public func predict(_ features: [Double], rows: Int) throws -> [Double] {
        switch state {
        case .linear(let m): return m.predict(features, rows: rows)
        case .trees(let t): return t.predict(features, rows: rows, width: spec.features.count)
        case .booster(let b):
            let (values, _) = try b.predict(features, rows: rows, width: spec.features.count)
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
        let width = spec.features.count
        guard spec.task == .regression || classes.count == 2 else { return nil }
        switch state {
        case .linear: return nil
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
        var xgboostFile: String?

        enum CodingKeys: String, CodingKey {
            case formatVersion = "format_version", kilnVersion = "kiln_version", spec, classes, linear, trees, xgboostFile = "xgboost_file"
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
        var document = Document(formatVersion: Self.formatVersion, kilnVersion: kilnVersion, spec: spec, classes: classes)
        var flavors: [String: ModelValue] = [:]
        var metadata: [String: ModelValue] = ["kiln_algorithm": .string(spec.algorithm.rawValue), "kiln_task": .string(spec.task.rawValue)]
        switch state {
        case .linear, .trees:
            if case .linear(let m) = state { document.linear = m }
            if case .trees(let t) = state { document.trees = t }
            metadata["python_loadable"] = .bool(false)
            metadata["note"] = .string("A Kiln-native \(spec.algorithm.rawValue) model: Kiln loads and serves it; Python has no loader for it.")
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
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try encoder.encode(document).write(to: directory.appendingPathComponent(Self.documentFile))
        flavors["kiln"] = .map(["kiln_version": .string(kilnVersion), "format_version": .int(Self.formatVersion),
                                "data": .string(Self.documentFile), "algorithm": .string(spec.algorithm.rawValue)])
        let inputs = "[" + spec.features.map { "{\"type\": \"double\", \"name\": \(jsonString($0)), \"required\": true}" }.joined(separator: ", ") + "]"
        let outputs: String
        switch (spec.task, state) {
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
        let document = try JSONDecoder().decode(Document.self, from: data)
        guard document.formatVersion <= formatVersion else {
            throw KilnError.invalid("The model was written by a newer Kiln (format \(document.formatVersion)); this Kiln reads up to \(formatVersion)")
        }
        if let linear = document.linear { return KilnModel(spec: document.spec, classes: document.classes, state: .linear(linear)) }
        if let trees = document.trees { return KilnModel(spec: document.spec, classes: document.classes, state: .trees(trees)) }
        guard let boosterFile = document.xgboostFile else { throw KilnError.invalid("The kiln model document has no fitted state") }
        let booster = try Booster.load(Array(try Data(contentsOf: directory.appendingPathComponent(boosterFile))))
        return KilnModel(spec: document.spec, classes: document.classes, state: .booster(booster))
    }
}

func jsonString(_ s: String) -> String {
    let data = try? JSONSerialization.data(withJSONObject: [s])
    return data.flatMap { String(data: $0, encoding: .utf8) }.map { String($0.dropFirst().dropLast()) } ?? "\"\(s)\""
}
