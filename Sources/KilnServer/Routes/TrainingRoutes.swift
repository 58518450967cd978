import Foundation
import Hummingbird
import KilnCore
import KilnLearn
import KilnPlatform

/// `POST /api/2.0/kiln/train`: trains a model on a table and logs it as a run (what `kiln train --url` calls).
/// The body mirrors `kiln train`'s options: table, target, algorithm, test_table | split, task, params (a map),
/// features, seed, experiment, register, run_name, table_version, test_table_version. Answers with the run id,
/// the metrics and the model URI once the run has finished.
struct TrainingRoutes: Sendable {
    let platform: Platform

    func register(on router: Router<KilnRequestContext>) {
        MessageRoute.register([MessageRoute(.post, "train", train), MessageRoute(.post, "runs/reproduce", reproduce)],
                              prefixes: ["/api/2.0/kiln/"], on: router)
    }

    func train(_ m: RequestMessage) async throws -> Response {
        let algorithmName = try m.requireString("algorithm")
        guard let algorithm = Algorithm(rawValue: algorithmName) else {
            throw KilnError.invalid("Unknown algorithm '\(algorithmName)'; use one of \(Algorithm.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var task: LearningTask?
        if let name = try m.string("task") {
            guard let t = LearningTask(rawValue: name) else { throw KilnError.invalid("task must be classification or regression") }
            task = t
        }
        var params: [String: String] = [:]
        if let value = m.fields["params"] {
            guard case .object(let object) = value else { throw KilnError.invalid("params must be an object of name: value") }
            for (k, v) in object {
                switch v {
                case .string(let s): params[k] = s
                case .number(let n): params[k] = n
                case .bool(let b): params[k] = b ? "true" : "false"
                default: throw KilnError.invalid("Parameter \(k) must be a string, number or boolean")
                }
            }
        }
        var seed: UInt64 = 0
        if let s = try m.int64("seed") {
            guard s >= 0 else { throw KilnError.invalid("seed must not be negative") }
            seed = UInt64(s)
        }
        let features = m.fields["features"] == nil ? nil : try m.strings("features")
        var pipeline: Pipeline?
        if let value = m.fields["pipeline"], value != .null {
            do {
                if case .array = value { pipeline = Pipeline(stages: try LearnJSON.decoder().decode([Stage].self, from: Data(value.json.utf8))) }
                else { pipeline = try LearnJSON.decoder().decode(Pipeline.self, from: Data(value.json.utf8)) }
            } catch {
                throw KilnError.invalid("pipeline is not a valid pipeline: \(error)")
            }
        }
        let request = TrainRequest(table: try m.requireString("table"), target: algorithm == .kmeans ? try m.string("target") ?? "" : try m.requireString("target"), algorithm: algorithm,
                                   testTable: try m.string("test_table"), split: try m.double("split"), task: task, params: params,
                                   features: features, seed: seed, experiment: try m.string("experiment"), register: try m.string("register"),
                                   runName: try m.string("run_name"), tableVersion: try m.int64("table_version"),
                                   testTableVersion: try m.int64("test_table_version"), pipeline: pipeline)
        let outcome = try await platform.train(request)
        return .json { w in
            w.field("run_id", outcome.runID)
            w.field("experiment_id", outcome.experimentID)
            w.field("model_uri", outcome.modelURI)
            if let v = outcome.registeredVersion { w.field("registered_model_version", v) }
            w.key("metrics")
            w.object { w in for (k, v) in outcome.metrics.sorted(by: { $0.key < $1.key }) { w.field(k, v) } }
            w.key("seconds")
            w.object { w in
                w.field("read", outcome.readSeconds)
                w.field("fit", outcome.fitSeconds)
                w.field("evaluate", outcome.evaluateSeconds)
            }
        }
    }

    /// `POST /api/2.0/kiln/runs/reproduce {"run_id"}`: re-runs a Kiln training run and compares the metrics.
    func reproduce(_ m: RequestMessage) async throws -> Response {
        let result = try await platform.reproduce(runID: try m.requireString("run_id"))
        return .json { w in
            w.field("run_id", result.outcome.runID)
            w.field("reproduces", result.originalRunID)
            w.field("matches", result.matches)
            w.key("metrics")
            w.object { w in
                for (k, v) in result.metrics.sorted(by: { $0.key < $1.key }) {
                    w.key(k)
                    w.object { w in
                        if let o = v.original { w.field("original", o) }
                        if let r = v.reproduced { w.field("reproduced", r) }
                    }
                }
            }
        }
    }
}
