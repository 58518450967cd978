/// Who is calling: the authenticated principal's name (a user's `userName`, a service principal's `applicationId`,
/// or `job-run-N` for a run whose run-as identity is unknown), its id in the identity store when it has one, and the groups it belongs to directly
/// or through nested groups.
public struct Caller: Sendable, Equatable {
    /// The group whose members administer the workspace (the bootstrap `admin` user is one).
    public static let adminsGroup = "admins"

    public var id: String?
    public var name: String
    public var groups: Set<String>

    public init(id: String?, name: String, groups: Set<String>) {
        self.id = id
        self.name = name
        self.groups = groups
    }

    /// A workspace admin: a member of `admins`.
    public var isAdmin: Bool { groups.contains(Self.adminsGroup) }
}
