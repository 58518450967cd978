import ArgumentParser
import Foundation

/// SCIM resources on a running server, found by name (`userName`, group `displayName`, `applicationId`).
struct Directory {
    let client: KilnClient
    static let scim = "api/2.0/preview/scim/v2/"

    enum Kind: String {
        case user = "Users", group = "Groups", servicePrincipal = "ServicePrincipals"
        var nameAttribute: String { self == .user ? "userName" : self == .group ? "displayName" : "applicationId" }
        var noun: String { self == .user ? "user" : self == .group ? "group" : "service principal" }
        var listCommand: String { self == .user ? "kiln users list" : self == .group ? "kiln groups list" : "kiln service-principals list" }
    }

    func list(_ kind: Kind, filter: String? = nil) async throws -> [[String: Any]] {
        var query = [("count", "10000")]
        if let filter { query.append(("filter", filter)) }
        return try await client.call("GET", Self.scim + kind.rawValue, query: query)["Resources"] as? [[String: Any]] ?? []
    }

    /// The resource of `kind` named `name`, or nil.
    func find(_ kind: Kind, _ name: String) async throws -> [String: Any]? {
        let quoted = name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return try await list(kind, filter: "\(kind.nameAttribute) eq \"\(quoted)\"").first
    }

    /// The resource of `kind` named `name`. - Throws: saying how to see the names there are.
    func require(_ kind: Kind, _ name: String) async throws -> [String: Any] {
        guard let found = try await find(kind, name) else {
            throw CLIError("There is no \(kind.noun) named '\(name)'. See them with `\(kind.listCommand)`.")
        }
        return found
    }

    /// A user, group or service principal named `name` (tried in that order).
    func member(_ name: String) async throws -> [String: Any] {
        for kind in [Kind.user, .group, .servicePrincipal] { if let found = try await find(kind, name) { return found } }
        throw CLIError("No user, group or service principal is named '\(name)'. See them with `kiln users list`, `kiln groups list`.")
    }

    func patch(_ kind: Kind, _ id: String, _ operations: [[String: Any]]) async throws -> [String: Any] {
        try await client.call("PATCH", Self.scim + "\(kind.rawValue)/\(id)",
                              body: ["schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations])
    }

    /// Deletes the resource of `kind` named `name`. - Throws: when there is none.
    func delete(_ kind: Kind, named name: String) async throws {
        let id = try await require(kind, name)["id"] as? String ?? ""
        _ = try await client.call("DELETE", Self.scim + "\(kind.rawValue)/\(id)")
    }

    /// Adds `member` (a user, group or service principal, by name) to `group`, or takes it out.
    func changeMembership(_ group: String, _ member: String, add: Bool) async throws {
        let g = try await require(.group, group), m = try await self.member(member)
        let id = m["id"] as? String ?? ""
        _ = try await patch(.group, g["id"] as? String ?? "",
                            [add ? ["op": "add", "path": "members", "value": [["value": id]]] : ["op": "remove", "path": "members[value eq \"\(id)\"]"]])
    }

    static func names(_ refs: Any?) -> String {
        ((refs as? [[String: Any]]) ?? []).compactMap { $0["display"] as? String }.joined(separator: ", ")
    }
}

struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users", abstract: "Manage users on a running server (SCIM). Changing them takes an admin token.",
        subcommands: [List.self, Get.self, Create.self, Disable.self, Enable.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List users.")
        @OptionGroup var client: ClientOptions
        @Option(help: "SCIM filter, e.g. 'userName sw \"ada\"'.") var filter: String?

        func run() async throws {
            let users = try await Directory(client: client.client()).list(.user, filter: filter)
            if client.json { return try printJSON(users) }
            printTable(["ID", "USER NAME", "DISPLAY NAME", "ACTIVE", "GROUPS"], users.map { u in
                [u["id"] as? String ?? "", u["userName"] as? String ?? "", u["displayName"] as? String ?? "",
                 (u["active"] as? Bool ?? true) ? "yes" : "no", Directory.names(u["groups"])]
            })
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "get", abstract: "Show one user.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The user's userName.") var name: String

        func run() async throws {
            let user = try await Directory(client: client.client()).require(.user, name)
            if client.json { return try printJSON(user) }
            printTable(["FIELD", "VALUE"], [
                ["id", user["id"] as? String ?? ""], ["userName", user["userName"] as? String ?? ""],
                ["displayName", user["displayName"] as? String ?? ""], ["active", (user["active"] as? Bool ?? true) ? "yes" : "no"],
                ["groups", Directory.names(user["groups"])],
            ])
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create", abstract: "Create a user; give them a token with `kiln tokens create --for NAME`.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The userName (usually an email address).") var name: String
        @Option(help: "The name people see.") var displayName: String?
        @Option(help: "An email address (default: the userName when it is one).") var email: String?

        func run() async throws {
            var body: [String: Any] = ["schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name]
            if let displayName { body["displayName"] = displayName }
            if let address = email ?? (name.contains("@") ? name : nil) { body["emails"] = [["value": address, "primary": true]] }
            let user = try await client.client().call("POST", Directory.scim + "Users", body: body)
            if client.json { return try printJSON(user) }
            print("Created user '\(name)' with id \(user["id"] as? String ?? "?"). Give them a token: kiln tokens create --for \(name)")
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "disable", abstract: "Disable a user and revoke their tokens.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The user's userName.") var name: String

        func run() async throws { try await setActive(client, name, false) }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "enable", abstract: "Enable a disabled user.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The user's userName.") var name: String

        func run() async throws { try await setActive(client, name, true) }
    }

    static func setActive(_ options: ClientOptions, _ name: String, _ active: Bool) async throws {
        let directory = Directory(client: try options.client())
        let user = try await directory.require(.user, name)
        let updated = try await directory.patch(.user, user["id"] as? String ?? "", [["op": "replace", "path": "active", "value": active]])
        if options.json { return try printJSON(updated) }
        print(active ? "Enabled user '\(name)'." : "Disabled user '\(name)'; their tokens are revoked.")
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a user, their memberships and tokens.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The user's userName.") var name: String

        func run() async throws {
            try await Directory(client: try client.client()).delete(.user, named: name)
            print("Deleted user '\(name)'.")
        }
    }
}

struct Groups: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "groups", abstract: "Manage groups on a running server (SCIM); groups may contain groups.",
        subcommands: [List.self, Get.self, Create.self, AddMember.self, RemoveMember.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List groups.")
        @OptionGroup var client: ClientOptions
        @Option(help: "SCIM filter, e.g. 'displayName co \"data\"'.") var filter: String?

        func run() async throws {
            let groups = try await Directory(client: client.client()).list(.group, filter: filter)
            if client.json { return try printJSON(groups) }
            printTable(["ID", "NAME", "MEMBERS", "IN GROUPS"], groups.map { g in
                [g["id"] as? String ?? "", g["displayName"] as? String ?? "", Directory.names(g["members"]), Directory.names(g["groups"])]
            })
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "get", abstract: "Show one group and its members.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The group's name.") var name: String

        func run() async throws {
            let group = try await Directory(client: client.client()).require(.group, name)
            if client.json { return try printJSON(group) }
            printTable(["MEMBER ID", "MEMBER"], ((group["members"] as? [[String: Any]]) ?? []).map {
                [$0["value"] as? String ?? "", $0["display"] as? String ?? ""]
            })
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a group.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The group's name.") var name: String

        func run() async throws {
            let group = try await client.client().call("POST", Directory.scim + "Groups", body: ["displayName": name])
            if client.json { return try printJSON(group) }
            print("Created group '\(name)' with id \(group["id"] as? String ?? "?").")
        }
    }

    struct AddMember: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add-member", abstract: "Add a user, group or service principal to a group.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The group's name.") var group: String
        @Argument(help: "A userName, group name or applicationId.") var member: String

        func run() async throws {
            try await Directory(client: try client.client()).changeMembership(group, member, add: true)
            print("Added '\(member)' to '\(group)'.")
        }
    }

    struct RemoveMember: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove-member", abstract: "Take a member out of a group.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The group's name.") var group: String
        @Argument(help: "A userName, group name or applicationId.") var member: String

        func run() async throws {
            try await Directory(client: try client.client()).changeMembership(group, member, add: false)
            print("Removed '\(member)' from '\(group)'.")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a group (its members stay).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The group's name.") var name: String

        func run() async throws {
            try await Directory(client: try client.client()).delete(.group, named: name)
            print("Deleted group '\(name)'.")
        }
    }
}

struct ServicePrincipals: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service-principals", abstract: "Manage service principals (identities for automation) on a running server.",
        subcommands: [List.self, Create.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List service principals.")
        @OptionGroup var client: ClientOptions

        func run() async throws {
            let principals = try await Directory(client: client.client()).list(.servicePrincipal)
            if client.json { return try printJSON(principals) }
            printTable(["ID", "APPLICATION ID", "DISPLAY NAME", "ACTIVE"], principals.map { p in
                [p["id"] as? String ?? "", p["applicationId"] as? String ?? "", p["displayName"] as? String ?? "",
                 (p["active"] as? Bool ?? true) ? "yes" : "no"]
            })
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create", abstract: "Create a service principal; give it a token with `kiln tokens create --for APPLICATION_ID`.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The name people see.") var displayName: String
        @Option(help: "Its applicationId (default: a new UUID).") var applicationId: String?

        func run() async throws {
            var body: [String: Any] = ["displayName": displayName]
            if let applicationId { body["applicationId"] = applicationId }
            let sp = try await client.client().call("POST", Directory.scim + "ServicePrincipals", body: body)
            if client.json { return try printJSON(sp) }
            print("Created service principal '\(displayName)' with applicationId \(sp["applicationId"] as? String ?? "?").")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a service principal and its tokens.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Its applicationId.") var applicationId: String

        func run() async throws {
            try await Directory(client: try client.client()).delete(.servicePrincipal, named: applicationId)
            print("Deleted service principal '\(applicationId)'.")
        }
    }
}

struct Tokens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens", abstract: "Personal access tokens: create (shown once), list, revoke.",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create", abstract: "Create a token for yourself, or (admins) for a user or service principal with --for.")
        @OptionGroup var client: ClientOptions
        @Option(name: .customLong("for"), help: "A userName or applicationId to issue the token to (admin only).") var owner: String?
        @Option(help: "Seconds until it expires (default: never).") var lifetime: Int?
        @Option(help: "What the token is for.") var comment: String?

        func run() async throws {
            let api = try client.client()
            var body: [String: Any] = [:]
            if let lifetime { body["lifetime_seconds"] = lifetime }
            if let comment { body["comment"] = comment }
            let response: [String: Any]
            if let owner {
                let directory = Directory(client: api)
                if try await directory.find(.user, owner) != nil { body["user_name"] = owner }
                else { body["application_id"] = try await directory.require(.servicePrincipal, owner)["applicationId"] }
                response = try await api.call("POST", "api/2.0/token-management/on-behalf-of/tokens", body: body)
            } else {
                response = try await api.call("POST", "api/2.0/token/create", body: body)
            }
            if client.json { return try printJSON(response) }
            print(response["token_value"] as? String ?? "")
            FileHandle.standardError.write(Data("This token is shown once; store it now (e.g. as KILN_TOKEN or DATABRICKS_TOKEN).\n".utf8))
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List your tokens, or every token with --all (admin).")
        @OptionGroup var client: ClientOptions
        @Flag(help: "Every token in the workspace, with owners.") var all = false

        func run() async throws {
            let response = try await client.client().call("GET", all ? "api/2.0/token-management/tokens" : "api/2.0/token/list")
            let infos = response["token_infos"] as? [[String: Any]] ?? []
            if client.json { return try printJSON(infos) }
            printTable(["TOKEN ID", "CREATED", "EXPIRES", "CREATED BY", "COMMENT"], infos.map { t in
                let expiry = (t["expiry_time"] as? NSNumber)?.int64Value ?? -1
                return [t["token_id"] as? String ?? "", formatTime(t["creation_time"]), expiry < 0 ? "never" : formatTime(t["expiry_time"]),
                        t["created_by_username"] as? String ?? "", t["comment"] as? String ?? ""]
            })
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a token by id (admins: anyone's).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The token's id (from `kiln tokens list`).") var tokenID: String
        @Flag(help: "Revoke someone else's token (admin).") var any = false

        func run() async throws {
            let api = try client.client()
            if any { _ = try await api.call("DELETE", "api/2.0/token-management/tokens/\(tokenID)") }
            else { _ = try await api.call("POST", "api/2.0/token/delete", body: ["token_id": tokenID]) }
            print("Revoked token \(tokenID).")
        }
    }
}
