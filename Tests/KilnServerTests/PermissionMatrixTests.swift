import Foundation
import Hummingbird
import HummingbirdTesting
import KilnCore
import KilnPermissions
import KilnPlatform
@testable import KilnServer
import KilnTestSupport
import Prometheus
import Testing

/// The workspace-object rules of `AccessRules.table`, tried over HTTP: for every route whose rule is a level on an
/// experiment, run, logged model, registered model, job or job run, fresh objects are made by their owner and the
/// route is called as anonymous, a stranger, a grantee one level short, a grantee with exactly the level, a member of
/// a group given the level, the owner and an admin. Expectations come from the table only: 401, 403, or anything but
/// 403 (the route may then say 400 or 404 about the request itself).
@Suite("Workspace permissions over HTTP, every rule")
struct PermissionMatrixTests {
    struct Principal {
        var name: String
        var token: String
    }

    final class World: @unchecked Sendable {
        let platform: Platform
        let client: any TestClientProtocol
        var principals: [String: Principal] = [:]
        var counter = 0

        init(platform: Platform, client: any TestClientProtocol) {
            self.platform = platform
            self.client = client
        }

        func user(_ role: String, groups: [String] = []) async throws {
            let (name, token) = try await platform.testUser(role, groups: groups)
            principals[role] = Principal(name: name, token: token)
        }

        func call(_ method: HTTPRequest.Method, _ path: String, _ fields: [String: JSONValue], as role: String?) async throws -> (HTTPResponse.Status, [String: Any]) {
            var uri = path, body: ByteBuffer?
            if method == .get {
                let query = fields.sorted { $0.key < $1.key }.flatMap { key, value -> [String] in
                    let values: [JSONValue] = if case .array(let items) = value { items } else { [value] }
                    return values.map { "\(key)=\(JSONValue.text($0).addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }
                }
                if !query.isEmpty { uri += "?" + query.joined(separator: "&") }
            } else {
                body = ByteBuffer(string: JSONValue.object(fields).json)
            }
            var headers: HTTPFields = [:]
            if let role { headers[.authorization] = "Bearer \(role == "admin" ? "secret" : principals[role]!.token)" }
            return try await client.execute(uri: uri, method: method, headers: headers, body: body) { response in
                (response.status, (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any] ?? [:])
            }
        }

        /// Objects owned by `owner`: an experiment with a run and a logged model, a registered model, a job with a run.
        func objects() async throws -> [String: String] {
            counter += 1
            let name = "m\(counter)"
            let (_, e) = try await call(.post, "/api/2.0/mlflow/experiments/create", ["name": .string("e\(counter)")], as: "owner")
            let experiment = e["experiment_id"] as! String
            let (_, r) = try await call(.post, "/api/2.0/mlflow/runs/create", ["experiment_id": .string(experiment)], as: "owner")
            let run = ((r["run"] as! [String: Any])["info"] as! [String: Any])["run_id"] as! String
            let (_, l) = try await call(.post, "/api/2.0/mlflow/logged-models", ["experiment_id": .string(experiment), "name": .string("lm")], as: "owner")
            let model = ((l["model"] as! [String: Any])["info"] as! [String: Any])["model_id"] as! String
            _ = try await call(.post, "/api/2.0/mlflow/registered-models/create", ["name": .string(name)], as: "owner")
            let (_, j) = try await call(.post, "/api/2.1/jobs/create", ["name": .string("j\(counter)")], as: "owner")
            let job = "\(j["job_id"] as! Int)"
            let (status, jr) = try await call(.post, "/api/2.1/jobs/run-now", ["job_id": .number(job)], as: "owner")
            #expect(status == .ok, "run-now: \(jr)")
            return ["experiment": experiment, "experiment_name": "e\(counter)", "run": run, "logged_model": model, "model": name, "job": job,
                    "job_run": "\(jr["run_id"] as? Int ?? 0)"]
        }
    }

    /// The request fields and the object a rule's target names, from `objects`.
    static func request(_ target: Target, _ o: [String: String]) -> (fields: [String: JSONValue], kind: ObjectKind, id: String) {
        switch target {
        case .experiment(let f): return ([f: .string(o["experiment"]!)], .experiments, o["experiment"]!)
        case .experiments(let f): return ([f: .array([.string(o["experiment"]!)])], .experiments, o["experiment"]!)
        case .experimentNamed(let f): return ([f: .string(o["experiment_name"]!)], .experiments, o["experiment"]!)
        case .run: return (["run_id": .string(o["run"]!)], .experiments, o["experiment"]!)
        case .loggedModel(let f): return ([f: .string(o["logged_model"]!)], .experiments, o["experiment"]!)
        case .model(let f): return ([f: .string(o["model"]!)], .registeredModels, o["model"]!)
        case .endpoint(let f): return ([f: .string("none")], .servingEndpoints, "none")
        case .job(let f): return ([f: .number(o["job"]!)], .jobs, o["job"]!)
        case .jobRun: return (["run_id": .number(o["job_run"]!)], .jobs, o["job"]!)
        }
    }

    @Test("anonymous 401; stranger and one level short 403; the level, through a group, the owner and an admin pass")
    func everyRule() async throws {
        let dir = try TemporaryDirectory()
        let platform = try await Platform.open(KilnConfiguration(home: dir.url, port: 0, adminToken: "secret"), logger: TestStores.logger)
        let app = Application(router: buildRouter(platform: platform, registry: PrometheusCollectorRegistry()))
        let unexpected: [String], cases: Int
        do {
            (unexpected, cases) = try await app.test(.router) { client in
                var unexpected: [String] = []
                var cases = 0
                let world = World(platform: platform, client: client)
                for role in ["owner", "grantee", "short", "stranger"] { try await world.user(role) }
                try await world.user("member", groups: ["team"])
                for key in AccessRules.table.keys.sorted() {
                    guard case .level(let target, let level) = AccessRules.table[key]! else { continue }
                    if case .endpoint = target { continue }  // endpoints need a servable model: tests/compat/test_permissions.py
                    let parts = key.split(separator: " ", maxSplits: 1)
                    let method = HTTPRequest.Method(String(parts[0]))!
                    let objects = try await world.objects()
                    var (fields, kind, id) = Self.request(target, objects)
                    var path = String(parts[1])
                    for (placeholder, value) in ["{model_id}": objects["logged_model"]!, "{tag_key}": "k", "{full_name}": objects["model"]!,
                                                 "{alias}": "a", "{version}": "1"] where path.contains(placeholder) {
                        path = path.replacingOccurrences(of: placeholder, with: value)
                    }
                    if path.contains("/logged-models/") { fields["model_id"] = nil }
                    let rank = kind.rank(level)!
                    let admin = Caller(id: nil, name: "admin", groups: [Caller.adminsGroup])
                    try await platform.permissions.change(kind, id, [AccessEntry(principal: world.principals["grantee"]!.name, type: .user, level: level),
                                                                     AccessEntry(principal: "team", type: .group, level: level)],
                                                          replace: false, caller: admin)
                    if rank > 0 {
                        try await platform.permissions.change(kind, id, [AccessEntry(principal: world.principals["short"]!.name, type: .user,
                                                                                     level: kind.levels[rank - 1])], replace: false, caller: admin)
                    }
                    // Refusals first: the passes may change or delete the objects.
                    var expectations: [(String?, String)] = [(nil, "401"), ("stranger", "403")]
                    if rank > 0 { expectations.append(("short", "403")) }
                    expectations += [("grantee", "pass"), ("member", "pass"), ("owner", "pass"), ("admin", "pass")]
                    for (role, expected) in expectations {
                        let (status, body) = try await world.call(method, path, fields, as: role)
                        cases += 1
                        let got = status == .unauthorized ? "401" : status == .forbidden ? "403" : "pass"
                        if got != expected { unexpected.append("\(key) as \(role ?? "anonymous"): \(status.code) \(body["message"] ?? ""), expected \(expected)") }
                    }
                }
                return (unexpected, cases)
            }
        } catch {
            await platform.close()
            throw error
        }
        await platform.close()
        #expect(cases > 300)
        #expect(unexpected.isEmpty, "\(unexpected.count) unexpected: \(unexpected.prefix(15))")
    }
}
