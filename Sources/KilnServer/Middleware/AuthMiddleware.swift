import Hummingbird
import KilnCore
import KilnWeb

/// Requires `Authorization: Bearer <token>` on every route but the public ones (health, version, server-info) and
/// the web UI's (which require a signed-in session).
struct AuthMiddleware: RouterMiddleware {
    typealias Context = KilnRequestContext
    let adminToken: String
    let enabled: Bool
    /// The principal of a token other than the admin's (a job run's), nil when it is not valid.
    var principal: @Sendable (String) async -> String? = { _ in nil }

    static let publicPaths: Set<String> = ["/health", "/.well-known/databricks-config", "/version", "/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        // Web pages sign in with a session cookie instead (KilnWeb checks it on every page).
        if !enabled || Self.publicPaths.contains(request.uri.path) || WebUI.owns(request.uri.path) {
            context.principal = enabled ? nil : "admin"
            return try await next(request, context)
        }
        guard let header = request.headers[.authorization] else {
            throw KilnError(.unauthenticated, "Missing credentials: send 'Authorization: Bearer <token>' (set MLFLOW_TRACKING_TOKEN or DATABRICKS_TOKEN)")
        }
        let prefix = "Bearer "
        guard header.count > prefix.count, header.prefix(prefix.count).lowercased() == prefix.lowercased() else {
            throw KilnError(.unauthenticated, "Unsupported authorization scheme: use 'Authorization: Bearer <token>'")
        }
        let token = String(header.dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces)
        let principal: String
        if Self.constantTimeEqual(token, adminToken) {
            principal = "admin"
        } else if let other = await self.principal(token) {
            principal = other
        } else {
            throw KilnError(.unauthenticated, "Invalid access token")
        }
        context.principal = principal
        context.logger[metadataKey: "kiln.principal"] = "\(principal)"
        return try await next(request, context)
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0
    }
}
