import Crypto
import Foundation
import Hummingbird
import KilnBlob
import KilnCatalog
import KilnCore
import KilnPermissions
import KilnRegistry
import KilnWeb

/// Models in Unity Catalog as the stock mlflow client calls them with `mlflow.set_registry_uri("databricks-uc")`
/// (DATABRICKS_HOST and DATABRICKS_TOKEN pointing at Kiln): `/api/2.0/mlflow/unity-catalog/registered-models/*` and
/// `model-versions/*`, three-level names (`catalog.schema.model`). A version is created `PENDING_REGISTRATION`; the
/// client asks for temporary credentials (Kiln answers Databricks' default storage), uploads each file to a URL Kiln
/// signs and serves itself (`/api/2.0/fs/create-upload-url`), then finalizes the version `READY`. Loading lists the
/// version's folder (`/api/2.0/fs/directories/Models/...`) and downloads through signed URLs the same way.
///
/// Creating a model takes `CREATE_MODEL` on the schema (with the USE chain); the creator owns it. Everything else is
/// decided by Unity Catalog's grants on the model (`AccessRules`, `UnityCatalog.requireModel`): `EXECUTE` to read and
/// load, `APPLY_TAG` to tag, ownership or `MANAGE` to change. (The creator also gets `CAN_MANAGE` in the workspace
/// registry, which the web UI and the workspace registry API use.)
struct UCModelRoutes: Sendable {
    let registry: RegistryService
    let catalog: UnityCatalog
    let permissions: WorkspacePermissions
    let files: UCModelFiles

    func register(on router: Router<KilnRequestContext>) {
        MessageRoute.register([
            MessageRoute(.post, "registered-models/create", createModel),
            MessageRoute(.get, "registered-models/get", getModel),
            MessageRoute(.patch, "registered-models/update", updateModel),
            MessageRoute(.delete, "registered-models/delete", deleteModel),
            MessageRoute(.get, "registered-models/search", searchModels),
            MessageRoute(.post, "registered-models/alias", setAlias),
            MessageRoute(.delete, "registered-models/alias", deleteAlias),
            MessageRoute(.get, "registered-models/alias", getByAlias),
            MessageRoute(.post, "registered-models/set-tag", setModelTag),
            MessageRoute(.delete, "registered-models/delete-tag", deleteModelTag),
            MessageRoute(.get, "registered-models:is-databricks-sdk-models-artifact-repository-enabled") { _ in
                // Kiln serves the presigned-URL flow; the databricks-sdk file client is not needed.
                .json { w in w.field("is_databricks_sdk_models_artifact_repository_enabled", false) }
            },
            MessageRoute(.post, "model-versions/create", createVersion),
            MessageRoute(.get, "model-versions/get", getVersion),
            MessageRoute(.patch, "model-versions/update", updateVersion),
            MessageRoute(.delete, "model-versions/delete", deleteVersion),
            MessageRoute(.get, "model-versions/search", searchVersions),
            MessageRoute(.post, "model-versions/finalize", finalize),
            MessageRoute(.post, "model-versions/generate-temporary-credentials", credentials),
            MessageRoute(.get, "model-versions/get-download-uri", downloadURI),
            MessageRoute(.post, "model-versions/set-tag", setVersionTag),
            MessageRoute(.delete, "model-versions/delete-tag", deleteVersionTag),
        ], prefixes: ["/api/2.0/mlflow/unity-catalog/"], on: router)
        // The same models as Unity Catalog's own API (databricks-sdk w.registered_models / w.model_versions,
        // unitycatalog-client RegisteredModelsApi / ModelVersionsApi).
        MessageRoute.register([
            MessageRoute(.post, "models", createInfo),
            MessageRoute(.get, "models", listInfos),
            MessageRoute(.get, "models/{full_name}", getInfo),
            MessageRoute(.patch, "models/{full_name}", updateInfo),
            MessageRoute(.delete, "models/{full_name}", deleteInfo),
            MessageRoute(.put, "models/{full_name}/aliases/{alias}", putAlias),
            MessageRoute(.delete, "models/{full_name}/aliases/{alias}", removeAlias),
            MessageRoute(.get, "models/{full_name}/aliases/{alias}", versionByAlias),
            MessageRoute(.post, "models/versions", createVersionInfo),
            MessageRoute(.get, "models/{full_name}/versions", listVersionInfos),
            MessageRoute(.get, "models/{full_name}/versions/{version}", getVersionInfo),
            MessageRoute(.patch, "models/{full_name}/versions/{version}", updateVersionInfo),
            MessageRoute(.delete, "models/{full_name}/versions/{version}", deleteVersionInfo),
            MessageRoute(.patch, "models/{full_name}/versions/{version}/finalize", finalizeInfo),
        ], prefixes: ["/api/2.1/unity-catalog/"], on: router)
        files.register(on: router)
    }

    /// A UC model's three-level name from the request (`name` in mlflow's API, `full_name` in Unity Catalog's).
    /// - Throws: `INVALID_PARAMETER_VALUE` for anything but `catalog.schema.model`.
    static func name(_ m: RequestMessage, _ key: String = "name") throws -> String {
        let name = try m.requireString(key)
        guard name.split(separator: ".", omittingEmptySubsequences: false).count == 3, !name.contains("..") else {
            throw KilnError.invalid("A Unity Catalog model is named catalog.schema.model, not '\(name)'")
        }
        return name
    }

    // MARK: Registered models

    func createModel(_ m: RequestMessage) async throws -> Response {
        Self.model(try await create(try Self.name(m), description: try m.string("description"), tags: try m.keyValues("tags").map { KeyValue($0.0, $0.1) },
                                    caller: m.caller))
    }

    /// The registered models `caller` may see through the workspace registry's lists (nil: all): by workspace levels,
    /// but models in Unity Catalog by their grants.
    static func visibleModelIDs(_ caller: Caller?, permissions: WorkspacePermissions, registry: RegistryService,
                                catalog: UnityCatalog) async throws -> Set<String>? {
        guard var ids = try await permissions.visibleIDs(caller, .registeredModels) else { return nil }
        for id in ids where id.split(separator: ".").count == 3 {
            if (try? await catalog.path(.model, id)) != nil { ids.remove(id) }
        }
        return ids.union(try await visibleNames(caller, registry: registry, catalog: catalog) ?? [])
    }

    /// How the web UI asks about models with three-part names: Unity Catalog's grants, as the API routes do.
    static func webAccess(registry: RegistryService, catalog: UnityCatalog, permissions: WorkspacePermissions) -> UCModelAccess {
        UCModelAccess(allows: { caller, change, name in
            guard name.split(separator: ".").count == 3, (try? await catalog.path(.model, name)) != nil else { return nil }
            do {
                try await catalog.requireModel(caller, change ? .change : .read, name)
                return true
            } catch let error as KilnError where error.code == .permissionDenied {
                return false
            }
        }, visible: { caller in try await visibleModelIDs(caller, permissions: permissions, registry: registry, catalog: catalog) })
    }

    /// Creates a UC model: `CREATE_MODEL` on its schema (with the USE chain); its creator owns it.
    func create(_ name: String, description: String?, tags: [KeyValue], caller: Caller?) async throws -> RegisteredModel {
        let parts = name.split(separator: ".").map(String.init)
        let schema = try await catalog.path(.schema, "\(parts[0]).\(parts[1])")
        if let caller, !(try await catalog.allowed(caller, try Privilege(parsing: "CREATE_MODEL"), schema)) {
            throw KilnError(.permissionDenied, "\(caller.name) may not create models in schema \(parts[0]).\(parts[1]): that takes USE_CATALOG, USE_SCHEMA and CREATE_MODEL")
        }
        let model = try await registry.createRegisteredModel(name: name, description: description, tags: tags, userID: caller?.name)
        try await catalog.recordModelCreated(name, by: caller)
        try await permissions.recordCreated(.registeredModels, name, by: caller)
        return model
    }

    func getModel(_ m: RequestMessage) async throws -> Response { Self.model(try await registry.getRegisteredModel(name: try Self.name(m))) }

    func updateModel(_ m: RequestMessage) async throws -> Response {
        let name = try Self.name(m)
        var model = try await registry.updateRegisteredModel(name: name, description: try m.string("description"))
        if let newName = try m.string("new_name"), newName != name { model = try await rename(name, to: newName, caller: m.caller) }
        return Self.model(model)
    }

    func deleteModel(_ m: RequestMessage) async throws -> Response {
        try await remove(try Self.name(m))
        return .json { _ in }
    }

    /// Deletes a model, its list and its files.
    func remove(_ name: String) async throws {
        try await registry.deleteRegisteredModel(name: name)
        try await catalog.forgetModel(name)
        try await permissions.forget(.registeredModels, name)
        try? files.artifacts.delete(try BlobKey(UCModelFiles.folder(name)))
    }

    /// Deletes a version and its files.
    func remove(_ name: String, version: String) async throws {
        try await registry.deleteModelVersion(name: name, version: version)
        if let number = Int64(version) { try? files.artifacts.delete(try BlobKey(UCModelFiles.folder(name, version: number))) }
    }

    /// Renames a model (its owner or `MANAGE`; a new name in another schema also takes `CREATE_MODEL` there); its
    /// owner and grants move with it.
    func rename(_ name: String, to newName: String, caller: Caller?) async throws -> RegisteredModel {
        try await catalog.requireModel(caller, .change, name)
        let parts = newName.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts.contains(where: \.isEmpty) else {
            throw KilnError.invalid("A Unity Catalog model is named catalog.schema.model, not '\(newName)'")
        }
        if parts.dropLast() != name.split(separator: ".").dropLast() {
            let schema = try await catalog.path(.schema, "\(parts[0]).\(parts[1])")
            if let caller, !(try await catalog.allowed(caller, try Privilege(parsing: "CREATE_MODEL"), schema)) {
                throw KilnError(.permissionDenied, "\(caller.name) may not move model \(name) into schema \(parts[0]).\(parts[1]): that takes USE_CATALOG, USE_SCHEMA and CREATE_MODEL there")
            }
        }
        let model = try await registry.renameRegisteredModel(name: name, newName: newName)
        try await catalog.renameModel(name, to: newName)
        try await permissions.rename(.registeredModels, from: name, to: newName)
        return model
    }

    /// The UC models `caller` may see (nil: all of them).
    func visibleNames(_ caller: Caller?) async throws -> Set<String>? { try await Self.visibleNames(caller, registry: registry, catalog: catalog) }

    static func visibleNames(_ caller: Caller?, registry: RegistryService, catalog: UnityCatalog) async throws -> Set<String>? {
        guard let caller, !caller.isAdmin else { return nil }
        var names: [String] = []
        var token: String?
        repeat {
            let page = try await registry.searchRegisteredModels(maxResults: 1000, pageToken: token)
            names += page.items.map(\.name).filter { $0.split(separator: ".").count == 3 }
            token = page.nextPageToken
        } while token != nil
        return try await catalog.visibleModels(caller, names)
    }

    func searchModels(_ m: RequestMessage) async throws -> Response {
        let page = try await registry.searchRegisteredModels(maxResults: try m.int("max_results"), pageToken: try m.string("page_token"),
                                                             only: try await visibleNames(m.caller))
        return .json { w in
            w.key("registered_models")
            w.array { w in for model in page.items where model.name.split(separator: ".").count == 3 { Self.write(model, &w) } }
            w.field("next_page_token", page.nextPageToken)
        }
    }

    func setAlias(_ m: RequestMessage) async throws -> Response {
        try await registry.setAlias(name: try Self.name(m), alias: try m.requireString("alias"), version: try m.requireString("version"), userID: m.principal)
        return .json { _ in }
    }

    func deleteAlias(_ m: RequestMessage) async throws -> Response {
        try await registry.deleteAlias(name: try Self.name(m), alias: try m.requireString("alias"), userID: m.principal)
        return .json { _ in }
    }

    func getByAlias(_ m: RequestMessage) async throws -> Response {
        Self.version(try await registry.version(name: try Self.name(m), alias: try m.requireString("alias")))
    }

    func setModelTag(_ m: RequestMessage) async throws -> Response {
        try await registry.setRegisteredModelTag(name: try Self.name(m), tag: KeyValue(try m.requireString("key"), try m.string("value") ?? ""))
        return .json { _ in }
    }

    func deleteModelTag(_ m: RequestMessage) async throws -> Response {
        try await registry.deleteRegisteredModelTag(name: try Self.name(m), key: try m.requireString("key"))
        return .json { _ in }
    }

    // MARK: Versions

    func createVersion(_ m: RequestMessage) async throws -> Response {
        let name = try Self.name(m)
        let version = try await registry.createPendingModelVersion(
            name: name, source: try m.requireString("source"), runID: try m.string("run_id").flatMap { $0.isEmpty ? nil : $0 },
            modelID: try m.string("model_id").flatMap { $0.isEmpty ? nil : $0 }, tags: try m.keyValues("tags").map { KeyValue($0.0, $0.1) },
            description: try m.string("description"), userID: m.principal) { "mlflow-artifacts:/" + UCModelFiles.folder(name, version: $0) }
        return Self.version(version)
    }

    func getVersion(_ m: RequestMessage) async throws -> Response {
        Self.version(try await registry.getModelVersion(name: try Self.name(m), version: try m.requireString("version")))
    }

    func updateVersion(_ m: RequestMessage) async throws -> Response {
        Self.version(try await registry.updateModelVersion(name: try Self.name(m), version: try m.requireString("version"), description: try m.string("description")))
    }

    func deleteVersion(_ m: RequestMessage) async throws -> Response {
        try await remove(try Self.name(m), version: try m.requireString("version"))
        return .json { _ in }
    }

    func searchVersions(_ m: RequestMessage) async throws -> Response {
        let page = try await registry.searchModelVersions(filter: try m.string("filter"), maxResults: try m.int("max_results"),
                                                          pageToken: try m.string("page_token"),
                                                          only: try await visibleNames(m.caller))
        return .json { w in
            w.key("model_versions")
            w.array { w in for v in page.items where v.name.split(separator: ".").count == 3 { Self.write(v, &w) } }
            w.field("next_page_token", page.nextPageToken)
        }
    }

    func finalize(_ m: RequestMessage) async throws -> Response {
        Self.version(try await registry.finalizeModelVersion(name: try Self.name(m), version: try m.requireString("version")))
    }

    /// Databricks' default storage: the client then moves files through URLs Kiln signs (``UCModelFiles``).
    func credentials(_ m: RequestMessage) async throws -> Response {
        let name = try Self.name(m), version = try m.requireString("version")
        let operation = try m.string("operation") ?? "MODEL_VERSION_OPERATION_READ"
        try await catalog.requireModel(m.caller, operation == "MODEL_VERSION_OPERATION_READ_WRITE" ? .change : .read, name)
        _ = try await registry.getModelVersion(name: name, version: version)
        return .json { w in
            w.key("credentials")
            w.object { w in
                w.field("storage_mode", "DEFAULT_STORAGE")
                w.field("expiration_time", Int64(Date().timeIntervalSince1970 * 1000) + UCModelFiles.lifetimeMillis)
            }
        }
    }

    func downloadURI(_ m: RequestMessage) async throws -> Response {
        let v = try await registry.getModelVersion(name: try Self.name(m), version: try m.requireString("version"))
        return .json { w in w.field("artifact_uri", v.storageLocation) }
    }

    func setVersionTag(_ m: RequestMessage) async throws -> Response {
        try await registry.setModelVersionTag(name: try Self.name(m), version: try m.requireString("version"),
                                              tag: KeyValue(try m.requireString("key"), try m.string("value") ?? ""))
        return .json { _ in }
    }

    func deleteVersionTag(_ m: RequestMessage) async throws -> Response {
        try await registry.deleteModelVersionTag(name: try Self.name(m), version: try m.requireString("version"), key: try m.requireString("key"))
        return .json { _ in }
    }

    // MARK: Unity Catalog's models API

    static func fullName(_ m: RequestMessage) throws -> String { try name(m, "full_name") }

    func createInfo(_ m: RequestMessage) async throws -> Response {
        let name = "\(try m.requireString("catalog_name")).\(try m.requireString("schema_name")).\(try m.requireString("name"))"
        let model = try await create(name, description: try m.string("comment"), tags: [], caller: m.caller)
        let owner = try await catalog.modelOwner(name)
        return .json { w in Self.info(model, owner: owner, &w) }
    }

    func listInfos(_ m: RequestMessage) async throws -> Response {
        let catalogName = try m.string("catalog_name"), schemaName = try m.string("schema_name")
        var found: [RegisteredModel] = []
        var token: String?
        let visible = try await visibleNames(m.caller)
        repeat {
            let page = try await registry.searchRegisteredModels(maxResults: 1000, pageToken: token, only: visible)
            found += page.items.filter { model in
                let parts = model.name.split(separator: ".").map(String.init)
                return parts.count == 3 && (catalogName.map { parts[0] == $0 } ?? true) && (schemaName.map { parts[1] == $0 } ?? true)
            }
            token = page.nextPageToken
        } while token != nil
        let (page, next) = try UnityCatalogRoutes.page(found, name: \.name, m)
        var owners: [String: String] = [:]
        for model in page { owners[model.name] = try await catalog.modelOwner(model.name) }
        return .json { w in
            w.key("registered_models")
            w.array { w in for model in page { w.object { Self.info(model, owner: owners[model.name], &$0) } } }
            w.field("next_page_token", next)
        }
    }

    func getInfo(_ m: RequestMessage) async throws -> Response {
        let model = try await registry.getRegisteredModel(name: try Self.fullName(m))
        let owner = try await catalog.modelOwner(model.name)
        return .json { w in Self.info(model, owner: owner, &w) }
    }

    func updateInfo(_ m: RequestMessage) async throws -> Response {
        var name = try Self.fullName(m)
        var model = try await registry.getRegisteredModel(name: name)
        if let comment = try m.string("comment") { model = try await registry.updateRegisteredModel(name: name, description: comment) }
        if let newName = try m.string("new_name"), !newName.isEmpty, newName != model.name.split(separator: ".").last.map(String.init) {
            // new_name is the model's own name (the catalog and schema stay); a full name is taken as given.
            let target = newName.contains(".") ? newName : name.split(separator: ".").dropLast().joined(separator: ".") + "." + newName
            model = try await rename(name, to: target, caller: m.caller)
            name = target
        }
        if let owner = try m.string("owner"), !owner.isEmpty { try await catalog.setModelOwner(name, owner: owner, caller: m.caller) }
        let owner = try await catalog.modelOwner(name)
        return .json { w in Self.info(model, owner: owner, &w) }
    }

    func deleteInfo(_ m: RequestMessage) async throws -> Response {
        try await remove(try Self.fullName(m))
        return .json { _ in }
    }

    func putAlias(_ m: RequestMessage) async throws -> Response {
        let name = try Self.fullName(m), alias = try m.requireString("alias")
        guard let version = try m.int64("version_num") else { throw KilnError.invalid("Missing version_num") }
        try await registry.setAlias(name: name, alias: alias, version: String(version), userID: m.principal)
        return .json { w in
            w.field("alias_name", alias)
            w.field("version_num", version)
        }
    }

    func removeAlias(_ m: RequestMessage) async throws -> Response {
        try await registry.deleteAlias(name: try Self.fullName(m), alias: try m.requireString("alias"), userID: m.principal)
        return .json { _ in }
    }

    func versionByAlias(_ m: RequestMessage) async throws -> Response {
        let v = try await registry.version(name: try Self.fullName(m), alias: try m.requireString("alias"))
        return .json { w in Self.info(v, &w) }
    }

    func createVersionInfo(_ m: RequestMessage) async throws -> Response {
        let name = "\(try m.requireString("catalog_name")).\(try m.requireString("schema_name")).\(try m.requireString("model_name"))"
        try await catalog.requireModel(m.caller, .change, name)
        let version = try await registry.createPendingModelVersion(
            name: name, source: try m.requireString("source"), runID: try m.string("run_id").flatMap { $0.isEmpty ? nil : $0 }, modelID: nil,
            tags: [], description: try m.string("comment"), userID: m.principal) { "mlflow-artifacts:/" + UCModelFiles.folder(name, version: $0) }
        return .json { w in Self.info(version, &w) }
    }

    func listVersionInfos(_ m: RequestMessage) async throws -> Response {
        let name = try Self.fullName(m)
        _ = try await registry.getRegisteredModel(name: name)
        let escaped = name.replacingOccurrences(of: "'", with: "''")
        let versions = try await registry.searchModelVersions(filter: "name = '\(escaped)'", maxResults: 200_000).items
        let (page, next) = try UnityCatalogRoutes.page(versions, name: { String(format: "%020lld", $0.version) }, m)
        return .json { w in
            w.key("model_versions")
            w.array { w in for v in page { w.object { Self.info(v, &$0) } } }
            w.field("next_page_token", next)
        }
    }

    func getVersionInfo(_ m: RequestMessage) async throws -> Response {
        let v = try await registry.getModelVersion(name: try Self.fullName(m), version: try m.requireString("version"))
        return .json { w in Self.info(v, &w) }
    }

    func updateVersionInfo(_ m: RequestMessage) async throws -> Response {
        let v = try await registry.updateModelVersion(name: try Self.fullName(m), version: try m.requireString("version"), description: try m.string("comment"))
        return .json { w in Self.info(v, &w) }
    }

    func deleteVersionInfo(_ m: RequestMessage) async throws -> Response {
        try await remove(try Self.fullName(m), version: try m.requireString("version"))
        return .json { _ in }
    }

    func finalizeInfo(_ m: RequestMessage) async throws -> Response {
        let v = try await registry.finalizeModelVersion(name: try Self.fullName(m), version: try m.requireString("version"))
        return .json { w in Self.info(v, &w) }
    }

    /// `RegisteredModelInfo` as both clients read it.
    static func info(_ model: RegisteredModel, owner: String?, _ w: inout JSONWriter) {
        let parts = model.name.split(separator: ".").map(String.init)
        w.field("name", parts.last ?? model.name)
        w.field("catalog_name", parts.first)
        w.field("schema_name", parts.count == 3 ? parts[1] : nil)
        w.field("full_name", model.name)
        w.field("storage_location", "mlflow-artifacts:/" + UCModelFiles.folder(model.name))
        w.field("comment", model.description)
        w.field("owner", owner ?? model.userID)
        w.field("created_at", model.creationTime)
        w.field("created_by", model.userID)
        w.field("updated_at", model.lastUpdatedTime)
        w.field("id", model.name)
        w.field("metastore_id", UnityCatalog.metastoreID)
        w.key("aliases")
        w.array { w in for a in model.aliases { w.object { w in w.field("alias_name", a.alias); w.field("version_num", a.version) } } }
    }

    /// `ModelVersionInfo` as both clients read it.
    static func info(_ v: ModelVersion, _ w: inout JSONWriter) {
        let parts = v.name.split(separator: ".").map(String.init)
        w.field("model_name", parts.last ?? v.name)
        w.field("catalog_name", parts.first)
        w.field("schema_name", parts.count == 3 ? parts[1] : nil)
        w.field("version", v.version)
        w.field("source", v.source)
        w.field("run_id", v.runID)
        w.field("status", v.status)
        w.field("storage_location", v.storageLocation)
        w.field("comment", v.description)
        w.field("created_at", v.creationTime)
        w.field("created_by", v.userID)
        w.field("updated_at", v.lastUpdatedTime)
        w.field("id", "\(v.name)/\(v.version)")
        w.key("aliases")
        w.array { w in for a in v.aliases { w.object { w in w.field("alias_name", a); w.field("version_num", v.version) } } }
    }

    // MARK: Wire shapes (databricks_uc_registry_messages.proto)

    static func model(_ model: RegisteredModel) -> Response { .json { w in w.key("registered_model"); write(model, &w) } }
    static func version(_ v: ModelVersion) -> Response { .json { w in w.key("model_version"); write(v, &w) } }

    static func write(_ model: RegisteredModel, _ w: inout JSONWriter) {
        w.object { w in
            w.field("name", model.name)
            w.field("creation_timestamp", model.creationTime)
            w.field("last_updated_timestamp", model.lastUpdatedTime)
            w.field("user_id", model.userID)
            w.field("description", model.description)
            w.key("aliases")
            w.array { w in for a in model.aliases { w.object { w in w.field("alias", a.alias); w.field("version", String(a.version)) } } }
            if !model.tags.isEmpty { w.keyValues("tags", model.tags) }
        }
    }

    static func write(_ v: ModelVersion, _ w: inout JSONWriter) {
        w.object { w in
            w.field("name", v.name)
            w.field("version", String(v.version))
            w.field("creation_timestamp", v.creationTime)
            w.field("last_updated_timestamp", v.lastUpdatedTime)
            w.field("user_id", v.userID)
            w.field("description", v.description)
            w.field("source", v.source)
            w.field("run_id", v.runID)
            w.field("model_id", v.modelID)
            w.field("status", v.status)
            w.field("storage_location", v.storageLocation)
            w.key("aliases")
            w.array { w in for a in v.aliases { w.object { w in w.field("alias", a); w.field("version", String(v.version)) } } }
            if !v.tags.isEmpty { w.keyValues("tags", v.tags) }
        }
    }
}

/// The files of Unity Catalog model versions, in the artifact store under `uc-models/<catalog>/<schema>/<model>/<v>`,
/// reached as `/Models/<catalog>/<schema>/<model>/<v>/...` through signed URLs: `POST /api/2.0/fs/create-upload-url`
/// and `create-download-url` (`EXECUTE` on the model to read, its owner or `MANAGE` to write; uploads only while the version is
/// pending), `GET /api/2.0/fs/directories/Models/...` to list, and `PUT`/`GET /api/2.0/kiln/presigned/{token}`, which
/// need no bearer token: the token is the credential (HMAC-SHA256 over method, file and expiry, 15 minutes).
struct UCModelFiles: Sendable {
    let artifacts: any BlobStore
    let registry: RegistryService
    let catalog: UnityCatalog
    /// The signing secret: 256 random bits per process (URLs die with the server; several servers sharing a store
    /// need a shared secret, issue 23).
    let secret: [UInt8]
    var key: SymmetricKey { SymmetricKey(data: secret) }
    static let lifetimeMillis: Int64 = 15 * 60 * 1000
    static let presignedPrefix = "/api/2.0/kiln/presigned/"

    static func folder(_ name: String, version: Int64? = nil) -> String {
        "uc-models/" + name.split(separator: ".").joined(separator: "/") + (version.map { "/\($0)" } ?? "")
    }

    func register(on router: Router<KilnRequestContext>) {
        router.post("/api/2.0/fs/create-upload-url") { request, context in try await signedURL(request, context, write: true) }
        router.post("/api/2.0/fs/create-download-url") { request, context in try await signedURL(request, context, write: false) }
        router.put(RouterPath(Self.presignedPrefix + "{token}")) { request, context in try await upload(request, context) }
        router.get(RouterPath(Self.presignedPrefix + "{token}")) { request, context in try await download(context) }
    }

    /// `/Models/c/s/m/v/path` → the model, the version and the blob key (checked: no `.` or `..` segments).
    func locate(_ path: String) throws -> (model: String, version: String, key: BlobKey) {
        let parts = path.split(separator: "/").map(String.init)
        guard parts.count >= 5, parts[0] == "Models", Int64(parts[4]) != nil, !parts.contains(".."), !parts.contains(".") else {
            throw KilnError.invalid("Model file paths look like /Models/<catalog>/<schema>/<model>/<version>/<file>, not '\(path)'")
        }
        return ("\(parts[1]).\(parts[2]).\(parts[3])", parts[4], try BlobKey((["uc-models"] + parts.dropFirst()).joined(separator: "/")))
    }

    func signedURL(_ request: Request, _ context: KilnRequestContext, write: Bool) async throws -> Response {
        let body = try await request.body.collect(upTo: 64 * 1024)
        guard case .object(let fields)? = try? JSONValue.parse(Array(body.readableBytesView)), case .string(let path)? = fields["path"] else {
            throw KilnError.invalid("Send {\"path\": \"/Models/<catalog>/<schema>/<model>/<version>/<file>\"}")
        }
        let (model, version, key) = try locate(path)
        try await catalog.requireModel(context.caller, write ? .change : .read, model)
        let v = try await registry.getModelVersion(name: model, version: version)
        if write, v.status != "PENDING_REGISTRATION" {
            throw KilnError(.badRequest, "Model version \(model)/\(version) is \(v.status): its files can no longer change; create a new version")
        }
        let expires = Int64(Date().timeIntervalSince1970 * 1000) + Self.lifetimeMillis
        let payload = "\(write ? "PUT" : "GET")\n\(key.path)\n\(expires)"
        let signature = Hex.encode(HMAC<SHA256>.authenticationCode(for: Data(payload.utf8), using: self.key))
        let token = Data(payload.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "") + "." + signature
        let host = request.head.authority ?? "127.0.0.1"
        return .json { w in
            w.field("url", "http://\(host)\(Self.presignedPrefix)\(token)")
            w.key("headers")
            w.array { _ in }
        }
    }

    /// The file a signed token allows for `method`. - Throws: `PERMISSION_DENIED` for a bad or expired token.
    func verify(_ context: KilnRequestContext, method: String) throws -> BlobKey {
        let token = context.parameters.get("token") ?? ""
        let parts = token.split(separator: ".", maxSplits: 1).map(String.init)
        var base64 = (parts.first ?? "").replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard parts.count == 2, let data = Data(base64Encoded: base64), let payload = String(data: data, encoding: .utf8) else {
            throw KilnError(.permissionDenied, "The signed URL is malformed; ask for a new one")
        }
        let expected = Hex.encode(HMAC<SHA256>.authenticationCode(for: data, using: key))
        let fields = payload.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 3, Self.same(expected, parts[1]), fields[0] == method, let expires = Int64(fields[2]) else {
            throw KilnError(.permissionDenied, "The signed URL is not valid for this request; ask for a new one")
        }
        guard expires > Int64(Date().timeIntervalSince1970 * 1000) else { throw KilnError(.permissionDenied, "The signed URL has expired; ask for a new one") }
        return try BlobKey(fields[1])
    }

    static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    func upload(_ request: Request, _ context: KilnRequestContext) async throws -> Response {
        let key = try verify(context, method: "PUT")
        let writer = try artifacts.makeWriter(for: key)
        do {
            for try await buffer in request.body { try buffer.withUnsafeReadableBytes { try writer.write($0) } }
            try writer.commit()
        } catch {
            writer.abort()
            throw error
        }
        return Response(status: .ok)
    }

    func download(_ context: KilnRequestContext) async throws -> Response {
        let key = try verify(context, method: "GET")
        let reader = try artifacts.openReader(for: key)
        let body = ResponseBody(contentLength: Int(reader.size)) { writer in
            defer { reader.close() }
            while true {
                let chunk = try reader.read(maxLength: ArtifactRoutes.chunkSize)
                if chunk.isEmpty { break }
                try await writer.write(ByteBuffer(bytes: chunk))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/octet-stream"], body: body)
    }

    /// `GET /api/2.0/fs/directories/Models/...`: the entries of a version's folder (`CAN_READ` on the model).
    func list(_ path: String, caller: Caller?) async throws -> Response {
        let (model, _, key) = try locate(path.hasSuffix("/") ? String(path.dropLast()) : path)
        try await catalog.requireModel(caller, .read, model)
        guard try artifacts.kind(of: key) == true else { throw KilnError(.notFound, "'\(path)' is not a directory") }
        let entries = try artifacts.list(key)
        let base = path.hasSuffix("/") ? String(path.dropLast()) : path
        return .json { w in
            w.key("contents")
            w.array { w in
                for e in entries {
                    w.object { w in
                        w.field("path", base + "/" + e.name)
                        w.field("name", e.name)
                        w.field("is_directory", e.isDirectory)
                        if !e.isDirectory { w.field("file_size", e.size) }
                    }
                }
            }
        }
    }
}
