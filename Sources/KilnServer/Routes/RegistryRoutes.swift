import Hummingbird
import KilnCore
import KilnPermissions
import KilnRegistry

/// The MLflow model registry REST API 2.0, under `/api/2.0/mlflow` and `/ajax-api/2.0/mlflow`.
struct RegistryRoutes: Sendable {
    let registry: RegistryService
    let permissions: WorkspacePermissions
    /// The models a caller's lists hold (`UCModelRoutes.visibleModelIDs`: workspace levels, UC grants for UC models).
    let visibleModels: @Sendable (Caller?) async throws -> Set<String>?

    var routes: [MessageRoute] {
        [
            MessageRoute(.post, "registered-models/create", createModel),
            MessageRoute(.post, "registered-models/rename", renameModel),
            MessageRoute(.patch, "registered-models/update", updateModel),
            MessageRoute(.delete, "registered-models/delete", deleteModel),
            MessageRoute(.get, "registered-models/get", getModel),
            MessageRoute(.get, "registered-models/search", searchModels),
            MessageRoute(.post, "registered-models/get-latest-versions", latestVersions),
            MessageRoute(.get, "registered-models/get-latest-versions", latestVersions),
            MessageRoute(.post, "registered-models/set-tag", setModelTag),
            MessageRoute(.delete, "registered-models/delete-tag", deleteModelTag),
            MessageRoute(.post, "registered-models/alias", setAlias),
            MessageRoute(.delete, "registered-models/alias", deleteAlias),
            MessageRoute(.get, "registered-models/alias", getByAlias),
            MessageRoute(.post, "model-versions/create", createVersion),
            MessageRoute(.get, "model-versions/get", getVersion),
            MessageRoute(.patch, "model-versions/update", updateVersion),
            MessageRoute(.delete, "model-versions/delete", deleteVersion),
            MessageRoute(.get, "model-versions/search", searchVersions),
            MessageRoute(.post, "model-versions/transition-stage", transitionStage),
            MessageRoute(.get, "model-versions/get-download-uri", downloadURI),
            MessageRoute(.post, "model-versions/set-tag", setVersionTag),
            MessageRoute(.delete, "model-versions/delete-tag", deleteVersionTag),
        ]
    }

    func register(on router: Router<KilnRequestContext>) {
        MessageRoute.register(routes, prefixes: ["/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/"], on: router)
        // databricks-sdk's `w.model_registry.get_model`: the model with its id (the name, which the permissions API
        // takes) and the caller's level on it.
        MessageRoute.register([MessageRoute(.get, "databricks/registered-models/get", getDatabricksModel)], prefixes: ["/api/2.0/mlflow/"], on: router)
    }

    func getDatabricksModel(_ m: RequestMessage) async throws -> Response {
        let model = try await registry.getRegisteredModel(name: try m.requireString("name"))
        let level = try await permissions.level(m.caller, .registeredModels, model.name)
        return .json { w in
            w.key("registered_model_databricks")
            w.registeredModel(model) { w in
                w.field("id", model.name)
                w.field("permission_level", level)
            }
        }
    }

    static let empty = Response.json { _ in }

    static func tags(_ m: RequestMessage) throws -> [KeyValue] {
        try m.keyValues("tags").map { KeyValue($0.0, $0.1) }
    }

    static func model(_ model: RegisteredModel) -> Response {
        .json { w in w.key("registered_model"); w.registeredModel(model) }
    }

    static func version(_ version: ModelVersion) -> Response {
        .json { w in w.key("model_version"); w.modelVersion(version) }
    }

    func createModel(_ m: RequestMessage) async throws -> Response {
        let model = try await registry.createRegisteredModel(
            name: try m.requireString("name"), description: try m.string("description"), tags: try Self.tags(m), userID: m.principal)
        try await permissions.recordCreated(.registeredModels, model.name, by: m.caller)
        return Self.model(model)
    }

    func renameModel(_ m: RequestMessage) async throws -> Response {
        let name = try m.requireString("name")
        let model = try await registry.renameRegisteredModel(name: name, newName: try m.requireString("new_name"))
        try await permissions.rename(.registeredModels, from: name, to: model.name)
        return Self.model(model)
    }

    func updateModel(_ m: RequestMessage) async throws -> Response {
        Self.model(try await registry.updateRegisteredModel(name: try m.requireString("name"), description: try m.string("description")))
    }

    func deleteModel(_ m: RequestMessage) async throws -> Response {
        try await registry.deleteRegisteredModel(name: try m.requireString("name"))
        try await permissions.forget(.registeredModels, try m.requireString("name"))
        return Self.empty
    }

    func getModel(_ m: RequestMessage) async throws -> Response {
        Self.model(try await registry.getRegisteredModel(name: try m.requireString("name")))
    }

    func searchModels(_ m: RequestMessage) async throws -> Response {
        let page = try await registry.searchRegisteredModels(
            filter: try m.string("filter"), orderBy: try m.strings("order_by"), maxResults: try m.int("max_results"),
            pageToken: try m.string("page_token"), only: try await visibleModels(m.caller))
        return .json { w in
            w.key("registered_models")
            w.array { w in for model in page.items { w.registeredModel(model) } }
            w.field("next_page_token", page.nextPageToken)
        }
    }

    func latestVersions(_ m: RequestMessage) async throws -> Response {
        let versions = try await registry.latestVersions(name: try m.requireString("name"), stages: try m.strings("stages"))
        return .json { w in
            w.key("model_versions")
            w.array { w in for v in versions { w.modelVersion(v) } }
        }
    }

    func setModelTag(_ m: RequestMessage) async throws -> Response {
        try await registry.setRegisteredModelTag(name: try m.requireString("name"),
                                                 tag: KeyValue(try m.requireString("key"), try m.string("value") ?? ""))
        return Self.empty
    }

    func deleteModelTag(_ m: RequestMessage) async throws -> Response {
        try await registry.deleteRegisteredModelTag(name: try m.requireString("name"), key: try m.requireString("key"))
        return Self.empty
    }

    func setAlias(_ m: RequestMessage) async throws -> Response {
        try await registry.setAlias(name: try m.requireString("name"), alias: try m.requireString("alias"),
                                    version: try m.requireString("version"), userID: m.principal)
        return Self.empty
    }

    func deleteAlias(_ m: RequestMessage) async throws -> Response {
        try await registry.deleteAlias(name: try m.requireString("name"), alias: try m.requireString("alias"), userID: m.principal)
        return Self.empty
    }

    func getByAlias(_ m: RequestMessage) async throws -> Response {
        Self.version(try await registry.version(name: try m.requireString("name"), alias: try m.requireString("alias")))
    }

    func createVersion(_ m: RequestMessage) async throws -> Response {
        Self.version(try await registry.createModelVersion(
            name: try m.requireString("name"), source: try m.requireString("source"), runID: try m.string("run_id"),
            modelID: try m.string("model_id"), tags: try Self.tags(m), runLink: try m.string("run_link"),
            description: try m.string("description"), userID: m.principal))
    }

    func getVersion(_ m: RequestMessage) async throws -> Response {
        Self.version(try await registry.getModelVersion(name: try m.requireString("name"), version: try m.requireString("version")))
    }

    func updateVersion(_ m: RequestMessage) async throws -> Response {
        Self.version(try await registry.updateModelVersion(
            name: try m.requireString("name"), version: try m.requireString("version"), description: try m.string("description")))
    }

    func deleteVersion(_ m: RequestMessage) async throws -> Response {
        try await registry.deleteModelVersion(name: try m.requireString("name"), version: try m.requireString("version"))
        return Self.empty
    }

    func searchVersions(_ m: RequestMessage) async throws -> Response {
        let page = try await registry.searchModelVersions(
            filter: try m.string("filter"), orderBy: try m.strings("order_by"), maxResults: try m.int("max_results"),
            pageToken: try m.string("page_token"), only: try await visibleModels(m.caller))
        return .json { w in
            w.key("model_versions")
            w.array { w in for v in page.items { w.modelVersion(v) } }
            w.field("next_page_token", page.nextPageToken)
        }
    }

    func transitionStage(_ m: RequestMessage) async throws -> Response {
        Self.version(try await registry.transitionStage(
            name: try m.requireString("name"), version: try m.requireString("version"),
            stage: try ModelStage.parse(try m.requireString("stage")),
            archiveExisting: try m.bool("archive_existing_versions") ?? false, userID: m.principal, comment: try m.string("comment")))
    }

    func downloadURI(_ m: RequestMessage) async throws -> Response {
        let uri = try await registry.downloadURI(name: try m.requireString("name"), version: try m.requireString("version"))
        return .json { w in w.field("artifact_uri", uri) }
    }

    func setVersionTag(_ m: RequestMessage) async throws -> Response {
        try await registry.setModelVersionTag(name: try m.requireString("name"), version: try m.requireString("version"),
                                              tag: KeyValue(try m.requireString("key"), try m.string("value") ?? ""))
        return Self.empty
    }

    func deleteVersionTag(_ m: RequestMessage) async throws -> Response {
        try await registry.deleteModelVersionTag(name: try m.requireString("name"), version: try m.requireString("version"),
                                                 key: try m.requireString("key"))
        return Self.empty
    }
}
