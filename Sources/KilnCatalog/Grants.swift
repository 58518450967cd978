import Foundation
import KilnCore
import KilnStore
import SQLKit
import Synchronization

/// A Unity Catalog privilege, stored in one canonical spelling (upper case, underscores) and read in either
/// (`USE CATALOG`, `use_catalog`).
public struct Privilege: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let name: String

    /// Every privilege Kiln knows; the first 19 are the ones the OSS client's enum has.
    public static let known: [String] = [
        "CREATE_CATALOG", "USE_CATALOG", "CREATE_SCHEMA", "USE_SCHEMA", "CREATE_TABLE", "SELECT", "MODIFY", "CREATE_FUNCTION", "EXECUTE",
        "CREATE_VOLUME", "READ_VOLUME", "CREATE_MODEL", "CREATE_EXTERNAL_LOCATION", "READ_FILES", "WRITE_FILES", "CREATE_EXTERNAL_TABLE",
        "CREATE_EXTERNAL_VOLUME", "CREATE_MANAGED_STORAGE", "CREATE_STORAGE_CREDENTIAL",
        "ALL_PRIVILEGES", "MANAGE", "BROWSE", "WRITE_VOLUME", "APPLY_TAG",
    ]
    static let oss = Set(known.prefix(19))

    /// - Throws: `INVALID_PARAMETER_VALUE` for a privilege Kiln does not know.
    public init(parsing text: String) throws {
        let canonical = text.trimmingCharacters(in: .whitespaces).uppercased().replacingOccurrences(of: " ", with: "_")
        guard Self.known.contains(canonical) else {
            throw KilnError.invalid("Unknown privilege '\(text)'; use one of \(Self.known.joined(separator: ", "))")
        }
        name = canonical
    }

    init(_ canonical: String) { name = canonical }

    public static let useCatalog = Privilege("USE_CATALOG"), useSchema = Privilege("USE_SCHEMA"), select = Privilege("SELECT"),
                      modify = Privilege("MODIFY"), createCatalog = Privilege("CREATE_CATALOG"), createSchema = Privilege("CREATE_SCHEMA"),
                      createTable = Privilege("CREATE_TABLE"), all = Privilege("ALL_PRIVILEGES"), manage = Privilege("MANAGE"),
                      browse = Privilege("BROWSE"), createVolume = Privilege("CREATE_VOLUME"), readVolume = Privilege("READ_VOLUME"),
                      writeVolume = Privilege("WRITE_VOLUME"), execute = Privilege("EXECUTE"), createFunction = Privilege("CREATE_FUNCTION")

    /// As unitycatalog-client spells it (spaces); databricks-sdk reads the canonical form.
    public var spaced: String { name.replacingOccurrences(of: "_", with: " ") }
    /// Whether the OSS client's enum has it (it rejects a response holding any other).
    public var inOSSClient: Bool { Self.oss.contains(name) }
    public var description: String { name }
    public static func < (a: Privilege, b: Privilege) -> Bool { a.name < b.name }
}

/// The kinds of securable grants attach to.
public enum SecurableType: String, Sendable, CaseIterable {
    case metastore, catalog, schema, table, volume, function, model

    /// Case-insensitive; `registered_model` is `model` (and `function` names a model where no function has the name,
    /// as Databricks' API names models).
    public init(parsing text: String) throws {
        let lower = text.lowercased()
        guard let type = lower == "registered_model" ? .model : Self(rawValue: lower) else {
            throw KilnError.invalid("Securable type '\(text)' is not supported; use metastore, catalog, schema, table, volume, function or model")
        }
        self = type
    }

    /// What may be granted on a securable of this type (privileges on a container apply to what is inside it).
    public var grantable: Set<String> {
        switch self {
        case .metastore: return ["CREATE_CATALOG", "CREATE_EXTERNAL_LOCATION", "CREATE_STORAGE_CREDENTIAL", "MANAGE"]
        case .catalog:
            return ["ALL_PRIVILEGES", "USE_CATALOG", "USE_SCHEMA", "CREATE_SCHEMA", "CREATE_TABLE", "CREATE_FUNCTION", "CREATE_VOLUME",
                    "CREATE_MODEL", "SELECT", "MODIFY", "EXECUTE", "READ_VOLUME", "WRITE_VOLUME", "BROWSE", "MANAGE", "APPLY_TAG"]
        case .schema:
            return ["ALL_PRIVILEGES", "USE_SCHEMA", "CREATE_TABLE", "CREATE_FUNCTION", "CREATE_VOLUME", "CREATE_MODEL", "SELECT", "MODIFY",
                    "EXECUTE", "READ_VOLUME", "WRITE_VOLUME", "MANAGE", "APPLY_TAG"]
        case .table: return ["ALL_PRIVILEGES", "SELECT", "MODIFY", "MANAGE", "APPLY_TAG"]
        case .volume: return ["ALL_PRIVILEGES", "READ_VOLUME", "WRITE_VOLUME", "MANAGE", "APPLY_TAG"]
        case .function, .model: return ["ALL_PRIVILEGES", "EXECUTE", "MANAGE", "APPLY_TAG"]
        }
    }

    public var upper: String { rawValue.uppercased() }
}

/// One securable and the containers above it, innermost first, with each one's id, name and owner.
public struct SecurablePath: Sendable {
    public struct Level: Sendable {
        public var type: SecurableType
        public var id: String
        public var fullName: String
        public var ownership: Ownership
    }
    /// The securable itself first, then its schema and catalog (the metastore is not a container: its grants do not
    /// reach down).
    public var levels: [Level]
    /// The grants on every level, read with the owners (nil: read them when needed).
    var grants: [String: [String: Set<Privilege>]]? = nil
    public var target: Level { levels[0] }
}

/// Table ids by folder, valid while the table's first commit file is the same file.
final class TableIDCache: Sendable {
    private let entries = Mutex<[String: (stamp: String, id: String, created: Int64?)]>([:])

    func lookup(_ folder: String, stamp: String) -> (id: String, created: Int64?)? {
        entries.withLock { table in table[folder].flatMap { $0.stamp == stamp ? ($0.id, $0.created) : nil } }
    }

    func store(_ folder: String, stamp: String, id: String, created: Int64?) {
        entries.withLock { table in
            if table.count > 100_000 { table.removeAll() }
            table[folder] = (stamp, id, created)
        }
    }
}

/// A grant as the API shows it, with where an effective one comes from.
public struct EffectivePrivilege: Sendable, Equatable {
    public var privilege: Privilege
    /// nil when granted on the securable itself.
    public var inheritedFromType: SecurableType?
    public var inheritedFromName: String?
}

extension UnityCatalog {
    public static let grantMigrations = [
        Migration("catalog_0002_grants", [
            """
            CREATE TABLE uc_grants (
                securable_id VARCHAR(64) NOT NULL,
                principal VARCHAR(256) NOT NULL,
                privilege VARCHAR(64) NOT NULL,
                PRIMARY KEY (securable_id, principal, privilege)
            )
            """,
        ]),
    ]

    /// The securable `fullName` of `type` and its containers. - Throws: `RESOURCE_DOES_NOT_EXIST`.
    public func path(_ type: SecurableType, _ fullName: String) async throws -> SecurablePath {
        // Ids and names first (files only), then every owner in one store read.
        var levels: [(type: SecurableType, id: String, name: String, created: Int64?)] = []
        switch type {
        case .metastore:
            return SecurablePath(levels: [.init(type: .metastore, id: Self.metastoreID, fullName: "metastore",
                                                ownership: Ownership(owner: Self.metastoreAdmin))])
        case .catalog:
            let c = try catalog.identified(fullName)
            levels = [(.catalog, c.id!, fullName, c.createdAt)]
        case .schema, .table, .volume, .function, .model:
            let n = try Self.split(fullName, parts: type == .schema ? 2 : 3)
            let c = try catalog.identified(n[0]), s = try catalog.identified(n[0], n[1])
            levels = [(.schema, s.id!, "\(n[0]).\(n[1])", s.createdAt), (.catalog, c.id!, n[0], c.createdAt)]
            if type == .table {
                let t = try tableIdentity(n[0], n[1], n[2])
                levels.insert((.table, t.id, fullName, t.created), at: 0)
            } else if type == .volume {
                let v = try loadVolume(n[0], n[1], n[2])
                levels.insert((.volume, v.volumeID, fullName, v.createdAt), at: 0)
            } else if type == .function, let f = try? loadFunction(n[0], n[1], n[2]) {
                levels.insert((.function, f.id, fullName, f.createdAt), at: 0)
            } else if type == .function || type == .model {
                guard let created = try await modelCreated(fullName) else {
                    if type == .function { _ = try loadFunction(n[0], n[1], n[2]) }  // says what is missing
                    throw KilnError.notFound("Model '\(fullName)' does not exist")
                }
                levels.insert((.model, try await modelID(fullName, created: created), fullName, created), at: 0)
            }
        }
        let ids = levels.map(\.id)
        let (owners, grants) = try await database.read { sql in (try await Self.ownerships(ids, sql), try await Self.grants(on: ids, sql)) }
        return SecurablePath(levels: levels.map { l in
            .init(type: l.type, id: l.id, fullName: l.name, ownership: owners[l.id] ?? Ownership(owner: Self.metastoreAdmin, createdAt: l.created))
        }, grants: grants)
    }

    /// A table's id and creation time without reading its whole log: from its first commit, remembered as long as
    /// that file is the same one (a dropped and recreated table has a new first commit, so a new id).
    func tableIdentity(_ catalogName: String, _ schemaName: String, _ name: String) throws -> (id: String, created: Int64?) {
        let folder = try catalog.path([catalogName, schemaName, name])
        let first = folder + "/_delta_log/00000000000000000000.json"
        if let attributes = try? FileManager.default.attributesOfItem(atPath: first) {
            let stamp = "\(attributes[.systemFileNumber] ?? 0)-\((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)-\(attributes[.size] ?? 0)"
            if let hit = tableIDs.lookup(folder, stamp: stamp) { return hit }
            if let data = FileManager.default.contents(atPath: first) {
                for line in data.split(separator: 0x0A) {
                    guard case .object(let action)? = try? JSONValue.parse(line), case .object(let meta)? = action["metaData"],
                          case .string(let id)? = meta["id"] else { continue }
                    var created: Int64?
                    if case .number(let n)? = meta["createdTime"] { created = Int64(n) }
                    tableIDs.store(folder, stamp: stamp, id: id, created: created)
                    return (id, created)
                }
            }
        }
        let table = try entry(catalogName, schemaName, name)
        return (table.tableID, table.createdAt)
    }

    /// Direct grants on the securables with these ids: id → principal → privileges.
    func grants(on ids: [String]) async throws -> [String: [String: Set<Privilege>]] {
        try await database.read { sql in try await Self.grants(on: ids, sql) }
    }

    static func grants(on ids: [String], _ sql: any SQLDatabase) async throws -> [String: [String: Set<Privilege>]] {
        var out: [String: [String: Set<Privilege>]] = [:]
        for row in try await sql.raw("SELECT * FROM uc_grants WHERE securable_id IN (\(binds: ids))").all() {
            let id = try row.decode(column: "securable_id", as: String.self)
            out[id, default: [:]][try row.decode(column: "principal", as: String.self), default: []]
                .insert(Privilege(try row.decode(column: "privilege", as: String.self)))
        }
        return out
    }

    /// The grants on a path's levels: those read with it, else from the store.
    func grants(_ path: SecurablePath) async throws -> [String: [String: Set<Privilege>]] {
        if let known = path.grants { return known }
        return try await grants(on: path.levels.map(\.id))
    }

    /// The direct grants on a securable, by principal (sorted), optionally only one principal's.
    public func permissions(_ path: SecurablePath, principal: String? = nil) async throws -> [(principal: String, privileges: [Privilege])] {
        let direct = try await grants(on: [path.target.id])[path.target.id] ?? [:]
        return direct.keys.sorted().filter { principal == nil || $0 == principal }.map { ($0, direct[$0]!.sorted()) }
    }

    /// What each principal holds on a securable, directly or from its containers.
    public func effectivePermissions(_ path: SecurablePath, principal: String? = nil) async throws
        -> [(principal: String, privileges: [EffectivePrivilege])] {
        let all = try await grants(path)
        var out: [String: [EffectivePrivilege]] = [:]
        for (i, level) in path.levels.enumerated() {
            for (who, privileges) in all[level.id] ?? [:] where principal == nil || who == principal {
                for p in privileges.sorted() {
                    out[who, default: []].append(EffectivePrivilege(privilege: p, inheritedFromType: i == 0 ? nil : level.type,
                                                                    inheritedFromName: i == 0 ? nil : level.fullName))
                }
            }
        }
        return out.keys.sorted().map { ($0, out[$0]!) }
    }

    /// Grants and revokes, as `PATCH permissions` and SQL `GRANT`/`REVOKE` do. Takes an admin, an owner of the
    /// securable or a container, or `MANAGE` on any of them.
    /// - Throws: `INVALID_PARAMETER_VALUE` for an unknown principal or a privilege that does not apply to the type;
    ///   nothing changes then.
    public func updatePermissions(_ path: SecurablePath, changes: [(principal: String, add: [Privilege], remove: [Privilege])],
                                  caller: Caller?) async throws {
        guard try await mayManage(caller, path) else {
            throw KilnError(.permissionDenied, "\(caller?.name ?? "") may not change the grants on \(path.target.type.rawValue) \(path.target.fullName): that takes its owner, MANAGE, or an admin")
        }
        for change in changes {
            guard !change.principal.isEmpty, try await principalExists(change.principal) else {
                throw KilnError.invalid("Could not find principal '\(change.principal)': grant to a user name, group name or service principal's applicationId")
            }
            for p in change.add + change.remove where !path.target.type.grantable.contains(p.name) {
                throw KilnError.invalid("Privilege \(p.name) does not apply to a \(path.target.type.rawValue); it takes \(path.target.type.grantable.sorted().joined(separator: ", "))")
            }
        }
        let id = path.target.id
        try await database.write { sql in
            for change in changes {
                for p in change.remove {
                    try await sql.raw("DELETE FROM uc_grants WHERE securable_id = \(bind: id) AND principal = \(bind: change.principal) AND privilege = \(bind: p.name)").run()
                }
                for p in change.add {
                    try await sql.raw("DELETE FROM uc_grants WHERE securable_id = \(bind: id) AND principal = \(bind: change.principal) AND privilege = \(bind: p.name)").run()
                    try await sql.raw("INSERT INTO uc_grants (securable_id, principal, privilege) VALUES (\(bind: id), \(bind: change.principal), \(bind: p.name))").run()
                }
            }
        }
    }

    /// Whether `caller` may grant on `path`: Kiln itself, an admin, an owner of it or a container, or `MANAGE` there.
    public func mayManage(_ caller: Caller?, _ path: SecurablePath) async throws -> Bool {
        guard let caller, !caller.isAdmin else { return true }
        if Self.owns(caller, path) { return true }
        return try await holds(caller, .manage, path)
    }

    static func owns(_ caller: Caller, _ path: SecurablePath) -> Bool {
        path.levels.contains { $0.ownership.owner == caller.name || caller.groups.contains($0.ownership.owner) }
    }

    /// Whether a grant of `privilege` (or `ALL_PRIVILEGES`) to the caller or one of its groups reaches `path`'s
    /// securable: on it or on a container.
    func holds(_ caller: Caller, _ privilege: Privilege, _ path: SecurablePath) async throws -> Bool {
        let names = caller.groups.union([caller.name])
        let all = try await grants(path)
        return path.levels.contains { level in
            (all[level.id] ?? [:]).contains { who, privileges in
                names.contains(who) && (privileges.contains(privilege) || (privilege != .manage && privileges.contains(.all)))
            }
        }
    }

    /// Whether `caller` may use `privilege` on `path` as Databricks decides it: admins and owners (of it or a
    /// container) may do anything; others need the privilege on it or a container, plus `USE_CATALOG` on its catalog
    /// and `USE_SCHEMA` on its schema to reach anything inside them.
    public func allowed(_ caller: Caller?, _ privilege: Privilege?, _ path: SecurablePath) async throws -> Bool {
        guard let caller, !caller.isAdmin else { return true }
        if Self.owns(caller, path) { return true }
        let names = caller.groups.union([caller.name])
        let all = try await grants(path)
        func has(_ p: Privilege, from levels: ArraySlice<SecurablePath.Level>) -> Bool {
            levels.contains { level in
                (all[level.id] ?? [:]).contains { who, ps in names.contains(who) && (ps.contains(p) || ps.contains(.all)) }
            }
        }
        let levels = path.levels[...]
        if let catalogIndex = path.levels.firstIndex(where: { $0.type == .catalog }), path.target.type != .catalog || privilege != .useCatalog {
            guard has(.useCatalog, from: path.levels[catalogIndex...]) else { return false }
        }
        if let schemaIndex = path.levels.firstIndex(where: { $0.type == .schema }), path.target.type != .schema || privilege != .useSchema {
            guard has(.useSchema, from: path.levels[schemaIndex...]) else { return false }
        }
        guard let privilege else { return true }
        return has(privilege, from: levels)
    }

    /// Whether `caller` may see `path`'s securable at all (in lists and gets): it may use it, or holds any privilege
    /// on it (with the USE chain above), or `BROWSE` on its catalog.
    public func visible(_ caller: Caller?, _ path: SecurablePath) async throws -> Bool {
        guard let caller, !caller.isAdmin else { return true }
        if Self.owns(caller, path) { return true }
        let names = caller.groups.union([caller.name])
        let all = try await grants(path)
        if let catalog = path.levels.first(where: { $0.type == .catalog }),
           (all[catalog.id] ?? [:]).contains(where: { names.contains($0.key) && $0.value.contains(.browse) }) {
            return true
        }
        switch path.target.type {
        case .metastore: return true
        case .catalog: return try await allowed(caller, .useCatalog, path)
        case .schema: return try await allowed(caller, .useSchema, path)
        case .table, .volume, .function, .model:
            guard try await allowed(caller, nil, path) else { return false }
            let inherited: Set<Privilege> = switch path.target.type {
            case .table: [.select, .modify, .all, .manage]
            case .volume: [.readVolume, .writeVolume, .all, .manage]
            default: [.execute, .all, .manage]
            }
            return (all[path.target.id] ?? [:]).contains { names.contains($0.key) && !$0.value.isEmpty }
                || path.levels.dropFirst().contains { level in
                    (all[level.id] ?? [:]).contains { who, ps in names.contains(who) && !ps.isDisjoint(with: inherited) }
                }
        }
    }

    /// Records `caller` as the creator and owner of a securable made outside this API (SQL DDL); with `ifNew`, only
    /// when it has no owner yet (`CREATE OR REPLACE` of an existing one keeps its owner).
    public func recordCreated(_ type: SecurableType, _ fullName: String, by caller: Caller, ifNew: Bool = false) async throws {
        let id = try await path(type, fullName).target.id
        if ifNew, try await ownerships([id])[id] != nil { return }
        try await recordCreated(id, by: caller)
    }
}
