import Foundation
import Hummingbird
import KilnCore
import Logging
import Synchronization

/// Per-request state: Hummingbird's core storage plus who is calling.
public struct KilnRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Who is calling; nil before ``AuthMiddleware`` runs or on public routes.
    public var caller: Caller?
    /// Decides what the caller may do (set with the caller by ``AuthMiddleware``).
    var authorizer: Authorizer?
    /// The caller's name.
    public var principal: String? { caller?.name }

    /// The client's IP address.
    public var remoteAddress: String?
    /// This request's id: in its audit event and its `X-Request-Id` header.
    public let requestID: String
    /// The request's fields as the route read them, for its audit event (shared by reference down the middleware).
    let auditFields = AuditFields()

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.caller = nil
        self.authorizer = nil
        self.remoteAddress = source.channel.remoteAddress?.ipAddress
        self.requestID = UUID().uuidString.lowercased()
    }

    /// Request bodies that are collected whole (JSON) stop at 16 MiB; artifact uploads stream and have no limit.
    public var maxUploadSize: Int { 16 * 1024 * 1024 }
}

/// The fields a route parsed from its request, handed back up to the audit middleware (the body is read once).
final class AuditFields: Sendable {
    private let fields = Mutex<[String: JSONValue]?>(nil)
    func set(_ value: [String: JSONValue]) { fields.withLock { $0 = value } }
    var value: [String: JSONValue]? { fields.withLock { $0 } }
}
