import KilnCore

/// The seam through which the UI asks Unity Catalog about models with three-part names (KilnWeb does not import the
/// catalog; the server wires it).
public struct UCModelAccess: Sendable {
    /// Whether `caller` may read (`change` false) or change the model; nil when the name is not a model in Unity Catalog.
    public var allows: @Sendable (_ caller: Caller, _ change: Bool, _ name: String) async throws -> Bool?
    /// Every registered model `caller` may see, those in Unity Catalog by their grants (nil: all).
    public var visible: @Sendable (_ caller: Caller) async throws -> Set<String>?

    public init(allows: @escaping @Sendable (Caller, Bool, String) async throws -> Bool?,
                visible: @escaping @Sendable (Caller) async throws -> Set<String>?) {
        self.allows = allows
        self.visible = visible
    }
}
