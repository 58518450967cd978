import Foundation
import KilnCore
import KilnLake
import KilnSQL
import KilnStore
import Logging
import SQLKit

/// Who owns a securable and who made and last changed it. Objects made outside the catalog API (SQL on a local
/// home, tables found on disk) belong to the metastore admin until someone takes them over.
public struct Ownership: Sendable, Equatable {
    public var owner: String
    public var createdBy: String?
    public var createdAt: Int64?
    public var updatedBy: String?
    public var updatedAt: Int64?
}

/// A catalog or schema as Unity Catalog shows it.
public struct NamespaceEntry: Sendable {
    public var catalog: String
    /// nil for a catalog.
    public var schema: String?
    public var info: Catalog.NamespaceInfo
    public var ownership: Ownership
    public var fullName: String { schema.map { "\(catalog).\($0)" } ?? catalog }
    public var id: String { info.id ?? "" }
}

/// A table as Unity Catalog shows it: names, its Delta metadata and ownership.
public struct TableEntry: Sendable {
    public var catalog: String
    public var schema: String
    public var name: String
    /// The Delta table's metadata id: a dropped and recreated table gets a new one.
    public var tableID: String
    public var location: String
    public var comment: String?
    public var properties: [String: String]
    public var columns: [DeltaField]
    public var partitionColumns: [String]
    public var createdAt: Int64
    public var updatedAt: Int64
    public var ownership: Ownership
    /// An external table (its files at its LOCATION, left there when it is dropped).
    public var external = false
    public var fullName: String { "\(catalog).\(schema).\(name)" }
    /// `MANAGED` or `EXTERNAL`.
    public var tableType: String { external ? "EXTERNAL" : "MANAGED" }
}

/// Unity Catalog's three-level namespace over Kiln's warehouse: catalogs and schemas are its folders and tables its
/// Delta tables, so SQL (local or through the server) and this API see the same objects; ownership is kept in the
/// store by securable id. Changing a securable takes its owner, the owner of a container above it, or an admin;
/// creating a catalog takes an admin. (Grants come on top of this.)
public struct UnityCatalog: Sendable {
    let warehouse: String
    let database: any KilnDatabase
    let clock: any KilnClock
    /// Whether a user, group or service principal of that name exists (owners must).
    let principalExists: @Sendable (String) async throws -> Bool
    /// When the registered model of that name was made (nil: there is none).
    let modelCreated: @Sendable (String) async throws -> Int64?
    let tableIDs = TableIDCache()

    /// The metastore admin: owner of everything not otherwise owned.
    public static let metastoreAdmin = "admin"
    public static let metastoreID = "00000000-0000-0000-0000-00000000ki1n"

    public static func make(warehouse: String, database: any KilnDatabase, clock: any KilnClock, logger: Logger,
                            modelCreated: @escaping @Sendable (String) async throws -> Int64? = { _ in nil },
                            principalExists: @escaping @Sendable (String) async throws -> Bool) async throws -> UnityCatalog {
        try await Migrator.migrate(database, migrations + grantMigrations + modelMigrations, logger: logger)
        return UnityCatalog(warehouse: warehouse, database: database, clock: clock, principalExists: principalExists, modelCreated: modelCreated)
    }

    public static let migrations = [
        Migration("catalog_0001_owners", [
            """
            CREATE TABLE uc_owners (
                securable_id VARCHAR(64) PRIMARY KEY,
                owner TEXT NOT NULL,
                created_by TEXT,
                created_at BIGINT,
                updated_by TEXT,
                updated_at BIGINT
            )
            """,
        ]),
    ]

    var catalog: Catalog { Catalog(warehouse: warehouse) }

    // MARK: Ownership

    func ownerships(_ ids: [String]) async throws -> [String: Ownership] {
        guard !ids.isEmpty else { return [:] }
        return try await database.read { sql in try await Self.ownerships(ids, sql) }
    }

    static func ownerships(_ ids: [String], _ sql: any SQLDatabase) async throws -> [String: Ownership] {
        var out: [String: Ownership] = [:]
        for chunk in stride(from: 0, to: ids.count, by: 500).map({ Array(ids[$0..<min($0 + 500, ids.count)]) }) {
            for row in try await sql.raw("SELECT * FROM uc_owners WHERE securable_id IN (\(binds: chunk))").all() {
                out[try row.decode(column: "securable_id", as: String.self)] = Ownership(
                    owner: try row.decode(column: "owner", as: String.self), createdBy: try row.decode(column: "created_by", as: String?.self),
                    createdAt: try row.decode(column: "created_at", as: Int64?.self), updatedBy: try row.decode(column: "updated_by", as: String?.self),
                    updatedAt: try row.decode(column: "updated_at", as: Int64?.self))
            }
        }
        return out
    }

    func ownership(_ id: String, createdAt: Int64?) async throws -> Ownership {
        try await ownerships([id])[id] ?? Ownership(owner: Self.metastoreAdmin, createdBy: nil, createdAt: createdAt)
    }

    func recordCreated(_ id: String, by caller: Caller?) async throws {
        let who = caller?.name ?? Self.metastoreAdmin
        let now = clock.nowMillis()
        try await database.write { sql in
            try await sql.raw("DELETE FROM uc_owners WHERE securable_id = \(bind: id)").run()
            try await sql.raw("""
                INSERT INTO uc_owners (securable_id, owner, created_by, created_at, updated_by, updated_at)
                VALUES (\(bind: id), \(bind: who), \(bind: who), \(bind: now), \(bind: who), \(bind: now))
                """).run()
        }
    }

    func recordUpdated(_ id: String, current: Ownership, owner: String?, by caller: Caller?) async throws {
        let who = caller?.name ?? Self.metastoreAdmin
        if let owner, !(try await principalExists(owner)) {
            throw KilnError.invalid("owner '\(owner)' is not a user, group or service principal; see them with `kiln users list`")
        }
        let now = clock.nowMillis()
        let next = owner ?? current.owner
        try await database.write { sql in
            try await sql.raw("DELETE FROM uc_owners WHERE securable_id = \(bind: id)").run()
            try await sql.raw("""
                INSERT INTO uc_owners (securable_id, owner, created_by, created_at, updated_by, updated_at)
                VALUES (\(bind: id), \(bind: next), \(bind: current.createdBy), \(bind: current.createdAt), \(bind: who), \(bind: now))
                """).run()
        }
    }

    /// Forgets a dropped securable's owner and grants: a new one of the same name starts with none.
    func forget(_ id: String) async throws {
        try await database.write { sql in
            try await sql.raw("DELETE FROM uc_owners WHERE securable_id = \(bind: id)").run()
            try await sql.raw("DELETE FROM uc_grants WHERE securable_id = \(bind: id)").run()
        }
    }

    /// Allows `caller` when it is Kiln itself (nil), an admin, an owner of the securable or a container, or a holder of
    /// `MANAGE` on one of them (the one rule for changing, renaming, handing over and dropping, in the API and SQL).
    func requireManage(_ caller: Caller?, _ type: SecurableType, _ fullName: String, action: String) async throws {
        guard let caller, !caller.isAdmin else { return }
        let p = try await path(type, fullName)
        guard try await mayManage(caller, p) else { throw Self.denied(caller, action, p, needs: "MANAGE") }
    }

    // MARK: Catalogs

    /// The catalogs `caller` may see (lists are filtered, never refused).
    public func catalogs(caller: Caller?) async throws -> [NamespaceEntry] {
        let infos = try catalog.catalogs().map { try catalog.identified($0) }
        let owners = try await ownerships(infos.compactMap(\.id))
        let entries = infos.map { info in
            NamespaceEntry(catalog: info.name, schema: nil, info: info,
                           ownership: owners[info.id ?? ""] ?? Ownership(owner: Self.metastoreAdmin, createdAt: info.createdAt))
        }
        return try await visibleChildren(entries, of: SecurablePath(levels: []), caller: caller) {
            .init(type: .catalog, id: $0.id, fullName: $0.fullName, ownership: $0.ownership)
        }
    }

    /// A catalog. - Throws: `PERMISSION_DENIED` when `caller` may not see it.
    public func getCatalog(_ name: String, caller: Caller?) async throws -> NamespaceEntry {
        let entry = try await getCatalog(name)
        try await requireVisible(caller, .catalog, entry.fullName)
        return entry
    }

    func getCatalog(_ name: String) async throws -> NamespaceEntry {
        let info = try catalog.identified(name)
        return NamespaceEntry(catalog: name, schema: nil, info: info, ownership: try await ownership(info.id!, createdAt: info.createdAt))
    }

    func requireVisible(_ caller: Caller?, _ type: SecurableType, _ fullName: String) async throws {
        guard let caller, !caller.isAdmin else { return }
        let path = try await path(type, fullName)
        guard try await visible(caller, path) else { throw Self.denied(caller, "see", path) }
    }

    static func denied(_ caller: Caller, _ action: String, _ path: SecurablePath, needs: String? = nil) -> KilnError {
        let need = needs ?? (path.target.type == .catalog ? "USE_CATALOG" : path.target.type == .schema ? "USE_CATALOG and USE_SCHEMA"
                             : "USE_CATALOG, USE_SCHEMA and a privilege on it")
        return KilnError(.permissionDenied, "\(caller.name) may not \(action) \(path.target.type.rawValue) \(path.target.fullName): that takes \(need), ownership, or an admin")
    }

    public func createCatalog(_ name: String, comment: String?, properties: [String: String], caller: Caller?) async throws -> NamespaceEntry {
        let metastore = try await path(.metastore, "metastore")
        if let caller, !(try await allowed(caller, .createCatalog, metastore)) {
            throw Self.denied(caller, "create catalogs in", metastore, needs: "CREATE_CATALOG on the metastore")
        }
        try catalog.createCatalog(name, comment: comment, ifNotExists: false)
        if !properties.isEmpty { try catalog.updateNamespace(name, newName: nil, comment: nil, properties: properties) }
        let info = try catalog.identified(name)
        try await recordCreated(info.id!, by: caller)
        return try await getCatalog(name)
    }

    public func updateCatalog(_ name: String, newName: String?, comment: String?, owner: String?, properties: [String: String]?,
                              caller: Caller?) async throws -> NamespaceEntry {
        let current = try await getCatalog(name)
        try await requireManage(caller, .catalog, name, action: "change")
        try catalog.updateNamespace(name, newName: newName, comment: comment, properties: properties)
        try await recordUpdated(current.id, current: current.ownership, owner: owner, by: caller)
        return try await getCatalog(newName ?? name)
    }

    /// - Parameter force: drop what it holds too (else a catalog holding schemas other than `default` is refused).
    public func deleteCatalog(_ name: String, force: Bool, caller: Caller?) async throws {
        let current = try await getCatalog(name)
        try await requireManage(caller, .catalog, name, action: "delete")
        try Self.refusedAsBadRequest { try catalog.dropCatalog(name, cascade: force, ifExists: false) }
        try await forget(current.id)
    }

    // MARK: Schemas

    /// The schemas of a catalog `caller` may see.
    public func schemas(in catalogName: String, caller: Caller?) async throws -> [NamespaceEntry] {
        let parent = try await path(.catalog, catalogName)
        let infos = try catalog.schemas(in: catalogName).map { try catalog.identified(catalogName, $0) }
        let owners = try await ownerships(infos.compactMap(\.id))
        let entries = infos.map { info in
            NamespaceEntry(catalog: catalogName, schema: info.name, info: info,
                           ownership: owners[info.id ?? ""] ?? Ownership(owner: Self.metastoreAdmin, createdAt: info.createdAt))
        }
        return try await visibleChildren(entries, of: parent, caller: caller) {
            .init(type: .schema, id: $0.id, fullName: $0.fullName, ownership: $0.ownership)
        }
    }

    /// A schema. - Throws: `PERMISSION_DENIED` when `caller` may not see it.
    public func getSchema(_ catalogName: String, _ name: String, caller: Caller?) async throws -> NamespaceEntry {
        let entry = try await getSchema(catalogName, name)
        try await requireVisible(caller, .schema, entry.fullName)
        return entry
    }

    func getSchema(_ catalogName: String, _ name: String) async throws -> NamespaceEntry {
        let info = try catalog.identified(catalogName, name)
        return NamespaceEntry(catalog: catalogName, schema: name, info: info, ownership: try await ownership(info.id!, createdAt: info.createdAt))
    }

    public func createSchema(_ catalogName: String, _ name: String, comment: String?, properties: [String: String], storageRoot: String?,
                             caller: Caller?) async throws -> NamespaceEntry {
        let parent = try await path(.catalog, catalogName)
        if let caller, !(try await allowed(caller, .createSchema, parent)) {
            throw Self.denied(caller, "create schemas in", parent, needs: "USE_CATALOG and CREATE_SCHEMA")
        }
        try catalog.createSchema(catalogName, name, comment: comment, location: storageRoot, ifNotExists: false)
        if !properties.isEmpty { try catalog.updateNamespace(catalogName, name, newName: nil, comment: nil, properties: properties) }
        let info = try catalog.identified(catalogName, name)
        try await recordCreated(info.id!, by: caller)
        return try await getSchema(catalogName, name)
    }

    public func updateSchema(_ catalogName: String, _ name: String, newName: String?, comment: String?, owner: String?,
                             properties: [String: String]?, caller: Caller?) async throws -> NamespaceEntry {
        let current = try await getSchema(catalogName, name)
        try await requireManage(caller, .schema, current.fullName, action: "change")
        try catalog.updateNamespace(catalogName, name, newName: newName, comment: comment, properties: properties)
        try await recordUpdated(current.id, current: current.ownership, owner: owner, by: caller)
        return try await getSchema(catalogName, newName ?? name)
    }

    public func deleteSchema(_ catalogName: String, _ name: String, force: Bool, caller: Caller?) async throws {
        let current = try await getSchema(catalogName, name)
        if !force, let held = try? FileManager.default.contentsOfDirectory(atPath: catalog.volumesFolder(catalogName, name)), !held.isEmpty {
            throw KilnError(.badRequest, "Cannot drop the schema '\(current.fullName)': it holds volumes. Delete them first, or delete with force=true")
        }
        try await requireManage(caller, .schema, current.fullName, action: "delete")
        try Self.refusedAsBadRequest { try catalog.dropSchema(catalogName, name, cascade: force, ifExists: false) }
        try await forget(current.id)
    }

    // MARK: Tables

    /// The tables of a schema `caller` may see.
    public func tables(in catalogName: String, _ schemaName: String, caller: Caller?) async throws -> [TableEntry] {
        let schemaPath = try await path(.schema, "\(catalogName).\(schemaName)")
        var entries = try catalog.tables(in: catalogName, schemaName).compactMap { try? entry(catalogName, schemaName, $0) }
        let owners = try await ownerships(entries.map(\.tableID))
        for i in entries.indices { if let o = owners[entries[i].tableID] { entries[i].ownership = o } }
        return try await visibleChildren(entries, of: schemaPath, caller: caller) {
            .init(type: .table, id: $0.tableID, fullName: $0.fullName, ownership: $0.ownership)
        }
    }

    /// The items inside `parent` that `caller` may see (lists are filtered). Listing a container the caller cannot
    /// see is refused unless something inside is theirs to see (an object's owner lists it, as they may get it).
    func visibleChildren<T>(_ items: [T], of parent: SecurablePath, caller: Caller?,
                            level: (T) -> SecurablePath.Level) async throws -> [T] {
        guard let caller, !caller.isAdmin else { return items }
        var out: [T] = []
        for item in items where try await visible(caller, SecurablePath(levels: [level(item)] + parent.levels)) { out.append(item) }
        if out.isEmpty, !parent.levels.isEmpty, !(try await visible(caller, parent)) { throw Self.denied(caller, "see", parent) }
        return out
    }

    /// A table. - Throws: `PERMISSION_DENIED` when `caller` may not see it.
    public func getTable(_ catalogName: String, _ schemaName: String, _ name: String, caller: Caller?) async throws -> TableEntry {
        let table = try await getTable(catalogName, schemaName, name)
        try await requireVisible(caller, .table, table.fullName)
        return table
    }

    func getTable(_ catalogName: String, _ schemaName: String, _ name: String) async throws -> TableEntry {
        var table = try entry(catalogName, schemaName, name)
        table.ownership = try await ownership(table.tableID, createdAt: table.createdAt)
        return table
    }

    /// Whether the table exists (no error for a missing catalog or schema); an existing table the caller may not
    /// see is refused as `getTable` refuses it, so existence does not leak.
    public func tableExists(_ catalogName: String, _ schemaName: String, _ name: String, caller: Caller?) async throws -> Bool {
        let exists = (try? catalog.path([catalogName, schemaName, name])).map { FileManager.default.fileExists(atPath: $0 + "/_delta_log") } ?? false
        if exists { try await requireVisible(caller, .table, "\(catalogName).\(schemaName).\(name)") }
        return exists
    }

    func entry(_ catalogName: String, _ schemaName: String, _ name: String) throws -> TableEntry {
        guard catalog.schemaExists(catalogName, schemaName) else {
            throw KilnError.notFound("[SCHEMA_NOT_FOUND] The schema '\(catalogName).\(schemaName)' does not exist")
        }
        let path = try catalog.path([catalogName, schemaName, name])
        guard FileManager.default.fileExists(atPath: path + "/_delta_log") else {
            throw KilnError.notFound("[TABLE_OR_VIEW_NOT_FOUND] The table '\(catalogName).\(schemaName).\(name)' does not exist")
        }
        let table = try DeltaTable.open(path)
        let snapshot = try table.snapshot()
        let metadata = snapshot.metadata
        let created = metadata.createdTime ?? 0
        let commit = path + "/_delta_log/" + String(format: "%020lld", snapshot.version) + ".json"
        let modified = (try? FileManager.default.attributesOfItem(atPath: commit)[.modificationDate] as? Date)?
            .map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) }
        return TableEntry(catalog: catalogName, schema: schemaName, name: name, tableID: metadata.id, location: path,
                          comment: metadata.description, properties: metadata.configuration, columns: snapshot.schema.fields,
                          partitionColumns: snapshot.partitionColumns, createdAt: created, updatedAt: modified ?? created,
                          ownership: Ownership(owner: Self.metastoreAdmin, createdAt: created),
                          external: catalog.externalLocation(catalogName, schemaName, name) != nil)
    }

    /// Creates a managed Delta table with `columns` (in order), partitioned by the columns given positions there; with
    /// `location`, an external table there (a Delta table already in the folder is adopted; external tables take an
    /// admin until external locations exist to grant `CREATE_EXTERNAL_TABLE` on).
    public func createTable(_ catalogName: String, _ schemaName: String, _ name: String, columns: [DeltaField], partitionColumns: [String],
                            comment: String?, properties: [String: String], location: String? = nil, caller: Caller?) async throws -> TableEntry {
        try Catalog.checkName(name)
        let parent = try await path(.schema, "\(catalogName).\(schemaName)")
        if let caller, !(try await allowed(caller, .createTable, parent)) {
            throw Self.denied(caller, "create tables in", parent, needs: "USE_CATALOG, USE_SCHEMA and CREATE_TABLE")
        }
        if location != nil, let caller, !caller.isAdmin {
            throw KilnError(.permissionDenied, "\(caller.name) may not create external tables: a storage location takes an admin (there are no external locations to grant CREATE_EXTERNAL_TABLE on yet)")
        }
        var seen = Set<String>()
        for c in columns where !seen.insert(c.name.lowercased()).inserted { throw KilnError.invalid("Column '\(c.name)' appears twice") }
        guard (try? entry(catalogName, schemaName, name)) == nil else {
            throw KilnError.alreadyExists("Table '\(catalogName).\(schemaName).\(name)' already exists")
        }
        if let location {
            let folder = try catalog.externalFolder(location: location)
            if FileManager.default.fileExists(atPath: folder + "/_delta_log") {
                let existing = try DeltaTable.open(folder).snapshot().schema.fields.map { $0.name.lowercased() }
                guard columns.isEmpty || columns.map({ $0.name.lowercased() }) == existing else {
                    throw KilnError.invalid("The Delta table at '\(location)' has columns \(existing.joined(separator: ", ")); leave columns out to adopt it")
                }
                try catalog.registerExternal(catalogName, schemaName, name, at: folder)
            } else {
                guard !columns.isEmpty else { throw KilnError.invalid("A table needs at least one column") }
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                try DeltaTable.create(at: folder, schema: DeltaSchema(columns), partitionColumns: partitionColumns, properties: properties, name: name,
                                      description: comment)
                try catalog.registerExternal(catalogName, schemaName, name, at: folder)
            }
        } else {
            guard !columns.isEmpty else { throw KilnError.invalid("A table needs at least one column") }
            let path = try catalog.path([catalogName, schemaName, name])
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try DeltaTable.create(at: path, schema: DeltaSchema(columns), partitionColumns: partitionColumns, properties: properties, name: name,
                                  description: comment)
        }
        let created = try entry(catalogName, schemaName, name)
        try await recordCreated(created.tableID, by: caller)
        return try await getTable(catalogName, schemaName, name)
    }

    public func updateTable(_ catalogName: String, _ schemaName: String, _ name: String, owner: String?, caller: Caller?) async throws -> TableEntry {
        let current = try await getTable(catalogName, schemaName, name)
        try await requireManage(caller, .table, current.fullName, action: "change")
        try await recordUpdated(current.tableID, current: current.ownership, owner: owner, by: caller)
        return try await getTable(catalogName, schemaName, name)
    }

    public func deleteTable(_ catalogName: String, _ schemaName: String, _ name: String, caller: Caller?) async throws {
        let current = try await getTable(catalogName, schemaName, name)
        try await requireManage(caller, .table, current.fullName, action: "drop")
        if current.external {
            try catalog.unregisterExternal(catalogName, schemaName, name)  // its files stay at its location
        } else {
            try FileManager.default.removeItem(atPath: current.location)
        }
        try await forget(current.tableID)
    }

    /// A drop refused because the namespace is not empty is the caller's to fix (400), as Unity Catalog answers it.
    static func refusedAsBadRequest(_ body: () throws -> Void) throws {
        do { try body() } catch let error as KilnError where error.code == .invalidState {
            throw KilnError(.badRequest, error.message.replacingOccurrences(of: "CASCADE", with: "CASCADE (force=true)"))
        }
    }

    /// Splits `a.b.c` into `parts` names. - Throws: `INVALID_PARAMETER_VALUE` for another count.
    public static func split(_ fullName: String, parts: Int) throws -> [String] {
        let names = fullName.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard names.count == parts, !names.contains(where: \.isEmpty) else {
            throw KilnError.invalid("'\(fullName)' is not a \(parts == 2 ? "catalog.schema" : "catalog.schema.table") name")
        }
        return names
    }
}
