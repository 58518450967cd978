import Foundation
import KilnBlob
import KilnCore
import KilnFrame
import KilnLake
import KilnLearn
import KilnRegistry

/// What a batch scoring wrote.
public struct PredictOutcome: Sendable, Equatable {
    public var rows: Int
    public var outputVersion: Int64
    /// The model version written into every row (`name/version`, or the run id for a run's model).
    public var modelVersion: String
}

extension Platform {
    /// Loads a Kiln-trained model from `runs:/<run>/<path>`, `models:/<name>/<version>`, `models:/<name>@<alias>` or a
    /// local model directory; also returns a label for it (`name/version`, `runs:/…` or the path).
    public func loadModel(_ uri: String) async throws -> (model: KilnModel, label: String) {
        var location: String, label: String
        if uri.hasPrefix("models:/") {
            let rest = String(uri.dropFirst("models:/".count))
            let version: KilnRegistry.ModelVersion
            if let at = rest.firstIndex(of: "@") {
                version = try await registry.version(name: String(rest[..<at]), alias: String(rest[rest.index(after: at)...]))
            } else {
                let parts = rest.split(separator: "/", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw KilnError.invalid("Model URI '\(uri)': use models:/<name>/<version> or models:/<name>@<alias>") }
                version = try await registry.getModelVersion(name: parts[0], version: parts[1])
            }
            location = version.storageLocation
            label = "\(version.name)/\(version.version)"
        } else if uri.hasPrefix("runs:/") {
            let parts = uri.dropFirst("runs:/".count).split(separator: "/", maxSplits: 1).map(String.init)
            guard let runID = parts.first, !runID.isEmpty else { throw KilnError.invalid("Model URI '\(uri)': use runs:/<run_id>/<path>") }
            let run = try await tracking.getRun(id: runID)
            location = run.info.artifactURI + (parts.count > 1 ? "/" + parts[1] : "")
            label = uri
        } else {
            return (try KilnModel.read(from: URL(fileURLWithPath: uri)), uri)
        }
        guard let key = try BlobKey(proxiedURI: location) else {
            throw KilnError.invalid("The model at \(location) is not in Kiln's artifact store")
        }
        let staging = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-model-\(Identifiers.hex32())")
        defer { try? FileManager.default.removeItem(at: staging) }
        try download(key, to: staging)
        return (try KilnModel.read(from: staging), label)
    }

    /// Copies the files under `key` into a local directory.
    func download(_ key: BlobKey, to directory: URL) throws {
        guard try artifacts.kind(of: key) == true else { throw KilnError.notFound("No model files at '\(key.path)'") }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for entry in try artifacts.list(key) {
            let child = try key.appending(entry.name), target = directory.appendingPathComponent(entry.name)
            if entry.isDirectory { try download(child, to: target) } else { try Data(try artifacts.get(child)).write(to: target) }
        }
    }

    /// Scores every row of `table` with the model at `modelURI` and appends the rows with `prediction` (the class or
    /// value), `probability` (classification: the predicted class's), and `model_version` columns to `output`
    /// (created when missing), in one commit. Row groups are scored in parallel. With `explain`, SHAP values are
    /// added as `shap_<feature>` columns plus `shap_base` (the expected value): XGBoost's `pred_contribs` for
    /// boosters (summing to the margin, log-odds for a binary classifier), exact TreeSHAP for Kiln trees and forests
    /// (summing to the prediction, class 1's probability for a binary classifier).
    public func predict(modelURI: String, table: String, output: String, explain: Bool = false) async throws -> PredictOutcome {
        let (model, label) = try await loadModel(modelURI)
        if explain {
            if case .linear = model.state { throw KilnError.invalid("--explain needs a tree model (xgboost, decision_tree, random_forest); \(model.spec.algorithm.rawValue) models have no SHAP values yet") }
            guard model.spec.task == .regression || model.classes.count == 2 else {
                throw KilnError.invalid("--explain supports regression and binary models; this model has \(model.classes.count) classes")
            }
        }
        let source = try DeltaTable.open(tablePath(table))
        let plan = try source.plan()
        let spec = model.spec
        let integerClasses = model.classes.allSatisfy { Int64($0) != nil }
        let parts = try await Self.offload { () -> [Frame] in
            try Frame.mapChunks(source, plan: plan) { chunk in
                let features = try KilnLearn.Dataset.features(of: chunk, columns: spec.features)
                let predictions = try model.predict(features, rows: chunk.rowCount)
                let decided = model.decide(predictions)
                var names = chunk.names, columns = chunk.columns
                switch spec.task {
                case .classification:
                    let k = model.classes.count
                    let labels = decided.map { model.classes[Int($0)] }
                    columns.append(integerClasses ? Column(type: .int64, values: .int(labels.map { Int64($0)! }))
                                                  : Column.from(labels.map { .string($0) }, type: .string))
                    columns.append(Column(type: .float64, values: .double(decided.enumerated().map { predictions[$0 * k + Int($1)] })))
                    names += ["prediction", "probability"]
                case .regression:
                    columns.append(Column(type: .float64, values: .double(predictions)))
                    names.append("prediction")
                }
                columns.append(Column.from([Value](repeating: .string(label), count: chunk.rowCount), type: .string))
                names.append("model_version")
                if explain, let contributions = try model.shap(features, rows: chunk.rowCount) {
                    let width = spec.features.count
                    for (j, feature) in (spec.features + ["base"]).enumerated() {
                        columns.append(Column(type: .float64, values: .double((0..<chunk.rowCount).map { contributions[$0 * (width + 1) + j] })))
                        names.append("shap_" + feature)
                    }
                }
                return Frame(names: names, columns: columns)
            }
        }
        let frame = parts.isEmpty ? Frame(names: [], columns: []) : Frame.concatenate(parts)
        guard frame.rowCount > 0 else { throw KilnError.invalid("The table \(table) has no rows to score") }
        let fields = zip(frame.names, frame.columns).map { DeltaField(name: $0, type: $1.type.delta) }
        let path = tablePath(output)
        let destination: DeltaTable
        if FileManager.default.fileExists(atPath: path + "/_delta_log") {
            destination = try DeltaTable.open(path)
        } else {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            destination = try DeltaTable.create(at: path, schema: DeltaSchema(fields), name: output.split(separator: ".").last.map(String.init))
        }
        let batch = try frame.lakeBatch(DeltaSchema(fields))
        let result = try destination.write(batch, mode: .append)
        return PredictOutcome(rows: frame.rowCount, outputVersion: result.version, modelVersion: label)
    }
}
