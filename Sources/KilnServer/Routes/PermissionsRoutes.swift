import Hummingbird
import KilnCore
import KilnPermissions

/// Workspace object permissions, `/api/2.0/permissions/{experiments|registered-models|serving-endpoints|jobs}/{id}`,
/// as databricks-sdk's `w.permissions`, `w.experiments.*_permissions`, `w.model_registry.*_permissions`,
/// `w.serving_endpoints.*_permissions` and `w.jobs.*_permissions` call them. Reading a list takes the object's lowest
/// level; changing it takes `CAN_MANAGE`. Registered models and serving endpoints are named by name (an endpoint's
/// id works too); experiments and jobs by id.
struct PermissionsRoutes: Sendable {
    let permissions: WorkspacePermissions
    /// The id permissions are kept under, for an object named in a path; nil when there is no such object.
    let resolve: @Sendable (ObjectKind, String) async throws -> String?

    func register(on router: Router<KilnRequestContext>) {
        MessageRoute.register([
            MessageRoute(.get, "permissions/{object_type}/{object_id}", get),
            MessageRoute(.put, "permissions/{object_type}/{object_id}") { try await change($0, replace: true) },
            MessageRoute(.patch, "permissions/{object_type}/{object_id}") { try await change($0, replace: false) },
            MessageRoute(.get, "permissions/{object_type}/{object_id}/permissionLevels", levels),
        ], prefixes: ["/api/2.0/"], on: router)
    }

    func object(_ m: RequestMessage) async throws -> (ObjectKind, String) {
        let kind = try ObjectKind(parsing: try m.requireString("object_type"))
        let given = try m.requireString("object_id")
        guard let id = try await resolve(kind, given) else {
            throw KilnError.notFound("No \(kind.noun) with id \(given) exists")
        }
        return (kind, id)
    }

    func get(_ m: RequestMessage) async throws -> Response {
        let (kind, id) = try await object(m)
        try await permissions.require(m.caller, kind.viewLevel, kind, id)
        return .json(value: try await Self.list(kind, id, try await permissions.entries(kind, id)))
    }

    func change(_ m: RequestMessage, replace: Bool) async throws -> Response {
        let (kind, id) = try await object(m)
        var changes: [AccessEntry] = []
        if let given = m.fields["access_control_list"] {
            guard case .array(let items) = given else { throw KilnError.invalid("access_control_list must be a list") }
            for item in items {
                guard case .object(let entry) = item else { throw KilnError.invalid("Each access_control_list entry must be an object") }
                let named = PrincipalType.allCases.compactMap { type -> (PrincipalType, String)? in
                    if case .string(let name)? = entry[type.rawValue] { return (type, name) } else { return nil }
                }
                guard named.count == 1, let (type, principal) = named.first else {
                    throw KilnError.invalid("Each access_control_list entry names exactly one of user_name, group_name, service_principal_name")
                }
                guard case .string(let level)? = entry["permission_level"] else {
                    throw KilnError.invalid("Missing permission_level for \(principal); use one of \(kind.levels.joined(separator: ", "))")
                }
                changes.append(AccessEntry(principal: principal, type: type, level: level))
            }
        }
        try await permissions.change(kind, id, changes, replace: replace, caller: m.caller)
        return .json(value: try await Self.list(kind, id, try await permissions.entries(kind, id)))
    }

    func levels(_ m: RequestMessage) async throws -> Response {
        let (kind, id) = try await object(m)
        try await permissions.require(m.caller, kind.viewLevel, kind, id)
        return .json(value: .object(["permission_levels": .array(kind.levels.map {
            .object(["permission_level": .string($0), "description": .string(kind.describe($0))])
        })]))
    }

    /// Databricks' shape: each principal with `all_permissions`; the admins' group holds `CAN_MANAGE` inherited from
    /// the workspace.
    static func list(_ kind: ObjectKind, _ id: String, _ entries: [AccessEntry]) throws -> JSONValue {
        let root = "/\(kind.rawValue)/"
        var acl: [JSONValue] = entries.map { entry in
            var o: [String: JSONValue] = [entry.type.rawValue: .string(entry.principal),
                                          "all_permissions": .array([.object(["permission_level": .string(entry.level), "inherited": .bool(false)])])]
            if entry.type != .group { o["display_name"] = .string(entry.principal) }
            return .object(o)
        }
        acl.append(.object(["group_name": .string(Caller.adminsGroup), "all_permissions": .array([.object([
            "permission_level": .string(kind.manageLevel), "inherited": .bool(true), "inherited_from_object": .array([.string(root)]),
        ])])]))
        return .object(["object_id": .string(root + id), "object_type": .string(kind.objectType), "access_control_list": .array(acl)])
    }
}
