import Hummingbird
import KilnCore
import Logging

/// Per-request state: Hummingbird's core storage plus who is calling.
public struct KilnRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Who is calling; nil before ``AuthMiddleware`` runs or on public routes.
    public var caller: Caller?
    /// The caller's name.
    public var principal: String? { caller?.name }

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.caller = nil
    }

    /// Request bodies that are collected whole (JSON) stop at 16 MiB; artifact uploads stream and have no limit.
    public var maxUploadSize: Int { 16 * 1024 * 1024 }
}
