import Foundation
import KilnCore
import KilnStore
import Logging
import SQLKit
import Synchronization

/// Users, groups (nested) and service principals, managed as SCIM 2.0 resources, and the personal access tokens
/// they sign in with. The store holds a bootstrap admin: the user `admin`, a member of the group `admins`, which the
/// server's admin token acts as. Both can be neither deleted nor disabled nor taken apart.
public struct IdentityService: Sendable {
    let database: any KilnDatabase
    let clock: any KilnClock
    let cache: TokenCache

    /// The bootstrap admin's user name.
    public static let adminUser = "admin"

    /// Opens the identities over `database`: tables migrated, the bootstrap admin created when missing.
    public static func make(database: any KilnDatabase, clock: any KilnClock, logger: Logger) async throws -> IdentityService {
        try await Migrator.migrate(database, migrations, logger: logger)
        let service = IdentityService(database: database, clock: clock, cache: TokenCache())
        try await service.bootstrap()
        return service
    }

    public static let migrations = [
        Migration("identity_0001_principals", [
            """
            CREATE TABLE identity_principals (
                id VARCHAR(20) PRIMARY KEY,
                kind VARCHAR(24) NOT NULL,
                name VARCHAR(256) NOT NULL,
                name_key VARCHAR(256) NOT NULL,
                display_name TEXT NOT NULL,
                active INTEGER NOT NULL,
                external_id TEXT,
                attributes TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                UNIQUE (kind, name_key)
            )
            """,
            """
            CREATE TABLE identity_members (
                group_id VARCHAR(20) NOT NULL,
                member_id VARCHAR(20) NOT NULL,
                PRIMARY KEY (group_id, member_id)
            )
            """,
            "CREATE INDEX identity_members_member ON identity_members (member_id)",
            """
            CREATE TABLE identity_tokens (
                token_id VARCHAR(64) PRIMARY KEY,
                token_hash VARCHAR(64) NOT NULL UNIQUE,
                owner_id VARCHAR(20) NOT NULL,
                created_by_id VARCHAR(20) NOT NULL,
                comment TEXT NOT NULL,
                creation_time BIGINT NOT NULL,
                expiry_time BIGINT NOT NULL,
                last_used_day BIGINT
            )
            """,
            "CREATE INDEX identity_tokens_owner ON identity_tokens (owner_id)",
        ]),
    ]

    // MARK: Reading

    /// Everything the store holds about identities, read in one go (a workspace has thousands, not millions).
    struct Snapshot {
        var principals: [Principal]
        var byID: [String: Principal]
        /// (group id, member id) pairs.
        var edges: [(group: String, member: String)]

        func resource(_ p: Principal) -> PrincipalResource {
            let groups = edges.filter { $0.member == p.id }.compactMap { byID[$0.group] }.sorted { $0.displayName < $1.displayName }
            let members = p.kind == .group ? edges.filter { $0.group == p.id }.compactMap { byID[$0.member] }.sorted { $0.displayName < $1.displayName } : []
            return PrincipalResource(principal: p, groups: groups, members: members)
        }

        /// The names of the groups `id` belongs to, directly or through nested groups.
        func groupNames(of id: String) -> Set<String> {
            Set(reachable(from: id, upward: true).compactMap { byID[$0]?.name })
        }

        /// The ids of every member below `group`, through nested groups.
        func descendants(of group: String) -> Set<String> { reachable(from: group, upward: false) }

        /// Every id reachable from `start` over membership edges: to enclosing groups (`upward`) or to members.
        func reachable(from start: String, upward: Bool) -> Set<String> {
            var seen: Set<String> = []
            var frontier = [start]
            while let next = frontier.popLast() {
                for edge in edges where (upward ? edge.member : edge.group) == next {
                    let found = upward ? edge.group : edge.member
                    if seen.insert(found).inserted { frontier.append(found) }
                }
            }
            return seen
        }

        func named(_ kind: PrincipalKind, _ name: String) -> Principal? {
            let key = name.lowercased()
            return principals.first { $0.kind == kind && $0.name.lowercased() == key }
        }
    }

    func snapshot() async throws -> Snapshot {
        try await database.read { sql in try await Self.snapshot(sql) }
    }

    static func snapshot(_ sql: any SQLDatabase) async throws -> Snapshot {
        let principals = try await sql.raw("SELECT * FROM identity_principals ORDER BY created_at, id").all().map(Self.principal)
        let edges = try await sql.raw("SELECT group_id, member_id FROM identity_members").all().map {
            (group: try $0.decode(column: "group_id", as: String.self), member: try $0.decode(column: "member_id", as: String.self))
        }
        return Snapshot(principals: principals, byID: Dictionary(principals.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a }), edges: edges)
    }

    static func principal(_ row: any SQLRow) throws -> Principal {
        let attributes: [String: JSONValue]
        if case .object(let o) = try JSONValue.parse(Array(try row.decode(column: "attributes", as: String.self).utf8)) { attributes = o } else { attributes = [:] }
        return Principal(
            id: try row.decode(column: "id", as: String.self),
            kind: PrincipalKind(rawValue: try row.decode(column: "kind", as: String.self)) ?? .user,
            name: try row.decode(column: "name", as: String.self),
            displayName: try row.decode(column: "display_name", as: String.self),
            active: try row.decode(column: "active", as: Int.self) != 0,
            externalID: try row.decode(column: "external_id", as: String?.self),
            attributes: attributes,
            createdAt: try row.decode(column: "created_at", as: Int64.self))
    }

    /// One principal of `kind` with its memberships.
    /// - Throws: `RESOURCE_DOES_NOT_EXIST` when there is none with that id.
    public func get(_ kind: PrincipalKind, id: String) async throws -> PrincipalResource {
        let s = try await snapshot()
        guard let p = s.byID[id], p.kind == kind else { throw Self.missing(kind, id) }
        return s.resource(p)
    }

    /// A page of the principals of `kind` that match `filter`, sorted by `sortBy` (default: the naming attribute).
    /// - Parameters:
    ///   - startIndex: 1-based, as SCIM counts; past the end gives an empty page.
    ///   - count: the page's size; nil: all the rest.
    /// - Returns: the total that matched and the page.
    public func list(_ kind: PrincipalKind, filter: String?, startIndex: Int = 1, count: Int? = nil,
                     sortBy: String? = nil, descending: Bool = false) async throws -> (total: Int, page: [PrincipalResource]) {
        guard startIndex >= 1 else { throw KilnError.invalid("startIndex must be 1 or more (SCIM counts from 1)") }
        if let count, count < 0 { throw KilnError.invalid("count must not be negative") }
        let parsed = try filter.flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : try SCIMFilter.parse($0) }
        let s = try await snapshot()
        var matched = s.principals.filter { $0.kind == kind }.map { s.resource($0) }
        if let parsed { matched = matched.filter { parsed.matches($0.scim) } }
        let key = (sortBy ?? kind.nameAttribute).lowercased().split(separator: ".").map(String.init)
        let sortKeys = matched.map { r in SCIMFilter.values(r.scim, key).first.map(JSONValue.text)?.lowercased() ?? "" }
        let order = matched.indices.sorted { a, b in
            sortKeys[a] == sortKeys[b] ? matched[a].principal.id < matched[b].principal.id : (sortKeys[a] < sortKeys[b]) != descending
        }
        let from = min(startIndex - 1, order.count)
        let to = count.map { min(from + $0, order.count) } ?? order.count
        return (matched.count, order[from..<to].map { matched[$0] })
    }

    /// The principal of `kind` with that name (`userName`, group `displayName` or `applicationId`), any case.
    public func find(_ kind: PrincipalKind, name: String) async throws -> Principal? {
        try await snapshot().named(kind, name)
    }

    /// Whether a user (`userName`), group (`displayName`) or service principal (`applicationId`) has this name.
    public func exists(name: String) async throws -> Bool {
        let s = try await snapshot()
        return PrincipalKind.allCases.contains { s.named($0, name) != nil }
    }

    /// The kinds of the principals with this name (a user and a group may share one).
    public func kinds(named name: String) async throws -> Set<PrincipalKind> {
        let s = try await snapshot()
        return Set(PrincipalKind.allCases.filter { s.named($0, name) != nil })
    }

    /// The caller a principal acts as (its name and every group it is in), nil when it does not exist or is disabled.
    public func caller(named name: String) async throws -> Caller? {
        let s = try await snapshot()
        guard let p = s.principals.first(where: { $0.kind != .group && $0.name.lowercased() == name.lowercased() }), p.active else { return nil }
        return Caller(id: p.id, name: p.name, groups: s.groupNames(of: p.id))
    }

    // MARK: Writing

    /// What a create, PUT or PATCH works on: the principal and its direct memberships, by id.
    struct Draft {
        var principal: Principal
        var members: [String]
        var groups: [String]
    }

    /// Creates a principal from a SCIM resource (`userName`, `displayName`, `applicationId`, `active`, `emails`,
    /// `name`, `entitlements`, `roles`, `externalId`, and memberships as `groups` or, for groups, `members`).
    /// - Throws: `RESOURCE_ALREADY_EXISTS` when the name is taken; `INVALID_PARAMETER_VALUE` for a missing name,
    ///   a wrong type, or a membership naming something that does not exist.
    public func create(_ kind: PrincipalKind, _ resource: [String: JSONValue]) async throws -> PrincipalResource {
        var draft = Draft(
            principal: Principal(id: Self.newID(), kind: kind, name: "", displayName: "", active: true, externalID: nil, attributes: [:],
                                 createdAt: clock.nowMillis()),
            members: [], groups: [])
        try Self.replace(&draft, with: resource, creating: true)
        let saved = draft
        let s = try await database.write { sql in
            try await Self.save(saved, isNew: true, sql)
            return try await Self.snapshot(sql)
        }
        cache.clear()
        return s.resource(s.byID[saved.principal.id]!)
    }

    /// Replaces a principal with `resource` (SCIM PUT). Memberships change only when the resource lists them.
    public func replace(_ kind: PrincipalKind, id: String, _ resource: [String: JSONValue]) async throws -> PrincipalResource {
        try await change(kind, id: id) { draft in try Self.replace(&draft, with: resource, creating: false) }
    }

    /// Applies SCIM PATCH operations (`add`, `remove`, `replace`, any case) with or without a `path`; paths may
    /// filter a multi-valued attribute by value, as `members[value eq "123"]`.
    public func patch(_ kind: PrincipalKind, id: String, operations: [JSONValue]) async throws -> PrincipalResource {
        try await change(kind, id: id) { draft in
            for operation in operations {
                guard case .object(let op) = operation else { throw KilnError.invalid("Each of Operations must be an object with op, path and value") }
                guard case .string(let name)? = op["op"] else { throw KilnError.invalid("Each operation needs an op: add, remove or replace") }
                let verb = name.lowercased()
                guard ["add", "remove", "replace"].contains(verb) else { throw KilnError.invalid("Unknown PATCH op '\(name)': use add, remove or replace") }
                if case .string(let path)? = op["path"], !path.isEmpty {
                    try Self.apply(verb, path: path, value: op["value"], to: &draft)
                } else if case .object(let values)? = op["value"] {
                    for (key, value) in values.sorted(by: { $0.key < $1.key }) { try Self.apply(verb, path: key, value: value, to: &draft) }
                } else {
                    throw KilnError.invalid("A PATCH operation without a path needs an object value")
                }
            }
        }
    }

    /// Deletes a principal, its memberships and its tokens.
    /// - Throws: `INVALID_PARAMETER_VALUE` for the bootstrap admin or the `admins` group.
    public func delete(_ kind: PrincipalKind, id: String) async throws {
        try await database.write { sql in
            let s = try await Self.snapshot(sql)
            guard let p = s.byID[id], p.kind == kind else { throw Self.missing(kind, id) }
            if Self.isBootstrap(p) { throw KilnError.invalid("The bootstrap \(p.kind == .group ? "group" : "user") '\(p.name)' cannot be deleted") }
            try await sql.raw("DELETE FROM identity_members WHERE group_id = \(bind: id) OR member_id = \(bind: id)").run()
            try await sql.raw("DELETE FROM identity_tokens WHERE owner_id = \(bind: id)").run()
            try await sql.raw("DELETE FROM identity_principals WHERE id = \(bind: id)").run()
        }
        cache.clear()
    }

    func change(_ kind: PrincipalKind, id: String, _ edit: @escaping @Sendable (inout Draft) throws -> Void) async throws -> PrincipalResource {
        let s = try await database.write { sql in
            let before = try await Self.snapshot(sql)
            guard let p = before.byID[id], p.kind == kind else { throw Self.missing(kind, id) }
            var draft = Draft(principal: p, members: before.edges.filter { $0.group == id }.map(\.member),
                              groups: before.edges.filter { $0.member == id }.map(\.group))
            try edit(&draft)
            draft.principal = Principal(id: p.id, kind: p.kind, name: draft.principal.name, displayName: draft.principal.displayName,
                                        active: draft.principal.active, externalID: draft.principal.externalID,
                                        attributes: draft.principal.attributes, createdAt: p.createdAt)
            try await Self.save(draft, isNew: false, sql)
            return try await Self.snapshot(sql)
        }
        cache.clear()
        return s.resource(s.byID[id]!)
    }

    static func replace(_ draft: inout Draft, with resource: [String: JSONValue], creating: Bool) throws {
        let kind = draft.principal.kind
        let lowered = Dictionary(resource.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
        var name = try text(lowered[kind.nameAttribute.lowercased()], kind.nameAttribute)
        if kind == .servicePrincipal && name == nil { name = creating ? UUID().uuidString.lowercased() : draft.principal.name }
        guard let name, !name.isEmpty else { throw KilnError.invalid("\(kind.nameAttribute) is required for a \(kind.resourceType)") }
        draft.principal.name = name
        draft.principal.displayName = try text(lowered["displayname"], "displayName") ?? name
        draft.principal.active = try flag(lowered["active"], "active") ?? true
        draft.principal.externalID = try text(lowered["externalid"], "externalId")
        var attributes: [String: JSONValue] = [:]
        for key in kind.freeAttributes {
            if let value = lowered[key.lowercased()], value != .null { attributes[key] = try checked(key, value) }
        }
        draft.principal.attributes = attributes
        if kind == .group, let members = lowered["members"] { draft.members = try ids(members, "members") }
        if let groups = lowered["groups"] { draft.groups = try ids(groups, "groups") }
    }

    /// One PATCH operation on one attribute path.
    static func apply(_ verb: String, path: String, value: JSONValue?, to draft: inout Draft) throws {
        var attribute = path
        var selected: String?
        if let open = path.firstIndex(of: "["), path.hasSuffix("]") {
            attribute = String(path[..<open])
            let inner = String(path[path.index(after: open)..<path.index(before: path.endIndex)])
            guard case .compare(let p, "eq", .string(let v)) = try SCIMFilter.parse(inner), p == ["value"] else {
                throw KilnError.invalid("Unsupported PATCH path '\(path)': filter by value, as members[value eq \"123\"]")
            }
            selected = v
        }
        let kind = draft.principal.kind
        let key = attribute.lowercased()
        // Databricks documents single values wrapped as lists, as `"value": [{"value": "false"}]` for `active`.
        var single = value
        if case .array(let items)? = value, items.count == 1, case .object(let o) = items[0], o.count == 1, let inner = o["value"] { single = inner }
        switch key {
        case "members" where kind == .group, "groups":
            let current = key == "members" ? draft.members : draft.groups
            var next = current
            switch verb {
            case "add": next = current + (try ids(value ?? .array([]), attribute)).filter { !current.contains($0) }
            case "replace": next = try ids(value ?? .array([]), attribute)
            default:
                if let selected { next = current.filter { $0 != selected } }
                else if let value { let gone = Set(try ids(value, attribute)); next = current.filter { !gone.contains($0) } }
                else { next = [] }
            }
            if key == "members" { draft.members = next } else { draft.groups = next }
        case kind.nameAttribute.lowercased():
            guard verb != "remove", let name = try text(single, attribute), !name.isEmpty else { throw KilnError.invalid("\(kind.nameAttribute) cannot be removed") }
            draft.principal.name = name
        case "displayname":
            draft.principal.displayName = verb == "remove" ? draft.principal.name : (try text(single, attribute) ?? draft.principal.name)
        case "active" where kind != .group:
            guard verb != "remove", let active = try flag(single, "active") else { throw KilnError.invalid("active needs true or false") }
            draft.principal.active = active
        case "externalid":
            draft.principal.externalID = verb == "remove" ? nil : try text(single, attribute)
        case "name.givenname", "name.familyname", "name.formatted" where kind == .user:
            let sub = String(attribute.split(separator: ".")[1])
            var name: [String: JSONValue] = [:]
            if case .object(let o)? = draft.principal.attributes["name"] { name = o }
            name[sub] = verb == "remove" ? nil : .string(try text(single, attribute) ?? "")
            draft.principal.attributes["name"] = .object(name)
        default:
            guard let free = kind.freeAttributes.first(where: { $0.lowercased() == key }) else {
                throw KilnError.invalid("Unknown or read-only attribute '\(path)' on a \(kind.resourceType)")
            }
            if free == "name" {
                draft.principal.attributes["name"] = verb == "remove" ? nil : try checked(free, value ?? .null)
                return
            }
            var items: [JSONValue] = []
            if case .array(let a)? = draft.principal.attributes[free] { items = a }
            let given: [JSONValue] = value.map { v in if case .array(let a) = v { return a } else { return [v] } } ?? []
            _ = try checked(free, .array(given))
            switch verb {
            case "add":
                let existing = Set(items.map { SCIMFilter.values($0, []).first.map(JSONValue.text) ?? "" })
                items += given.filter { !existing.contains(SCIMFilter.values($0, []).first.map(JSONValue.text) ?? "") }
            case "replace": items = given
            default:
                let gone = selected.map { [$0] } ?? given.map { SCIMFilter.values($0, []).first.map(JSONValue.text) ?? "" }
                items = (selected == nil && value == nil) ? [] : items.filter { !gone.contains(SCIMFilter.values($0, []).first.map(JSONValue.text) ?? "") }
            }
            draft.principal.attributes[free] = items.isEmpty ? nil : .array(items)
        }
    }

    /// Writes a draft after checking what a single attribute cannot: unique names, memberships naming existing
    /// principals (groups only for `groups`), no group inside itself, the bootstrap admin intact.
    static func save(_ draft: Draft, isNew: Bool, _ sql: any SQLDatabase) async throws {
        let s = try await snapshot(sql)
        let p = draft.principal
        if let other = s.named(p.kind, p.name), other.id != p.id {
            throw KilnError.alreadyExists("A \(p.kind.resourceType) with \(p.kind.nameAttribute) '\(p.name)' already exists (id \(other.id))")
        }
        for member in draft.members {
            guard s.byID[member] != nil else { throw KilnError.invalid("members: no user, group or service principal has id \(member)") }
        }
        for group in draft.groups {
            guard s.byID[group]?.kind == .group else { throw KilnError.invalid("groups: no group has id \(group)") }
        }
        if p.kind == .group {
            let below = s.descendants(of: p.id)
            for group in draft.groups where group == p.id || below.contains(group) {
                throw KilnError.invalid("groups: group \(p.id) cannot be inside group \(group), which it contains")
            }
            for member in draft.members where member == p.id || s.descendants(of: member).contains(p.id) {
                throw KilnError.invalid("members: group \(member) contains group \(p.id) already; nesting it would make a cycle")
            }
        }
        if let old = s.byID[p.id], isBootstrap(old) {
            guard old.name == p.name, p.active else {
                throw KilnError.invalid("The bootstrap \(old.kind == .group ? "group" : "user") '\(old.name)' cannot be renamed or disabled")
            }
            if old.kind == .user, let admins = s.named(.group, Caller.adminsGroup), !draft.groups.contains(admins.id) {
                throw KilnError.invalid("The bootstrap user '\(adminUser)' cannot leave the '\(Caller.adminsGroup)' group")
            }
            if old.kind == .group, let admin = s.named(.user, adminUser), !draft.members.contains(admin.id) {
                throw KilnError.invalid("The bootstrap user '\(adminUser)' cannot leave the '\(Caller.adminsGroup)' group")
            }
        }
        let attributes = JSONValue.object(p.attributes).json
        if isNew {
            try await sql.raw("""
                INSERT INTO identity_principals (id, kind, name, name_key, display_name, active, external_id, attributes, created_at)
                VALUES (\(bind: p.id), \(bind: p.kind.rawValue), \(bind: p.name), \(bind: p.name.lowercased()), \(bind: p.displayName),
                        \(bind: p.active ? 1 : 0), \(bind: p.externalID), \(bind: attributes), \(bind: p.createdAt))
                """).run()
        } else {
            try await sql.raw("""
                UPDATE identity_principals SET name = \(bind: p.name), name_key = \(bind: p.name.lowercased()), display_name = \(bind: p.displayName),
                    active = \(bind: p.active ? 1 : 0), external_id = \(bind: p.externalID), attributes = \(bind: attributes)
                WHERE id = \(bind: p.id)
                """).run()
        }
        if !p.active { try await sql.raw("DELETE FROM identity_tokens WHERE owner_id = \(bind: p.id)").run() }
        if p.kind == .group {
            try await sql.raw("DELETE FROM identity_members WHERE group_id = \(bind: p.id)").run()
            for member in Set(draft.members) {
                try await sql.raw("INSERT INTO identity_members (group_id, member_id) VALUES (\(bind: p.id), \(bind: member))").run()
            }
        }
        try await sql.raw("DELETE FROM identity_members WHERE member_id = \(bind: p.id)").run()
        for group in Set(draft.groups) {
            try await sql.raw("INSERT INTO identity_members (group_id, member_id) VALUES (\(bind: group), \(bind: p.id))").run()
        }
    }

    func bootstrap() async throws {
        let s = try await snapshot()
        var adminID = s.named(.user, Self.adminUser)?.id
        if adminID == nil {
            let admin = try await create(.user, ["userName": .string(Self.adminUser), "displayName": .string("Workspace admin")])
            adminID = admin.principal.id
        }
        if s.named(.group, Caller.adminsGroup) == nil, let adminID {
            _ = try await create(.group, ["displayName": .string(Caller.adminsGroup), "members": .array([.object(["value": .string(adminID)])])])
        }
    }

    static func isBootstrap(_ p: Principal) -> Bool {
        (p.kind == .user && p.name == adminUser) || (p.kind == .group && p.name == Caller.adminsGroup)
    }

    static func newID() -> String { String(Int64.random(in: 1_000_000_000_000_000...8_999_999_999_999_999)) }

    static func missing(_ kind: PrincipalKind, _ id: String) -> KilnError {
        KilnError.notFound("\(kind.resourceType) \(id) does not exist")
    }

    static func text(_ value: JSONValue?, _ name: String) throws -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let s)?: return s
        case .number(let n)?: return n
        case let other?: throw KilnError.invalid("\(name) must be a string, not \(other.typeName)")
        }
    }

    static func flag(_ value: JSONValue?, _ name: String) throws -> Bool? {
        switch value {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        case .string(let s)? where ["true", "false"].contains(s.lowercased()): return s.lowercased() == "true"
        case let other?: throw KilnError.invalid("\(name) must be true or false, not \(other.typeName)")
        }
    }

    /// The ids of a list of references (`[{"value": "123"}]`; plain strings are taken as ids too).
    static func ids(_ value: JSONValue, _ name: String) throws -> [String] {
        let items: [JSONValue]
        switch value {
        case .array(let a): items = a
        case .object: items = [value]
        case .null: items = []
        default: throw KilnError.invalid("\(name) must be a list of {\"value\": id}")
        }
        return try items.map { item in
            switch item {
            case .object(let o):
                guard let id = try text(o["value"], "\(name).value"), !id.isEmpty else { throw KilnError.invalid("Each of \(name) needs a value (an id)") }
                return id
            case .string(let s): return s
            default: throw KilnError.invalid("\(name) must be a list of {\"value\": id}")
            }
        }
    }

    static func checked(_ key: String, _ value: JSONValue) throws -> JSONValue {
        switch (key, value) {
        case ("name", .object): return value
        case ("name", _): throw KilnError.invalid("name must be an object such as {\"givenName\": \"Ada\", \"familyName\": \"Lovelace\"}")
        case (_, .array(let items)):
            for item in items {
                guard case .object(let o) = item, case .string? = o["value"] else {
                    throw KilnError.invalid("Each of \(key) must be an object with a string value")
                }
            }
            return value
        default: throw KilnError.invalid("\(key) must be a list of objects with a value")
        }
    }
}
