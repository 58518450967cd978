import Foundation
import Hummingbird
import HummingbirdTesting
import KilnCatalog
import KilnCore
import KilnPlatform
@testable import KilnServer
import KilnTestSupport
import Prometheus
import Testing

/// The Unity Catalog authorization matrix (`authz_matrix.json`) over HTTP: each operation's requests (the REST API,
/// SQL through the statements API, the Files API, temporary credentials) sent as eight principals — anonymous, an
/// admin, the catalog's owner, the schema's owner, the object's owner, a direct grantee, a member of a granted group
/// and a stranger — then, for a grantee, with every single privilege at every level it can be granted (with and
/// without the USE chain), and with each member of a sufficient set knocked out. Expectations come only from the
/// file: allowed means 2xx (a statement SUCCEEDED; a list names the object), denied 403, anonymous 401; anything
/// else is reported.
@Suite("Unity Catalog permissions over HTTP, every operation")
struct CatalogMatrixTests {
    static let matrix = AuthzMatrix.shared

    enum Outcome: Equatable, CustomStringConvertible {
        case allowed, denied, unauthorized, other(String)
        var description: String {
            switch self {
            case .allowed: "allowed"
            case .denied: "denied"
            case .unauthorized: "401"
            case .other(let what): what
            }
        }
    }

    final class World: @unchecked Sendable {
        let platform: Platform
        let client: any TestClientProtocol
        var tokens: [String: String] = ["admin": "secret"]
        var names: [String: String] = [:]
        var ids: [String: String] = [:]
        var counter = 0

        init(platform: Platform, client: any TestClientProtocol) {
            self.platform = platform
            self.client = client
        }

        func user(_ role: String, groups: [String] = []) async throws {
            (names[role], tokens[role]) = try await platform.testUser(role, groups: groups)
        }

        func call(_ method: HTTPRequest.Method, _ uri: String, _ body: Any?, as role: String?) async throws -> (HTTPResponse.Status, [String: Any]) {
            var headers: HTTPFields = [:]
            if let role { headers[.authorization] = "Bearer \(tokens[role]!)" }
            let buffer = try body.map { ByteBuffer(data: try JSONSerialization.data(withJSONObject: $0)) }
            return try await client.execute(uri: uri, method: method, headers: headers, body: buffer) { response in
                (response.status, (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any] ?? [:])
            }
        }

        func sql(_ statement: String, as role: String? = "admin") async throws -> (HTTPResponse.Status, [String: Any]) {
            try await call(.post, "/api/2.0/sql/statements", ["statement": statement, "warehouse_id": "kiln", "wait_timeout": "30s"], as: role)
        }

        /// Runs a statement as the admin; it must succeed.
        func admin(_ statement: String) async throws {
            let (status, body) = try await sql(statement)
            guard status == .ok, (body["status"] as? [String: Any])?["state"] as? String == "SUCCEEDED" else {
                throw KilnError.invalid("setup statement failed: \(statement): \(status.code) \(body)")
            }
        }

        func adminCall(_ method: HTTPRequest.Method, _ uri: String, _ body: Any? = nil) async throws -> [String: Any] {
            let (status, out) = try await call(method, uri, body, as: "admin")
            guard status.code < 300 else { throw KilnError.invalid("setup call failed: \(method) \(uri): \(status.code) \(out)") }
            return out
        }

        /// Catalog `c` (cat_owner), schema `c.s` (schema_owner), and in it table `t`, function `f` and volume `v`
        /// holding `hello.txt` (object_owner).
        func build() async throws {
            try await admin("CREATE CATALOG c")
            try await admin("CREATE SCHEMA c.s")
            _ = try await adminCall(.patch, "/api/2.1/unity-catalog/catalogs/c", ["owner": names["cat_owner"]!])
            _ = try await adminCall(.patch, "/api/2.1/unity-catalog/schemas/c.s", ["owner": names["schema_owner"]!])
            for type in [SecurableType.table, .function, .volume, .model] { try await make(type) }
        }

        /// Makes (or makes again) the object of `type` in `c.s`, owned by object_owner, and remembers its id.
        func make(_ type: SecurableType) async throws {
            let owner = names["object_owner"]!
            switch type {
            case .table:
                try await admin("DROP TABLE IF EXISTS c.s.t")
                try await admin("CREATE TABLE c.s.t (a INT)")
                _ = try await adminCall(.patch, "/api/2.1/unity-catalog/tables/c.s.t", ["owner": owner])
                ids["table_id"] = try await adminCall(.get, "/api/2.1/unity-catalog/tables/c.s.t")["table_id"] as? String
            case .function:
                try await admin("DROP FUNCTION IF EXISTS c.s.f")
                try await admin("CREATE FUNCTION c.s.f(x INT) RETURNS INT RETURN x + 1")
                _ = try await adminCall(.patch, "/api/2.1/unity-catalog/functions/c.s.f", ["owner": owner])
            case .volume:
                _ = try? await adminCall(.delete, "/api/2.1/unity-catalog/volumes/c.s.v")
                _ = try await adminCall(.post, "/api/2.1/unity-catalog/volumes", ["catalog_name": "c", "schema_name": "s", "name": "v", "volume_type": "MANAGED"])
                _ = try await adminCall(.patch, "/api/2.1/unity-catalog/volumes/c.s.v", ["owner": owner])
                ids["volume_id"] = try await adminCall(.get, "/api/2.1/unity-catalog/volumes/c.s.v")["volume_id"] as? String
                let (status, _) = try await client.execute(uri: "/api/2.0/fs/files/Volumes/c/s/v/hello.txt", method: .put,
                                                           headers: [.authorization: "Bearer secret"], body: ByteBuffer(string: "hello")) { ($0.status, 0) }
                guard status.code < 300 else { throw KilnError.invalid("could not write hello.txt: \(status.code)") }
            case .model:
                _ = try? await adminCall(.delete, "/api/2.1/unity-catalog/models/c.s.m")
                _ = try await adminCall(.post, "/api/2.1/unity-catalog/models", ["catalog_name": "c", "schema_name": "s", "name": "m"])
                _ = try await adminCall(.post, "/api/2.1/unity-catalog/models/versions",
                                        ["catalog_name": "c", "schema_name": "s", "model_name": "m", "source": "runs:/r/model"])
                _ = try await adminCall(.patch, "/api/2.1/unity-catalog/models/c.s.m/versions/1/finalize")
                _ = try await adminCall(.patch, "/api/2.1/unity-catalog/models/c.s.m", ["owner": owner])
            default: break
            }
        }

        func fullName(_ type: SecurableType) -> String { AuthzMatrix.fullName(type) }

        /// The request's text with its placeholders filled in (`{n}` a new number each time).
        func fill(_ text: String, n: Int) -> String {
            var out = text
            let values = ["{catalog}": "c", "{schema}": "c.s", "{table}": "c.s.t", "{function}": "c.s.f", "{volume}": "c.s.v", "{model}": "c.s.m",
                          "{table_id}": ids["table_id"] ?? "", "{volume_id}": ids["volume_id"] ?? "", "{object_owner}": names["object_owner"]!,
                          "{n}": "\(n)"]
            for (key, value) in values where out.contains(key) { out = out.replacingOccurrences(of: key, with: value) }
            return out
        }

        func fill(_ value: Any, n: Int) -> Any {
            switch value {
            case let s as String: return fill(s, n: n)
            case let a as [Any]: return a.map { fill($0, n: n) }
            case let o as [String: Any]: return o.mapValues { fill($0, n: n) }
            default: return value
            }
        }

        /// Sends one of an operation's requests as `role` and says what came of it.
        func perform(_ request: AuthzMatrix.Request, as role: String?) async throws -> Outcome {
            counter += 1
            let n = counter
            let status: HTTPResponse.Status, body: [String: Any]
            if let statement = request.sql {
                (status, body) = try await sql(fill(statement, n: n), as: role)
            } else {
                (status, body) = try await call(HTTPRequest.Method(request.method!)!, fill(request.path!, n: n), request.body.map { fill($0.value, n: n) }, as: role)
            }
            switch status.code {
            case 401: return .unauthorized
            case 403: return .denied
            case 200..<300:
                if request.sql != nil, let state = (body["status"] as? [String: Any])?["state"] as? String, state != "SUCCEEDED" {
                    return .other("statement \(state): \(body)")
                }
                if let listed = request.listed {
                    let names = (body[listed.key] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
                    return names.contains(listed.name) ? .allowed : .denied
                }
                return .allowed
            default: return .other("\(status.code) \(body["message"] ?? body)")
            }
        }

        func revokeAll() async throws {
            try await platform.database.write { sql in try await sql.raw("DELETE FROM uc_grants").run() }
        }

        func grant(_ privilege: String, on type: SecurableType, to principal: String) async throws {
            let path = try await platform.catalog.path(type, fullName(type))
            try await platform.catalog.updatePermissions(path, changes: [(principal, [try Privilege(parsing: privilege)], [])], caller: nil)
        }
    }

    /// Runs `body` against a fresh server whose world is built, with the eight principals' users made.
    func withWorld(_ body: @escaping @Sendable (World) async throws -> [String]) async throws {
        let dir = try TemporaryDirectory()
        let platform = try await Platform.open(KilnConfiguration(home: dir.url, port: 0, adminToken: "secret"), logger: TestStores.logger)
        let app = Application(router: buildRouter(platform: platform, registry: PrometheusCollectorRegistry()))
        let unexpected: [String]
        do {
            unexpected = try await app.test(.router) { client in
                let world = World(platform: platform, client: client)
                for role in ["cat_owner", "schema_owner", "object_owner", "grantee", "stranger"] { try await world.user(role) }
                try await world.user("member", groups: ["analysts"])
                _ = try await platform.identity.create(.group, ["displayName": .string("bystanders")])
                try await world.build()
                return try await body(world)
            }
        } catch {
            await platform.close()
            throw error
        }
        await platform.close()
        #expect(unexpected.isEmpty, "\(unexpected.count) unexpected: \(unexpected.prefix(20))")
    }

    /// Sends each of `op`'s requests as `role` after `grants` (to `grantee`), expecting `expected`.
    static func check(_ world: World, _ op: AuthzMatrix.Operation, as role: String?, grants: [(String, SecurableType)], to grantee: String?,
                      expected: Outcome, label: String, into unexpected: inout [String]) async throws {
        var dirty = false
        for request in op.http {
            if op.fresh == true, dirty { try await world.make(op.target) }
            try await world.revokeAll()
            if let grantee { for (p, level) in grants { try await world.grant(p, on: level, to: grantee) } }
            let got = try await world.perform(request, as: role)
            dirty = got == .allowed
            if got != expected {
                unexpected.append("\(op.name) [\(request.sql ?? "\(request.method!) \(request.path!)")] \(label): \(got), expected \(expected)")
            }
        }
        if op.fresh == true, dirty { try await world.make(op.target) }
    }

    /// The grants that let a grantee do `op`: its smallest sufficient set, or its first sufficient grant.
    static func enough(_ op: AuthzMatrix.Operation) -> [(String, SecurableType)] {
        if let set = matrix.sufficientSet(op) { return set }
        let parts = op.sufficient[0].split(separator: "@").map(String.init)
        return [(parts[0], parts.count == 2 ? try! SecurableType(parsing: parts[1]) : op.target)]
    }

    @Test("eight principals: anonymous 401; admin, owners above and of the object, a grantee and a group member pass; a stranger 403")
    func principals() async throws {
        try await withWorld { world in
            var unexpected: [String] = []
            for op in Self.matrix.operations {
                let roles: [(String?, Outcome, String?)] = [
                    (nil, .unauthorized, nil), ("stranger", .denied, nil), ("admin", .allowed, nil),
                    ("cat_owner", AuthzMatrix.ownerMay(.catalog, op) ? .allowed : .denied, nil),
                    ("schema_owner", AuthzMatrix.ownerMay(.schema, op) ? .allowed : .denied, nil),
                    ("object_owner", AuthzMatrix.ownerMay(.table, op) ? .allowed : .denied, nil),
                    ("grantee", .allowed, world.names["grantee"]!), ("member", .allowed, "analysts"),
                ]
                for (role, expected, grantee) in roles {
                    try await Self.check(world, op, as: role, grants: Self.enough(op), to: grantee, expected: expected,
                                         label: "as \(role ?? "anonymous")", into: &unexpected)
                }
            }
            return unexpected
        }
    }

    @Test("every single privilege at every level, with and without the USE chain, decides as the file says")
    func everyPrivilege() async throws {
        try await withWorld { world in
            var unexpected: [String] = []
            var cases = 0
            for op in Self.matrix.operations {
                for level in AuthzMatrix.levels {
                    for p in Self.matrix.privileges where level.grantable.contains(p) {
                        for withChain in [false, true] {
                            let grants = [(p, level)] + (withChain ? [("USE_CATALOG", .catalog), ("USE_SCHEMA", .schema)] : [])
                            let expected: Outcome = Self.matrix.satisfied(op, by: grants) ? .allowed : .denied
                            cases += 1
                            try await Self.check(world, op, as: "grantee", grants: grants, to: world.names["grantee"]!, expected: expected,
                                                 label: "with \(p) on \(level)\(withChain ? " + USE chain" : "")", into: &unexpected)
                        }
                    }
                }
            }
            #expect(cases > 1500)
            return unexpected
        }
    }

    @Test("knocking out each member of a sufficient set denies, directly and through a group")
    func knockouts() async throws {
        try await withWorld { world in
            var unexpected: [String] = []
            for op in Self.matrix.operations {
                guard let set = Self.matrix.sufficientSet(op) else { continue }
                for (role, grantee) in [("grantee", world.names["grantee"]!), ("member", "analysts")] {
                    for skipped in set.indices {
                        let rest = set.enumerated().filter { $0.offset != skipped }.map(\.element)
                        if Self.matrix.satisfied(op, by: rest) { unexpected.append("the file lets \(op.name) happen without \(set[skipped].0)") }
                        try await Self.check(world, op, as: role, grants: rest, to: grantee, expected: .denied,
                                             label: "as \(role) without \(set[skipped].0)", into: &unexpected)
                    }
                }
            }
            return unexpected
        }
    }
}
