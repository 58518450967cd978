import Foundation
import KilnCore
import KilnFrame
import KilnSQL

/// The catalog's rules for SQL statements, as the statement service calls them: each table read needs `SELECT`,
/// each table written `MODIFY`, a new table `CREATE_TABLE`, a new schema `CREATE_SCHEMA`, a new catalog
/// `CREATE_CATALOG`, dropping or altering ownership or `MANAGE` (with the USE chain); functions `EXECUTE`; whoever
/// creates something owns it; SHOW lists what the caller may see; GRANT, REVOKE, SHOW GRANTS, owners, comments and
/// CREATE/DROP VOLUME run here. Admins and Kiln itself (no caller) pass.
public struct CatalogStatementRules: Sendable {
    let catalog: UnityCatalog

    public init(catalog: UnityCatalog) { self.catalog = catalog }

    /// Whoever created a table, schema or catalog through SQL owns it.
    public func completed(_ caller: Caller?, _ references: StatementReferences) async {
        guard let caller else { return }
        for name in references.tablesCreated.union(references.namespacesCreated) {
            let type: SecurableType = name.split(separator: ".").count == 3 ? .table : name.contains(".") ? .schema : .catalog
            try? await catalog.recordCreated(type, name, by: caller)
        }
        for name in references.functionsCreated { try? await catalog.recordCreated(.function, name, by: caller, ifNew: true) }
    }

    /// SHOW CATALOGS, SCHEMAS and TABLES list only what the caller may see (as the catalog API's lists do).
    public func visibleRows(_ caller: Caller?, _ references: StatementReferences, _ frame: Frame) async throws -> Frame {
        guard let caller, !caller.isAdmin, let listing = references.listing else { return frame }
        var keep: [Int] = []
        for row in 0..<frame.rowCount {
            let type: SecurableType, name: String
            switch listing {
            case .catalogs: (type, name) = (.catalog, frame.columns[0].value(row).text)
            case .schemas(let c): (type, name) = (.schema, "\(c).\(frame.columns[0].value(row).text)")
            case .tables(let c, let s): (type, name) = (.table, "\(c).\(s).\(frame.columns[1].value(row).text)")
            case .volumes(let c, let s): (type, name) = (.volume, "\(c).\(s).\(frame.columns[1].value(row).text)")
            case .functions: (type, name) = (.function, frame.columns[0].value(row).text)
            }
            if let path = try? await catalog.path(type, name), try await catalog.visible(caller, path) { keep.append(row) }
        }
        return frame.take(keep)
    }

    /// GRANT, REVOKE and SHOW GRANTS (Databricks' columns: principal, action_type, object_type, object_key).
    public func grants(_ caller: Caller?, _ statement: GrantStatement, _ sql: KilnSQL.Catalog) async throws -> Frame {
        let type = try SecurableType(parsing: statement.securableType)
        let fullName: String
        switch type {
        case .metastore: fullName = "metastore"
        case .catalog: fullName = statement.name.joined(separator: ".")
        case .schema: let n = try sql.schemaName(statement.name); fullName = "\(n.catalog).\(n.schema)"
        case .table, .volume, .function, .model: let n = try sql.tableName(statement.name); fullName = "\(n.catalog).\(n.schema).\(n.table)"
        }
        if statement.action == .create || statement.action == .drop {
            let n = fullName.split(separator: ".").map(String.init)
            let exists = (try? await catalog.path(.volume, fullName)) != nil
            if statement.action == .create, !(exists && statement.ifExists) {
                _ = try await catalog.createVolume(n[0], n[1], n[2], comment: statement.comment, location: statement.location, caller: caller)
            } else if statement.action == .drop, exists || !statement.ifExists {
                try await catalog.deleteVolume(n[0], n[1], n[2], caller: caller)
            }
            return .empty
        }
        let path = try await catalog.path(type, fullName)
        if statement.action == .setOwner || statement.action == .comment {
            let n = fullName.split(separator: ".").map(String.init)
            let owner = statement.action == .setOwner ? statement.principal : nil, comment = statement.comment
            switch path.target.type {
            case .model:
                guard let owner else { throw KilnError.invalid("A model's comment is its description: set it with the registry API") }
                try await catalog.setModelOwner(fullName, owner: owner, caller: caller)
            case .catalog: _ = try await catalog.updateCatalog(n[0], newName: nil, comment: comment, owner: owner, properties: nil, caller: caller)
            case .schema: _ = try await catalog.updateSchema(n[0], n[1], newName: nil, comment: comment, owner: owner, properties: nil, caller: caller)
            case .table: _ = try await catalog.updateTable(n[0], n[1], n[2], owner: owner, caller: caller)
            case .volume: _ = try await catalog.updateVolume(n[0], n[1], n[2], newName: nil, comment: comment, owner: owner, caller: caller)
            case .function: _ = try await catalog.updateFunction(n[0], n[1], n[2], owner: owner, caller: caller)
            case .metastore: throw KilnError.invalid("The metastore's owner is the admins group; it cannot change")
            }
            return .empty
        }
        guard statement.action == .show else {
            let privileges = try statement.privileges.map(Privilege.init(parsing:))
            let principal = statement.principal ?? ""
            try await catalog.updatePermissions(path, changes: [(principal, statement.action == .grant ? privileges : [],
                                                                 statement.action == .revoke ? privileges : [])], caller: caller)
            return .empty
        }
        var principal = statement.principal
        if let caller, !(try await catalog.mayManage(caller, path)) { principal = caller.name }
        var rows: [[String]] = []
        for (who, privileges) in try await catalog.permissions(path, principal: principal) {
            for p in privileges { rows.append([who, p.name, type.upper, fullName]) }
        }
        let names = ["principal", "action_type", "object_type", "object_key"]
        return Frame(names: names, columns: names.indices.map { i in
            var bytes = ByteColumn()
            for row in rows { bytes.append(row[i]) }
            return Column(type: .string, values: .bytes(bytes))
        })
    }

    public func checkGrants(_ caller: Caller, _ references: StatementReferences) async throws {
        func require(_ privilege: Privilege?, _ type: SecurableType, _ name: String, _ action: String) async throws {
            // A name that does not resolve is the engine's to report (with the words it uses for a missing table).
            guard let path = try? await catalog.path(type, name) else { return }
            guard try await catalog.allowed(caller, privilege, path) else {
                throw KilnError(.permissionDenied, "\(caller.name) may not \(action) \(type.rawValue) \(name): that takes USE_CATALOG, USE_SCHEMA and \(privilege?.name ?? "ownership") (or owning it)")
            }
        }
        for table in references.tablesRead.sorted() where !table.hasPrefix("system.") { try await require(.select, .table, table, "read") }
        for table in references.tablesModified.sorted() { try await require(.modify, .table, table, "change") }
        for volume in references.volumesRead.sorted() { try await require(.readVolume, .volume, volume, "read the files of") }
        for table in references.tablesCreated.sorted() {
            if let existing = try? await catalog.path(.table, table) {
                // CREATE OR REPLACE of an existing table: its owner's call.
                guard try await catalog.mayManage(caller, existing) else {
                    throw KilnError(.permissionDenied, "\(caller.name) may not replace table \(table): that takes its owner or MANAGE")
                }
            } else {
                try await require(.createTable, .schema, table.split(separator: ".").prefix(2).joined(separator: "."), "create tables in")
            }
        }
        for name in references.namespacesCreated.sorted() {
            if name.contains(".") { try await require(.createSchema, .catalog, String(name.split(separator: ".")[0]), "create schemas in") }
            else { try await require(.createCatalog, .metastore, "metastore", "create catalogs in") }
        }
        for name in references.functionsCalled.sorted() { try await require(.execute, .function, name, "call") }
        for name in references.functionsCreated.sorted() {
            if let existing = try? await catalog.path(.function, name) {
                guard try await catalog.mayManage(caller, existing) else {
                    throw KilnError(.permissionDenied, "\(caller.name) may not replace function \(name): that takes its owner or MANAGE")
                }
            } else {
                try await require(.createFunction, .schema, name.split(separator: ".").prefix(2).joined(separator: "."), "create functions in")
            }
        }
        for name in references.functionsDropped.sorted() {
            guard let path = try? await catalog.path(.function, name) else { continue }
            guard try await catalog.mayManage(caller, path) else {
                throw KilnError(.permissionDenied, "\(caller.name) may not drop function \(name): that takes its owner, MANAGE, or an admin")
            }
        }
        for name in references.ownerOnly.sorted() {
            let type: SecurableType = name.split(separator: ".").count == 3 ? .table : name.contains(".") ? .schema : .catalog
            guard let path = try? await catalog.path(type, name) else { continue }
            guard try await catalog.mayManage(caller, path) else {
                throw KilnError(.permissionDenied, "\(caller.name) may not drop or alter \(type.rawValue) \(name): that takes its owner, MANAGE, or an admin")
            }
        }
    }
}
