import Foundation
import KilnCore
import KilnLearn

/// What `kiln train` and `POST /api/2.0/kiln/train` ask for.
public struct TrainRequest: Sendable, Codable, Equatable {
    /// A three-level table name (`main.default.t`, under the home's warehouse) or a table directory.
    public var table: String
    public var testTable: String?
    /// Share of rows to train on when there is no test table (default 0.8).
    public var split: Double?
    public var target: String
    public var algorithm: Algorithm
    public var task: LearningTask?
    public var params: [String: String]
    public var features: [String]?
    public var seed: UInt64
    /// Experiment name (created when missing; default: the Default experiment).
    public var experiment: String?
    /// Registered model to add the trained model to as a new version.
    public var register: String?
    public var runName: String?
    /// Read this version of the training table (default: the newest) — used to reproduce a run.
    public var tableVersion: Int64?
    public var testTableVersion: Int64?
    /// Feature stages to fit before the estimator (default: none for numeric features, an automatic one for text).
    public var pipeline: Pipeline?
    /// Also cross-validate on the training rows with this many folds.
    public var folds: Int?
    /// Test metrics per value of these columns (cohorts).
    public var cohorts: [String]?
    /// Log into this existing run (left running) instead of creating one: autologging into the caller's active run.
    public var runID: String?

    public init(table: String, target: String, algorithm: Algorithm, testTable: String? = nil, split: Double? = nil, task: LearningTask? = nil,
                params: [String: String] = [:], features: [String]? = nil, seed: UInt64 = 0, experiment: String? = nil,
                register: String? = nil, runName: String? = nil, tableVersion: Int64? = nil, testTableVersion: Int64? = nil,
                pipeline: Pipeline? = nil) {
        self.pipeline = pipeline
        self.table = table
        self.testTable = testTable
        self.split = split
        self.target = target
        self.algorithm = algorithm
        self.task = task
        self.params = params
        self.features = features
        self.seed = seed
        self.experiment = experiment
        self.register = register
        self.runName = runName
        self.tableVersion = tableVersion
        self.testTableVersion = testTableVersion
    }

    enum CodingKeys: String, CodingKey {
        case table, testTable = "test_table", split, target, algorithm, task, params, features, seed, experiment, register
        case runName = "run_name", tableVersion = "table_version", testTableVersion = "test_table_version", pipeline, folds, cohorts
        case runID = "run_id"
    }
}

/// What a training run produced.
public struct TrainOutcome: Sendable, Equatable {
    public var runID: String
    public var experimentID: String
    public var metrics: [String: Double]
    /// `runs:/<run id>/model`.
    public var modelURI: String
    public var registeredVersion: String?
    public var spec: TrainingSpec
    /// Seconds spent reading the tables, fitting, and predicting + scoring the test set.
    public var readSeconds = 0.0, fitSeconds = 0.0, evaluateSeconds = 0.0
}

extension TrainRequest {
    /// A training request from JSON fields, as `POST /api/2.0/kiln/train` and the jobs' native `train` task take
    /// it: table, target, algorithm, test_table | split, task, params, features, seed, experiment, register,
    /// run_name, table_version, test_table_version, pipeline, folds, cohorts, run_id.
    public init(json: [String: JSONValue]) throws {
        let m = JSONFields(json)
        let algorithmName = try m.require("algorithm")
        guard let algorithm = Algorithm(rawValue: algorithmName) else {
            throw KilnError.invalid("Unknown algorithm '\(algorithmName)'; use one of \(Algorithm.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var task: LearningTask?
        if let name = try m.string("task") {
            guard let t = LearningTask(rawValue: name) else { throw KilnError.invalid("task must be classification, regression, clustering or ranking") }
            task = t
        }
        var seed: UInt64 = 0
        if let s = try m.int64("seed") {
            guard s >= 0 else { throw KilnError.invalid("seed must not be negative") }
            seed = UInt64(s)
        }
        var pipeline: Pipeline?
        if let value = json["pipeline"], value != .null {
            do {
                if case .array = value { pipeline = Pipeline(stages: try LearnJSON.decoder().decode([Stage].self, from: Data(value.json.utf8))) }
                else { pipeline = try LearnJSON.decoder().decode(Pipeline.self, from: Data(value.json.utf8)) }
            } catch {
                throw KilnError.invalid("pipeline is not a valid pipeline: \(error)")
            }
        }
        self.init(table: try m.require("table"), target: algorithm == .kmeans ? try m.string("target") ?? "" : try m.require("target"), algorithm: algorithm,
                  testTable: try m.string("test_table"), split: try m.double("split"), task: task, params: try m.map("params"),
                  features: try m.strings("features"), seed: seed, experiment: try m.string("experiment"), register: try m.string("register"),
                  runName: try m.string("run_name"), tableVersion: try m.int64("table_version"),
                  testTableVersion: try m.int64("test_table_version"), pipeline: pipeline)
        folds = try m.int64("folds").map { Int($0) }
        cohorts = try m.strings("cohorts")
        runID = try m.string("run_id")
    }
}
