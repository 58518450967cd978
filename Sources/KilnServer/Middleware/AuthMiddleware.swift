import Hummingbird
import KilnCore
import KilnWeb

/// Requires `Authorization: Bearer <token>` on every route but the public ones (health, version, server-info) and
/// the web UI's (which require a signed-in session).
struct AuthMiddleware: RouterMiddleware {
    typealias Context = KilnRequestContext
    let enabled: Bool
    /// Whom a token belongs to; nil when it is not valid.
    let authenticate: @Sendable (String) async throws -> Caller?
    /// Whom requests act as when authentication is off (`--no-auth`).
    let anonymous: Caller
    /// What each caller may do.
    let authorizer: Authorizer
    /// Records refused calls (the calls that get through are recorded by ``AuditMiddleware``).
    let auditor: Auditor

    static let publicPaths: Set<String> = ["/health", "/.well-known/databricks-config", "/version", "/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.authorizer = authorizer
        // Web pages sign in with a session cookie instead (KilnWeb checks it on every page).
        // Signed URLs (UC model files) carry their own credential and are checked by their route.
        if !enabled || Self.publicPaths.contains(request.uri.path) || WebUI.owns(request.uri.path) || request.uri.path.hasPrefix(UCModelFiles.presignedPrefix) {
            context.caller = enabled ? nil : anonymous
            return try await next(request, context)
        }
        let caller: Caller
        do {
            caller = try await self.caller(request)
        } catch {
            if auditor.audits(request) {
                auditor.record(request, context: context, status: Auditor.status(of: error, path: request.uri.path), error: Auditor.message(of: error))
            }
            throw error
        }
        context.caller = caller
        context.logger[metadataKey: "kiln.principal"] = "\(caller.name)"
        return try await next(request, context)
    }

    func caller(_ request: Request) async throws -> Caller {
        guard let header = request.headers[.authorization] else {
            throw KilnError(.unauthenticated, "Missing credentials: send 'Authorization: Bearer <token>' (set MLFLOW_TRACKING_TOKEN or DATABRICKS_TOKEN)")
        }
        let prefix = "Bearer "
        guard header.count > prefix.count, header.prefix(prefix.count).lowercased() == prefix.lowercased() else {
            throw KilnError(.unauthenticated, "Unsupported authorization scheme: use 'Authorization: Bearer <token>'")
        }
        let token = String(header.dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces)
        guard let caller = try await authenticate(token) else {
            throw KilnError(.unauthenticated, "Invalid access token: it is unknown, revoked or expired, or its owner is disabled")
        }
        return caller
    }
}
