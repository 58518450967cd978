import Foundation
import KilnCatalog
import KilnCore
import KilnSQL
import KilnStore
import KilnTestSupport
import Testing

/// The authorization matrix (`authz_matrix.json`) checked against the catalog's rules: for every operation, every
/// principal role, every single privilege at every level it can be granted (with and without the USE chain), and the
/// knock-out of each member of a sufficient set. Expectations come only from the file.
@Suite("Authorization matrix")
struct AuthorizationMatrixTests {
    typealias Operation = AuthzMatrix.Operation
    static let matrix = AuthzMatrix.shared

    /// A warehouse with catalog `c`, schema `c.s` and table `c.s.t`, owned as the roles say.
    struct World {
        let catalog: UnityCatalog
        let database: any KilnDatabase
        let directory: TemporaryDirectory

        static func make() async throws -> World {
            let directory = try TemporaryDirectory()
            let database = try await TestStores.sqlite(in: directory)
            let warehouse = directory.url.appendingPathComponent("warehouse").path
            let names: Set<String> = ["ada", "analysts", "cat_owner", "schema_owner", "table_owner", "function_owner", "volume_owner", "model_owner", "stranger"]
            let catalog = try await UnityCatalog.make(warehouse: warehouse, database: database, clock: MockClock(), logger: TestStores.logger,
                                                      modelCreated: { $0 == "c.s.m" ? 1_700_000_000_000 : nil }) {
                names.contains($0)
            }
            _ = try await catalog.createCatalog("c", comment: nil, properties: [:], caller: nil)
            _ = try await catalog.createSchema("c", "s", comment: nil, properties: [:], storageRoot: nil, caller: nil)
            let path = warehouse + "/c/s/t"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            _ = try SQLEngine(catalog: Catalog(warehouse: warehouse)).execute("CREATE TABLE c.s.t (a INT)")
            _ = try await catalog.updateCatalog("c", newName: nil, comment: nil, owner: "cat_owner", properties: nil, caller: nil)
            _ = try await catalog.updateSchema("c", "s", newName: nil, comment: nil, owner: "schema_owner", properties: nil, caller: nil)
            _ = try await catalog.updateTable("c", "s", "t", owner: "table_owner", caller: nil)
            _ = try SQLEngine(catalog: Catalog(warehouse: warehouse)).execute("CREATE FUNCTION c.s.f(x INT) RETURNS INT RETURN x + 1")
            _ = try await catalog.updateFunction("c", "s", "f", owner: "function_owner", caller: nil)
            _ = try await catalog.createVolume("c", "s", "v", comment: nil, caller: nil)
            _ = try await catalog.updateVolume("c", "s", "v", newName: nil, comment: nil, owner: "volume_owner", caller: nil)
            try await catalog.setModelOwner("c.s.m", owner: "model_owner", caller: nil)
            return World(catalog: catalog, database: database, directory: directory)
        }

        func fullName(_ type: SecurableType) -> String { AuthzMatrix.fullName(type) }

        func grant(_ privilege: String, on type: SecurableType, to principal: String) async throws {
            let path = try await catalog.path(type, fullName(type))
            try await catalog.updatePermissions(path, changes: [(principal, [try Privilege(parsing: privilege)], [])], caller: nil)
        }

        func revokeAll() async throws {
            try await database.write { sql in try await sql.raw("DELETE FROM uc_grants").run() }
        }

        func decide(_ op: Operation, _ caller: Caller) async throws -> Bool {
            let path = try await catalog.path(try SecurableType(parsing: op.securable), fullName(try SecurableType(parsing: op.securable)))
            switch op.check {
            case "allowed": return try await catalog.allowed(caller, op.privilege.map { try Privilege(parsing: $0) }, path)
            case "manage": return try await catalog.mayManage(caller, path)
            case "visible": return try await catalog.visible(caller, path)
            case "tag": return (try? await catalog.requireModel(caller, .tag, path.target.fullName)) != nil
            default: throw KilnError.invalid("unknown check \(op.check)")
            }
        }

        func close() async { await database.close() }
    }

    @Test("each role: admin, owners of the table, schema and catalog allowed; a stranger denied")
    func roles() async throws {
        let world = try await World.make()
        var unexpected: [String] = []
        for op in Self.matrix.operations {
            let target = op.target
            let owners: [(String, Bool)] = [
                ("admin", true), ("cat_owner", AuthzMatrix.ownerMay(.catalog, op)), ("schema_owner", AuthzMatrix.ownerMay(.schema, op)),
                ("table_owner", target == .table), ("function_owner", target == .function), ("volume_owner", target == .volume), ("model_owner", target == .model),
                ("stranger", false), ("anonymous-looking", false),
            ]
            for (name, expected) in owners {
                let caller = Caller(id: nil, name: name, groups: name == "admin" ? [Caller.adminsGroup] : [])
                if try await world.decide(op, caller) != expected { unexpected.append("\(op.name) as \(name): expected \(expected)") }
            }
            // Kiln itself (no caller) always may.
            let path = try await world.catalog.path(target, world.fullName(target))
            if !(try await world.catalog.allowed(nil, nil, path)) { unexpected.append("\(op.name) as Kiln") }
        }
        #expect(unexpected.isEmpty, "\(unexpected)")
        await world.close()
    }

    @Test("every single privilege at every level, with and without the USE chain, to a user and through a group")
    func sweep() async throws {
        let world = try await World.make()
        var unexpected: [String] = []
        var cases = 0
        for op in Self.matrix.operations {
            for p in Self.matrix.privileges {
                for level in AuthzMatrix.levels {
                    // Only where the privilege can be granted at all.
                    guard (try? await world.grant(p, on: level, to: "ada")) != nil else { continue }
                    try await world.revokeAll()
                    for withChain in [true, false] {
                        for viaGroup in [false, true] {
                            try await world.revokeAll()
                            let grantee = viaGroup ? "analysts" : "ada"
                            try await world.grant(p, on: level, to: grantee)
                            if withChain {
                                try await world.grant("USE_CATALOG", on: .catalog, to: grantee)
                                try await world.grant("USE_SCHEMA", on: .schema, to: grantee)
                            }
                            let caller = Caller(id: nil, name: "ada", groups: viaGroup ? ["analysts"] : [])
                            let grants = [(p, level)] + (withChain ? [("USE_CATALOG", .catalog), ("USE_SCHEMA", .schema)] : [])
                            let expected = Self.matrix.satisfied(op, by: grants)
                            let got = try await world.decide(op, caller)
                            cases += 1
                            if got != expected {
                                unexpected.append("\(op.name): \(p) on \(level)\(withChain ? " + USE chain" : "")\(viaGroup ? " via group" : "") → \(got), expected \(expected)")
                            }
                        }
                    }
                }
            }
        }
        #expect(cases > 500)
        #expect(unexpected.isEmpty, "\(unexpected.count) unexpected: \(unexpected.prefix(20))")
        await world.close()
    }

    @Test("knocking out each member of a sufficient set denies")
    func knockouts() async throws {
        let world = try await World.make()
        var unexpected: [String] = []
        for op in Self.matrix.operations where op.use_chain {
            let set = Self.matrix.sufficientSet(op)!
            for skipped in set.indices {
                try await world.revokeAll()
                for (i, grant) in set.enumerated() where i != skipped { try await world.grant(grant.0, on: grant.1, to: "ada") }
                if try await world.decide(op, Caller(id: nil, name: "ada", groups: [])) {
                    unexpected.append("\(op.name) allowed without \(set[skipped].0)")
                }
            }
            try await world.revokeAll()
            for grant in set { try await world.grant(grant.0, on: grant.1, to: "ada") }
            if !(try await world.decide(op, Caller(id: nil, name: "ada", groups: []))) { unexpected.append("\(op.name) denied with the whole set") }
        }
        #expect(unexpected.isEmpty, "\(unexpected)")
        await world.close()
    }
}
