import Foundation
import KilnBlob
import KilnCore
import KilnFrame
import KilnLake
import KilnLearn
import KilnTracking

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

extension Platform {
    /// The directory of a table argument: a three-level name under this home's warehouse, else a path.
    public func tablePath(_ table: String) -> String { KilnConfiguration.tablePath(table, home: configuration.home) }

    /// Trains a model on a table version and logs everything to tracking as one run: params (the spec and the
    /// algorithm's), `training_`/`test_` metrics under mlflow.evaluate's names, the table versions as dataset inputs,
    /// the model directory under `model/` and the training spec as `kiln_training_spec.json`. Optionally registers the
    /// model. The run is FAILED (and the error rethrown) when fitting fails after the run started.
    public func train(_ request: TrainRequest, progress: Trainer.Progress? = nil) async throws -> TrainOutcome {
        if let split = request.split, !(split > 0 && split < 1) { throw KilnError.invalid("split must be between 0 and 1 (the share of rows to train on)") }
        if request.split != nil, request.testTable != nil { throw KilnError.invalid("Give a test table or a split, not both") }
        // Read the pinned table versions.
        func read(_ name: String, version: Int64?, columns: [String]?) throws -> (Frame, Int64) {
            let table = try DeltaTable.open(tablePath(name))
            let plan = try table.plan(version: version)
            return (try Frame.read(table, plan: plan, columns: columns), plan.snapshot.version)
        }
        let started = Date()
        guard !request.target.isEmpty || request.algorithm == .kmeans else { throw KilnError.invalid("\(request.algorithm.rawValue) needs a target column") }
        if let folds = request.folds, folds < 2 { throw KilnError.invalid("folds must be at least 2") }
        let groupColumn = request.algorithm == .xgboost ? request.params["group_column"] : nil
        let target = (request.target.isEmpty ? [] : [request.target]) + (request.cohorts ?? []) + (groupColumn.map { [$0] } ?? [])
        let wanted = request.features.map { Array(Set($0 + (request.pipeline?.inputColumns ?? []) + target)).sorted() }
            ?? request.pipeline.map { $0.inputColumns + target }
        let (trainFrame, trainVersion) = try read(request.table, version: request.tableVersion, columns: wanted)
        let ranking = groupColumn != nil || (request.algorithm == .xgboost && request.params["objective"]?.hasPrefix("rank:") == true)
        let task = try request.task ?? request.algorithm.fixedTask ?? (ranking ? .ranking : KilnLearn.Dataset.inferTask(trainFrame, target: request.target))
        if task == .ranking, request.cohorts?.isEmpty == false { throw KilnError.invalid("Cohort metrics are not available for ranking yet") }
        if let fixed = request.algorithm.fixedTask, fixed != task {
            throw KilnError.invalid("\(request.algorithm.rawValue) does only \(fixed.rawValue); the task asked for is \(task.rawValue)")
        }
        // The rescued-data column of an ingested table holds values that did not fit the schema: never a feature.
        let excluded = Set(([request.target, "_rescued_data"] + (groupColumn.map { [$0] } ?? [])).map { $0.lowercased() })
        let features = request.features ?? request.pipeline?.inputColumns ?? trainFrame.names.filter { !excluded.contains($0.lowercased()) }
        guard !features.isEmpty else { throw KilnError.invalid("No feature columns: the table has only the target '\(request.target)'") }
        var spec = TrainingSpec(algorithm: request.algorithm, task: task, target: request.target, features: features, params: request.params,
                                seed: request.seed, table: request.table, tableVersion: trainVersion, trainFraction: request.split)
        spec.pipeline = request.pipeline
        spec.folds = request.folds
        spec.cohorts = request.cohorts.flatMap { $0.isEmpty ? nil : $0 }
        var testFrame: Frame?
        if let testTable = request.testTable {
            let (frame, version) = try read(testTable, version: request.testTableVersion, columns: Array(Set(features + (request.pipeline?.inputColumns ?? []) + target)).sorted())
            testFrame = frame
            spec.testTable = testTable
            spec.testTableVersion = version
        }
        let prepared = try PreparedData(spec: &spec, frame: trainFrame, testFrame: testFrame)
        let (train, test) = (prepared.train, prepared.test)
        let readSeconds = Date().timeIntervalSince(started)
        guard train.rows > 0, test.rows > 0 else { throw KilnError.invalid("The pipeline left no \(train.rows == 0 ? "training" : "test") rows (handle_invalid=skip dropped them all)") }

        // The run.
        let experimentID: String
        let run: KilnTracking.Run
        let tags = [KeyValue("kiln.algorithm", request.algorithm.rawValue), KeyValue("kiln.task", task.rawValue)]
        if let active = request.runID, !active.isEmpty {
            // Autologging: the caller's run gets everything and stays open.
            run = try await tracking.getRun(id: active)
            guard run.info.status == .running else {
                throw KilnError.invalid("Run \(active) is \(run.info.status.rawValue); kiln logs into a RUNNING run (start one, or leave out run_id)")
            }
            experimentID = run.info.experimentID
            for tag in tags { try await tracking.setTag(runID: active, key: tag.key, value: tag.value) }
        } else {
            if let name = request.experiment, !name.isEmpty {
                if let existing = try? await tracking.getExperiment(name: name) { experimentID = existing.id }
                else { experimentID = try await tracking.createExperiment(name: name) }
            } else {
                experimentID = "0"
            }
            run = try await tracking.createRun(experimentID: experimentID, runName: request.runName,
                                               tags: [KeyValue("mlflow.source.name", "kiln train"), KeyValue("mlflow.source.type", "LOCAL")] + tags)
        }
        let runID = run.info.runID
        let ownsRun = request.runID?.isEmpty ?? true
        do {
            let finalSpec = spec
            let fitStarted = Date()
            var fit = try await Self.offload { try Trainer.fit(finalSpec, train, progress: progress) }
            fit.model.pipeline = prepared.pipeline
            let fitSeconds = Date().timeIntervalSince(fitStarted)
            let model = fit.model
            let evaluateStarted = Date()
            let testMetrics = try model.evaluate(test)
            let evaluateSeconds = Date().timeIntervalSince(evaluateStarted)
            let trainingMetrics = try model.evaluate(train)
            var metrics: [String: Double] = [:]
            for (k, v) in testMetrics { metrics["test_" + k] = v }
            for (k, v) in trainingMetrics { metrics["training_" + k] = v }
            var stepped: [(key: String, values: [Double])] = []
            if let folds = spec.folds {
                let results = try await Self.offload { try Evaluation.crossValidate(finalSpec, train, folds: folds) }
                for (k, v) in Evaluation.summarize(results) { metrics["cv_" + k] = v }
                for key in Set(results.flatMap(\.keys)).sorted() { stepped.append(("cv_" + key, results.map { $0[key] ?? .nan })) }
            }
            var cohortMetrics: [String: [String: [String: Double]]] = [:]
            for (column, values) in prepared.testCohorts.sorted(by: { $0.key < $1.key }) {
                let slices = try Evaluation.cohorts(model, test, values: values)
                cohortMetrics[column] = slices
                // The ten largest slices also as metrics: test_<metric>/<column>/<value>.
                let largest = slices.sorted { ($0.value["example_count"] ?? 0, $1.key) > ($1.value["example_count"] ?? 0, $0.key) }.prefix(10)
                for (value, m) in largest {
                    let safe = String(value.prefix(100).map { $0.isLetter || $0.isNumber || "_.- ".contains($0) ? $0 : "_" })
                    for (k, v) in m { metrics["test_\(k)/\(column)/\(safe)"] = v }
                }
            }
            if let best = fit.bestIteration { metrics["best_iteration"] = Double(best) }
            let now = clock.nowMillis()
            var logged = metrics.sorted { $0.key < $1.key }.map { Metric(key: $0.key, value: $0.value, timestamp: now, step: 0) }
            // Boosting history (one step per round) and cross-validation folds (one step per fold).
            for (key, values) in fit.history.sorted(by: { $0.key < $1.key }) {
                let name = key.replacingOccurrences(of: "-", with: "_")
                logged += values.enumerated().map { Metric(key: name, value: $1, timestamp: now, step: Int64($0)) }
            }
            for (key, values) in stepped { logged += values.enumerated().map { Metric(key: key, value: $1, timestamp: now, step: Int64($0)) } }
            var params: [KeyValue] = [
                KeyValue("algorithm", request.algorithm.rawValue), KeyValue("task", task.rawValue),
                KeyValue("features", spec.features.joined(separator: ",")), KeyValue("seed", String(request.seed)),
                KeyValue("table", request.table), KeyValue("table_version", String(trainVersion)),
            ]
            if !request.target.isEmpty { params.append(KeyValue("target", request.target)) }
            if let pipeline = spec.pipeline {
                params.append(KeyValue("pipeline", String(pipeline.stages.map(\.name).joined(separator: " → ").prefix(6000))))
            }
            if let fraction = spec.trainFraction { params.append(KeyValue("train_fraction", String(fraction))) }
            if let t = spec.testTable { params += [KeyValue("test_table", t), KeyValue("test_table_version", String(spec.testTableVersion ?? 0))] }
            let reserved = Set(params.map(\.key))
            params += request.params.sorted { $0.key < $1.key }.filter { !reserved.contains($0.key) }.map { KeyValue($0.key, $0.value) }
            for start in stride(from: 0, to: logged.count, by: 1000) {
                try await tracking.logBatch(runID: runID, metrics: Array(logged[start..<min(start + 1000, logged.count)]),
                                            params: start == 0 ? params : [])
            }
            try await tracking.logInputs(runID: runID, datasets: datasetInputs(spec, train: train, test: test))
            // Artifacts: the model directory and the spec.
            let staging = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-train-\(runID)")
            defer { try? FileManager.default.removeItem(at: staging) }
            _ = try model.write(to: staging.appendingPathComponent("model"), runID: runID, artifactPath: "model")
            let encoder = LearnJSON.encoder(pretty: true)
            try encoder.encode(spec).write(to: staging.appendingPathComponent("kiln_training_spec.json"))
            // Plots of the test set, and the importances behind the importance plot.
            let plots = staging.appendingPathComponent("plots")
            try FileManager.default.createDirectory(at: plots, withIntermediateDirectories: true)
            for (name, svg) in try model.plots(on: test) { try svg.write(to: plots.appendingPathComponent(name), atomically: true, encoding: .utf8) }
            let importance = Dictionary(try model.importance(on: train).map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
            if !importance.isEmpty { try encoder.encode(importance).write(to: staging.appendingPathComponent("feature_importance.json")) }
            if task != .clustering {
                let permutation = try await Self.offload { try Evaluation.permutationImportance(model, test, seed: finalSpec.seed) }
                let object = Dictionary(permutation.map { ($0.name, ["mean": $0.mean, "std": $0.std]) }, uniquingKeysWith: { a, _ in a })
                try encoder.encode(object).write(to: staging.appendingPathComponent("permutation_importance.json"))
            }
            if !cohortMetrics.isEmpty { try encoder.encode(cohortMetrics).write(to: staging.appendingPathComponent("cohort_metrics.json")) }
            guard let root = try BlobKey(proxiedURI: run.info.artifactURI) else {
                throw KilnError.invalid("The run's artifact location \(run.info.artifactURI) is not in Kiln's artifact store")
            }
            try upload(staging, to: root)
            var version: String?
            if let name = request.register, !name.isEmpty {
                if (try? await registry.getRegisteredModel(name: name)) == nil { _ = try await registry.createRegisteredModel(name: name) }
                version = try await registry.createModelVersion(name: name, source: "runs:/\(runID)/model", runID: runID).version.description
            }
            if ownsRun { _ = try await tracking.updateRun(id: runID, status: .finished, endTime: clock.nowMillis()) }
            return TrainOutcome(runID: runID, experimentID: experimentID, metrics: metrics, modelURI: "runs:/\(runID)/model",
                                registeredVersion: version, spec: spec, readSeconds: readSeconds, fitSeconds: fitSeconds,
                                evaluateSeconds: evaluateSeconds)
        } catch {
            _ = try? await tracking.setTag(runID: runID, key: "kiln.error", value: String(describing: error).prefix(5000).description)
            if ownsRun { _ = try? await tracking.updateRun(id: runID, status: .failed, endTime: clock.nowMillis()) }
            throw error
        }
    }

    /// The training (and test) table versions as MLflow dataset inputs: name, a digest of table and version, source
    /// `{"table": …, "version": …}`, and the `mlflow.data.context` tag.
    func datasetInputs(_ spec: TrainingSpec, train: KilnLearn.Dataset, test: KilnLearn.Dataset) -> [DatasetInput] {
        func input(_ table: String, _ version: Int64, _ rows: Int, context: String) -> DatasetInput {
            let source = "{\"table\": \"\(table)\", \"version\": \(version)}"
            // FNV-1a of "table@version": stable across processes, like MLflow's short digests.
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in "\(table)@\(version)".utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            let digest = String(String(hash, radix: 16).prefix(8))
            let dataset = KilnTracking.Dataset(name: table, digest: digest, sourceType: "delta_table", source: source,
                                               profile: "{\"num_rows\": \(rows)}")
            return DatasetInput(tags: [KeyValue("mlflow.data.context", context)], dataset: dataset)
        }
        var out = [input(spec.table ?? "", spec.tableVersion ?? 0, train.rows, context: "training")]
        if let t = spec.testTable { out.append(input(t, spec.testTableVersion ?? 0, test.rows, context: "testing")) }
        return out
    }

    /// Copies a local directory's files under `root` in the artifact store.
    func upload(_ directory: URL, to root: BlobKey) throws {
        let fm = FileManager.default
        guard let walker = fm.enumerator(at: directory, includingPropertiesForKeys: [.isRegularFileKey]) else { return }
        let base = directory.standardizedFileURL.path
        for case let file as URL in walker where (try? file.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
            let relative = String(file.standardizedFileURL.path.dropFirst(base.count + 1))
            try artifacts.put(try root.appending(relative), bytes: Array(try Data(contentsOf: file)))
        }
    }

    /// Runs CPU-bound work on Dispatch's pool instead of a cooperative thread.
    static func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }
}

/// The outcome of re-running a Kiln training run from its logged spec.
public struct ReproduceOutcome: Sendable, Equatable {
    public var originalRunID: String
    public var outcome: TrainOutcome
    /// Metric name → (original, reproduced), for every metric either run logged at step 0.
    public var metrics: [String: (original: Double?, reproduced: Double?)]
    public var matches: Bool

    public static func == (a: ReproduceOutcome, b: ReproduceOutcome) -> Bool {
        a.originalRunID == b.originalRunID && a.outcome == b.outcome && a.matches == b.matches
    }
}

extension Platform {
    /// Re-runs a Kiln training run from its `kiln_training_spec.json` (same table versions, split, seed and
    /// parameters) as a new run tagged `kiln.reproduces`, and compares its metrics with the original's exactly.
    public func reproduce(runID: String) async throws -> ReproduceOutcome {
        let original = try await tracking.getRun(id: runID)
        guard let root = try BlobKey(proxiedURI: original.info.artifactURI) else {
            throw KilnError.invalid("The run's artifacts are not in Kiln's artifact store")
        }
        let specKey = try root.appending("kiln_training_spec.json")
        guard try artifacts.kind(of: specKey) == false else {
            throw KilnError.invalid("Run \(runID) has no kiln_training_spec.json: only runs made by kiln train can be reproduced")
        }
        let spec = try LearnJSON.decoder().decode(TrainingSpec.self, from: Data(try artifacts.get(specKey)))
        guard let table = spec.table else { throw KilnError.invalid("The run's training spec names no table") }
        let experiment = try await tracking.getExperiment(id: original.info.experimentID)
        var request = TrainRequest(table: table, target: spec.target, algorithm: spec.algorithm, testTable: spec.testTable,
                                   split: spec.testTable == nil ? spec.trainFraction : nil, task: spec.task, params: spec.params,
                                   features: spec.features, seed: spec.seed, experiment: experiment.name,
                                   runName: "reproduce-\(original.info.runName)", tableVersion: spec.tableVersion,
                                   testTableVersion: spec.testTableVersion, pipeline: spec.pipeline)
        request.folds = spec.folds
        request.cohorts = spec.cohorts
        let outcome = try await train(request)
        try await tracking.setTag(runID: outcome.runID, key: "kiln.reproduces", value: runID)
        var before: [String: Double] = [:]
        for m in original.metrics where m.step == 0 { before[m.key] = m.value }
        var compared: [String: (original: Double?, reproduced: Double?)] = [:]
        for key in Set(before.keys).union(outcome.metrics.keys) { compared[key] = (before[key], outcome.metrics[key]) }
        let matches = compared.values.allSatisfy { $0.original != nil && $0.original == $0.reproduced }
        return ReproduceOutcome(originalRunID: runID, outcome: outcome, metrics: compared, matches: matches)
    }
}
