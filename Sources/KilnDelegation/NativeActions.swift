import Foundation
import KilnCore
import KilnJobs
import KilnLake
import KilnServing
import KilnTraining

/// Kiln's native job task actions, run in the server process over the platform's services: `ingest` (new files of
/// a directory into a Delta table), `train` (the REST training request), `predict` (batch scoring into a table),
/// `promote` (candidate vs champion on a holdout; the alias moves only when the candidate is significantly better)
/// and `serve` (points a serving endpoint at a version or alias, creating it when missing). Each runs as the job's
/// run-as identity, checked as the REST API checks it (`CallerRules`).
public struct KilnNativeActions: NativeActions {
    let rules: CallerRules
    let serving: ServingService
    /// The folder of a table name (`catalog.schema.table` under the warehouse, or a path as given).
    let tablePath: @Sendable (String) -> String

    public init(rules: CallerRules, serving: ServingService, tablePath: @escaping @Sendable (String) -> String) {
        self.rules = rules
        self.serving = serving
        self.tablePath = tablePath
    }

    public func run(action: String, parameters: [String: JSONValue], as caller: Caller?) async throws -> (values: [String: JSONValue], message: String) {
        let f = JSONFields(parameters)
        var values: [String: JSONValue] = [:], message = ""
        func number(_ v: some BinaryInteger) -> JSONValue { .number(String(v)) }
        switch action {
        case "ingest":
            var source = try f.require("source")
            let table = try f.require("table"), format = try f.string("format")
            if source.hasPrefix("/Volumes/") {
                source = try await rules.catalog.volumeFile(source, write: false, caller: caller).file
            } else if let caller, !caller.isAdmin {
                throw KilnError(.permissionDenied, "\(caller.name) may ingest only from a volume (/Volumes/catalog/schema/volume/...): other server paths take an admin")
            }
            let new = try await rules.requireWrite(caller, table)
            let folder = source
            let result = try await offload { try DeltaTable.ingest(directory: folder, into: tablePath(table), format: format) }
            if new { try await rules.recordTableCreated(table, by: caller) }
            values = ["files": number(result.files.count), "rows": number(result.rows), "version": result.version.map { number($0) } ?? .null]
            message = "Loaded \(result.files.count) file(s), \(result.rows) rows into \(table)"
        case "train":
            let outcome = try await rules.train(try TrainRequest(json: parameters), as: caller)
            values = ["run_id": .string(outcome.runID), "model_uri": .string(outcome.modelURI)]
            if let v = outcome.registeredVersion { values["version"] = .string(v) }
            for (k, v) in outcome.metrics { values[k] = .number(String(v)) }
            message = "Trained run \(outcome.runID)"
        case "predict":
            let model = try f.require("model"), table = try f.require("table"), output = try f.require("output")
            var new = false
            if let caller, !caller.isAdmin {
                try await rules.requireSelect(caller, table)
                try await rules.requireRead(caller, model: model)
            }
            new = try await rules.requireWrite(caller, output)
            let outcome = try await rules.training.predict(modelURI: model, table: table, output: output)
            if new { try await rules.recordTableCreated(output, by: caller) }
            values = ["rows": number(outcome.rows), "version": number(outcome.outputVersion)]
            message = "Scored \(outcome.rows) rows into \(try f.require("output"))"
        case "promote":
            values = try await promote(f, as: caller)
            message = values["promoted"] == .bool(true) ? "Promoted the candidate" : "Kept the champion"
        case "serve":
            values = try await serve(f, as: caller)
            message = "Endpoint \(try f.require("endpoint")) \(JSONValue.text(values["action"])) (version \(JSONValue.text(values["version"])))"
        default:
            throw KilnError.invalid("Unknown Kiln task action '\(action)'")
        }
        return (values, message)
    }

    /// Moves `alias` (default champion) of `model` to `version` when there is no champion yet, or when the
    /// candidate is significantly better than the champion on `table` (McNemar for classifiers, a paired bootstrap
    /// of the RMSE for regressors, 5% level).
    func promote(_ f: JSONFields, as caller: Caller?) async throws -> [String: JSONValue] {
        let name = try f.require("model"), version = try f.require("version"), alias = try f.string("alias") ?? "champion"
        let table = try f.require("table")
        _ = try await rules.registry.getModelVersion(name: name, version: version)
        try await rules.requireModelEdit(caller, name)
        let who = caller?.name ?? "kiln-jobs"
        let champion = try? await rules.registry.version(name: name, alias: alias)
        var values: [String: JSONValue] = ["candidate_version": .string(version)]
        guard let champion, String(champion.version) != version else {
            try await rules.registry.setAlias(name: name, alias: alias, version: version, userID: who)
            values["promoted"] = .bool(true)
            values["reason"] = .string(champion == nil ? "no \(alias) yet" : "already \(alias)")
            return values
        }
        let c = try await rules.compare(modelA: "models:/\(name)/\(version)", modelB: "models:/\(name)/\(champion.version)", table: table,
                                           version: nil, seed: 0, as: caller)
        values["champion_version"] = .string(String(champion.version))
        values["test"] = .string(c.test)
        if let p = c.pValue { values["p_value"] = .number(String(p)) }
        if let d = c.difference { values["difference"] = .number(String(d)) }
        for (k, v) in c.metricsA { values["candidate_\(k)"] = .number(String(v)) }
        for (k, v) in c.metricsB { values["champion_\(k)"] = .number(String(v)) }
        let better = c.better == "a"
        if better { try await rules.registry.setAlias(name: name, alias: alias, version: version, userID: who) }
        values["promoted"] = .bool(better)
        values["reason"] = .string(better ? "the candidate is significantly better" : c.better == "b" ? "the champion is significantly better" : "no significant difference")
        return values
    }

    /// Serves `model` at `version` (or the version `alias` names, default champion) on `endpoint`: created when
    /// missing, its config swapped (warm) when it serves another version, left alone when it already serves this one.
    func serve(_ f: JSONFields, as caller: Caller?) async throws -> [String: JSONValue] {
        let endpoint = try f.require("endpoint"), model = try f.require("model")
        let who = caller?.name ?? "kiln-jobs"
        try await rules.requireModelRead(caller, model)
        let version: String
        if let v = try f.string("version") { version = v } else {
            version = String(try await rules.registry.version(name: model, alias: try f.string("alias") ?? "champion").version)
        }
        let config = EndpointConfig(servedEntities: [ServedEntity(entityName: model, entityVersion: version, workloadSize: try f.string("workload_size") ?? "Small",
                                                                  scaleToZeroEnabled: true)])
        var action = "created"
        if let existing = try? await serving.get(name: endpoint) {
            try await rules.permissions.require(caller, "CAN_MANAGE", .servingEndpoints, endpoint)
            if existing.config.servedEntities.map({ "\($0.entityName)/\($0.entityVersion)" }) == ["\(model)/\(version)"] {
                action = "unchanged"
            } else {
                _ = try await serving.updateConfig(name: endpoint, config: config, principal: who)
                action = "updated"
            }
        } else {
            _ = try await serving.create(name: endpoint, config: config, creator: who)
            try await rules.permissions.recordCreated(.servingEndpoints, endpoint, by: caller)
        }
        return ["endpoint": .string(endpoint), "version": .string(version), "action": .string(action)]
    }
}
