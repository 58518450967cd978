import Foundation
import KilnCore
import KilnLake

/// Where tables live: `catalog.schema.table` is `<warehouse>/<catalog>/<schema>/<table>` (defaults `main`, `default`),
/// or `<location>/<table>` when the schema was created with a LOCATION; `delta.`/path`` and `parquet.`/path`` name a
/// table directory or a Parquet file directly.
///
/// Catalogs and schemas are folders of the warehouse; what SQL said about them (comment, location, creation time,
/// id) is kept next to them in `_kiln_catalog.json` / `_kiln_schema.json`, where the catalog API reads it too. The
/// catalog `main` and the schema `main.default` always exist. The current catalog and schema (`USE`) are shared by
/// every copy of a `Catalog` value: one SQL session.
public struct Catalog: Sendable {
    public var warehouse: String
    private let session = Session()

    public init(warehouse: String) { self.warehouse = warehouse }

    /// The catalog a one- or two-part name is in (`USE CATALOG`).
    public var defaultCatalog: String {
        get { session.lock.withLock { session.catalog } }
        nonmutating set { session.lock.withLock { session.catalog = newValue } }
    }

    /// The schema a one-part name is in (`USE SCHEMA`).
    public var defaultSchema: String {
        get { session.lock.withLock { session.schema } }
        nonmutating set { session.lock.withLock { session.schema = newValue } }
    }

    private final class Session: @unchecked Sendable {
        let lock = NSLock()
        var catalog = "main"
        var schema = "default"
    }

    /// Catalog, schema and table names: 1 to 255 characters (Unity Catalog's limit), and never a path of their own
    /// (`/`, `.`, `..`, NUL), since each names a folder under the warehouse.
    public static func checkName(_ name: String) throws {
        try TextLimit.check(name, "table name part", max: 255)
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), !name.contains("\0"), !name.hasPrefix("_kiln_") else {
            throw KilnError.invalid("Invalid name '\(name)': catalog, schema and table names are 1 to 255 characters without '/'")
        }
    }

    /// `[catalog.]schema` completed with the current catalog.
    public func schemaName(_ parts: [String]) throws -> (catalog: String, schema: String) {
        for part in parts { try Self.checkName(part) }
        switch parts.count {
        case 1: return (defaultCatalog, parts[0])
        case 2: return (parts[0], parts[1])
        default: throw KilnError.invalid("A schema name is [catalog.]schema, not \(parts.joined(separator: "."))")
        }
    }

    /// `[[catalog.]schema.]table` completed with the current catalog and schema.
    public func tableName(_ parts: [String]) throws -> (catalog: String, schema: String, table: String) {
        for part in parts { try Self.checkName(part) }
        switch parts.count {
        case 1: return (defaultCatalog, defaultSchema, parts[0])
        case 2: return (defaultCatalog, parts[0], parts[1])
        case 3: return (parts[0], parts[1], parts[2])
        default: throw KilnError.invalid("A table name has at most three parts (catalog.schema.table): \(parts.joined(separator: "."))")
        }
    }

    /// The directory of a table name: an external table's LOCATION, else its folder in the schema.
    public func path(_ parts: [String]) throws -> String {
        let name = try tableName(parts)
        if let location = externalLocation(name.catalog, name.schema, name.table) { return location }
        return try schemaRoot(name.catalog, name.schema) + "/" + name.table
    }

    // MARK: External tables

    /// Where a schema's external tables are recorded: `<name>.json` holding the table's LOCATION.
    func externalFolder(_ catalog: String, _ schema: String) -> String { schemaFolder(catalog, schema) + "/_external" }

    /// An external table's folder; nil for a managed table or none.
    public func externalLocation(_ catalog: String, _ schema: String, _ table: String) -> String? {
        let file = externalFolder(catalog.lowercased(), schema.lowercased()) + "/\(table.lowercased()).json"
        guard let data = FileManager.default.contents(atPath: file), case .object(let o)? = try? JSONValue.parse(data),
              case .string(let location)? = o["location"] else { return nil }
        return location
    }

    /// An absolute folder from a LOCATION (a path or `file://` URI), standardized; outside the warehouse, which holds
    /// managed tables and volumes. - Throws: `INVALID_PARAMETER_VALUE`.
    public func externalFolder(location: String) throws -> String {
        var text = location
        if text.hasPrefix("file://") { text = String(text.dropFirst("file://".count)) }
        guard text.hasPrefix("/") else { throw KilnError.invalid("LOCATION must be an absolute folder or a file:// URI, got '\(location)'") }
        let folder = URL(fileURLWithPath: text).standardizedFileURL.resolvingSymlinksInPath().path
        let managed = URL(fileURLWithPath: warehouse).standardizedFileURL.resolvingSymlinksInPath().path
        guard folder != managed, !folder.hasPrefix(managed + "/"), !managed.hasPrefix(folder + "/") else {
            throw KilnError.invalid("LOCATION '\(location)' overlaps the warehouse (\(managed)), where managed tables live; choose a folder outside it")
        }
        return folder
    }

    /// Records `catalog.schema.table` as an external table at `folder`.
    public func registerExternal(_ catalog: String, _ schema: String, _ table: String, at folder: String) throws {
        try FileManager.default.createDirectory(atPath: externalFolder(catalog, schema), withIntermediateDirectories: true)
        try Data(JSONValue.object(["location": .string(folder), "created_at": .number(String(Self.nowMillis()))]).json.utf8)
            .write(to: URL(fileURLWithPath: externalFolder(catalog, schema) + "/\(table.lowercased()).json"), options: .atomic)
    }

    /// Forgets an external table (its files stay where they are).
    public func unregisterExternal(_ catalog: String, _ schema: String, _ table: String) throws {
        try FileManager.default.removeItem(atPath: externalFolder(catalog.lowercased(), schema.lowercased()) + "/\(table.lowercased()).json")
    }

    // MARK: Catalogs and schemas

    /// What is recorded about a catalog or a schema.
    public struct NamespaceInfo: Sendable, Equatable {
        public var name: String
        public var catalog: String
        public var comment: String?
        /// A schema's table folder when it was created with LOCATION.
        public var location: String?
        public var createdAt: Int64?
        public var id: String?
        /// Key-value properties (Unity Catalog's `properties`).
        public var properties: [String: String] = [:]
    }

    func catalogFolder(_ catalog: String) -> String { warehouse + "/" + catalog }
    func schemaFolder(_ catalog: String, _ schema: String) -> String { warehouse + "/" + catalog + "/" + schema }
    /// Where a schema's managed volumes live: inside its folder, hidden from table listings (the `_` prefix).
    public func volumesFolder(_ catalog: String, _ schema: String) -> String { schemaFolder(catalog, schema) + "/_volumes" }

    /// The volumes of a schema, sorted (each has `<name>.json` beside its folder).
    public func volumes(in catalog: String, _ schema: String) throws -> [String] {
        guard schemaExists(catalog, schema) else { throw Self.noSchema(catalog, schema) }
        return ((try? FileManager.default.contentsOfDirectory(atPath: volumesFolder(catalog, schema))) ?? [])
            .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    /// The volume a `/Volumes/catalog/schema/volume[/path]` names, and the local folder or file the path is.
    /// - Throws: `INVALID_PARAMETER_VALUE` for other paths or `..`; `RESOURCE_DOES_NOT_EXIST` for no such volume.
    public func volumePath(_ path: String) throws -> (volume: String, local: String) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard parts.count >= 4, parts[0] == "Volumes" else { throw KilnError.invalid("Volume paths look like /Volumes/<catalog>/<schema>/<volume>/<path>, not '\(path)'") }
        guard !parts.contains(".."), !parts.contains(".") else { throw KilnError.invalid("'\(path)' has '.' or '..' segments") }
        guard try volumes(in: parts[1], parts[2]).contains(parts[3]) else {
            throw KilnError.notFound("The volume '\(parts[1]).\(parts[2]).\(parts[3])' does not exist")
        }
        let local = ([volumeLocation(parts[1], parts[2], parts[3])] + parts.dropFirst(4)).joined(separator: "/")
        return ("\(parts[1]).\(parts[2]).\(parts[3])".lowercased(), local)
    }

    /// A volume's folder: an external volume's LOCATION, else its folder among the schema's managed volumes.
    public func volumeLocation(_ catalog: String, _ schema: String, _ volume: String) -> String {
        if let data = FileManager.default.contents(atPath: volumesFolder(catalog, schema) + "/\(volume).json"),
           case .object(let o)? = try? JSONValue.parse(data), case .string(let location)? = o["location"] {
            return location
        }
        return volumesFolder(catalog, schema) + "/" + volume
    }

    /// Where the tables of a schema are: its LOCATION, or its folder.
    func schemaRoot(_ catalog: String, _ schema: String) throws -> String {
        try schemaInfo(catalog, schema)?.location ?? schemaFolder(catalog, schema)
    }

    static func isDirectory(_ path: String) -> Bool {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
    }

    static func directories(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
            .filter { !$0.hasPrefix(".") && !$0.hasPrefix("_") && isDirectory(path + "/" + $0) }.sorted()
    }

    public func catalogExists(_ catalog: String) -> Bool { catalog == "main" || Self.isDirectory(catalogFolder(catalog)) }

    public func schemaExists(_ catalog: String, _ schema: String) -> Bool {
        (catalog == "main" && schema == "default") || Self.isDirectory(schemaFolder(catalog, schema))
    }

    /// Every catalog, `main` included, sorted.
    public func catalogs() -> [String] { Array(Set(Self.directories(warehouse) + ["main"])).sorted() }

    /// The schemas of a catalog (`default` in `main` always), sorted.
    public func schemas(in catalog: String) throws -> [String] {
        guard catalogExists(catalog) else { throw Self.noCatalog(catalog) }
        return Array(Set(Self.directories(catalogFolder(catalog)) + (catalog == "main" ? ["default"] : []))).sorted()
    }

    /// The Delta tables of a schema, managed and external, sorted.
    public func tables(in catalog: String, _ schema: String) throws -> [String] {
        guard schemaExists(catalog, schema) else { throw Self.noSchema(catalog, schema) }
        let root = try schemaRoot(catalog, schema)
        let managed = Self.directories(root).filter { FileManager.default.fileExists(atPath: root + "/" + $0 + "/_delta_log") }
        let external = ((try? FileManager.default.contentsOfDirectory(atPath: externalFolder(catalog, schema))) ?? [])
            .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
        return Array(Set(managed + external)).sorted()
    }

    public func catalogInfo(_ catalog: String) throws -> NamespaceInfo? {
        guard catalogExists(catalog) else { return nil }
        var info = try Self.readInfo(catalogFolder(catalog) + "/_kiln_catalog.json") ?? NamespaceInfo(name: catalog, catalog: catalog)
        info.name = catalog
        info.catalog = catalog
        return info
    }

    public func schemaInfo(_ catalog: String, _ schema: String) throws -> NamespaceInfo? {
        guard schemaExists(catalog, schema) else { return nil }
        var info = try Self.readInfo(schemaFolder(catalog, schema) + "/_kiln_schema.json") ?? NamespaceInfo(name: schema, catalog: catalog)
        info.name = schema
        info.catalog = catalog
        return info
    }

    /// Creates a catalog. - Throws: `RESOURCE_ALREADY_EXISTS` unless `ifNotExists`.
    public func createCatalog(_ catalog: String, comment: String?, ifNotExists: Bool) throws {
        try Self.checkName(catalog)
        try TextLimit.check(comment, "comment", max: 65_535)
        if catalogExists(catalog) && Self.isDirectory(catalogFolder(catalog)) {
            if ifNotExists { return }
            throw KilnError.alreadyExists("Catalog '\(catalog)' already exists")
        }
        try FileManager.default.createDirectory(atPath: catalogFolder(catalog), withIntermediateDirectories: true)
        try Self.writeInfo(NamespaceInfo(name: catalog, catalog: catalog, comment: comment, createdAt: Self.nowMillis(), id: UUID().uuidString.lowercased()),
                           to: catalogFolder(catalog) + "/_kiln_catalog.json")
    }

    /// Creates a schema in an existing catalog; `location` (an absolute folder) holds its tables.
    /// - Throws: `RESOURCE_DOES_NOT_EXIST` for a missing catalog, `RESOURCE_ALREADY_EXISTS` unless `ifNotExists`.
    public func createSchema(_ catalog: String, _ schema: String, comment: String?, location: String?, ifNotExists: Bool) throws {
        try Self.checkName(catalog)
        try Self.checkName(schema)
        try TextLimit.check(comment, "comment", max: 65_535)
        guard catalogExists(catalog) else { throw Self.noCatalog(catalog) }
        if Self.isDirectory(schemaFolder(catalog, schema)) {
            if ifNotExists { return }
            throw KilnError.alreadyExists("Schema '\(catalog).\(schema)' already exists")
        }
        var folder = location
        if let location {
            var text = location
            if text.hasPrefix("file://") { text = String(text.dropFirst("file://".count)) }
            guard text.hasPrefix("/") else { throw KilnError.invalid("LOCATION must be an absolute folder (or file:// URI), got '\(location)'") }
            folder = URL(fileURLWithPath: text).standardizedFileURL.path
            try FileManager.default.createDirectory(atPath: folder!, withIntermediateDirectories: true)
        }
        try FileManager.default.createDirectory(atPath: schemaFolder(catalog, schema), withIntermediateDirectories: true)
        try Self.writeInfo(NamespaceInfo(name: schema, catalog: catalog, comment: comment, location: folder, createdAt: Self.nowMillis(),
                                         id: UUID().uuidString.lowercased()),
                           to: schemaFolder(catalog, schema) + "/_kiln_schema.json")
    }

    /// Drops a schema: refused while it holds tables unless `cascade` (which drops them, at its LOCATION too).
    public func dropSchema(_ catalog: String, _ schema: String, cascade: Bool, ifExists: Bool) throws {
        guard Self.isDirectory(schemaFolder(catalog, schema)) || schemaExists(catalog, schema) else {
            if ifExists { return }
            throw Self.noSchema(catalog, schema)
        }
        let tables = try tables(in: catalog, schema)
        guard cascade || tables.isEmpty else {
            throw KilnError(.invalidState, "Cannot drop the schema '\(catalog).\(schema)': it holds \(tables.count) table(s) (\(tables.prefix(5).joined(separator: ", "))). Drop them first, or use DROP SCHEMA ... CASCADE")
        }
        if let location = try schemaInfo(catalog, schema)?.location {
            for table in tables { try FileManager.default.removeItem(atPath: location + "/" + table) }
        }
        try? FileManager.default.removeItem(atPath: schemaFolder(catalog, schema))
    }

    /// Drops a catalog: refused while it holds schemas other than `default` unless `cascade`.
    public func dropCatalog(_ catalog: String, cascade: Bool, ifExists: Bool) throws {
        guard catalog != "main" else { throw KilnError.invalid("The catalog 'main' cannot be dropped") }
        guard catalogExists(catalog) else {
            if ifExists { return }
            throw Self.noCatalog(catalog)
        }
        let schemas = try schemas(in: catalog)
        let holding = try schemas.filter { schema in try schema != "default" || !tables(in: catalog, schema).isEmpty }
        guard cascade || holding.isEmpty else {
            throw KilnError(.invalidState, "Cannot drop the catalog '\(catalog)': it holds the schema(s) \(holding.prefix(5).joined(separator: ", ")). Drop them first, or use DROP CATALOG ... CASCADE")
        }
        for schema in schemas { try dropSchema(catalog, schema, cascade: true, ifExists: true) }
        try FileManager.default.removeItem(atPath: catalogFolder(catalog))
    }

    /// A catalog's (`schema` nil) or schema's info with an id, written when it had none (`main`, `main.default`, and
    /// namespaces made before ids existed), so that everything governed has a stable id.
    /// - Throws: `RESOURCE_DOES_NOT_EXIST` when it does not exist.
    public func identified(_ catalog: String, _ schema: String? = nil) throws -> NamespaceInfo {
        let found = try schema.map { try schemaInfo(catalog, $0) } ?? catalogInfo(catalog)
        guard var info = found else { throw schema.map { Self.noSchema(catalog, $0) } ?? Self.noCatalog(catalog) }
        if info.id == nil {
            info.id = UUID().uuidString.lowercased()
            info.createdAt = info.createdAt ?? Self.nowMillis()
            let folder = schema.map { schemaFolder(catalog, $0) } ?? catalogFolder(catalog)
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Self.writeInfo(info, to: folder + (schema == nil ? "/_kiln_catalog.json" : "/_kiln_schema.json"))
        }
        return info
    }

    /// Changes a catalog's (`schema` nil) or schema's name, comment and properties (nil: unchanged).
    /// - Throws: `RESOURCE_ALREADY_EXISTS` when the new name is taken; `INVALID_PARAMETER_VALUE` for `main` or `main.default`.
    @discardableResult
    public func updateNamespace(_ catalog: String, _ schema: String? = nil, newName: String?, comment: String?,
                                properties: [String: String]?) throws -> NamespaceInfo {
        var info = try identified(catalog, schema)
        if let comment {
            try TextLimit.check(comment, "comment", max: 65_535)
            info.comment = comment
        }
        if let properties { info.properties = properties }
        var folder = schema.map { schemaFolder(catalog, $0) } ?? catalogFolder(catalog)
        if let newName, newName != (schema ?? catalog) {
            try Self.checkName(newName)
            guard schema != nil ? !(catalog == "main" && schema == "default") : catalog != "main" else {
                throw KilnError.invalid("'\(schema.map { "\(catalog).\($0)" } ?? catalog)' cannot be renamed")
            }
            let target = schema == nil ? catalogFolder(newName) : schemaFolder(catalog, newName)
            guard !FileManager.default.fileExists(atPath: target) else {
                throw KilnError.alreadyExists("\(schema == nil ? "Catalog" : "Schema") '\(schema == nil ? newName : "\(catalog).\(newName)")' already exists")
            }
            try FileManager.default.moveItem(atPath: folder, toPath: target)
            folder = target
            info.name = newName
        }
        try Self.writeInfo(info, to: folder + (schema == nil ? "/_kiln_catalog.json" : "/_kiln_schema.json"))
        return info
    }

    /// Checks that a table may be created under `parts`: its schema exists.
    public func requireSchema(ofTable parts: [String]) throws {
        let name = try tableName(parts)
        guard catalogExists(name.catalog) else { throw Self.noCatalog(name.catalog) }
        guard schemaExists(name.catalog, name.schema) else { throw Self.noSchema(name.catalog, name.schema) }
    }

    static func noCatalog(_ catalog: String) -> KilnError {
        KilnError.notFound("[NO_SUCH_CATALOG_EXCEPTION] The catalog '\(catalog)' does not exist; create it with CREATE CATALOG \(catalog)")
    }

    static func noSchema(_ catalog: String, _ schema: String) -> KilnError {
        KilnError.notFound("[SCHEMA_NOT_FOUND] The schema '\(catalog).\(schema)' does not exist; create it with CREATE SCHEMA \(catalog).\(schema)")
    }

    static func nowMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

    static func readInfo(_ path: String) throws -> NamespaceInfo? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        guard case .object(let o) = try JSONValue.parse(data) else { return nil }
        func text(_ key: String) -> String? { if case .string(let s)? = o[key] { return s }; return nil }
        var created: Int64?
        if case .number(let n)? = o["created_at"] { created = Int64(n) }
        var properties: [String: String] = [:]
        if case .object(let p)? = o["properties"] { for (k, v) in p { if case .string(let s) = v { properties[k] = s } } }
        return NamespaceInfo(name: text("name") ?? "", catalog: text("catalog") ?? "", comment: text("comment"), location: text("location"),
                             createdAt: created, id: text("id"), properties: properties)
    }

    static func writeInfo(_ info: NamespaceInfo, to path: String) throws {
        var fields: [String: JSONValue] = ["name": .string(info.name), "catalog": .string(info.catalog)]
        if let comment = info.comment { fields["comment"] = .string(comment) }
        if let location = info.location { fields["location"] = .string(location) }
        if let created = info.createdAt { fields["created_at"] = .number(String(created)) }
        if let id = info.id { fields["id"] = .string(id) }
        if !info.properties.isEmpty { fields["properties"] = .object(info.properties.mapValues(JSONValue.string)) }
        try Data(JSONText.string(.object(fields)).utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
