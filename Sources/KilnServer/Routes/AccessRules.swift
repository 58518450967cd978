import Hummingbird
import KilnCatalog
import KilnCore
import KilnJobs
import KilnPermissions
import KilnRegistry
import KilnServing
import KilnTracking
import Synchronization

/// Where a route's object is named in its request.
enum Target: Sendable {
    /// A field holding an experiment id.
    case experiment(String)
    /// A field holding a list of experiment ids: each one is needed.
    case experiments(String)
    /// A field holding an experiment's name.
    case experimentNamed(String)
    /// `run_id` (or MLflow's older `run_uuid`): the run's experiment.
    case run
    /// A field holding a logged model's id: its experiment.
    case loggedModel(String)
    /// A field holding a registered model's name.
    case model(String)
    /// A field holding a serving endpoint's name.
    case endpoint(String)
    /// A field holding a job id.
    case job(String)
    /// `run_id` of a job run or task run: its job (a one-time run: whoever submitted it).
    case jobRun
}

/// What a route asks of its caller, beyond being signed in.
enum AccessRule: Sendable {
    /// Nothing more: nothing here to protect, or the route belongs to a service that decides each call itself
    /// (Unity Catalog, SCIM, tokens, SQL, files, permissions).
    case signedIn
    /// Signed in; the caller becomes the owner of what it creates (this level).
    case creates(String)
    /// Signed in; the answer holds only what the caller may see.
    case lists
    /// Signed in; the service checks what the request names (described here).
    case checks(String)
    /// A workspace admin (group `admins`).
    case admin
    /// At least this level on the target object.
    case level(Target, String)
    /// A stage transition of a model version (`name`, `version`, `stage`): Staging and None need
    /// `CAN_MANAGE_STAGING_VERSIONS`, Production and Archived `CAN_MANAGE_PRODUCTION_VERSIONS`, for the version's
    /// current stage and the new one.
    case transition
    /// A version comment (`id`): its author, or `CAN_MANAGE` on its model.
    case commentAuthor
    /// A model in Unity Catalog named by this field (`catalog.schema.model`), decided by its grants.
    case ucModel(String, UnityCatalog.ModelNeed)
    /// Every one of these.
    indirect case each([AccessRule])
}

/// The one table of what each API call needs (the routes' authorization, and its documentation: docs/permissions.md
/// renders it). Keys are `METHOD path` with the `/api/2.0/mlflow/` spelling for `/ajax-api/2.0/mlflow/` and
/// `/api/2.1/` for `/api/2.2/`. A route missing here is for admins only.
enum AccessRules {
    static let read = "CAN_READ", edit = "CAN_EDIT", manage = "CAN_MANAGE", view = "CAN_VIEW", query = "CAN_QUERY", manageRun = "CAN_MANAGE_RUN"

    static let table: [String: AccessRule] = [
        // MLflow tracking: experiments and what is in them.
        "POST /api/2.0/mlflow/experiments/create": .creates("CAN_MANAGE"),
        "GET /api/2.0/mlflow/experiments/get": .level(.experiment("experiment_id"), read),
        "GET /api/2.0/mlflow/experiments/get-by-name": .level(.experimentNamed("experiment_name"), read),
        "POST /api/2.0/mlflow/experiments/search": .lists,
        "GET /api/2.0/mlflow/experiments/search": .lists,
        "POST /api/2.0/mlflow/experiments/update": .level(.experiment("experiment_id"), manage),
        "POST /api/2.0/mlflow/experiments/delete": .level(.experiment("experiment_id"), manage),
        "POST /api/2.0/mlflow/experiments/restore": .level(.experiment("experiment_id"), manage),
        "POST /api/2.0/mlflow/experiments/set-experiment-tag": .level(.experiment("experiment_id"), edit),
        "POST /api/2.0/mlflow/experiments/delete-experiment-tag": .level(.experiment("experiment_id"), edit),
        "POST /api/2.0/mlflow/runs/create": .level(.experiment("experiment_id"), edit),
        "GET /api/2.0/mlflow/runs/get": .level(.run, read),
        "POST /api/2.0/mlflow/runs/update": .level(.run, edit),
        "POST /api/2.0/mlflow/runs/delete": .level(.run, edit),
        "POST /api/2.0/mlflow/runs/restore": .level(.run, edit),
        "POST /api/2.0/mlflow/runs/log-metric": .level(.run, edit),
        "POST /api/2.0/mlflow/runs/log-parameter": .level(.run, edit),
        "POST /api/2.0/mlflow/runs/set-tag": .level(.run, edit),
        "POST /api/2.0/mlflow/runs/delete-tag": .level(.run, edit),
        "POST /api/2.0/mlflow/runs/log-batch": .level(.run, edit),
        "POST /api/2.0/mlflow/runs/log-inputs": .level(.run, edit),
        "POST /api/2.0/mlflow/runs/outputs": .level(.run, edit),
        "POST /api/2.0/mlflow/runs/search": .level(.experiments("experiment_ids"), read),
        "GET /api/2.0/mlflow/metrics/get-history": .level(.run, read),
        "GET /api/2.0/mlflow/artifacts/list": .level(.run, read),
        "POST /api/2.0/mlflow/logged-models": .level(.experiment("experiment_id"), edit),
        "POST /api/2.0/mlflow/logged-models/search": .level(.experiments("experiment_ids"), read),
        "GET /api/2.0/mlflow/logged-models/{model_id}": .level(.loggedModel("model_id"), read),
        "PATCH /api/2.0/mlflow/logged-models/{model_id}": .level(.loggedModel("model_id"), edit),
        "DELETE /api/2.0/mlflow/logged-models/{model_id}": .level(.loggedModel("model_id"), edit),
        "PATCH /api/2.0/mlflow/logged-models/{model_id}/tags": .level(.loggedModel("model_id"), edit),
        "DELETE /api/2.0/mlflow/logged-models/{model_id}/tags/{tag_key}": .level(.loggedModel("model_id"), edit),
        "POST /api/2.0/mlflow/logged-models/{model_id}/params": .level(.loggedModel("model_id"), edit),
        "GET /api/2.0/mlflow/logged-models/{model_id}/artifacts/directories": .level(.loggedModel("model_id"), read),

        // MLflow model registry (workspace models, named by name).
        "POST /api/2.0/mlflow/registered-models/create": .creates("CAN_MANAGE"),
        "POST /api/2.0/mlflow/registered-models/rename": .level(.model("name"), manage),
        "PATCH /api/2.0/mlflow/registered-models/update": .level(.model("name"), edit),
        "DELETE /api/2.0/mlflow/registered-models/delete": .level(.model("name"), manage),
        "GET /api/2.0/mlflow/registered-models/get": .level(.model("name"), read),
        "GET /api/2.0/mlflow/databricks/registered-models/get": .level(.model("name"), read),
        "GET /api/2.0/mlflow/registered-models/search": .lists,
        "POST /api/2.0/mlflow/registered-models/get-latest-versions": .level(.model("name"), read),
        "GET /api/2.0/mlflow/registered-models/get-latest-versions": .level(.model("name"), read),
        "POST /api/2.0/mlflow/registered-models/set-tag": .level(.model("name"), edit),
        "DELETE /api/2.0/mlflow/registered-models/delete-tag": .level(.model("name"), edit),
        "POST /api/2.0/mlflow/registered-models/alias": .level(.model("name"), edit),
        "DELETE /api/2.0/mlflow/registered-models/alias": .level(.model("name"), edit),
        "GET /api/2.0/mlflow/registered-models/alias": .level(.model("name"), read),
        // A version copies its run's (or logged model's) files: reading them is needed too.
        "POST /api/2.0/mlflow/model-versions/create": .each([.level(.model("name"), edit), .level(.run, read), .level(.loggedModel("model_id"), read)]),
        "GET /api/2.0/mlflow/model-versions/get": .level(.model("name"), read),
        "PATCH /api/2.0/mlflow/model-versions/update": .level(.model("name"), edit),
        "DELETE /api/2.0/mlflow/model-versions/delete": .level(.model("name"), manage),
        "GET /api/2.0/mlflow/model-versions/search": .lists,
        "POST /api/2.0/mlflow/model-versions/transition-stage": .transition,
        "GET /api/2.0/mlflow/model-versions/get-download-uri": .level(.model("name"), read),
        "POST /api/2.0/mlflow/model-versions/set-tag": .level(.model("name"), edit),
        "DELETE /api/2.0/mlflow/model-versions/delete-tag": .level(.model("name"), edit),
        "POST /api/2.0/mlflow/transition-requests/create": .level(.model("name"), read),
        "GET /api/2.0/mlflow/transition-requests/list": .level(.model("name"), read),
        "POST /api/2.0/mlflow/transition-requests/approve": .transition,
        "POST /api/2.0/mlflow/transition-requests/reject": .transition,
        "DELETE /api/2.0/mlflow/transition-requests/delete": .level(.model("name"), read),
        "POST /api/2.0/mlflow/comments/create": .level(.model("name"), read),
        "PATCH /api/2.0/mlflow/comments/update": .commentAuthor,
        "DELETE /api/2.0/mlflow/comments/delete": .commentAuthor,
        "GET /api/2.0/kiln/registry/activities": .level(.model("name"), read),
        "GET /api/2.0/kiln/registry/alias-history": .level(.model("name"), read),
        "GET /api/2.0/kiln/registry/lineage": .level(.model("name"), read),
        // Registry webhooks see every model's events: admins only (Databricks lets a model's managers hook it).
        "POST /api/2.0/mlflow/registry-webhooks/create": .checks("`CAN_MANAGE` on the model (`model_name`); registry-wide webhooks: an admin"),
        "GET /api/2.0/mlflow/registry-webhooks/list": .lists,
        "PATCH /api/2.0/mlflow/registry-webhooks/update": .checks("`CAN_MANAGE` on the webhook's model; a registry-wide webhook: an admin"),
        "DELETE /api/2.0/mlflow/registry-webhooks/delete": .checks("`CAN_MANAGE` on the webhook's model; a registry-wide webhook: an admin"),
        "POST /api/2.0/mlflow/registry-webhooks/test": .checks("`CAN_MANAGE` on the webhook's model; a registry-wide webhook: an admin"),
        "GET /api/2.0/kiln/registry/webhook-deliveries": .checks("`CAN_MANAGE` on the webhook's model; a registry-wide webhook: an admin"),

        // Models in Unity Catalog (mlflow with registry URI databricks-uc), by full name, decided by Unity Catalog's
        // grants (docs/catalog.md): EXECUTE to read and load, APPLY_TAG to tag, ownership or MANAGE to change.
        "POST /api/2.0/mlflow/unity-catalog/registered-models/create": .checks("`CREATE_MODEL` on the schema (with the USE chain); the creator owns it"),
        "GET /api/2.0/mlflow/unity-catalog/registered-models/get": .ucModel("name", .read),
        "PATCH /api/2.0/mlflow/unity-catalog/registered-models/update": .ucModel("name", .change),
        "DELETE /api/2.0/mlflow/unity-catalog/registered-models/delete": .ucModel("name", .change),
        "GET /api/2.0/mlflow/unity-catalog/registered-models/search": .lists,
        "POST /api/2.0/mlflow/unity-catalog/registered-models/alias": .ucModel("name", .change),
        "DELETE /api/2.0/mlflow/unity-catalog/registered-models/alias": .ucModel("name", .change),
        "GET /api/2.0/mlflow/unity-catalog/registered-models/alias": .ucModel("name", .read),
        "POST /api/2.0/mlflow/unity-catalog/registered-models/set-tag": .ucModel("name", .tag),
        "DELETE /api/2.0/mlflow/unity-catalog/registered-models/delete-tag": .ucModel("name", .tag),
        "GET /api/2.0/mlflow/unity-catalog/registered-models:is-databricks-sdk-models-artifact-repository-enabled": .signedIn,
        "POST /api/2.0/mlflow/unity-catalog/model-versions/create": .ucModel("name", .change),
        "GET /api/2.0/mlflow/unity-catalog/model-versions/get": .ucModel("name", .read),
        "PATCH /api/2.0/mlflow/unity-catalog/model-versions/update": .ucModel("name", .change),
        "DELETE /api/2.0/mlflow/unity-catalog/model-versions/delete": .ucModel("name", .change),
        "GET /api/2.0/mlflow/unity-catalog/model-versions/search": .lists,
        "POST /api/2.0/mlflow/unity-catalog/model-versions/finalize": .ucModel("name", .change),
        "POST /api/2.0/mlflow/unity-catalog/model-versions/generate-temporary-credentials":
            .checks("`EXECUTE` on the model (with the USE chain); ownership or `MANAGE` for `MODEL_VERSION_OPERATION_READ_WRITE`"),
        "GET /api/2.0/mlflow/unity-catalog/model-versions/get-download-uri": .ucModel("name", .read),
        "POST /api/2.0/mlflow/unity-catalog/model-versions/set-tag": .ucModel("name", .tag),
        "DELETE /api/2.0/mlflow/unity-catalog/model-versions/delete-tag": .ucModel("name", .tag),

        // Unity Catalog's models API: the same models and rules.
        "POST /api/2.1/unity-catalog/models": .checks("`CREATE_MODEL` on the schema (with the USE chain); the creator owns it"),
        "GET /api/2.1/unity-catalog/models": .lists,
        "GET /api/2.1/unity-catalog/models/{full_name}": .ucModel("full_name", .read),
        "PATCH /api/2.1/unity-catalog/models/{full_name}": .ucModel("full_name", .change),
        "DELETE /api/2.1/unity-catalog/models/{full_name}": .ucModel("full_name", .change),
        "PUT /api/2.1/unity-catalog/models/{full_name}/aliases/{alias}": .ucModel("full_name", .change),
        "DELETE /api/2.1/unity-catalog/models/{full_name}/aliases/{alias}": .ucModel("full_name", .change),
        "GET /api/2.1/unity-catalog/models/{full_name}/aliases/{alias}": .ucModel("full_name", .read),
        "POST /api/2.1/unity-catalog/models/versions": .checks("ownership of or `MANAGE` on the model (`catalog_name`.`schema_name`.`model_name`)"),
        "GET /api/2.1/unity-catalog/models/{full_name}/versions": .ucModel("full_name", .read),
        "GET /api/2.1/unity-catalog/models/{full_name}/versions/{version}": .ucModel("full_name", .read),
        "PATCH /api/2.1/unity-catalog/models/{full_name}/versions/{version}": .ucModel("full_name", .change),
        "DELETE /api/2.1/unity-catalog/models/{full_name}/versions/{version}": .ucModel("full_name", .change),
        "PATCH /api/2.1/unity-catalog/models/{full_name}/versions/{version}/finalize": .ucModel("full_name", .change),

        // Serving (queries: `POST /serving-endpoints/{name}/invocations` needs CAN_QUERY, checked in its route).
        "POST /api/2.0/serving-endpoints": .creates("CAN_MANAGE"),
        "GET /api/2.0/serving-endpoints": .lists,
        "GET /api/2.0/serving-endpoints/{name}": .level(.endpoint("name"), view),
        "GET /api/2.0/serving-endpoints/{name}/metrics": .level(.endpoint("name"), view),
        "PUT /api/2.0/serving-endpoints/{name}/config": .level(.endpoint("name"), manage),
        "DELETE /api/2.0/serving-endpoints/{name}": .level(.endpoint("name"), manage),

        // Jobs and their runs.
        "POST /api/2.1/jobs/create": .creates("IS_OWNER"),  // run_as is checked by the route
        "GET /api/2.1/jobs/get": .level(.job("job_id"), view),
        "GET /api/2.1/jobs/list": .lists,
        "POST /api/2.1/jobs/reset": .level(.job("job_id"), manage),
        "POST /api/2.1/jobs/update": .level(.job("job_id"), manage),
        "POST /api/2.1/jobs/delete": .level(.job("job_id"), manage),
        "POST /api/2.1/jobs/run-now": .level(.job("job_id"), manageRun),
        "POST /api/2.1/jobs/runs/submit": .creates("its submitter's alone"),  // run_as is checked by the route
        "GET /api/2.1/jobs/runs/get": .level(.jobRun, view),
        "GET /api/2.1/jobs/runs/list": .lists,
        "POST /api/2.1/jobs/runs/cancel": .level(.jobRun, manageRun),
        "POST /api/2.1/jobs/runs/cancel-all": .level(.job("job_id"), manageRun),
        "POST /api/2.1/jobs/runs/delete": .level(.jobRun, manage),
        "GET /api/2.1/jobs/runs/get-output": .level(.jobRun, view),
        "GET /api/2.1/jobs/runs/export": .level(.jobRun, view),
        "POST /api/2.1/jobs/runs/repair": .level(.jobRun, manageRun),
        "GET /api/2.0/notification-destinations": .signedIn,
        "GET /api/2.0/notification-destinations/{id}": .signedIn,
        "POST /api/2.0/notification-destinations": .admin,
        "PATCH /api/2.0/notification-destinations/{id}": .admin,
        "DELETE /api/2.0/notification-destinations/{id}": .admin,

        // Training and comparison check each table (SELECT), experiment, run and model as the caller (Platform.train).
        "POST /api/2.0/kiln/train": .checks("`SELECT` on each table; `CAN_EDIT` on the experiment or run logged to (a new experiment is the caller's); `CAN_EDIT` on the model registered into (a new one is the caller's)"),
        "POST /api/2.0/kiln/models/compare": .checks("`SELECT` on the table; `CAN_READ` on both models (or their runs' experiments)"),
        "POST /api/2.0/kiln/runs/reproduce": .checks("`CAN_READ` on the run's experiment; then what training takes: `SELECT` on its tables, `CAN_EDIT` on the experiment"),
        "POST /api/2.0/kiln/test/clock": .admin,
        // Feature lineage: a model's needs CAN_READ on it, an endpoint's CAN_VIEW; a table's SELECT (checked by the route).
        "GET /api/2.0/kiln/features/lineage/models": .level(.model("name"), read),
        "GET /api/2.0/kiln/features/lineage/endpoints": .level(.endpoint("name"), view),
    ]

    /// Route families whose services decide every call themselves (each documents its rules).
    static let selfChecked = ["/api/2.0/preview/scim/v2/", "/api/2.1/unity-catalog/", "/api/2.0/unity-catalog/", "/api/2.0/sql/", "/api/2.0/token/",
                              "/api/2.0/token-management/", "/api/2.0/permissions/", "/api/2.0/fs/",
                              "/api/2.0/kiln/features/", "/api/2.0/feature-store/"]

    /// The key of a registered route in ``table``.
    static func key(_ method: HTTPRequest.Method, _ path: String) -> String {
        var path = path
        for (from, to) in [("/ajax-api/2.0/mlflow/", "/api/2.0/mlflow/"), ("/api/2.2/", "/api/2.1/")] where path.hasPrefix(from) {
            path = to + path.dropFirst(from.count)
        }
        // Hummingbird's `:name` segments are written `{name}` in the table.
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }
        return "\(method.rawValue) \(segments.joined(separator: "/"))"
    }

    /// The rule of a route; nil when it has none (then it is for admins only).
    static func rule(_ method: HTTPRequest.Method, _ path: String) -> AccessRule? {
        if let rule = table[key(method, path)] { return rule }
        return selfChecked.contains(where: { path.hasPrefix($0) }) ? .signedIn : nil
    }

    /// Every route registered without a rule (tests keep this empty).
    static let unruled = Mutex<Set<String>>([])
}

/// Applies ``AccessRules`` to a request: finds its object and asks ``WorkspacePermissions``.
struct Authorizer: Sendable {
    let permissions: WorkspacePermissions
    let catalog: UnityCatalog
    let tracking: TrackingService
    let registry: RegistryService
    let jobs: JobsService
    let runs: JobRunner
    let serving: ServingService
    /// Runs never move between experiments: their experiment is looked up once.
    let runExperiments = RunExperimentCache()

    func authorize(_ rule: AccessRule?, _ m: RequestMessage, route: String) async throws {
        guard let caller = m.caller, !caller.isAdmin else { return }
        guard let rule else {
            throw KilnError(.permissionDenied, "\(caller.name) may not call \(route): it is for workspace admins")
        }
        switch rule {
        case .each(let rules):
            for rule in rules { try await authorize(rule, m, route: route) }
        case .signedIn, .creates, .lists, .checks: return
        case .admin:
            throw KilnError(.permissionDenied, "\(caller.name) may not call \(route): it is for workspace admins")
        case .level(.jobRun, let level):
            // A job run is its job's; a one-time run (no job) is its submitter's. The run is read once.
            guard let id = try m.int64("run_id"), let origin = try await runs.origin(ofRun: id) else { return }
            guard let job = origin.jobID else {
                guard origin.creator == caller.name else {
                    throw KilnError(.permissionDenied, "\(caller.name) may not see or change one-time run \(id): it is its submitter's")
                }
                return
            }
            try await require(caller, level, .jobs, String(job))
        case .level(let target, let level):
            for (kind, id) in try await objects(target, m) {
                try await require(caller, level, kind, id)
            }
        case .transition:
            let name = try m.requireString("name")
            func needed(_ stage: String?) -> String {
                switch stage?.lowercased() {
                case "production", "archived": return "CAN_MANAGE_PRODUCTION_VERSIONS"
                default: return "CAN_MANAGE_STAGING_VERSIONS"
                }
            }
            let current = try? await registry.getModelVersion(name: name, version: try m.requireString("version")).stage.rawValue
            let levels = [needed(try m.string("stage")), needed(current)]
            try await require(caller, levels.contains("CAN_MANAGE_PRODUCTION_VERSIONS") ? "CAN_MANAGE_PRODUCTION_VERSIONS" : "CAN_MANAGE_STAGING_VERSIONS",
                              .registeredModels, name)
        case .commentAuthor:
            guard let origin = try await registry.commentOrigin(id: try m.requireString("id")) else { return }
            if origin.author == caller.name { return }
            try await require(caller, AccessRules.manage, .registeredModels, origin.model)
        case .ucModel(let field, let need):
            guard let name = try m.string(field) else { return }
            try await catalog.requireModel(caller, need, name)
        }
    }


    /// Proxied artifacts: `<experiment id>/...` needs `CAN_READ` on the experiment to read and `CAN_EDIT` to write;
    /// `registry/<folder>/...` (a model version's files) `CAN_READ` on its model to read; anything else, an admin.
    func artifact(_ caller: Caller?, path: String, write: Bool) async throws {
        guard let caller, !caller.isAdmin else { return }
        let parts = path.split(separator: "/").map(String.init)
        if let first = parts.first, Int64(first) != nil {
            return try await permissions.require(caller, write ? AccessRules.edit : AccessRules.read, .experiments, first)
        }
        if parts.count >= 2, parts[0] == "registry", !write, let model = try await registry.modelName(ofStorage: parts[1]) {
            return try await permissions.require(caller, AccessRules.read, .registeredModels, model)
        }
        throw KilnError(.permissionDenied, "\(caller.name) may not \(write ? "write" : "read") artifacts at '\(path)': only under an experiment it may \(write ? "edit" : "read"), or a model version it may read")
    }

    /// Refuses with 403 when the object exists and the caller lacks the level; a missing object is the route's to
    /// report (404).
    func require(_ caller: Caller, _ level: String, _ kind: ObjectKind, _ id: String) async throws {
        // A model in Unity Catalog (its catalog and schema exist) goes by its grants on every API, the workspace
        // registry's included: reading takes EXECUTE, anything more ownership or MANAGE.
        if kind == .registeredModels, id.split(separator: ".").count == 3, (try? await catalog.path(.model, id)) != nil {
            return try await catalog.requireModel(caller, level == AccessRules.read ? .read : .change, id)
        }
        if try await permissions.holds(caller, level, kind, id) { return }
        guard try await exists(kind, id) else { return }
        try await permissions.require(caller, level, kind, id)
    }

    func exists(_ kind: ObjectKind, _ id: String) async throws -> Bool {
        switch kind {
        case .experiments: return (try? await tracking.getExperiment(id: id)) != nil
        case .registeredModels: return (try? await registry.getRegisteredModel(name: id)) != nil
        case .servingEndpoints: return (try? await serving.get(name: id)) != nil
        case .jobs: return true  // resolved from an existing job
        }
    }

    /// The objects a request names.
    func objects(_ target: Target, _ m: RequestMessage) async throws -> [(ObjectKind, String)] {
        switch target {
        case .experiment(let field):
            return try m.string(field).map { [(.experiments, $0)] } ?? []
        case .experiments(let field):
            return m.fields[field] == nil ? [] : try m.strings(field).map { (.experiments, $0) }
        case .experimentNamed(let field):
            return try await tracking.experimentID(named: try m.requireString(field)).map { [(.experiments, $0)] } ?? []
        case .run:
            guard let run = try m.string("run_id") ?? m.string("run_uuid") else { return [] }
            if let known = runExperiments.lookup(run) { return [(.experiments, known)] }
            guard let experiment = try await tracking.experimentID(ofRun: run) else { return [] }
            runExperiments.store(run, experiment)
            return [(.experiments, experiment)]
        case .loggedModel(let field):
            guard let id = try m.string(field), !id.isEmpty else { return [] }
            return try await tracking.experimentID(ofLoggedModel: id).map { [(.experiments, $0)] } ?? []
        case .model(let field):
            return try m.string(field).map { [(.registeredModels, $0)] } ?? []
        case .endpoint(let field):
            return try m.string(field).map { [(.servingEndpoints, $0)] } ?? []
        case .job(let field):
            guard let id = try m.int64(field), (try? await jobs.get(id: id)) != nil else { return [] }
            return [(.jobs, String(id))]
        case .jobRun:
            return []  // decided in `authorize`, which also admits a one-time run's submitter
        }
    }
}

/// Run id → experiment id, bounded.
final class RunExperimentCache: Sendable {
    private let map = Mutex<[String: String]>([:])

    func lookup(_ run: String) -> String? { map.withLock { $0[run] } }

    func store(_ run: String, _ experiment: String) {
        map.withLock { table in
            if table.count > 200_000 { table.removeAll() }
            table[run] = experiment
        }
    }
}

/// The routes registered so far that have no entry in the access rules (so only admins may call them); tests keep
/// it empty.
public func routesWithoutAccessRules() -> [String] { AccessRules.unruled.withLock { $0.sorted() } }

extension Target {
    var text: String {
        switch self {
        case .experiment(let f): return "the experiment (`\(f)`)"
        case .experiments(let f): return "each experiment in `\(f)`"
        case .experimentNamed(let f): return "the experiment named `\(f)`"
        case .run: return "the run's experiment"
        case .loggedModel(let f): return "the logged model's experiment (`\(f)`)"
        case .model(let f): return "the registered model (`\(f)`)"
        case .endpoint: return "the endpoint"
        case .job(let f): return "the job (`\(f)`)"
        case .jobRun: return "the run's job (a one-time run: its submitter only)"
        }
    }
}

extension AccessRule {
    var text: String {
        switch self {
        case .signedIn: return "signed in"
        case .creates(let level): return level.hasPrefix("CAN_") || level.hasPrefix("IS_") ? "signed in; the creator gets `\(level)`" : "signed in; what it makes is \(level)"
        case .lists: return "signed in; answers only what the caller may see"
        case .checks(let what): return what
        case .admin: return "a workspace admin"
        case .level(let target, let level): return "`\(level)` on \(target.text)"
        case .transition: return "`CAN_MANAGE_STAGING_VERSIONS` on the model (`CAN_MANAGE_PRODUCTION_VERSIONS` when Production or Archived is the old or new stage)"
        case .commentAuthor: return "the comment's author, or `CAN_MANAGE` on its model"
        case .ucModel(let field, let need):
            let what: String = switch need {
            case .read: "`EXECUTE` on the model (`\(field)`) with the USE chain"
            case .tag: "`APPLY_TAG` on the model (`\(field)`) with the USE chain, or what changing it takes"
            case .change: "ownership of or `MANAGE` on the model (`\(field)`)"
            }
            return what
        case .each(let rules): return rules.map(\.text).joined(separator: "; and ")
        }
    }
}

/// The access rules as a Markdown table (docs/permissions.md holds it; a test keeps the two the same).
public func accessRulesMarkdown() -> String {
    var lines = ["| Call | Needs (admins and Kiln itself pass everything) |", "|---|---|"]
    for key in AccessRules.table.keys.sorted(by: { a, b in
        let (pa, pb) = (a.split(separator: " ")[1], b.split(separator: " ")[1])
        return pa == pb ? a < b : pa < pb
    }) {
        lines.append("| `\(key)` | \(AccessRules.table[key]!.text) |")
    }
    for family in AccessRules.selfChecked { lines.append("| `\(family)…` | signed in; the service decides each call (see its page) |") }
    return lines.joined(separator: "\n") + "\n"
}
