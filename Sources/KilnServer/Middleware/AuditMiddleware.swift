import HTTPTypes
import Foundation
import Hummingbird
import KilnAudit
import KilnCore
import KilnWeb
import Synchronization

/// Appends one audit event per API call, allowed or denied, with the caller, the request's fields (secret values
/// redacted), the status and the error. Calls refused for want of credentials are recorded by ``AuthMiddleware``
/// through the same ``Auditor``. (``ErrorMiddleware`` puts each request's id in its `X-Request-Id` header.)
struct AuditMiddleware: RouterMiddleware {
    typealias Context = KilnRequestContext
    let auditor: Auditor

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard auditor.audits(request) else { return try await next(request, context) }
        // Web pages sign in with a session, not a token: their user comes from the session cookie.
        let webUser = WebUI.owns(request.uri.path) ? await auditor.webCaller(request)?.name : nil
        do {
            let response = try await next(request, context)
            auditor.record(request, context: context, status: Int(response.status.code), error: nil, user: webUser)
            return response
        } catch {
            auditor.record(request, context: context, status: Auditor.status(of: error, path: request.uri.path), error: Auditor.message(of: error),
                           user: webUser)
            throw error
        }
    }
}

/// Builds audit events from requests and hands them to the log.
struct Auditor: Sendable {
    let log: AuditLog?
    let clock: any KilnClock
    /// Who a web page's session signs in.
    var webCaller: @Sendable (Request) async -> Caller? = { _ in nil }

    static let requestIDHeader = HTTPField.Name("X-Request-Id")!
    /// Keys whose values never reach the log.
    static let secretKeys: Set<String> = ["token", "token_value", "password", "secret", "client_secret", "string_value", "bytes_value",
                                          "api_key", "authorization", "access_token", "refresh_token", "credentials", "private_key"]

    /// Every API call and every change made in the web UI (its form posts); not health probes, metrics scrapes, static
    /// files or page views.
    func audits(_ request: Request) -> Bool {
        let path = request.uri.path
        guard log != nil, path != "/health", path != "/metrics" else { return false }
        return !WebUI.owns(path) || (request.method != .get && request.method != .head)
    }

    static func text(_ key: String, _ value: JSONValue) -> String {
        if secretKeys.contains(key.lowercased()) { return "[REDACTED]" }
        let text: String
        switch value {
        case .string(let s): text = s
        // Long lists (a log-batch's metrics) are counted, not copied.
        case .array(let items) where items.count > 20: return "[\(items.count) items]"
        case .array, .object: text = Self.redacted(value).json
        default: text = JSONValue.text(value)
        }
        return text.count > 1000 ? String(text.prefix(1000)) + "…" : text
    }

    static func redacted(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let o):
            return .object(Dictionary(uniqueKeysWithValues: o.map { ($0.key, secretKeys.contains($0.key.lowercased()) ? .string("[REDACTED]") : redacted($0.value)) }))
        case .array(let a): return .array(a.map(redacted))
        default: return value
        }
    }

    /// Queues the request's event; its formatting (names, params, ids) happens on the audit writer, not here.
    func record(_ request: Request, context: KilnRequestContext, status: Int, error: String?, user override: String? = nil) {
        guard let log else { return }
        let method = request.method.rawValue, path = context.endpointPath ?? request.uri.path, query = request.uri.query ?? ""
        let fields = context.auditFields.value, user = override ?? context.caller?.name, address = context.remoteAddress
        let agent = request.headers[.userAgent], requestID = context.requestID, time = clock.nowMillis()
        log.record {
            let (service, action) = Self.names(method: method, path: path)
            var params: [String: String] = [:]
            for (key, value) in fields ?? RequestMessage.parseQuery(query) { params[key] = Self.text(key, value) }
            return AuditEvent(eventTime: time, serviceName: service, actionName: action, userName: user, sourceIP: address, userAgent: agent,
                              requestID: requestID, requestParams: params, statusCode: status, errorMessage: error)
        }
    }

    /// Service and action names by method and route (routes are few: the names are made once each).
    static let nameCache = Mutex<[String: (String, String)]>([:])

    /// Databricks' service names by API family; the action is the method and the route's fixed segments, camel-cased
    /// (`POST /api/2.0/mlflow/runs/log-metric` → `postRunsLogMetric`).
    static func names(method: String, path: String) -> (String, String) {
        let key = method + " " + path
        if let known = nameCache.withLock({ $0[key] }) { return known }
        let made = makeNames(method: method, path: path)
        nameCache.withLock { table in
            if table.count > 10_000 { table.removeAll() }  // paths that are not route templates (404s) must not grow it
            table[key] = made
        }
        return made
    }

    static func makeNames(method: String, path: String) -> (String, String) {
        let families: [(String, String)] = [
            ("/preview/scim/", "accounts"), ("/token", "accounts"), ("/mlflow/registered-models", "modelRegistry"),
            ("/mlflow/model-versions", "modelRegistry"), ("/mlflow/registry-webhooks", "modelRegistry"), ("/mlflow/transition-requests", "modelRegistry"),
            ("/mlflow/comments", "modelRegistry"), ("/mlflow-artifacts", "mlflowAcledArtifact"), ("/mlflow/", "mlflowExperiment"),
            ("/jobs", "jobs"), ("/sql/", "databrickssql"), ("/serving-endpoints", "serving"), ("/unity-catalog/", "unityCatalog"),
            ("/fs/", "filesystem"), ("/notification-destinations", "notificationDestinations"), ("/kiln/", "kiln"), ("/ui/", "webUI"),
        ]
        let service = families.first { path.contains($0.0) }?.1 ?? "workspace"
        var segments = path.split(separator: "/").map(String.init).filter { !$0.hasPrefix("{") && !$0.hasPrefix(":") }
        // Drop the API prefix: `api`, `ajax-api`, versions and `preview`.
        while let first = segments.first, ["api", "ajax-api", "preview", "scim", "v2", "mlflow", "unity-catalog"].contains(first) || first.first == "2"
                || first.first == "3" || first.first == "1" {
            segments.removeFirst()
        }
        var action = method.lowercased()
        for segment in segments {
            for word in segment.split(whereSeparator: { $0 == "-" || $0 == "_" || $0 == "." }) {
                action += word.prefix(1).uppercased() + word.dropFirst()
            }
        }
        return (service, action)
    }

    static func status(of error: any Error, path: String) -> Int {
        if let error = error as? KilnError { return error.httpStatus(alreadyExistsAs409: !path.contains("/mlflow")) }
        if let error = error as? HTTPError { return Int(error.status.code) }
        return 500
    }

    static func message(of error: any Error) -> String {
        if let error = error as? KilnError { return error.message }
        if let error = error as? HTTPError { return error.body ?? error.status.reasonPhrase }
        return "Internal error"
    }
}
