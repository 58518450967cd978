import Foundation
import KilnCore
import KilnSQL

/// A SQL function as Unity Catalog shows it: its definition (shared with SQL) and its owner.
public struct FunctionEntry: Sendable {
    public var function: SQLFunction
    public var ownership: Ownership
}

extension UnityCatalog {
    func loadFunction(_ catalogName: String, _ schemaName: String, _ name: String) throws -> SQLFunction {
        guard catalog.schemaExists(catalogName, schemaName) else {
            throw KilnError.notFound("[SCHEMA_NOT_FOUND] The schema '\(catalogName).\(schemaName)' does not exist")
        }
        guard let f = try catalog.function(catalogName, schemaName, name) else {
            throw KilnError.notFound("[ROUTINE_NOT_FOUND] The function '\(catalogName).\(schemaName).\(name)' does not exist")
        }
        return f
    }

    func functionEntry(_ f: SQLFunction) async throws -> FunctionEntry {
        FunctionEntry(function: f, ownership: try await ownership(f.id, createdAt: f.createdAt))
    }

    /// The functions of a schema `caller` may see.
    public func functions(in catalogName: String, _ schemaName: String, caller: Caller?) async throws -> [FunctionEntry] {
        let schemaPath = try await path(.schema, "\(catalogName).\(schemaName)")
        var found: [FunctionEntry] = []
        for f in try catalog.functions(in: catalogName, schemaName) { found.append(try await functionEntry(f)) }
        return try await visibleChildren(found, of: schemaPath, caller: caller) {
            .init(type: .function, id: $0.function.id, fullName: $0.function.fullName, ownership: $0.ownership)
        }
    }

    /// A function. - Throws: `PERMISSION_DENIED` when `caller` may not see it.
    public func getFunction(_ catalogName: String, _ schemaName: String, _ name: String, caller: Caller?) async throws -> FunctionEntry {
        let f = try loadFunction(catalogName, schemaName, name)
        try await requireVisible(caller, .function, f.fullName)
        return try await functionEntry(f)
    }

    /// Creates a SQL function; takes `CREATE_FUNCTION` on the schema (with the USE chain).
    /// - Throws: `RESOURCE_ALREADY_EXISTS`; `INVALID_PARAMETER_VALUE` for a bad definition (nothing is written).
    public func createFunction(_ f: SQLFunction, caller: Caller?) async throws -> FunctionEntry {
        try TextLimit.check(f.comment, "comment", max: 65_535)
        let parent = try await path(.schema, "\(f.catalog).\(f.schema)")
        if let caller, !(try await allowed(caller, .createFunction, parent)) {
            throw Self.denied(caller, "create functions in", parent, needs: "USE_CATALOG, USE_SCHEMA and CREATE_FUNCTION")
        }
        var f = f
        f.createdAt = clock.nowMillis()
        try catalog.saveFunction(f, replace: false)
        try await recordCreated(f.id, by: caller)
        return try await functionEntry(try loadFunction(f.catalog, f.schema, f.name))
    }

    /// Changes a function's owner (its owner, a container's owner, `MANAGE`, or an admin).
    public func updateFunction(_ catalogName: String, _ schemaName: String, _ name: String, owner: String?, caller: Caller?) async throws -> FunctionEntry {
        try await requireManage(caller, .function, "\(catalogName).\(schemaName).\(name)", action: "change")
        let entry = try await functionEntry(try loadFunction(catalogName, schemaName, name))
        try await recordUpdated(entry.function.id, current: entry.ownership, owner: owner, by: caller)
        return try await functionEntry(entry.function)
    }

    /// Deletes a function (its owner, a container's owner, `MANAGE`, or an admin); its grants go with it.
    public func deleteFunction(_ catalogName: String, _ schemaName: String, _ name: String, caller: Caller?) async throws {
        try await requireManage(caller, .function, "\(catalogName).\(schemaName).\(name)", action: "delete")
        let id = try loadFunction(catalogName, schemaName, name).id
        try catalog.dropFunction(catalogName, schemaName, name, ifExists: false)
        try await forget(id)
    }
}
