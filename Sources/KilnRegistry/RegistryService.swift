import KilnBlob
import KilnCore
import KilnStore
import Logging
import SQLKit

/// The model registry: registered models, versions, stages, aliases and tags.
///
/// Registering a version copies its files into registry-owned storage (`mlflow-artifacts:/registry/<id>`), so
/// deleting the source run or logged model never breaks a version.
///
/// ```swift
/// let registry = try await RegistryService.make(database: db, artifacts: blobs, sources: resolver, logger: logger)
/// _ = try await registry.createRegisteredModel(name: "churn")
/// let v1 = try await registry.createModelVersion(name: "churn", source: "runs:/\(runID)/model")
/// ```
public struct RegistryService: Sendable {
    let db: any KilnDatabase
    let artifacts: any BlobStore
    let sources: any ModelSourceResolver
    let clock: any KilnClock
    /// Sends webhook deliveries; nil leaves them queued.
    let transport: (any WebhookTransport)?
    let policy: WebhookPolicy

    /// Builds the service, applying its migrations.
    public static func make(
        database: any KilnDatabase, artifacts: any BlobStore, sources: any ModelSourceResolver,
        clock: any KilnClock = SystemClock(), transport: (any WebhookTransport)? = nil, policy: WebhookPolicy = WebhookPolicy(),
        logger: Logger
    ) async throws -> RegistryService {
        try await Migrator.migrate(database, RegistrySchema.migrations, logger: logger)
        return RegistryService(db: database, artifacts: artifacts, sources: sources, clock: clock, transport: transport, policy: policy)
    }

    /// mlflow's schema: `description VARCHAR(5000)`; `MAX_REGISTERED_MODEL_ALIAS_LENGTH = 255`.
    static let maxDescriptionLength = 5000, maxAliasLength = 255

    static func validateName(_ name: String) throws {
        guard !name.allSatisfy(\.isWhitespace) else { throw KilnError.invalid("Registered model name cannot be empty.") }
        guard name.count <= 256 else { throw KilnError.invalid("Registered model name is \(name.count) characters; the limit is 256") }
        guard !name.contains("/") else { throw KilnError.invalid("Invalid name: '\(name)'. Registered model names may not contain '/'.") }
    }

    static func validateTag(_ tag: KeyValue) throws {
        guard !tag.key.isEmpty, tag.key.count <= 250 else { throw KilnError.invalid("Invalid tag key '\(tag.key)': 1 to 250 characters") }
        guard tag.value.count <= 100_000 else {
            throw KilnError.invalid("Tag value for key '\(tag.key)' had length \(tag.value.count), which exceeded length limit of 100000")
        }
    }

    static func parseVersion(_ raw: String) throws -> Int64 {
        guard let version = Int64(raw), version > 0 else {
            throw KilnError.invalid("Model version must be a positive integer, got '\(raw)'")
        }
        return version
    }

    // MARK: Registered models

    /// Creates a registered model.
    /// - Throws: `RESOURCE_ALREADY_EXISTS` when the name is taken.
    public func createRegisteredModel(name: String, description: String? = nil, tags: [KeyValue] = [], userID: String? = nil) async throws -> RegisteredModel {
        try Self.validateName(name)
        try TextLimit.check(description, "description", max: Self.maxDescriptionLength)
        for tag in tags { try Self.validateTag(tag) }
        let now = clock.nowMillis()
        do {
            try await db.write { sql in
                try await sql.raw("""
                    INSERT INTO registered_models (name, creation_time, last_updated_time, description, user_id, next_version)
                    VALUES (\(bind: name), \(bind: now), \(bind: now), \(bind: description), \(bind: userID), 1)
                    """).run()
                for tag in tags { try await Self.upsertModelTag(sql, name: name, tag) }
                try await Self.enqueue(sql, [.registeredModelCreated], modelName: name, fields: [:], now: now)
            }
        } catch let error as KilnError where error.code == .resourceAlreadyExists {
            throw KilnError.alreadyExists("Registered Model (name=\(name)) already exists.")
        }
        return try await getRegisteredModel(name: name)
    }

    static func upsertModelTag(_ sql: any SQLDatabase, name: String, _ tag: KeyValue) async throws {
        try await sql.raw("""
            INSERT INTO registered_model_tags (name, key, value) VALUES (\(bind: name), \(bind: tag.key), \(bind: tag.value))
            ON CONFLICT (name, key) DO UPDATE SET value = excluded.value
            """).run()
    }

    /// Fetches a registered model with its tags, aliases and latest version per stage.
    public func getRegisteredModel(name: String) async throws -> RegisteredModel {
        try await db.read { sql in
            guard let model = try await Self.loadModels(sql, names: [name]).first else {
                throw KilnError.notFound("Registered Model with name=\(name) not found")
            }
            return model
        }
    }

    static func requireModel(_ sql: any SQLDatabase, _ name: String) async throws {
        let rows = try await sql.raw("SELECT name FROM registered_models WHERE name = \(bind: name)").all()
        guard !rows.isEmpty else { throw KilnError.notFound("Registered Model with name=\(name) not found") }
    }

    static func loadModels(_ sql: any SQLDatabase, names: [String]) async throws -> [RegisteredModel] {
        guard !names.isEmpty else { return [] }
        var byName: [String: RegisteredModel] = [:]
        for row in try await sql.raw("""
            SELECT name, creation_time, last_updated_time, description, user_id FROM registered_models WHERE name IN (\(binds: names))
            """).all() {
            let name = try row.decode(column: "name", as: String.self)
            byName[name] = RegisteredModel(
                name: name, creationTime: try row.decode(column: "creation_time", as: Int64.self),
                lastUpdatedTime: try row.decode(column: "last_updated_time", as: Int64.self),
                description: try row.decode(column: "description", as: String?.self),
                userID: try row.decode(column: "user_id", as: String?.self), tags: [], aliases: [], latestVersions: [])
        }
        for row in try await sql.raw("SELECT name, key, value FROM registered_model_tags WHERE name IN (\(binds: names))").all() {
            byName[try row.decode(column: "name", as: String.self)]?.tags.append(
                KeyValue(try row.decode(column: "key", as: String.self), try row.decode(column: "value", as: String.self)))
        }
        for row in try await sql.raw("SELECT name, alias, version FROM registered_model_aliases WHERE name IN (\(binds: names))").all() {
            byName[try row.decode(column: "name", as: String.self)]?.aliases.append(
                ModelAlias(alias: try row.decode(column: "alias", as: String.self), version: try row.decode(column: "version", as: Int64.self)))
        }
        let latest = try await loadVersions(sql, where: """
            name IN (\(binds: names)) AND version IN (SELECT MAX(v.version) FROM model_versions v
                WHERE v.name = model_versions.name AND v.stage = model_versions.stage)
            """)
        for version in latest { byName[version.name]?.latestVersions.append(version) }
        return names.compactMap { name in
            guard var model = byName[name] else { return nil }
            model.tags.sort { $0.key < $1.key }
            model.aliases.sort { $0.alias < $1.alias }
            model.latestVersions.sort { $0.version < $1.version }
            return model
        }
    }

    /// Renames a registered model; its versions, tags and aliases move with it.
    public func renameRegisteredModel(name: String, newName: String) async throws -> RegisteredModel {
        try Self.validateName(newName)
        // Renaming to the same name changes nothing (mlflow server answers it with the model).
        if newName == name { return try await getRegisteredModel(name: name) }
        let now = clock.nowMillis()
        do {
            try await db.write { sql in
                try await Self.requireModel(sql, name)
                let taken = try await sql.raw("SELECT name FROM registered_models WHERE name = \(bind: newName)").all()
                guard taken.isEmpty else { throw KilnError.alreadyExists("Registered Model (name=\(newName)) already exists.") }
                try await sql.raw("""
                    INSERT INTO registered_models (name, creation_time, last_updated_time, description, user_id, next_version)
                    SELECT \(bind: newName), creation_time, \(bind: now), description, user_id, next_version FROM registered_models WHERE name = \(bind: name)
                    """).run()
                // Versions are copied under the new name before their tags move (tags reference versions).
                try await sql.raw("""
                    INSERT INTO model_versions (name, version, creation_time, last_updated_time, user_id, stage, description, source,
                        storage_location, run_id, run_link, model_id)
                    SELECT \(bind: newName), version, creation_time, last_updated_time, user_id, stage, description, source,
                        storage_location, run_id, run_link, model_id FROM model_versions WHERE name = \(bind: name)
                    """).run()
                for table in ["model_version_tags", "registered_model_tags", "registered_model_aliases", "model_version_activities",
                              "transition_requests", "model_version_comments", "registered_model_alias_history"] {
                    try await sql.raw("UPDATE \(unsafeRaw: table) SET name = \(bind: newName) WHERE name = \(bind: name)").run()
                }
                try await sql.raw("UPDATE registry_webhooks SET model_name = \(bind: newName) WHERE model_name = \(bind: name)").run()
                try await sql.raw("DELETE FROM model_versions WHERE name = \(bind: name)").run()
                try await sql.raw("DELETE FROM registered_models WHERE name = \(bind: name)").run()
            }
        } catch let error as KilnError where error.code == .resourceAlreadyExists {
            throw KilnError.alreadyExists("Registered Model (name=\(newName)) already exists.")
        }
        return try await getRegisteredModel(name: newName)
    }

    /// Updates a registered model's description.
    public func updateRegisteredModel(name: String, description: String?) async throws -> RegisteredModel {
        try TextLimit.check(description, "description", max: Self.maxDescriptionLength)
        let now = clock.nowMillis()
        try await db.write { sql in
            try await Self.requireModel(sql, name)
            try await sql.raw("UPDATE registered_models SET description = \(bind: description), last_updated_time = \(bind: now) WHERE name = \(bind: name)").run()
        }
        return try await getRegisteredModel(name: name)
    }

    /// Deletes a registered model, all its versions and their registry-owned files.
    public func deleteRegisteredModel(name: String) async throws {
        let locations = try await db.write { sql in
            try await Self.requireModel(sql, name)
            let versions = try await Self.loadVersions(sql, where: "name = \(bind: name)")
            for table in ["model_version_tags", "registered_model_aliases", "model_versions", "registered_model_tags",
                          "model_version_activities", "transition_requests", "model_version_comments",
                          "registered_model_alias_history", "registered_models"] {
                try await sql.raw("DELETE FROM \(unsafeRaw: table) WHERE name = \(bind: name)").run()
            }
            return versions.map(\.storageLocation)
        }
        for location in locations { try? removeOwnedFiles(location) }
    }

    /// Sets a tag on a registered model.
    public func setRegisteredModelTag(name: String, tag: KeyValue) async throws {
        try Self.validateTag(tag)
        try await db.write { sql in
            try await Self.requireModel(sql, name)
            try await Self.upsertModelTag(sql, name: name, tag)
        }
    }

    /// Deletes a tag from a registered model.
    public func deleteRegisteredModelTag(name: String, key: String) async throws {
        try await db.write { sql in
            try await Self.requireModel(sql, name)
            try await sql.raw("DELETE FROM registered_model_tags WHERE name = \(bind: name) AND key = \(bind: key)").run()
        }
    }

    // MARK: Versions

    /// Registers a new version from `source`: `models:/m-<id>` (a logged model), `runs:/<run>/<path>`,
    /// `models:/<name>/<version>`, or an artifact URI. Files the server holds are copied into the registry.
    public func createModelVersion(
        name: String, source: String, runID: String? = nil, modelID: String? = nil, tags: [KeyValue] = [],
        runLink: String? = nil, description: String? = nil, userID: String? = nil
    ) async throws -> ModelVersion {
        guard !source.isEmpty else { throw KilnError.invalid("Missing value for required parameter 'source'.") }
        try TextLimit.check(description, "description", max: Self.maxDescriptionLength)
        for tag in tags { try Self.validateTag(tag) }
        try await db.read { sql in try await Self.requireModel(sql, name) }
        let location = try await resolve(source: source, modelID: modelID)
        let requestRunID = runID?.isEmpty == false ? runID : nil
        var runID = requestRunID
        if runID == nil, let modelID, !modelID.isEmpty {
            runID = try? await sources.sourceRunID(ofLoggedModel: modelID)
        }
        if runID == nil, source.hasPrefix("runs:/") {
            runID = source.dropFirst("runs:/".count).split(separator: "/").first.map(String.init)
        }
        let storage: String
        let copied = try copyIntoRegistry(location)
        if let copied {
            storage = copied
        } else {
            try await requireRecordable(source: source, runID: requestRunID, modelID: modelID)
            storage = source
        }
        let finalRunID = runID
        let now = clock.nowMillis()
        do {
            let version = try await db.write { sql in
                let version = try await Self.takeVersionNumber(sql, name, now: now)
                try await sql.raw("""
                    INSERT INTO model_versions (name, version, creation_time, last_updated_time, user_id, stage, description, source,
                        storage_location, run_id, run_link, model_id)
                    VALUES (\(bind: name), \(bind: version), \(bind: now), \(bind: now), \(bind: userID), 'None', \(bind: description),
                        \(bind: source), \(bind: storage), \(bind: finalRunID), \(bind: runLink), \(bind: modelID))
                    """).run()
                for tag in tags { try await Self.upsertVersionTag(sql, name: name, version: version, tag) }
                var fields = ["version": String(version)]
                if let finalRunID { fields["run_id"] = finalRunID }
                try await Self.enqueue(sql, [.modelVersionCreated], modelName: name, fields: fields, now: now)
                return version
            }
            return try await getModelVersion(name: name, version: String(version))
        } catch {
            if let copied { try? removeOwnedFiles(copied) }
            throw error
        }
    }

    /// A Unity Catalog version: recorded `PENDING_REGISTRATION` with its files at `storage(version)` (the client
    /// uploads them, then calls ``finalizeModelVersion(name:version:)``); nothing is copied from `source`.
    public func createPendingModelVersion(name: String, source: String, runID: String?, modelID: String?, tags: [KeyValue], description: String?,
                                          userID: String?, storage: @escaping @Sendable (Int64) -> String) async throws -> ModelVersion {
        try TextLimit.check(description, "description", max: Self.maxDescriptionLength)
        for tag in tags { try Self.validateTag(tag) }
        let now = clock.nowMillis()
        let version = try await db.write { sql in
            let version = try await Self.takeVersionNumber(sql, name, now: now)
            try await sql.raw("""
                INSERT INTO model_versions (name, version, creation_time, last_updated_time, user_id, stage, description, source,
                    storage_location, run_id, run_link, model_id, status)
                VALUES (\(bind: name), \(bind: version), \(bind: now), \(bind: now), \(bind: userID), 'None', \(bind: description),
                    \(bind: source), \(bind: storage(version)), \(bind: runID), NULL, \(bind: modelID), 'PENDING_REGISTRATION')
                """).run()
            for tag in tags { try await Self.upsertVersionTag(sql, name: name, version: version, tag) }
            return version
        }
        return try await getModelVersion(name: name, version: String(version))
    }

    /// Takes the model's next version number in one statement (each is a round trip to SQLite's thread).
    static func takeVersionNumber(_ sql: any SQLDatabase, _ name: String, now: Int64) async throws -> Int64 {
        guard let row = try await sql.raw("""
            UPDATE registered_models SET next_version = next_version + 1, last_updated_time = \(bind: now)
            WHERE name = \(bind: name) RETURNING next_version - 1 AS version
            """).first() else { throw KilnError.notFound("Registered Model with name=\(name) not found") }
        return try row.decode(column: "version", as: Int64.self)
    }

    /// Marks a pending version `READY` (its files are complete); a ready one stays as it is.
    public func finalizeModelVersion(name: String, version: String) async throws -> ModelVersion {
        let number = try Self.parseVersion(version)
        let now = clock.nowMillis()
        try await db.write { sql in
            _ = try await Self.requireVersion(sql, name, number)
            try await sql.raw("""
                UPDATE model_versions SET status = 'READY', last_updated_time = \(bind: now)
                WHERE name = \(bind: name) AND version = \(bind: number) AND status = 'PENDING_REGISTRATION'
                """).run()
            try await Self.enqueue(sql, [.modelVersionCreated], modelName: name, fields: ["version": String(number)], now: now)
        }
        return try await getModelVersion(name: name, version: version)
    }

    func resolve(source: String, modelID: String?) async throws -> String {
        if source.hasPrefix("models:/") {
            let rest = String(source.dropFirst("models:/".count))
            if rest.hasPrefix("m-") || (modelID != nil && rest == modelID) {
                return try await sources.artifactLocation(ofLoggedModel: modelID ?? rest)
            }
            let parts = rest.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw KilnError.invalid("Invalid model source '\(source)': use models:/<name>/<version> or models:/m-<id>") }
            return try await getModelVersion(name: parts[0], version: parts[1]).storageLocation
        }
        if source.hasPrefix("runs:/") {
            let rest = source.dropFirst("runs:/".count)
            let parts = rest.split(separator: "/", maxSplits: 1).map(String.init)
            guard let runID = parts.first, !runID.isEmpty else { throw KilnError.invalid("Invalid run source '\(source)': use runs:/<run_id>/<path>") }
            let root = try await sources.artifactURI(ofRun: runID)
            return parts.count > 1 && !parts[1].isEmpty ? "\(root)/\(parts[1])" : root
        }
        return source
    }

    /// When the registered model `name` was made; nil when there is none.
    public func creationTime(ofModel name: String) async throws -> Int64? {
        try await db.read { sql in
            try await sql.raw("SELECT creation_time FROM registered_models WHERE name = \(bind: name)").first()
                .map { try $0.decode(column: "creation_time", as: Int64.self) }
        }
    }

    /// The model whose version's files are in `registry/<folder>`; nil when none.
    public func modelName(ofStorage folder: String) async throws -> String? {
        try await db.read { sql in
            try await sql.raw("SELECT name FROM model_versions WHERE storage_location = \(bind: "mlflow-artifacts:/registry/" + folder)").first()
                .map { try $0.decode(column: "name", as: String.self) }
        }
    }

    /// Copies files the server holds into `registry/<id>`; nil when it holds none there (an external URI, a folder
    /// with nothing in it yet).
    func copyIntoRegistry(_ location: String) throws -> String? {
        guard let key = try BlobKey(proxiedURI: location), try artifacts.kind(of: key) != nil else { return nil }
        let destination = "registry/\(Identifiers.hex32())"
        try artifacts.copyTree(from: key, to: try BlobKey(destination))
        return "mlflow-artifacts:/\(destination)"
    }

    /// A source with no files to copy is recorded as it is (download URI = source), as mlflow server records it —
    /// under mlflow server's rules: a local path (`/x`, `file:` — the server must not read its own disk for a client)
    /// is refused, and a proxied `mlflow-artifacts:` location must lie inside the run (or logged model) named with it.
    func requireRecordable(source: String, runID: String?, modelID: String?) async throws {
        let scheme = source.firstIndex(of: ":").map { String(source[..<$0]).lowercased() }
            .flatMap { $0.count > 1 && $0.allSatisfy { $0.isLetter || $0.isNumber || "+.-".contains($0) } ? $0 : nil }
        if scheme == nil || scheme == "file" {
            var path = scheme == nil ? Substring(source) : source.dropFirst("file:".count)
            if path.hasPrefix("//") { path = path.dropFirst(2).drop { $0 != "/" } }
            throw KilnError.invalid("Invalid model version source: '\(path)'. To use a local path as a model version source, the run_id request parameter has to be specified and the local path has to be contained within the artifact directory of the run specified by the run_id.")
        }
        let mismatch = KilnError.invalid("Invalid model version source: '\(source)'. The run_id request parameter must identify the resource that contains the source.")
        if scheme == "runs" {
            let named = source.dropFirst("runs:/".count).split(separator: "/").first.map(String.init)
            guard let runID, named == runID else { throw mismatch }
            return
        }
        guard scheme == "mlflow-artifacts" else { return }
        var roots: [String] = []
        if let runID { roots.append((try? await sources.artifactURI(ofRun: runID)) ?? "") }
        if let modelID, !modelID.isEmpty { roots.append((try? await sources.artifactLocation(ofLoggedModel: modelID)) ?? "") }
        guard roots.contains(where: { !$0.isEmpty && (source == $0 || source.hasPrefix($0 + "/")) }) else { throw mismatch }
    }

    func removeOwnedFiles(_ location: String) throws {
        guard let key = try BlobKey(proxiedURI: location), key.segments.first == "registry" else { return }
        try artifacts.delete(key)
    }

    static func upsertVersionTag(_ sql: any SQLDatabase, name: String, version: Int64, _ tag: KeyValue) async throws {
        try await sql.raw("""
            INSERT INTO model_version_tags (name, version, key, value) VALUES (\(bind: name), \(bind: version), \(bind: tag.key), \(bind: tag.value))
            ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value
            """).run()
    }

    /// Fetches one version.
    public func getModelVersion(name: String, version: String) async throws -> ModelVersion {
        let number = try Self.parseVersion(version)
        return try await db.read { sql in try await Self.requireVersion(sql, name, number) }
    }

    static func requireVersion(_ sql: any SQLDatabase, _ name: String, _ version: Int64) async throws -> ModelVersion {
        guard let found = try await loadVersions(sql, where: "name = \(bind: name) AND version = \(bind: version)").first else {
            throw KilnError.notFound("Model Version (name=\(name), version=\(version)) not found")
        }
        return found
    }

    static func loadVersions(_ sql: any SQLDatabase, where condition: SQLQueryString, suffix: SQLQueryString = "") async throws -> [ModelVersion] {
        let rows = try await sql.raw("""
            SELECT name, version, creation_time, last_updated_time, user_id, stage, description, source, storage_location, run_id,
                run_link, model_id, status FROM model_versions WHERE \(condition) \(suffix)
            """ as SQLQueryString).all()
        var versions = try rows.map { row in
            ModelVersion(
                name: try row.decode(column: "name", as: String.self), version: try row.decode(column: "version", as: Int64.self),
                creationTime: try row.decode(column: "creation_time", as: Int64.self),
                lastUpdatedTime: try row.decode(column: "last_updated_time", as: Int64.self),
                userID: try row.decode(column: "user_id", as: String?.self),
                stage: ModelStage(rawValue: try row.decode(column: "stage", as: String.self)) ?? .none,
                description: try row.decode(column: "description", as: String?.self),
                source: try row.decode(column: "source", as: String.self),
                storageLocation: try row.decode(column: "storage_location", as: String.self),
                runID: try row.decode(column: "run_id", as: String?.self), runLink: try row.decode(column: "run_link", as: String?.self),
                modelID: try row.decode(column: "model_id", as: String?.self), tags: [], aliases: [],
                status: try row.decode(column: "status", as: String.self))
        }
        guard !versions.isEmpty else { return [] }
        let names = Array(Set(versions.map(\.name)))
        var tags: [String: [KeyValue]] = [:]
        for row in try await sql.raw("SELECT name, version, key, value FROM model_version_tags WHERE name IN (\(binds: names))").all() {
            let id = "\(try row.decode(column: "version", as: Int64.self))/\(try row.decode(column: "name", as: String.self))"
            tags[id, default: []].append(KeyValue(try row.decode(column: "key", as: String.self), try row.decode(column: "value", as: String.self)))
        }
        var aliases: [String: [String]] = [:]
        for row in try await sql.raw("SELECT name, alias, version FROM registered_model_aliases WHERE name IN (\(binds: names))").all() {
            let id = "\(try row.decode(column: "version", as: Int64.self))/\(try row.decode(column: "name", as: String.self))"
            aliases[id, default: []].append(try row.decode(column: "alias", as: String.self))
        }
        for i in versions.indices {
            let id = "\(versions[i].version)/\(versions[i].name)"
            versions[i].tags = (tags[id] ?? []).sorted { $0.key < $1.key }
            versions[i].aliases = (aliases[id] ?? []).sorted()
        }
        return versions
    }

    /// Updates a version's description.
    public func updateModelVersion(name: String, version: String, description: String?) async throws -> ModelVersion {
        try TextLimit.check(description, "description", max: Self.maxDescriptionLength)
        let number = try Self.parseVersion(version)
        let now = clock.nowMillis()
        try await db.write { sql in
            _ = try await Self.requireVersion(sql, name, number)
            try await sql.raw("""
                UPDATE model_versions SET description = \(bind: description), last_updated_time = \(bind: now)
                WHERE name = \(bind: name) AND version = \(bind: number)
                """).run()
        }
        return try await getModelVersion(name: name, version: version)
    }

    /// Moves a version to `stage`; with `archiveExisting`, other versions in Staging/Production move to Archived.
    /// Each move is recorded in the version's activity history.
    public func transitionStage(name: String, version: String, stage: ModelStage, archiveExisting: Bool,
                                userID: String? = nil, comment: String? = nil) async throws -> ModelVersion {
        let number = try Self.parseVersion(version)
        let now = clock.nowMillis()
        try await db.write { sql in
            _ = try await Self.applyTransition(sql, name: name, version: number, to: stage, archiveExisting: archiveExisting,
                                               userID: userID, comment: comment, type: "APPLIED_TRANSITION", now: now)
        }
        return try await getModelVersion(name: name, version: version)
    }

    /// Moves one version and, with `archiveExisting`, archives the others in the target stage; records activities.
    static func applyTransition(_ sql: any SQLDatabase, name: String, version: Int64, to stage: ModelStage, archiveExisting: Bool,
                                userID: String?, comment: String?, type: String, now: Int64) async throws -> RegistryActivity {
        guard let row = try await sql.raw("SELECT stage FROM model_versions WHERE name = \(bind: name) AND version = \(bind: version)").first() else {
            throw KilnError.notFound("Model Version (name=\(name), version=\(version)) not found")
        }
        let currentStage = ModelStage(rawValue: try row.decode(column: "stage", as: String.self)) ?? .none
        if archiveExisting, stage == .staging || stage == .production {
            let others = try await sql.raw("""
                UPDATE model_versions SET stage = 'Archived', last_updated_time = \(bind: now)
                WHERE name = \(bind: name) AND version != \(bind: version) AND stage = \(bind: stage.rawValue) RETURNING version
                """).all().map { try $0.decode(column: "version", as: Int64.self) }.sorted()
            for other in others {
                _ = try await recordActivity(sql, name: name, version: other, type: "SYSTEM_TRANSITION", from: stage.rawValue,
                                             to: ModelStage.archived.rawValue, userID: userID, comment: nil,
                                             systemComment: "Archived because version \(version) moved to \(stage.rawValue)", now: now)
            }
        }
        try await sql.raw("""
            UPDATE model_versions SET stage = \(bind: stage.rawValue), last_updated_time = \(bind: now)
            WHERE name = \(bind: name) AND version = \(bind: version)
            """).run()
        try await sql.raw("UPDATE registered_models SET last_updated_time = \(bind: now) WHERE name = \(bind: name)").run()
        var events: [RegistryEvent] = [.modelVersionTransitionedStage]
        switch stage {
        case .staging: events.append(.modelVersionTransitionedToStaging)
        case .production: events.append(.modelVersionTransitionedToProduction)
        case .archived: events.append(.modelVersionTransitionedToArchived)
        case .none: break
        }
        try await enqueue(sql, events, modelName: name, fields: [
            "version": String(version), "from_stage": currentStage.rawValue, "to_stage": stage.rawValue,
        ].merging(comment.map { ["text": $0] } ?? [:]) { a, _ in a }, now: now)
        return try await recordActivity(sql, name: name, version: version, type: type, from: currentStage.rawValue, to: stage.rawValue,
                                        userID: userID, comment: comment, systemComment: nil, now: now)
    }

    /// Deletes a version, its aliases and its registry-owned files.
    public func deleteModelVersion(name: String, version: String) async throws {
        let number = try Self.parseVersion(version)
        let location = try await db.write { sql in
            let found = try await Self.requireVersion(sql, name, number)
            for table in ["model_version_tags", "registered_model_aliases", "model_versions", "model_version_activities",
                          "transition_requests", "model_version_comments"] {
                try await sql.raw("DELETE FROM \(unsafeRaw: table) WHERE name = \(bind: name) AND version = \(bind: number)").run()
            }
            return found.storageLocation
        }
        try? removeOwnedFiles(location)
    }

    /// The newest version in each of `stages` (every stage when empty).
    public func latestVersions(name: String, stages: [String]) async throws -> [ModelVersion] {
        let wanted = try stages.map { try ModelStage.parse($0) }
        let model = try await getRegisteredModel(name: name)
        return wanted.isEmpty ? model.latestVersions : model.latestVersions.filter { wanted.contains($0.stage) }
    }

    /// Where a version's files are.
    public func downloadURI(name: String, version: String) async throws -> String {
        try await getModelVersion(name: name, version: version).storageLocation
    }

    /// Sets a tag on a version.
    public func setModelVersionTag(name: String, version: String, tag: KeyValue) async throws {
        try Self.validateTag(tag)
        let number = try Self.parseVersion(version)
        try await db.write { sql in
            _ = try await Self.requireVersion(sql, name, number)
            try await Self.upsertVersionTag(sql, name: name, version: number, tag)
            try await Self.enqueue(sql, [.modelVersionTagSet], modelName: name,
                                   fields: ["version": String(number), "tag_key": tag.key, "tag_value": tag.value], now: clock.nowMillis())
        }
    }

    /// Deletes a tag from a version.
    public func deleteModelVersionTag(name: String, version: String, key: String) async throws {
        let number = try Self.parseVersion(version)
        try await db.write { sql in
            _ = try await Self.requireVersion(sql, name, number)
            try await sql.raw("DELETE FROM model_version_tags WHERE name = \(bind: name) AND version = \(bind: number) AND key = \(bind: key)").run()
        }
    }

    // MARK: Aliases

    /// Points `alias` at a version, moving it if it pointed elsewhere.
    public func setAlias(name: String, alias: String, version: String, userID: String? = nil) async throws {
        try TextLimit.check(alias, "alias", max: Self.maxAliasLength)
        guard !alias.isEmpty, !alias.contains("/") else { throw KilnError.invalid("Invalid alias '\(alias)'") }
        if alias.lowercased() == "latest" || (alias.hasPrefix("v") && Int64(alias.dropFirst()) != nil) {
            throw KilnError.invalid("'\(alias)' is reserved and cannot be used as an alias")
        }
        let number = try Self.parseVersion(version)
        let now = clock.nowMillis()
        try await db.write { sql in
            _ = try await Self.requireVersion(sql, name, number)
            let previous = try await Self.aliasTarget(sql, name: name, alias: alias)
            try await Self.recordAliasChange(sql, name: name, alias: alias, from: previous, to: number, userID: userID, now: now)
            try await sql.raw("""
                INSERT INTO registered_model_aliases (name, alias, version) VALUES (\(bind: name), \(bind: alias), \(bind: number))
                ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version
                """).run()
        }
    }

    /// Removes an alias.
    public func deleteAlias(name: String, alias: String, userID: String? = nil) async throws {
        let now = clock.nowMillis()
        try await db.write { sql in
            try await Self.requireModel(sql, name)
            if let previous = try await Self.aliasTarget(sql, name: name, alias: alias) {
                try await Self.recordAliasChange(sql, name: name, alias: alias, from: previous, to: nil, userID: userID, now: now)
            }
            try await sql.raw("DELETE FROM registered_model_aliases WHERE name = \(bind: name) AND alias = \(bind: alias)").run()
        }
    }

    /// The version an alias points at.
    public func version(name: String, alias: String) async throws -> ModelVersion {
        try await db.read { sql in
            try await Self.requireModel(sql, name)
            guard let row = try await sql.raw("SELECT version FROM registered_model_aliases WHERE name = \(bind: name) AND alias = \(bind: alias)").first() else {
                // mlflow server answers an unknown (or deleted) alias with 400 INVALID_PARAMETER_VALUE, not 404.
                throw KilnError.invalid("Registered model alias \(alias) not found.")
            }
            return try await Self.requireVersion(sql, name, try row.decode(column: "version", as: Int64.self))
        }
    }
}
