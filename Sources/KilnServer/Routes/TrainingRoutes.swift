import Foundation
import Hummingbird
import KilnCore
import KilnDelegation
import KilnLearn
import KilnPlatform
import KilnTraining

/// `POST /api/2.0/kiln/train`: trains a model on a table and logs it as a run (what `kiln train --url` calls).
/// The body mirrors `kiln train`'s options: table, target, algorithm, test_table | split, task, params (a map),
/// features, seed, experiment, register, run_name, table_version, test_table_version, pipeline (a list of stages or
/// {"stages", "features_col"}), folds, cohorts, run_id (log into that running run). Answers with the run id,
/// the metrics and the model URI once the run has finished.
struct TrainingRoutes: Sendable {
    let platform: Platform

    func register(on router: Router<KilnRequestContext>) {
        MessageRoute.register([MessageRoute(.post, "train", train), MessageRoute(.post, "runs/reproduce", reproduce),
                               MessageRoute(.post, "models/compare", compare)],
                              prefixes: ["/api/2.0/kiln/"], on: router)
    }

    func train(_ m: RequestMessage) async throws -> Response {
        let request = try TrainRequest(json: m.fields)
        let outcome = try await platform.rules.train(request, as: m.caller)
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
        let result = try await platform.rules.reproduce(runID: try m.requireString("run_id"), as: m.caller)
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

    /// `POST /api/2.0/kiln/models/compare {"model_a", "model_b", "table", "table_version"?, "seed"?}`: both models
    /// scored on the same table version, with McNemar's test (classifiers) or a paired bootstrap interval of the RMSE
    /// difference (regressors).
    func compare(_ m: RequestMessage) async throws -> Response {
        let seed = try m.int64("seed") ?? 0
        guard seed >= 0 else { throw KilnError.invalid("seed must not be negative") }
        let c = try await platform.rules.compare(modelA: try m.requireString("model_a"), modelB: try m.requireString("model_b"),
                                           table: try m.requireString("table"), version: try m.int64("table_version"), seed: UInt64(seed),
                                           as: m.caller)
        return .json { w in
            w.field("model_a", c.labelA)
            w.field("model_b", c.labelB)
            w.field("rows", Int64(c.rows))
            w.field("table_version", c.tableVersion)
            for (key, metrics) in [("metrics_a", c.metricsA), ("metrics_b", c.metricsB)] {
                w.key(key)
                w.object { w in for (k, v) in metrics.sorted(by: { $0.key < $1.key }) { w.field(k, v) } }
            }
            w.field("test", c.test)
            w.field("only_a_correct", c.onlyA.map(Int64.init))
            w.field("only_b_correct", c.onlyB.map(Int64.init))
            w.field("statistic", c.statistic)
            w.field("p_value", c.pValue)
            w.field("difference", c.difference)
            w.field("ci_low", c.low)
            w.field("ci_high", c.high)
            w.field("better", c.better)
        }
    }
}
