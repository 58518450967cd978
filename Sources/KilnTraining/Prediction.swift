import Foundation
import KilnBlob
import KilnCore
import KilnFrame
import KilnLake
import KilnLearn

/// What a batch scoring wrote.
public struct PredictOutcome: Sendable, Equatable {
    public var rows: Int
    public var outputVersion: Int64
    /// The model version written into every row (`name/version`, or the run id for a run's model).
    public var modelVersion: String
}

extension TrainingService {
    /// Loads a Kiln-trained model from `runs:/<run>/<path>`, `models:/<name>/<version>`, `models:/<name>@<alias>` or a
    /// local model directory; also returns a label for it (`name/version`, `runs:/…` or the path).
    public func loadModel(_ uri: String) async throws -> (model: KilnModel, label: String) {
        let (key, label) = try await models.locate(uri)
        guard let key else { return (try KilnModel.read(from: URL(fileURLWithPath: uri)), uri) }
        let staging = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-model-\(Identifiers.hex32())")
        defer { try? FileManager.default.removeItem(at: staging) }
        try Self.download(key, to: staging, from: artifacts)
        return (try KilnModel.read(from: staging), label)
    }

    /// Copies the files under `key` into a local directory.
    public static func download(_ key: BlobKey, to directory: URL, from artifacts: any BlobStore) throws {
        guard try artifacts.kind(of: key) == true else { throw KilnError.notFound("No model files at '\(key.path)'") }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for entry in try artifacts.list(key) {
            let child = try key.appending(entry.name), target = directory.appendingPathComponent(entry.name)
            if entry.isDirectory { try download(child, to: target, from: artifacts) } else { try Data(try artifacts.get(child)).write(to: target) }
        }
    }

    /// Scores every row of `table` with the model at `modelURI` and appends the rows with `prediction` (the class,
    /// value or cluster), `probability` (classification: the predicted class's), and `model_version` columns to
    /// `output` (created when missing), in one commit. Scoring streams: the source's files are read in waves of a few
    /// per core, each wave's row groups scored in parallel and written out as data files before the next wave is read,
    /// so memory stays bounded by the wave, not the table. The commit records the lineage (model, source table and
    /// version) in its commitInfo. With `explain`, SHAP values are added as `shap_<feature>` columns plus
    /// `shap_base` (the expected value): XGBoost's `pred_contribs` for boosters (summing to the margin, log-odds for
    /// a binary classifier), exact TreeSHAP for Kiln trees and forests (summing to the prediction, class 1's
    /// probability for a binary classifier).
    public func predict(modelURI: String, table: String, output: String, explain: Bool = false) async throws -> PredictOutcome {
        let (model, label) = try await loadModel(modelURI)
        if explain {
            switch model.state {
            case .linear, .kmeans:
                throw KilnError.invalid("--explain needs a tree model (xgboost, decision_tree, random_forest); \(model.spec.algorithm.rawValue) models have no SHAP values yet")
            default: break
            }
            guard model.spec.task == .regression || model.classes.count == 2 else {
                throw KilnError.invalid("--explain supports regression and binary models; this model has \(model.classes.count) classes")
            }
        }
        let source = try DeltaTable.open(tablePath(table))
        let plan = try source.plan()
        let integerClasses = model.classes.allSatisfy { Int64($0) != nil }
        let score: @Sendable (Frame) throws -> Frame = { whole in
            try Self.score(whole, model: model, label: label, integerClasses: integerClasses, explain: explain)
        }
        // Waves of files: enough to keep every core busy, few enough to bound memory.
        let waveSize = max(2, 2 * ProcessInfo.processInfo.activeProcessorCount)
        let waves = stride(from: 0, to: plan.files.count, by: waveSize).map { start -> ScanPlan in
            var wave = plan
            wave.files = Array(plan.files[start..<min(start + waveSize, plan.files.count)])
            return wave
        }
        let lineage: [String: JSONValue] = ["kiln.model": .string(label), "kiln.sourceTable": .string(table),
                                            "kiln.sourceVersion": .number(String(plan.snapshot.version))]
        let path = tablePath(output)
        let result = try await offload { () -> (rows: Int, version: Int64) in
            // The first non-empty wave decides the output schema (and creates the table when it is new).
            var pending: [Frame] = []
            var next = 0
            while pending.isEmpty, next < waves.count {
                pending = try Frame.mapChunks(source, plan: waves[next], score).filter { $0.rowCount > 0 }
                next += 1
            }
            guard let first = pending.first else { throw KilnError.invalid("The table \(table) has no rows to score") }
            let schema = DeltaSchema(zip(first.names, first.columns).map { DeltaField(name: $0, type: $1.type.delta) })
            let written = try DeltaTable.append(to: path, creatingWith: schema, name: output, parameters: lineage) { emit in
                for frame in pending { try emit(try frame.lakeBatch(schema)) }
                pending = []
                while next < waves.count {
                    for frame in try Frame.mapChunks(source, plan: waves[next], score) where frame.rowCount > 0 {
                        try emit(try frame.lakeBatch(schema))
                    }
                    next += 1
                }
            }
            return (written.rowsWritten, written.version)
        }
        return PredictOutcome(rows: result.rows, outputVersion: result.version, modelVersion: label)
    }

    /// One chunk scored: its rows (those the model's pipeline keeps) with the prediction columns.
    static func score(_ whole: Frame, model: KilnModel, label: String, integerClasses: Bool, explain: Bool) throws -> Frame {
        let spec = model.spec
        // Rows a pipeline drops (handle_invalid=skip) get no prediction.
        let (features, kept) = try model.features(of: whole)
        let chunk = kept.map { whole.take($0) } ?? whole
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
        case .regression, .ranking:
            columns.append(Column(type: .float64, values: .double(predictions)))
            names.append("prediction")
        case .clustering:
            columns.append(Column(type: .int64, values: .int(predictions.map { Int64($0) })))
            names.append("prediction")
        }
        columns.append(Column.from([Value](repeating: .string(label), count: chunk.rowCount), type: .string))
        names.append("model_version")
        if explain, let contributions = try model.shap(features, rows: chunk.rowCount) {
            let width = model.featureNames.count
            for (j, feature) in (model.featureNames + ["base"]).enumerated() {
                columns.append(Column(type: .float64, values: .double((0..<chunk.rowCount).map { contributions[$0 * (width + 1) + j] })))
                names.append("shap_" + feature)
            }
        }
        return Frame(names: names, columns: columns)
    }

    /// Appends `frame` to the table `output` (three-level name or path), creating it with the frame's schema when
    /// missing; returns the committed version.
    func append(_ frame: Frame, to output: String) throws -> Int64 {
        let schema = DeltaSchema(zip(frame.names, frame.columns).map { DeltaField(name: $0, type: $1.type.delta) })
        let batch = try frame.lakeBatch(schema)
        return try DeltaTable.append(to: tablePath(output), creatingWith: schema, name: output) { emit in try emit(batch) }.version
    }

    /// Fits `pipeline` on the newest version of `table` and writes the transformed rows to `output`: the table's
    /// columns, each number output column, and each vector output column expanded into `<name>_<slot>` doubles
    /// (up to 1,024 slots). Returns the fitted pipeline, the rows written and the output version.
    public func transformFeatures(pipeline: Pipeline, table: String, output: String) async throws -> (pipeline: Pipeline, rows: Int, version: Int64) {
        let source = try DeltaTable.open(tablePath(table))
        let frame = try Frame.read(source, plan: try source.plan())
        let (fitted, features) = try pipeline.fitTable(frame)
        var out = frame.take(features.sourceRows)
        let inputs = Set(pipeline.inputColumns)
        for (name, values) in zip(features.names, features.columns) where !inputs.contains(name) {
            switch values {
            case .numbers(let v):
                out.names.append(name)
                out.columns.append(Column(type: .float64, values: .double(v)))
            case .vectors(let v):
                guard v.width <= 1024 else { throw KilnError.invalid("Vector column '\(name)' has \(v.width) slots; tables take up to 1,024 (lower num_features)") }
                let dense = v.dense()
                for j in 0..<v.width {
                    out.names.append("\(name)_\(j)")
                    out.columns.append(Column(type: .float64, values: .double((0..<v.rows).map { dense[$0 * v.width + j] })))
                }
            case .strings(let v):
                out.names.append(name)
                out.columns.append(Column.from(v.map { $0.map(Value.string) ?? .null }, type: .string))
            case .tokens(let v):
                out.names.append(name)
                out.columns.append(Column.from(v.map { $0.map { Value.string($0.joined(separator: " ")) } ?? .null }, type: .string))
            }
        }
        guard out.rowCount > 0 else { throw KilnError.invalid("The pipeline left no rows to write") }
        return (fitted, out.rowCount, try append(out, to: output))
    }
}
