import Foundation
import KilnCatalog

/// The declarative authorization matrix (`authz_matrix.json`): every Unity Catalog operation, the privilege sets that
/// suffice, and the requests that perform it. The catalog's rules are checked against it in-process
/// (KilnCatalogTests) and over HTTP (KilnServerTests); expectations come only from this file.
public struct AuthzMatrix: Decodable, Sendable {
    public struct Request: Decodable, Sendable {
        public struct Listed: Decodable, Sendable {
            public var key: String
            public var name: String
        }
        public var sql: String?
        public var method: String?
        public var path: String?
        public var body: JSONAny?
        public var listed: Listed?
    }

    public struct Operation: Decodable, Sendable {
        public var name: String
        public var check: String
        public var securable: String
        public var privilege: String?
        public var sufficient: [String]
        public var use_chain: Bool
        public var without_use_chain: [String]?
        public var fresh: Bool?
        public var http: [Request]

        public var target: SecurableType { try! SecurableType(parsing: securable) }
    }

    public var privileges: [String]
    public var operations: [Operation]
    public var chain: [String: [String]]

    public static let shared: AuthzMatrix = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("authz_matrix.json")
        return try! JSONDecoder().decode(AuthzMatrix.self, from: Data(contentsOf: url))
    }()

    /// The securables the matrix's worlds hold: catalog `c`, schema `c.s`, and in it table `t`, function `f`, volume
    /// `v` and model `m`.
    public static func fullName(_ type: SecurableType) -> String {
        switch type {
        case .metastore: "metastore"
        case .catalog: "c"
        case .schema: "c.s"
        case .table: "c.s.t"
        case .volume: "c.s.v"
        case .function: "c.s.f"
        case .model: "c.s.m"
        }
    }

    /// The levels a grant can be made on, outermost first.
    public static let levels: [SecurableType] = [.metastore, .catalog, .schema, .table, .function, .volume, .model]

    /// Whether a grant on `level` reaches `target`: on itself, and from a catalog or schema to everything inside
    /// (never down from the metastore).
    public static func reaches(_ level: SecurableType, _ target: SecurableType) -> Bool {
        if level == .metastore || target == .metastore || level == target { return level == target }
        let containers: [SecurableType] = [.catalog, .schema]
        guard let l = containers.firstIndex(of: level) else { return false }
        return containers.firstIndex(of: target).map { l <= $0 } ?? true
    }

    /// Whether `entry` (`P`: on the target or a container; `P@level`: on that level only) is `p` granted on `level`.
    public static func matches(_ entry: String, _ p: String, _ level: SecurableType, target: SecurableType) -> Bool {
        let parts = entry.split(separator: "@").map(String.init)
        guard parts[0] == p else { return false }
        return parts.count == 2 ? level.rawValue == parts[1] : reaches(level, target)
    }

    /// Whether the file says these grants (privilege, level) let `op` happen: one grant in `without_use_chain`, or
    /// one in `sufficient` plus, where the operation needs it, grants standing for USE_CATALOG and USE_SCHEMA.
    public func satisfied(_ op: Operation, by grants: [(String, SecurableType)]) -> Bool {
        let target = op.target
        func any(_ entries: [String]) -> Bool {
            grants.contains { g in entries.contains { Self.matches($0, g.0, g.1, target: target) } }
        }
        if any(op.without_use_chain ?? []) { return true }
        guard any(op.sufficient) else { return false }
        guard op.use_chain else { return true }
        let inSchema: Set<SecurableType> = [.schema, .table, .function, .volume, .model]
        return any(chain["USE_CATALOG"]!) && (!inSchema.contains(target) || any(chain["USE_SCHEMA"]!))
    }

    /// A smallest sufficient set of grants for an operation that needs the USE chain: USE_CATALOG on the catalog,
    /// USE_SCHEMA on the schema (when the target is in one) and the operation's own privilege on the target, each of
    /// them necessary (the file must say so: `satisfied` without any one of them is false).
    public func sufficientSet(_ op: Operation) -> [(String, SecurableType)]? {
        guard op.use_chain, let p = op.sufficient.first(where: { !$0.contains("@") }) else { return nil }
        var set: [(String, SecurableType)] = [("USE_CATALOG", .catalog)]
        if op.target != .catalog { set.append(("USE_SCHEMA", .schema)) }
        if !set.contains(where: { $0.0 == p && $0.1 == op.target }) { set.append((p, op.target)) }
        return set
    }

    /// Whether a role that owns the catalog `c`, the schema `c.s` or the objects in it may do `op` (owners of a
    /// container may do anything inside it; nobody owns the metastore but admins).
    public static func ownerMay(_ owned: SecurableType, _ op: Operation) -> Bool {
        let target = op.target
        switch owned {
        case .catalog: return target != .metastore
        case .schema: return [.schema, .table, .function, .volume, .model].contains(target)
        default: return [.table, .function, .volume, .model].contains(target)
        }
    }
}

/// Any JSON value, kept as `JSONSerialization` objects so a request body can be filled in and sent as written.
public struct JSONAny: Decodable, @unchecked Sendable {
    public let value: Any

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { value = s }
        else if let b = try? c.decode(Bool.self) { value = b }
        else if let n = try? c.decode(Double.self) { value = n }
        else if let a = try? c.decode([JSONAny].self) { value = a.map(\.value) }
        else if let o = try? c.decode([String: JSONAny].self) { value = o.mapValues(\.value) }
        else { value = NSNull() }
    }
}
