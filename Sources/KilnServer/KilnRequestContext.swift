import Hummingbird
import Logging

/// Per-request state: Hummingbird's core storage plus who is calling.
public struct KilnRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The authenticated principal; nil before ``AuthMiddleware`` runs or on public routes.
    public var principal: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.principal = nil
    }

    /// Request bodies that are collected whole (JSON) stop at 16 MiB; artifact uploads stream and have no limit.
    public var maxUploadSize: Int { 16 * 1024 * 1024 }
}
