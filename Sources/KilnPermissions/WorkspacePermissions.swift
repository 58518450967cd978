import Foundation
import KilnCore
import KilnStore
import Logging
import SQLKit
import Synchronization

/// The workspace objects that carry access control lists, as `/api/2.0/permissions/{kind}/{id}` names them.
public enum ObjectKind: String, Sendable, CaseIterable {
    case experiments
    case registeredModels = "registered-models"
    case servingEndpoints = "serving-endpoints"
    case jobs

    /// - Throws: `INVALID_PARAMETER_VALUE` for a kind Kiln does not govern.
    public init(parsing text: String) throws {
        guard let kind = Self(rawValue: text) else {
            throw KilnError.invalid("Object type '\(text)' has no permissions in Kiln; use \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = kind
    }

    /// Its levels, weakest first; each includes every one before it.
    public var levels: [String] {
        switch self {
        case .experiments: return ["CAN_READ", "CAN_EDIT", "CAN_MANAGE"]
        case .registeredModels: return ["CAN_READ", "CAN_EDIT", "CAN_MANAGE_STAGING_VERSIONS", "CAN_MANAGE_PRODUCTION_VERSIONS", "CAN_MANAGE"]
        case .servingEndpoints: return ["CAN_VIEW", "CAN_QUERY", "CAN_MANAGE"]
        case .jobs: return ["CAN_VIEW", "CAN_MANAGE_RUN", "CAN_MANAGE", "IS_OWNER"]
        }
    }

    /// What its creator gets.
    public var ownerLevel: String { self == .jobs ? "IS_OWNER" : "CAN_MANAGE" }
    /// The level that may change its permissions.
    public var manageLevel: String { "CAN_MANAGE" }
    /// The level that may see it.
    public var viewLevel: String { levels[0] }

    /// As the API's `object_type` names it.
    public var objectType: String {
        switch self {
        case .experiments: return "mlflowExperiment"
        case .registeredModels: return "registered-model"
        case .servingEndpoints: return "serving-endpoint"
        case .jobs: return "job"
        }
    }

    /// For messages.
    public var noun: String {
        switch self {
        case .experiments: return "experiment"
        case .registeredModels: return "registered model"
        case .servingEndpoints: return "serving endpoint"
        case .jobs: return "job"
        }
    }

    /// What a level allows, for `permissionLevels`.
    public func describe(_ level: String) -> String {
        switch level {
        case "CAN_READ": return "Can view the \(noun) and what is in it"
        case "CAN_EDIT": return self == .experiments ? "Can view the experiment and create, log to and change its runs" : "Can view the model, change its description and tags, and create versions"
        case "CAN_MANAGE_STAGING_VERSIONS": return "Can edit, and move versions into and out of Staging"
        case "CAN_MANAGE_PRODUCTION_VERSIONS": return "Can edit, and move versions into and out of Staging, Production and Archived"
        case "CAN_VIEW": return "Can view the \(noun)" + (self == .jobs ? " and its runs" : "")
        case "CAN_QUERY": return "Can view the endpoint and query it"
        case "CAN_MANAGE_RUN": return "Can view the job, run it, cancel and repair its runs"
        case "IS_OWNER": return "Owns the job: its tasks run as this identity unless run_as says otherwise"
        default: return "Can do everything with the \(noun), including changing its permissions and deleting it"
        }
    }

    /// The rank of `level` (higher includes lower); nil for a level this kind does not have.
    public func rank(_ level: String) -> Int? { levels.firstIndex(of: level) }
}

/// The kinds of principals an access control entry names.
public enum PrincipalType: String, Sendable, CaseIterable {
    case user = "user_name", group = "group_name", servicePrincipal = "service_principal_name"
}

/// One access control entry: a principal and its level on one object.
public struct AccessEntry: Sendable, Equatable {
    public var principal: String
    public var type: PrincipalType
    public var level: String

    public init(principal: String, type: PrincipalType, level: String) {
        self.principal = principal
        self.type = type
        self.level = level
    }
}

/// Access control lists on workspace objects (experiments, registered models, serving endpoints, jobs), as Databricks'
/// permissions API has them: creators own what they create, workspace admins (group `admins`) hold every level on
/// everything, the built-in group `users` is every signed-in identity, and an object nobody was given holds only
/// the admins (objects from before permissions existed). Kiln itself (a nil caller: local CLI mode) passes every check.
public struct WorkspacePermissions: Sendable {
    let database: any KilnDatabase
    let cache: ACLCache
    /// The types of the principals with this name (users by `userName`, groups by `displayName`, service
    /// principals by `applicationId`); empty when there is none.
    let principalTypes: @Sendable (String) async throws -> Set<PrincipalType>

    /// The built-in group every signed-in identity is in.
    public static let allUsers = "users"

    public static func make(database: any KilnDatabase, logger: Logger,
                            principalTypes: @escaping @Sendable (String) async throws -> Set<PrincipalType>) async throws -> WorkspacePermissions {
        try await Migrator.migrate(database, migrations, logger: logger)
        return WorkspacePermissions(database: database, cache: ACLCache(), principalTypes: principalTypes)
    }

    public static let migrations = [
        Migration("permissions_0001_acls", [
            """
            CREATE TABLE object_permissions (
                object_kind VARCHAR(32) NOT NULL,
                object_id VARCHAR(256) NOT NULL,
                principal VARCHAR(256) NOT NULL,
                principal_type VARCHAR(32) NOT NULL,
                level VARCHAR(48) NOT NULL,
                PRIMARY KEY (object_kind, object_id, principal)
            )
            """,
            "CREATE INDEX object_permissions_principal ON object_permissions (object_kind, principal)",
            // MLflow clients log to the Default experiment when none is set: every user may, as in MLflow.
            "INSERT INTO object_permissions VALUES ('experiments', '0', 'users', 'group_name', 'CAN_EDIT')",
        ]),
    ]

    // MARK: Checking

    /// The names a caller's entries may be under: its own, its groups', and `users`.
    static func names(_ caller: Caller) -> Set<String> { caller.groups.union([caller.name, allUsers]) }

    /// The strongest level `caller` holds on the object (admins and Kiln itself: the top one); nil for none.
    public func level(_ caller: Caller?, _ kind: ObjectKind, _ id: String) async throws -> String? {
        guard let caller, !caller.isAdmin else { return kind.levels.last }
        let names = Self.names(caller)
        let best = try await entries(kind, id).filter { names.contains($0.principal) }.compactMap { kind.rank($0.level) }.max()
        return best.map { kind.levels[$0] }
    }

    /// Whether `caller` holds `level` (or a stronger one) on the object.
    public func holds(_ caller: Caller?, _ level: String, _ kind: ObjectKind, _ id: String) async throws -> Bool {
        guard let caller, !caller.isAdmin else { return true }
        guard let needed = kind.rank(level) else { return false }
        guard let held = try await self.level(caller, kind, id) else { return false }
        return kind.rank(held)! >= needed
    }

    /// - Throws: `PERMISSION_DENIED` naming the level that is missing.
    public func require(_ caller: Caller?, _ level: String, _ kind: ObjectKind, _ id: String) async throws {
        guard try await holds(caller, level, kind, id) else {
            throw KilnError(.permissionDenied, "\(caller?.name ?? "") does not have \(level) permission on \(kind.noun) \(id); its owner or an admin can grant it (PATCH /api/2.0/permissions/\(kind.rawValue)/\(id))")
        }
    }

    /// The ids of the objects of `kind` that `caller` may see; nil when it may see all of them.
    public func visibleIDs(_ caller: Caller?, _ kind: ObjectKind) async throws -> Set<String>? {
        guard let caller, !caller.isAdmin else { return nil }
        let names = Array(Self.names(caller))
        return try await database.read { sql in
            Set(try await sql.raw("SELECT DISTINCT object_id FROM object_permissions WHERE object_kind = \(bind: kind.rawValue) AND principal IN (\(binds: names))")
                .all().map { try $0.decode(column: "object_id", as: String.self) })
        }
    }

    // MARK: Reading and changing lists

    /// The object's direct entries, principal order; cached for a few seconds and dropped on every change made here.
    public func entries(_ kind: ObjectKind, _ id: String) async throws -> [AccessEntry] {
        let key = kind.rawValue + "/" + id
        if let hit = cache.lookup(key) { return hit }
        let rows = try await database.read { sql in
            try await sql.raw("SELECT principal, principal_type, level FROM object_permissions WHERE object_kind = \(bind: kind.rawValue) AND object_id = \(bind: id) ORDER BY principal").all()
        }
        let entries = try rows.map { row in
            AccessEntry(principal: try row.decode(column: "principal", as: String.self),
                        type: PrincipalType(rawValue: try row.decode(column: "principal_type", as: String.self)) ?? .user,
                        level: try row.decode(column: "level", as: String.self))
        }
        cache.store(key, entries)
        return entries
    }

    /// Replaces (PUT) or merges into (PATCH) the object's list. The owner's entry (`IS_OWNER` on jobs) stays unless
    /// the change names a new owner. Takes `CAN_MANAGE` on the object.
    /// - Throws: `PERMISSION_DENIED`; `INVALID_PARAMETER_VALUE` for an unknown principal or level, or a second owner.
    public func change(_ kind: ObjectKind, _ id: String, _ changes: [AccessEntry], replace: Bool, caller: Caller?) async throws {
        try await require(caller, kind.manageLevel, kind, id)
        for entry in changes {
            guard kind.rank(entry.level) != nil else {
                throw KilnError.invalid("Permission level \(entry.level) does not apply to a \(kind.noun); use one of \(kind.levels.joined(separator: ", "))")
            }
            let known = entry.type == .group && entry.principal == Self.allUsers
            let exists = known ? true : try await principalTypes(entry.principal).contains(entry.type)
            guard !entry.principal.isEmpty, exists else {
                throw KilnError.invalid("Could not find \(entry.type.rawValue.replacingOccurrences(of: "_name", with: "").replacingOccurrences(of: "_", with: " ")) '\(entry.principal)'")
            }
        }
        let owners = changes.filter { $0.level == "IS_OWNER" }
        guard owners.count <= 1, owners.allSatisfy({ $0.type != .group }) else {
            throw KilnError.invalid("A job has exactly one owner, a user or service principal; name one IS_OWNER entry")
        }
        // A job's tasks run as its owner: handing a job to someone else would run code as them.
        if let owner = owners.first, let caller, !caller.isAdmin, owner.principal.lowercased() != caller.name.lowercased() {
            throw KilnError(.permissionDenied, "\(caller.name) may not make \(owner.principal) the owner of job \(id): its tasks would run as them; only admins may")
        }
        try await database.write { sql in
            let existing = try await sql.raw("SELECT principal, level FROM object_permissions WHERE object_kind = \(bind: kind.rawValue) AND object_id = \(bind: id)").all()
            let owner = try existing.first { try $0.decode(column: "level", as: String.self) == "IS_OWNER" }?.decode(column: "principal", as: String.self)
            if replace {
                try await sql.raw("DELETE FROM object_permissions WHERE object_kind = \(bind: kind.rawValue) AND object_id = \(bind: id) AND level <> 'IS_OWNER'").run()
            }
            if owners.first != nil, let owner {
                try await sql.raw("DELETE FROM object_permissions WHERE object_kind = \(bind: kind.rawValue) AND object_id = \(bind: id) AND principal = \(bind: owner)").run()
            }
            for entry in changes {
                if entry.principal == owner && owners.isEmpty { continue }  // the owner stays the owner
                try await sql.raw("DELETE FROM object_permissions WHERE object_kind = \(bind: kind.rawValue) AND object_id = \(bind: id) AND principal = \(bind: entry.principal)").run()
                try await sql.raw("INSERT INTO object_permissions VALUES (\(bind: kind.rawValue), \(bind: id), \(bind: entry.principal), \(bind: entry.type.rawValue), \(bind: entry.level))").run()
            }
        }
        cache.clear()
    }

    /// Makes `caller` the owner of an object it just created (`CAN_MANAGE`; `IS_OWNER` on jobs, whose tasks then
    /// run as it). Kiln itself (nil) records nothing.
    public func recordCreated(_ kind: ObjectKind, _ id: String, by caller: Caller?) async throws {
        guard let caller, caller.id != nil else { return }
        let type: PrincipalType = try await principalTypes(caller.name).contains(.servicePrincipal) ? .servicePrincipal : .user
        let entry = AccessEntry(principal: caller.name, type: type, level: kind.ownerLevel)
        try await database.write { sql in
            try await sql.raw("DELETE FROM object_permissions WHERE object_kind = \(bind: kind.rawValue) AND object_id = \(bind: id)").run()
            try await sql.raw("INSERT INTO object_permissions VALUES (\(bind: kind.rawValue), \(bind: id), \(bind: entry.principal), \(bind: entry.type.rawValue), \(bind: entry.level))").run()
        }
        cache.clear()
    }

    /// Forgets an object's list (it was deleted: a new object with the same id starts with none).
    public func forget(_ kind: ObjectKind, _ id: String) async throws {
        try await database.write { sql in
            try await sql.raw("DELETE FROM object_permissions WHERE object_kind = \(bind: kind.rawValue) AND object_id = \(bind: id)").run()
        }
        cache.clear()
    }

    /// Moves an object's list to its new id (registered models are named by their name, which can change).
    public func rename(_ kind: ObjectKind, from: String, to: String) async throws {
        try await database.write { sql in
            try await sql.raw("DELETE FROM object_permissions WHERE object_kind = \(bind: kind.rawValue) AND object_id = \(bind: to)").run()
            try await sql.raw("UPDATE object_permissions SET object_id = \(bind: to) WHERE object_kind = \(bind: kind.rawValue) AND object_id = \(bind: from)").run()
        }
        cache.clear()
    }
}

/// Recently read lists, kept `ttl` (another server on the same store changes them without telling this one).
final class ACLCache: Sendable {
    private let entries = Mutex<[String: (at: ContinuousClock.Instant, entries: [AccessEntry])]>([:])
    let ttl: Duration = .seconds(5)

    func lookup(_ key: String) -> [AccessEntry]? {
        entries.withLock { table in
            guard let hit = table[key], hit.at.duration(to: .now) < ttl else { return nil }
            return hit.entries
        }
    }

    func store(_ key: String, _ value: [AccessEntry]) {
        entries.withLock { table in
            if table.count > 50_000 { table.removeAll() }
            table[key] = (.now, value)
        }
    }

    func clear() { entries.withLock { $0.removeAll() } }
}
