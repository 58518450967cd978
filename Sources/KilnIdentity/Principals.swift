import KilnCore

/// The three kinds of identity SCIM knows.
public enum PrincipalKind: String, Sendable, CaseIterable {
    case user
    case group
    case servicePrincipal = "service_principal"

    /// The SCIM resource type and the path segment under `/scim/v2/`.
    public var resourceType: String {
        switch self {
        case .user: return "User"
        case .group: return "Group"
        case .servicePrincipal: return "ServicePrincipal"
        }
    }

    /// The SCIM core schema URI of resources of this kind.
    public var schema: String { "urn:ietf:params:scim:schemas:core:2.0:\(resourceType)" }

    /// The attribute that names a principal of this kind uniquely (case-insensitively).
    var nameAttribute: String {
        switch self {
        case .user: return "userName"
        case .group: return "displayName"
        case .servicePrincipal: return "applicationId"
        }
    }

    /// Attributes stored as given (multi-valued lists and the user's `name`), beyond the columns.
    var freeAttributes: [String] {
        switch self {
        case .user: return ["emails", "name", "entitlements", "roles"]
        case .group, .servicePrincipal: return ["entitlements", "roles"]
        }
    }
}

/// A user, group or service principal as stored: the columns every kind has plus the SCIM attributes kept as sent.
public struct Principal: Sendable, Equatable {
    /// A store-issued decimal id, as Databricks' SCIM ids are.
    public let id: String
    public let kind: PrincipalKind
    /// `userName` of a user, `displayName` of a group, `applicationId` of a service principal.
    public var name: String
    public var displayName: String
    /// False disables the principal: its tokens are revoked and it cannot sign in.
    public var active: Bool
    public var externalID: String?
    /// `emails`, `name`, `entitlements`, `roles`: kept as the client sent them.
    public var attributes: [String: JSONValue]
    public var createdAt: Int64
}

/// A principal with its memberships, ready to be written as a SCIM resource.
public struct PrincipalResource: Sendable {
    public var principal: Principal
    /// Groups this principal is a direct member of.
    public var groups: [Principal]
    /// Direct members (groups only).
    public var members: [Principal]

    /// The SCIM JSON of this resource.
    public var scim: JSONValue {
        let p = principal
        var object: [String: JSONValue] = [
            "schemas": .array([.string(p.kind.schema)]),
            "id": .string(p.id),
            "displayName": .string(p.displayName),
            "meta": .object(["resourceType": .string(p.kind.resourceType)]),
        ]
        switch p.kind {
        case .user: object["userName"] = .string(p.name)
        case .servicePrincipal: object["applicationId"] = .string(p.name)
        case .group:
            object["members"] = .array(members.map { Self.reference($0) })
        }
        if p.kind != .group { object["active"] = .bool(p.active) }
        if let external = p.externalID { object["externalId"] = .string(external) }
        object["groups"] = .array(groups.map { Self.reference($0, type: "direct") })
        for (key, value) in p.attributes { object[key] = value }
        return .object(object)
    }

    static func reference(_ p: Principal, type: String? = nil) -> JSONValue {
        var ref: [String: JSONValue] = ["value": .string(p.id), "display": .string(p.displayName), "$ref": .string("\(p.kind.resourceType)s/\(p.id)")]
        if let type { ref["type"] = .string(type) }
        return .object(ref)
    }
}
