import Foundation
import Hummingbird
import HummingbirdTesting
import KilnCore
import KilnPlatform
import KilnServer
import KilnTestSupport
import Prometheus
import Testing

@Suite("HTTP routes through the router, in-process")
struct RouterTests {
    static func withApp(_ body: @Sendable (any TestClientProtocol, String) async throws -> Void) async throws {
        let dir = try TemporaryDirectory()
        let configuration = KilnConfiguration(home: dir.url, port: 0, adminToken: "secret")
        let platform = try await Platform.open(configuration, logger: TestStores.logger)
        let router = buildRouter(platform: platform, registry: PrometheusCollectorRegistry())
        let app = Application(router: router)
        do {
            try await app.test(.router) { client in try await body(client, "Bearer secret") }
        } catch {
            await platform.close()
            throw error
        }
        await platform.close()
    }

    static func json(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any] ?? [:]
    }

    @Test("requests without the admin token are 401 UNAUTHENTICATED; /health is public")
    func auth() async throws {
        try await Self.withApp { client, token in
            try await client.execute(uri: "/api/2.0/mlflow/experiments/search", method: .post) { response in
                #expect(response.status == .unauthorized)
                #expect(Self.json(response.body)["error_code"] as? String == "UNAUTHENTICATED")
            }
            try await client.execute(uri: "/api/2.0/mlflow/experiments/search", method: .post,
                                     headers: [.authorization: "Bearer wrong"]) { response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(uri: "/api/2.0/mlflow/experiments/search", method: .post, headers: [.authorization: token]) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test("every API route has an access rule (a route without one is for admins only)")
    func everyRouteHasARule() async throws {
        try await Self.withApp { _, _ in
            #expect(routesWithoutAccessRules() == [])
        }
    }

    @Test("docs/permissions.md shows the access rules the code applies (KILN_WRITE_DOCS=1 rewrites it)")
    func accessRulesAreDocumented() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/permissions.md").standardized
        let text = try String(contentsOf: url, encoding: .utf8)
        let begin = "<!-- access-rules:begin -->\n", end = "<!-- access-rules:end -->"
        let start = try #require(text.range(of: begin)), stop = try #require(text.range(of: end))
        let documented = String(text[start.upperBound..<stop.lowerBound])
        if ProcessInfo.processInfo.environment["KILN_WRITE_DOCS"] == "1", documented != accessRulesMarkdown() {
            try (String(text[..<start.upperBound]) + accessRulesMarkdown() + String(text[stop.lowerBound...])).write(to: url, atomically: true, encoding: .utf8)
            return
        }
        #expect(documented == accessRulesMarkdown())
    }

    @Test("a duplicate experiment is 400 RESOURCE_ALREADY_EXISTS on MLflow routes, as mlflow sends it")
    func duplicateIs400() async throws {
        try await Self.withApp { client, token in
            let body = ByteBuffer(string: #"{"name": "dup"}"#)
            try await client.execute(uri: "/api/2.0/mlflow/experiments/create", method: .post, headers: [.authorization: token], body: body) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/ajax-api/2.0/mlflow/experiments/create", method: .post, headers: [.authorization: token], body: body) { response in
                #expect(response.status == .badRequest)
                #expect(Self.json(response.body)["error_code"] as? String == "RESOURCE_ALREADY_EXISTS")
            }
        }
    }

    @Test("malformed JSON and wrong types are 400 INVALID_PARAMETER_VALUE; unknown routes 404 ENDPOINT_NOT_FOUND")
    func badInput() async throws {
        try await Self.withApp { client, token in
            for body in [#"{"name": "#, #"{"name": ["a"]}"#, "[]"] {
                try await client.execute(uri: "/api/2.0/mlflow/experiments/create", method: .post, headers: [.authorization: token],
                                         body: ByteBuffer(string: body)) { response in
                    #expect(response.status == .badRequest)
                    #expect(Self.json(response.body)["error_code"] as? String == "INVALID_PARAMETER_VALUE")
                }
            }
            try await client.execute(uri: "/api/2.0/mlflow/nothing-here", method: .get, headers: [.authorization: token]) { response in
                #expect(response.status == .notFound)
                #expect(Self.json(response.body)["error_code"] as? String == "ENDPOINT_NOT_FOUND")
            }
        }
    }

    @Test("GET messages come from the query string, with + as space and repeated keys")
    func queryMessages() async throws {
        try await Self.withApp { client, token in
            try await client.execute(uri: "/api/2.0/mlflow/experiments/create", method: .post, headers: [.authorization: token],
                                     body: ByteBuffer(string: #"{"name": "my exp"}"#)) { _ in }
            try await client.execute(uri: "/api/2.0/mlflow/experiments/get-by-name?experiment_name=my+exp", method: .get,
                                     headers: [.authorization: token]) { response in
                #expect(response.status == .ok)
                let experiment = Self.json(response.body)["experiment"] as? [String: Any]
                #expect(experiment?["name"] as? String == "my exp")
            }
        }
    }

    @Test("artifacts upload, list and download through the proxy; escaping paths are refused")
    func artifacts() async throws {
        try await Self.withApp { client, token in
            let payload = ByteBuffer(bytes: (0..<100_000).map { UInt8($0 % 251) })
            try await client.execute(uri: "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/data.bin", method: .put,
                                     headers: [.authorization: token], body: payload) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/data.bin", method: .get,
                                     headers: [.authorization: token]) { response in
                #expect(response.status == .ok)
                #expect(response.body == payload)
            }
            try await client.execute(uri: "/api/2.0/mlflow-artifacts/artifacts?path=0/r/artifacts", method: .get,
                                     headers: [.authorization: token]) { response in
                let files = Self.json(response.body)["files"] as? [[String: Any]]
                #expect(files?.first?["path"] as? String == "data.bin")
                #expect(files?.first?["file_size"] as? Int == 100_000)
            }
            try await client.execute(uri: "/api/2.0/mlflow-artifacts/artifacts/%2E%2E/x", method: .put,
                                     headers: [.authorization: token], body: payload) { response in
                #expect(response.status == .badRequest)
            }
        }
    }
}
