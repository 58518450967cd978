import ArgumentParser
import Foundation
import KilnCore
import KilnLearn
import KilnPlatform
import KilnTraining
import Logging

/// `kiln train`: fit a model on a table version, evaluate it, and log params, metrics, model and data to tracking.
struct Train: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a model on a table and log it to tracking as one run.",
        discussion: """
            Reads the newest version of --table (catalog.schema.table under the home's warehouse, or a table directory), \
            holds out a test set (--test-table, or a seeded --split), fits, evaluates, and logs params, training_/test_ \
            metrics (mlflow.evaluate's names), the model (kiln flavor; boosters also as xgboost + python_function), the \
            dataset versions and the training spec as one run. Prints the run id. Examples:
              kiln train --table main.default.churn --target churned --algorithm xgboost --params max_depth=4,eta=0.1
              kiln train --table main.default.houses --target price --algorithm linear --split 0.75 --seed 7 --register houses
            With --url the server trains (POST /api/2.0/kiln/train); otherwise this process does, on --home.
            """)
    @Option(help: "Training table: catalog.schema.table or a table directory.") var table: String
    @Option(help: "Target column (not for kmeans).") var target: String?
    @Option(help: "xgboost, logistic, linear, decision_tree, random_forest or kmeans.") var algorithm: String
    @Option(name: .customLong("test-table"), help: "Evaluate on this table instead of a split.") var testTable: String?
    @Option(help: "Share of rows to train on (default 0.8); the rest is the test set.") var split: Double?
    @Option(help: "classification or regression (default: from the algorithm, else from the target column).") var task: String?
    @Option(help: "Algorithm parameters, k=v,k=v (e.g. max_depth=4,eta=0.1 or C=0.5).") var params: String?
    @Option(help: "Feature columns, comma-separated (default: every other column).") var features: String?
    @Option(help: "Feature pipeline: a JSON file or inline JSON, a list of stages or {\"stages\": […], \"features_col\": …} (see docs/learn.md).")
    var pipeline: String?
    @Option(help: "Random seed for the split and the algorithm.") var seed: UInt64 = 0
    @Option(help: "Also run k-fold cross-validation on the training rows (logs cv_<metric>_mean/_std and one step per fold).") var cv: Int?
    @Option(help: "Columns whose values slice the test metrics (comma-separated): test_<metric>/<column>/<value>, cohort_metrics.json.")
    var cohort: String?
    @Option(name: .customLong("run-id"), help: "Log into this running run instead of creating one (env MLFLOW_RUN_ID): autologging.")
    var runID: String?
    @Option(help: "Experiment name (created if missing; default: Default).") var experiment: String?
    @Option(help: "Register the model under this name as a new version.") var register: String?
    @Option(name: .customLong("run-name"), help: "Run name.") var runName: String?
    @Option(help: "Server URL: train there (env KILN_URL).") var url: String?
    @Option(help: "Access token for --url (env KILN_TOKEN, else the home's admin.token).") var token: String?
    @Option(help: "Home folder (env KILN_HOME, default ~/.kiln).") var home: String?
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        guard let algorithm = Algorithm(rawValue: algorithm) else {
            throw ValidationError("Unknown --algorithm '\(self.algorithm)'; use one of \(Algorithm.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard target != nil || algorithm == .kmeans else { throw ValidationError("Missing --target: \(algorithm.rawValue) learns a target column") }
        let target = self.target ?? ""
        var parsedTask: LearningTask?
        if let task {
            guard let t = LearningTask(rawValue: task) else { throw ValidationError("--task must be classification, regression, clustering or ranking") }
            parsedTask = t
        }
        var parsedParams: [String: String] = [:]
        for pair in (params ?? "").split(separator: ",") {
            let kv = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, !kv[0].isEmpty else { throw ValidationError("--params takes k=v pairs separated by commas; got '\(pair)'") }
            parsedParams[kv[0]] = kv[1]
        }
        let featureList = features.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        let parsedPipeline = try pipeline.map(Self.parsePipeline)
        let cohorts = cohort.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        let env = ProcessInfo.processInfo.environment
        let activeRun = runID ?? env["MLFLOW_RUN_ID"]
        if let server = url ?? env["KILN_URL"] {
            var body: [String: Any] = ["table": table, "target": target, "algorithm": algorithm.rawValue, "params": parsedParams, "seed": seed]
            body["test_table"] = testTable
            body["split"] = split
            body["task"] = parsedTask?.rawValue
            body["features"] = featureList
            body["experiment"] = experiment
            body["register"] = register
            body["run_name"] = runName
            body["folds"] = cv
            body["cohorts"] = cohorts
            body["run_id"] = activeRun
            if let parsedPipeline { body["pipeline"] = try JSONSerialization.jsonObject(with: LearnJSON.encoder().encode(parsedPipeline)) }
            let client = try ClientOptions.client(url: server, token: token, home: home)
            let response = try await client.call("POST", "api/2.0/kiln/train", body: body, timeout: 24 * 3600)
            if json { return try printJSON(response) }
            report(runID: response["run_id"] as? String ?? "", metrics: response["metrics"] as? [String: Double] ?? [:],
                   version: response["registered_model_version"] as? String)
            return
        }
        var logger = Logger(label: "kiln")
        logger.logLevel = .warning
        let configuration = KilnConfiguration(home: home.map { URL(fileURLWithPath: $0) } ?? KilnConfiguration.defaultHome(environment: env),
                                              adminToken: env["KILN_ADMIN_TOKEN"])
        let platform = try await Platform.open(configuration, logger: logger)
        var request = TrainRequest(table: table, target: target, algorithm: algorithm, testTable: testTable, split: split, task: parsedTask,
                                   params: parsedParams, features: featureList, seed: seed, experiment: experiment, register: register, runName: runName,
                                   pipeline: parsedPipeline)
        request.folds = cv
        request.cohorts = cohorts
        request.runID = activeRun
        let bar = LockedProgress()
        let outcome: TrainOutcome
        do {
            outcome = try await platform.training.train(request) { done, total in bar.update(done, total) }
            bar.finish()
        } catch let error as KilnError {
            bar.finish()
            await platform.close()
            throw CLIError("\(error.code.rawValue): \(error.message)")
        }
        await platform.close()
        if json {
            var object: [String: Any] = ["run_id": outcome.runID, "experiment_id": outcome.experimentID, "model_uri": outcome.modelURI,
                                         "metrics": outcome.metrics,
                                         "seconds": ["read": outcome.readSeconds, "fit": outcome.fitSeconds, "evaluate": outcome.evaluateSeconds]]
            object["registered_model_version"] = outcome.registeredVersion
            return try printJSON(object)
        }
        report(runID: outcome.runID, metrics: outcome.metrics, version: outcome.registeredVersion)
    }

    /// A pipeline from inline JSON or a file: a list of stages, or an object with `stages` and `features_col`.
    static func parsePipeline(_ text: String) throws -> Pipeline {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let data: Data
        if trimmed.hasPrefix("[") || trimmed.hasPrefix("{") { data = Data(trimmed.utf8) }
        else {
            guard let contents = FileManager.default.contents(atPath: trimmed) else { throw ValidationError("--pipeline: no file at \(trimmed)") }
            data = contents
        }
        do {
            if data.first(where: { ![0x20, 0x0a, 0x0d, 0x09].contains($0) }) == UInt8(ascii: "[") {
                return Pipeline(stages: try LearnJSON.decoder().decode([Stage].self, from: data))
            }
            return try LearnJSON.decoder().decode(Pipeline.self, from: data)
        } catch {
            throw ValidationError("--pipeline is not a valid pipeline (\(error)); see docs/learn.md for the stage format")
        }
    }

    func report(runID: String, metrics: [String: Double], version: String?) {
        let test = metrics.filter { $0.key.hasPrefix("test_") }.sorted { $0.key < $1.key }
        printTable(["METRIC", "TEST", "TRAINING"], test.map { key, value in
            let name = String(key.dropFirst("test_".count))
            return [name, formatNumber(value), metrics["training_" + name].map(formatNumber) ?? ""]
        })
        if let version, let register { print("Registered \(register) version \(version)") }
        print("Run \(runID) (model: runs:/\(runID)/model)")
    }
}

/// A progress bar shared with the training thread.
final class LockedProgress: @unchecked Sendable {
    private var bar: ProgressBar?
    private let lock = NSLock()

    func update(_ done: Int, _ total: Int) {
        lock.lock()
        defer { lock.unlock() }
        if bar == nil { bar = ProgressBar(total: total, unit: "rounds") }
        bar?.update(done, force: done == total)
    }

    func finish() {
        lock.lock()
        defer { lock.unlock() }
        bar?.finish()
    }
}

/// `kiln predict`: batch scoring of a table with a registered or logged Kiln model.
struct Predict: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict", abstract: "Score a table with a Kiln model and append the predictions to another table.",
        discussion: """
            --model is models:/NAME/VERSION, models:/NAME@ALIAS, runs:/RUN_ID/model or a model directory. The output \
            table gets the input columns, prediction (and probability for classifiers) and model_version. Example:
              kiln predict --model models:/churn@champion --table main.default.customers --output main.default.churn_scores
            """)
    @Option(help: "Model URI.") var model: String
    @Option(help: "Table to score: catalog.schema.table or a table directory.") var table: String
    @Option(help: "Table to append the predictions to (created when missing).") var output: String
    @Option(help: "Home folder (env KILN_HOME, default ~/.kiln).") var home: String?
    @Flag(help: "Add SHAP values (shap_<feature>, shap_base) for boosters.") var explain = false
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        var logger = Logger(label: "kiln")
        logger.logLevel = .warning
        let configuration = KilnConfiguration(home: home.map { URL(fileURLWithPath: $0) } ?? KilnConfiguration.defaultHome(environment: env),
                                              adminToken: env["KILN_ADMIN_TOKEN"])
        let platform = try await Platform.open(configuration, logger: logger)
        let outcome: PredictOutcome
        do {
            outcome = try await platform.training.predict(modelURI: model, table: table, output: output, explain: explain)
        } catch let error as KilnError {
            await platform.close()
            throw CLIError("\(error.code.rawValue): \(error.message)")
        }
        await platform.close()
        if json {
            return try printJSON(["rows": outcome.rows, "output_version": outcome.outputVersion, "model_version": outcome.modelVersion] as [String: Any])
        }
        print("Scored \(outcome.rows) rows with \(outcome.modelVersion) into \(output) (version \(outcome.outputVersion))")
    }
}

/// `kiln features [transform]`: fit a feature pipeline on a table and write the transformed rows to another table.
struct FeatureTransform: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transform", abstract: "Fit a feature pipeline on a local table and write the transformed rows (the default).",
        discussion: """
            Runs the stages of --pipeline (Spark ML's StringIndexer, OneHotEncoder, VectorAssembler, StandardScaler, \
            MinMaxScaler, Imputer, Bucketizer, QuantileDiscretizer, FeatureHasher, Tokenizer, HashingTF, IDF; see \
            docs/learn.md) on --table and appends the rows to --output with each output column; vectors become \
            <name>_<slot> columns. --json prints the fitted pipeline (labels, means, splits, …). Example:
              kiln features --table main.default.houses --output main.default.houses_features \\
                --pipeline '[{"kind": "imputer", "input_cols": ["rooms"], "output_cols": ["rooms_filled"], "strategy": "median"}]'
            """)
    @Option(help: "Pipeline: a JSON file or inline JSON (a list of stages, or {\"stages\": […]}).") var pipeline: String
    @Option(help: "Table to fit on and transform: catalog.schema.table or a table directory.") var table: String
    @Option(help: "Table to append the rows to (created when missing).") var output: String
    @Option(help: "Home folder (env KILN_HOME, default ~/.kiln).") var home: String?
    @Flag(help: "Print JSON (with the fitted pipeline).") var json = false

    func run() async throws {
        let definition = try Train.parsePipeline(pipeline)
        let env = ProcessInfo.processInfo.environment
        var logger = Logger(label: "kiln")
        logger.logLevel = .warning
        let configuration = KilnConfiguration(home: home.map { URL(fileURLWithPath: $0) } ?? KilnConfiguration.defaultHome(environment: env),
                                              adminToken: env["KILN_ADMIN_TOKEN"])
        let platform = try await Platform.open(configuration, logger: logger)
        let outcome: (pipeline: KilnLearn.Pipeline, rows: Int, version: Int64)
        do {
            outcome = try await platform.training.transformFeatures(pipeline: definition, table: table, output: output)
        } catch let error as KilnError {
            await platform.close()
            throw CLIError("\(error.code.rawValue): \(error.message)")
        }
        await platform.close()
        if json {
            let fitted = try JSONSerialization.jsonObject(with: LearnJSON.encoder().encode(outcome.pipeline))
            return try printJSON(["rows": outcome.rows, "output_version": outcome.version, "pipeline": fitted] as [String: Any])
        }
        print("Wrote \(outcome.rows) rows to \(output) (version \(outcome.version))")
    }
}
