import KilnCatalog
import KilnCore
import KilnPermissions
import KilnRegistry
import KilnTracking
import KilnTraining

/// Work Kiln does on a caller's behalf (training, comparison, batch scoring, ingestion, promotion, serving — from the
/// REST API or a job's native tasks, which act as the job's run-as identity), checked as that caller: each table read
/// needs `SELECT` (with the `USE` chain; tables by path take an admin), each table written `MODIFY` (a new one
/// `CREATE_TABLE` on its schema, and becomes the caller's), the experiment logged to `CAN_EDIT` (a new one becomes the
/// caller's), the run logged into `CAN_EDIT` on its experiment, the model registered into `CAN_EDIT` (a new one
/// becomes the caller's), each model read `CAN_READ` (`EXECUTE` for a model in Unity Catalog), an alias moved
/// `CAN_EDIT` (ownership or `MANAGE` in Unity Catalog), an endpoint changed `CAN_MANAGE`. Admins and Kiln itself (nil)
/// pass.
public struct CallerRules: Sendable {
    public let training: TrainingService
    public let tracking: TrackingService
    public let registry: RegistryService
    public let permissions: WorkspacePermissions
    public let catalog: UnityCatalog

    public init(training: TrainingService, tracking: TrackingService, registry: RegistryService, permissions: WorkspacePermissions,
                catalog: UnityCatalog) {
        self.training = training
        self.tracking = tracking
        self.registry = registry
        self.permissions = permissions
        self.catalog = catalog
    }

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

    /// Reproduces a Kiln training run as `caller`: `CAN_READ` on the run's experiment (to read how it was trained), then
    /// what training takes (`SELECT` on its tables, `CAN_EDIT` on the experiment the new run is logged to).
    public func reproduce(runID: String, as caller: Caller?) async throws -> ReproduceOutcome {
        if let caller, !caller.isAdmin, let experiment = try await tracking.experimentID(ofRun: runID) {
            try await permissions.require(caller, "CAN_READ", .experiments, experiment)
        }
        return try await training.reproduce(runID: runID) { try await self.train($0, as: caller) }
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

    /// - Throws: `PERMISSION_DENIED` unless `caller` may write the three-level table `name` (`MODIFY`; a table that does
    ///   not exist yet, `CREATE_TABLE` on its schema). - Returns: whether the table is new (record its owner after).
    func requireWrite(_ caller: Caller?, _ name: String) async throws -> Bool {
        let exists = (try? await catalog.path(.table, name)) != nil
        guard let caller, !caller.isAdmin else { return !exists }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard !name.contains("/"), parts.count == 3, parts.allSatisfy({ !$0.isEmpty }) else {
            throw KilnError(.permissionDenied, "\(caller.name) may not write tables by path (\(name)): name the table as catalog.schema.table, or ask an admin")
        }
        if exists {
            guard try await catalog.allowed(caller, .modify, try await catalog.path(.table, name)) else {
                throw KilnError(.permissionDenied, "\(caller.name) may not change table \(name): that takes USE_CATALOG, USE_SCHEMA and MODIFY (or owning it)")
            }
        } else if let schema = try? await catalog.path(.schema, "\(parts[0]).\(parts[1])"), !(try await catalog.allowed(caller, .createTable, schema)) {
            throw KilnError(.permissionDenied, "\(caller.name) may not create table \(name): that takes USE_CATALOG, USE_SCHEMA and CREATE_TABLE on \(parts[0]).\(parts[1])")
        }
        return !exists
    }

    /// Records `caller` as the owner of a table it just made.
    func recordTableCreated(_ name: String, by caller: Caller?) async throws {
        guard let caller else { return }
        try await catalog.recordCreated(.table, name, by: caller, ifNew: true)
    }

    /// - Throws: `PERMISSION_DENIED` unless `caller` may read (load, serve) the registered model `name`: `CAN_READ`,
    ///   or `EXECUTE` for a model in Unity Catalog (`catalog.schema.model`).
    public func requireModelRead(_ caller: Caller?, _ name: String) async throws {
        if name.split(separator: ".").count == 3, try await registry.creationTime(ofModel: name) != nil {
            try await catalog.requireModel(caller, .read, name)
        } else {
            try await permissions.require(caller, "CAN_READ", .registeredModels, name)
        }
    }

    /// - Throws: `PERMISSION_DENIED` unless `caller` may move the model's aliases: `CAN_EDIT`, or ownership or
    ///   `MANAGE` for a model in Unity Catalog.
    func requireModelEdit(_ caller: Caller?, _ name: String) async throws {
        if name.split(separator: ".").count == 3, try await registry.creationTime(ofModel: name) != nil {
            try await catalog.requireModel(caller, .change, name)
        } else {
            try await permissions.require(caller, "CAN_EDIT", .registeredModels, name)
        }
    }

    /// `models:/name/version`, `models:/name@alias` need `CAN_READ` on the model; `runs:/id/...` on the run's experiment.
    func requireRead(_ caller: Caller, model uri: String) async throws {
        if uri.hasPrefix("models:/") {
            try await requireModelRead(caller, String(uri.dropFirst("models:/".count).prefix { $0 != "/" && $0 != "@" }))
        } else if uri.hasPrefix("runs:/"), let run = uri.dropFirst("runs:/".count).split(separator: "/").first {
            guard let experiment = try await tracking.experimentID(ofRun: String(run)) else { return }
            try await permissions.require(caller, "CAN_READ", .experiments, experiment)
        } else {
            throw KilnError(.permissionDenied, "\(caller.name) may only load models by models:/ or runs:/ URIs")
        }
    }
}
