import Foundation
import KilnCore
import KilnStore
import SQLKit

/// Registered models in Unity Catalog (`catalog.schema.model`) as securables: the registry keeps the models, the
/// catalog their ids, owners and grants (`EXECUTE` to read and load, `APPLY_TAG` to tag, ownership or `MANAGE` to
/// change, alias, version and drop; `CREATE_MODEL` on the schema to make one). A model's id is minted the first time
/// the catalog meets it and remembered with the registry's creation time, so a model dropped and made again under
/// the same name — through any API — starts with no grants; a rename keeps them.
extension UnityCatalog {
    public static let modelMigrations = [
        Migration("catalog_0003_models", [
            """
            CREATE TABLE uc_models (
                full_name VARCHAR(768) PRIMARY KEY,
                securable_id VARCHAR(64) NOT NULL,
                created_at BIGINT NOT NULL
            )
            """,
        ]),
    ]

    /// The securable id of the model named `fullName` made at `created`: the one remembered, or a new one (an older
    /// model of that name is forgotten with its owner and grants).
    func modelID(_ fullName: String, created: Int64) async throws -> String {
        // The usual case, read only: the id is known and the model is the same one.
        let known = try await database.read { sql in
            try await sql.raw("SELECT securable_id, created_at FROM uc_models WHERE full_name = \(bind: fullName)").first()
                .flatMap { row -> String? in
                    guard (try? row.decode(column: "created_at", as: Int64.self)) == created else { return nil }
                    return try? row.decode(column: "securable_id", as: String.self)
                }
        }
        if let known { return known }
        return try await database.write { sql in
            if let row = try await sql.raw("SELECT securable_id, created_at FROM uc_models WHERE full_name = \(bind: fullName)").first() {
                let id = try row.decode(column: "securable_id", as: String.self)
                if try row.decode(column: "created_at", as: Int64.self) == created { return id }
                try await sql.raw("DELETE FROM uc_owners WHERE securable_id = \(bind: id)").run()
                try await sql.raw("DELETE FROM uc_grants WHERE securable_id = \(bind: id)").run()
                try await sql.raw("DELETE FROM uc_models WHERE full_name = \(bind: fullName)").run()
            }
            let id = "model-" + UUID().uuidString.lowercased()
            try await sql.raw("INSERT INTO uc_models (full_name, securable_id, created_at) VALUES (\(bind: fullName), \(bind: id), \(bind: created))").run()
            return id
        }
    }

    /// Records `caller` as the owner of a model it just made.
    public func recordModelCreated(_ fullName: String, by caller: Caller?) async throws {
        try await recordCreated(try await path(.model, fullName).target.id, by: caller)
    }

    /// Moves a model's id, owner and grants to its new name.
    public func renameModel(_ fullName: String, to newName: String) async throws {
        try await database.write { sql in
            try await sql.raw("DELETE FROM uc_models WHERE full_name = \(bind: newName)").run()
            try await sql.raw("UPDATE uc_models SET full_name = \(bind: newName) WHERE full_name = \(bind: fullName)").run()
        }
    }

    /// Forgets a dropped model's id, owner and grants.
    public func forgetModel(_ fullName: String) async throws {
        let id = try await database.read { sql in
            try await sql.raw("SELECT securable_id FROM uc_models WHERE full_name = \(bind: fullName)").first()?.decode(column: "securable_id", as: String.self)
        }
        guard let id else { return }
        try await forget(id)
        try await database.write { sql in try await sql.raw("DELETE FROM uc_models WHERE full_name = \(bind: fullName)").run() }
    }

    /// A model's owner (the metastore admin for models made before models were governed).
    public func modelOwner(_ fullName: String) async throws -> String {
        try await path(.model, fullName).target.ownership.owner
    }

    /// Hands a model over (its owner, `MANAGE`, or an admin).
    public func setModelOwner(_ fullName: String, owner: String, caller: Caller?) async throws {
        try await requireManage(caller, .model, fullName, action: "change the owner of")
        let target = try await path(.model, fullName).target
        try await recordUpdated(target.id, current: target.ownership, owner: owner, by: caller)
    }

    /// What a call on a model needs.
    public enum ModelNeed: String, Sendable {
        /// `EXECUTE` (with the USE chain): read it, its versions and aliases, load its files.
        case read
        /// `APPLY_TAG` (with the USE chain), or what `change` takes: set and delete tags.
        case tag
        /// Its owner (or a container's) or `MANAGE`: describe, alias, add and finalize versions, rename, drop.
        case change
    }

    /// Refuses `caller` (403) unless it may do `need` to the model; a model that does not exist is left to the
    /// route's 404. A model whose catalog or schema is gone is for admins only.
    public func requireModel(_ caller: Caller?, _ need: ModelNeed, _ fullName: String) async throws {
        guard let caller, !caller.isAdmin, try await modelCreated(fullName) != nil else { return }
        guard let p = try? await path(.model, fullName) else {
            throw KilnError(.permissionDenied, "\(caller.name) may not use model \(fullName): its catalog or schema does not exist")
        }
        switch need {
        case .read:
            if try await allowed(caller, .execute, p) { return }
            throw Self.denied(caller, "read", p, needs: "USE_CATALOG, USE_SCHEMA and EXECUTE")
        case .tag:
            if try await allowed(caller, Privilege("APPLY_TAG"), p) { return }
            if try await mayManage(caller, p) { return }
            throw Self.denied(caller, "tag", p, needs: "USE_CATALOG, USE_SCHEMA and APPLY_TAG")
        case .change:
            if try await mayManage(caller, p) { return }
            throw Self.denied(caller, "change", p, needs: "ownership or MANAGE")
        }
    }

    /// Of these model names, the ones `caller` may see (nil: all).
    public func visibleModels(_ caller: Caller?, _ names: [String]) async throws -> Set<String>? {
        guard let caller, !caller.isAdmin else { return nil }
        var out: Set<String> = []
        for name in names where name.split(separator: ".").count == 3 {
            if let p = try? await path(.model, name), try await visible(caller, p) { out.insert(name) }
        }
        return out
    }
}
