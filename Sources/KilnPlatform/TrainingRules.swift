import KilnCatalog
import KilnCore
import KilnPermissions
import KilnTraining

/// Training and model comparison as the caller: each table read needs `SELECT` (with the `USE` chain; tables by path
/// take an admin), the experiment logged to `CAN_EDIT` (a new one becomes the caller's), the run logged into `CAN_EDIT`
/// on its experiment, the model registered into `CAN_EDIT` (a new one becomes the caller's), each model compared
/// `CAN_READ`. Admins and Kiln itself (nil) pass.
extension Platform {
    /// Trains as `caller` (see the extension's rules). - Throws: `PERMISSION_DENIED` before anything is read.
    public func train(_ request: TrainRequest, as caller: Caller?) async throws -> TrainOutcome {
        guard let caller, !caller.isAdmin else { return try await training.train(request) }
        for table in [request.table] + (request.testTable.map { [$0] } ?? []) { try await requireSelect(caller, table) }
        var newExperiment = false, newModel = false
        if let run = request.runID {
            if let experiment = try await tracking.experimentID(ofRun: run) {
                try await permissions.require(caller, "CAN_EDIT", .experiments, experiment)
            }
        } else if let name = request.experiment, !name.isEmpty {
            if let experiment = try await tracking.experimentID(named: name) {
                try await permissions.require(caller, "CAN_EDIT", .experiments, experiment)
            } else {
                newExperiment = true
            }
        } else {
            try await permissions.require(caller, "CAN_EDIT", .experiments, "0")
        }
        if let model = request.register, !model.isEmpty {
            if (try? await registry.getRegisteredModel(name: model)) != nil {
                try await permissions.require(caller, "CAN_EDIT", .registeredModels, model)
            } else {
                newModel = true
            }
        }
        let outcome = try await training.train(request)
        if newExperiment { try await permissions.recordCreated(.experiments, outcome.experimentID, by: caller) }
        if newModel, let model = request.register { try await permissions.recordCreated(.registeredModels, model, by: caller) }
        return outcome
    }

    /// Compares two models on a table as `caller`. - Throws: `PERMISSION_DENIED` before anything is read.
    public func compare(modelA: String, modelB: String, table: String, version: Int64?, seed: UInt64, as caller: Caller?) async throws -> ModelComparison {
        if let caller, !caller.isAdmin {
            try await requireSelect(caller, table)
            for uri in [modelA, modelB] { try await requireRead(caller, model: uri) }
        }
        return try await training.compare(modelA: modelA, modelB: modelB, table: table, version: version, seed: seed)
    }

    /// - Throws: `PERMISSION_DENIED` unless `caller` may `SELECT` the three-level table `name`.
    func requireSelect(_ caller: Caller, _ name: String) async throws {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard !name.contains("/"), parts.count == 3, parts.allSatisfy({ !$0.isEmpty }) else {
            throw KilnError(.permissionDenied, "\(caller.name) may not read tables by path (\(name)): name the table as catalog.schema.table, or ask an admin")
        }
        guard let path = try? await catalog.path(.table, name) else { return }  // a missing table is training's 404
        guard try await catalog.allowed(caller, .select, path) else {
            throw KilnError(.permissionDenied, "\(caller.name) may not read table \(name): that takes USE_CATALOG, USE_SCHEMA and SELECT (or owning it)")
        }
    }

    /// `models:/name/version`, `models:/name@alias` need `CAN_READ` on the model; `runs:/id/...` on the run's experiment.
    func requireRead(_ caller: Caller, model uri: String) async throws {
        if uri.hasPrefix("models:/") {
            let name = String(uri.dropFirst("models:/".count).prefix { $0 != "/" && $0 != "@" })
            try await permissions.require(caller, "CAN_READ", .registeredModels, name)
        } else if uri.hasPrefix("runs:/"), let run = uri.dropFirst("runs:/".count).split(separator: "/").first {
            guard let experiment = try await tracking.experimentID(ofRun: String(run)) else { return }
            try await permissions.require(caller, "CAN_READ", .experiments, experiment)
        } else {
            throw KilnError(.permissionDenied, "\(caller.name) may only load models by models:/ or runs:/ URIs")
        }
    }
}
