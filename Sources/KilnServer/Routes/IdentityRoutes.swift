import Hummingbird
import KilnCore
import KilnIdentity

/// SCIM 2.0 identities (`/api/2.0/preview/scim/v2/`: Users, Groups, ServicePrincipals, Me) and personal access
/// tokens (`/api/2.0/token/*`, admin view `/api/2.0/token-management/*`), as databricks-sdk's `w.users`, `w.groups`,
/// `w.service_principals`, `w.current_user`, `w.tokens` and `w.token_management` call them. Anyone signed in may read
/// identities; changing them and managing others' tokens takes a workspace admin.
struct IdentityRoutes: Sendable {
    let identity: IdentityService

    func register(on router: Router<KilnRequestContext>) {
        var scim: [MessageRoute] = [MessageRoute(.get, "Me", me)]
        for kind in PrincipalKind.allCases {
            let path = kind.resourceType + "s"
            scim += [
                MessageRoute(.get, path) { try await list(kind, $0) },
                MessageRoute(.post, path) { try await create(kind, $0) },
                MessageRoute(.get, path + "/{id}") { try await get(kind, $0) },
                MessageRoute(.put, path + "/{id}") { try await replace(kind, $0) },
                MessageRoute(.patch, path + "/{id}") { try await patch(kind, $0) },
                MessageRoute(.delete, path + "/{id}") { try await delete(kind, $0) },
            ]
        }
        MessageRoute.register(scim, prefixes: ["/api/2.0/preview/scim/v2/"], on: router)
        MessageRoute.register([
            MessageRoute(.post, "token/create", createToken),
            MessageRoute(.get, "token/list", listTokens),
            MessageRoute(.post, "token/delete", deleteToken),
            MessageRoute(.get, "token-management/tokens", manageList),
            MessageRoute(.get, "token-management/tokens/{token_id}", manageGet),
            MessageRoute(.delete, "token-management/tokens/{token_id}", manageDelete),
            MessageRoute(.post, "token-management/on-behalf-of/tokens", createOnBehalf),
        ], prefixes: ["/api/2.0/"], on: router)
    }

    // MARK: SCIM

    func me(_ m: RequestMessage) async throws -> Response {
        guard let id = try Self.caller(m).id else { throw KilnError.notFound("A job run's token has no user; call as a user or service principal") }
        let kind: PrincipalKind = (try? await identity.get(.user, id: id)) != nil ? .user : .servicePrincipal
        return try Self.scim(try await identity.get(kind, id: id).scim, m)
    }

    func list(_ kind: PrincipalKind, _ m: RequestMessage) async throws -> Response {
        let start = try m.int("startIndex") ?? 1
        let order = try m.string("sortOrder")?.lowercased()
        guard order == nil || order == "ascending" || order == "descending" else {
            throw KilnError.invalid("sortOrder must be ascending or descending")
        }
        let (total, page) = try await identity.list(kind, filter: try m.string("filter"), startIndex: start, count: try m.int("count"),
                                                    sortBy: try m.string("sortBy"), descending: order == "descending")
        let resources = try page.map { try Self.project($0.scim, m) }
        return .json(value: .object([
            "schemas": .array([.string("urn:ietf:params:scim:api:messages:2.0:ListResponse")]),
            "totalResults": .number(String(total)),
            "startIndex": .number(String(start)),
            "itemsPerPage": .number(String(resources.count)),
            "Resources": .array(resources),
        ]))
    }

    func create(_ kind: PrincipalKind, _ m: RequestMessage) async throws -> Response {
        try Self.requireAdmin(m)
        return try Self.scim(try await identity.create(kind, m.fields).scim, m, status: .created)
    }

    func get(_ kind: PrincipalKind, _ m: RequestMessage) async throws -> Response {
        try Self.scim(try await identity.get(kind, id: try m.requireString("id")).scim, m)
    }

    func replace(_ kind: PrincipalKind, _ m: RequestMessage) async throws -> Response {
        try Self.requireAdmin(m)
        var resource = m.fields
        resource["id"] = nil
        return try Self.scim(try await identity.replace(kind, id: try m.requireString("id"), resource).scim, m)
    }

    func patch(_ kind: PrincipalKind, _ m: RequestMessage) async throws -> Response {
        try Self.requireAdmin(m)
        guard case .array(let operations)? = m.fields["Operations"] ?? m.fields["operations"] else {
            throw KilnError.invalid("A SCIM PATCH needs Operations: [{\"op\": \"add|remove|replace\", \"path\": ..., \"value\": ...}]")
        }
        return try Self.scim(try await identity.patch(kind, id: try m.requireString("id"), operations: operations).scim, m)
    }

    func delete(_ kind: PrincipalKind, _ m: RequestMessage) async throws -> Response {
        try Self.requireAdmin(m)
        try await identity.delete(kind, id: try m.requireString("id"))
        return Response(status: .noContent)
    }

    /// A resource, keeping only `attributes` or dropping `excludedAttributes` when asked (id and schemas stay).
    static func project(_ resource: JSONValue, _ m: RequestMessage) throws -> JSONValue {
        guard case .object(var object) = resource else { return resource }
        func names(_ key: String) throws -> Set<String>? {
            try m.string(key).map { Set($0.split(separator: ",").map { String($0.split(separator: ".")[0]).trimmingCharacters(in: .whitespaces).lowercased() }) }
        }
        if let keep = try names("attributes") {
            object = object.filter { keep.contains($0.key.lowercased()) || $0.key == "id" || $0.key == "schemas" }
        }
        if let drop = try names("excludedAttributes") {
            object = object.filter { !drop.contains($0.key.lowercased()) || $0.key == "id" || $0.key == "schemas" }
        }
        return .object(object)
    }

    static func scim(_ resource: JSONValue, _ m: RequestMessage, status: HTTPResponse.Status = .ok) throws -> Response {
        .json(value: try project(resource, m), status: status)
    }

    static func caller(_ m: RequestMessage) throws -> Caller {
        guard let caller = m.caller else { throw KilnError(.unauthenticated, "Sign in with a token to use this API") }
        return caller
    }

    static func requireAdmin(_ m: RequestMessage) throws {
        let caller = try caller(m)
        guard caller.isAdmin else {
            throw KilnError(.permissionDenied, "\(caller.name) is not a workspace admin; only members of '\(Caller.adminsGroup)' may do this")
        }
    }

    // MARK: Tokens

    func createToken(_ m: RequestMessage) async throws -> Response {
        let caller = try Self.caller(m)
        guard let owner = caller.id else { throw KilnError.invalid("A job run's token cannot create tokens; create them as a user") }
        let (value, info) = try await identity.createToken(owner: owner, createdBy: owner, lifetimeSeconds: try m.int64("lifetime_seconds"),
                                                           comment: try m.string("comment"))
        return .json { w in
            w.field("token_value", value)
            w.key("token_info")
            w.object { Self.write(info, admin: false, &$0) }
        }
    }

    func listTokens(_ m: RequestMessage) async throws -> Response {
        let infos = try await identity.tokens(owner: try Self.caller(m).id ?? "")
        return Self.tokenList(infos, admin: false)
    }

    func deleteToken(_ m: RequestMessage) async throws -> Response {
        try await identity.deleteToken(id: try m.requireString("token_id"), owner: try Self.caller(m).id ?? "")
        return .json { _ in }
    }

    func manageList(_ m: RequestMessage) async throws -> Response {
        try Self.requireAdmin(m)
        let infos = try await identity.tokens(createdByID: try m.string("created_by_id"), createdByName: try m.string("created_by_username"))
        return Self.tokenList(infos, admin: true)
    }

    func manageGet(_ m: RequestMessage) async throws -> Response {
        try Self.requireAdmin(m)
        let id = try m.requireString("token_id")
        guard let info = try await identity.tokens().first(where: { $0.tokenID == id }) else { throw KilnError.notFound("Token \(id) does not exist") }
        return .json { w in
            w.key("token_info")
            w.object { Self.write(info, admin: true, &$0) }
        }
    }

    func manageDelete(_ m: RequestMessage) async throws -> Response {
        try Self.requireAdmin(m)
        try await identity.deleteToken(id: try m.requireString("token_id"))
        return .json { _ in }
    }

    /// An admin issues a token for a service principal (`application_id`) or, a Kiln extension for handing a new
    /// user their first token, for a user (`user_name`).
    func createOnBehalf(_ m: RequestMessage) async throws -> Response {
        try Self.requireAdmin(m)
        let owner: Principal?
        if let application = try m.string("application_id") {
            owner = try await identity.find(.servicePrincipal, name: application)
            guard owner != nil else { throw KilnError.notFound("No service principal has applicationId \(application)") }
        } else if let user = try m.string("user_name") {
            owner = try await identity.find(.user, name: user)
            guard owner != nil else { throw KilnError.notFound("No user has userName \(user)") }
        } else {
            throw KilnError.invalid("Name the token's owner: application_id (a service principal) or user_name (a user)")
        }
        let (value, info) = try await identity.createToken(owner: owner!.id, createdBy: try Self.caller(m).id ?? owner!.id,
                                                           lifetimeSeconds: try m.int64("lifetime_seconds"), comment: try m.string("comment"))
        return .json { w in
            w.field("token_value", value)
            w.key("token_info")
            w.object { Self.write(info, admin: true, &$0) }
        }
    }

    static func tokenList(_ infos: [TokenInfo], admin: Bool) -> Response {
        .json { w in
            w.key("token_infos")
            w.array { w in for info in infos { w.object { Self.write(info, admin: admin, &$0) } } }
        }
    }

    static func write(_ info: TokenInfo, admin: Bool, _ w: inout JSONWriter) {
        w.field("token_id", info.tokenID)
        w.field("creation_time", info.creationTime)
        w.field("expiry_time", info.expiryTime)
        w.field("comment", info.comment)
        guard admin else { return }
        w.field("owner_id", Int64(info.ownerID))
        w.field("created_by_id", Int64(info.createdByID))
        w.field("created_by_username", info.createdByName)
        w.field("last_used_day", info.lastUsedDay)
    }
}
