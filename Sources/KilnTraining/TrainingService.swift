import Foundation
import KilnBlob
import KilnCore
import KilnFrame
import KilnLake
import KilnLearn

/// Training, batch scoring, feature transforms and model comparison on Delta tables, logged to tracking and the
/// registry through the seams it declares (`TrainingRunLog`, `ModelLocator`).
public struct TrainingService: Sendable {
    let runs: any TrainingRunLog
    let models: any ModelLocator
    let artifacts: any BlobStore
    let clock: any KilnClock
    /// A table argument's directory: a three-level name under the warehouse, else a path.
    public let tablePath: @Sendable (String) -> String

    public init(runs: any TrainingRunLog, models: any ModelLocator, artifacts: any BlobStore, clock: any KilnClock,
                tablePath: @escaping @Sendable (String) -> String) {
        self.runs = runs
        self.models = models
        self.artifacts = artifacts
        self.clock = clock
        self.tablePath = tablePath
    }

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
        let run: TrainingRunInfo
        let tags = [KeyValue("kiln.algorithm", request.algorithm.rawValue), KeyValue("kiln.task", task.rawValue)]
        if let active = request.runID, !active.isEmpty {
            // Autologging: the caller's run gets everything and stays open.
            run = try await runs.run(id: active)
            guard run.status == "RUNNING" else {
                throw KilnError.invalid("Run \(active) is \(run.status); kiln logs into a RUNNING run (start one, or leave out run_id)")
            }
            for tag in tags { try await runs.setTag(runID: active, key: tag.key, value: tag.value) }
        } else {
            run = try await runs.startRun(experiment: request.experiment.flatMap { $0.isEmpty ? nil : $0 }, runName: request.runName,
                                          tags: [KeyValue("mlflow.source.name", "kiln train"), KeyValue("mlflow.source.type", "LOCAL")] + tags)
        }
        let experimentID = run.experimentID
        let runID = run.runID
        let ownsRun = request.runID?.isEmpty ?? true
        do {
            let finalSpec = spec
            let fitStarted = Date()
            var fit = try await offload { try Trainer.fit(finalSpec, train, progress: progress) }
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
                let results = try await offload { try Evaluation.crossValidate(finalSpec, train, folds: folds) }
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
            var logged = metrics.sorted { $0.key < $1.key }.map { TrainingMetric(key: $0.key, value: $0.value, timestamp: now, step: 0) }
            // Boosting history (one step per round) and cross-validation folds (one step per fold).
            for (key, values) in fit.history.sorted(by: { $0.key < $1.key }) {
                let name = key.replacingOccurrences(of: "-", with: "_")
                logged += values.enumerated().map { TrainingMetric(key: name, value: $1, timestamp: now, step: Int64($0)) }
            }
            for (key, values) in stepped { logged += values.enumerated().map { TrainingMetric(key: key, value: $1, timestamp: now, step: Int64($0)) } }
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
                try await runs.log(runID: runID, params: start == 0 ? params : [], metrics: Array(logged[start..<min(start + 1000, logged.count)]))
            }
            try await runs.logDatasets(runID: runID, datasetInputs(spec, train: train, test: test))
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
                let permutation = try await offload { try Evaluation.permutationImportance(model, test, seed: finalSpec.seed) }
                let object = Dictionary(permutation.map { ($0.name, ["mean": $0.mean, "std": $0.std]) }, uniquingKeysWith: { a, _ in a })
                try encoder.encode(object).write(to: staging.appendingPathComponent("permutation_importance.json"))
            }
            if !cohortMetrics.isEmpty { try encoder.encode(cohortMetrics).write(to: staging.appendingPathComponent("cohort_metrics.json")) }
            guard let root = try BlobKey(proxiedURI: run.artifactURI) else {
                throw KilnError.invalid("The run's artifact location \(run.artifactURI) is not in Kiln's artifact store")
            }
            try upload(staging, to: root)
            var version: String?
            if let name = request.register, !name.isEmpty {
                version = try await models.register(model: name, source: "runs:/\(runID)/model", runID: runID)
            }
            if ownsRun { try await runs.endRun(id: runID, failed: false) }
            return TrainOutcome(runID: runID, experimentID: experimentID, metrics: metrics, modelURI: "runs:/\(runID)/model",
                                registeredVersion: version, spec: spec, readSeconds: readSeconds, fitSeconds: fitSeconds,
                                evaluateSeconds: evaluateSeconds)
        } catch {
            _ = try? await runs.setTag(runID: runID, key: "kiln.error", value: String(describing: error).prefix(5000).description)
            if ownsRun { try? await runs.endRun(id: runID, failed: true) }
            throw error
        }
    }

    /// The training (and test) table versions as MLflow dataset inputs: name, a digest of table and version, source
    /// `{"table": …, "version": …}`, and the `mlflow.data.context` tag.
    func datasetInputs(_ spec: TrainingSpec, train: KilnLearn.Dataset, test: KilnLearn.Dataset) -> [TrainingDataset] {
        func input(_ table: String, _ version: Int64, _ rows: Int, context: String) -> TrainingDataset {
            let source = "{\"table\": \"\(table)\", \"version\": \(version)}"
            // FNV-1a of "table@version": stable across processes, like MLflow's short digests.
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in "\(table)@\(version)".utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            let digest = String(String(hash, radix: 16).prefix(8))
            return TrainingDataset(name: table, digest: digest, sourceType: "delta_table", source: source,
                                   profile: "{\"num_rows\": \(rows)}", context: context)
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

extension TrainingService {
    /// Re-runs a Kiln training run from its `kiln_training_spec.json` (same table versions, split, seed and
    /// parameters) as a new run tagged `kiln.reproduces`, and compares its metrics with the original's exactly.
    /// `train` runs the new training (default: this service's `train`; the platform passes one that checks the caller).
    public func reproduce(runID: String, train: ((TrainRequest) async throws -> TrainOutcome)? = nil) async throws -> ReproduceOutcome {
        let original = try await runs.run(id: runID)
        guard let root = try BlobKey(proxiedURI: original.artifactURI) else {
            throw KilnError.invalid("The run's artifacts are not in Kiln's artifact store")
        }
        let specKey = try root.appending("kiln_training_spec.json")
        guard try artifacts.kind(of: specKey) == false else {
            throw KilnError.invalid("Run \(runID) has no kiln_training_spec.json: only runs made by kiln train can be reproduced")
        }
        let spec = try LearnJSON.decoder().decode(TrainingSpec.self, from: Data(try artifacts.get(specKey)))
        guard let table = spec.table else { throw KilnError.invalid("The run's training spec names no table") }
        var request = TrainRequest(table: table, target: spec.target, algorithm: spec.algorithm, testTable: spec.testTable,
                                   split: spec.testTable == nil ? spec.trainFraction : nil, task: spec.task, params: spec.params,
                                   features: spec.features, seed: spec.seed, experiment: original.experimentName,
                                   runName: "reproduce-\(original.runName)", tableVersion: spec.tableVersion,
                                   testTableVersion: spec.testTableVersion, pipeline: spec.pipeline)
        request.folds = spec.folds
        request.cohorts = spec.cohorts
        let outcome: TrainOutcome
        if let train { outcome = try await train(request) } else { outcome = try await self.train(request) }
        try await runs.setTag(runID: outcome.runID, key: "kiln.reproduces", value: runID)
        let before = original.metrics
        var compared: [String: (original: Double?, reproduced: Double?)] = [:]
        for key in Set(before.keys).union(outcome.metrics.keys) { compared[key] = (before[key], outcome.metrics[key]) }
        let matches = compared.values.allSatisfy { $0.original != nil && $0.original == $0.reproduced }
        return ReproduceOutcome(originalRunID: runID, outcome: outcome, metrics: compared, matches: matches)
    }
}
