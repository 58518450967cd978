import KilnCore
import KilnPermissions
import KilnTestSupport
import Testing

@Suite("Workspace object permissions")
struct WorkspacePermissionsTests {
    static let principals: [String: Set<PrincipalType>] = [
        "ada": [.user], "bob": [.user], "eve": [.user], "team": [.group], "0b7c1e2a-3f4d-4e5f-8a9b-0c1d2e3f4a5b": [.servicePrincipal],
    ]
    let ada = Caller(id: "1", name: "ada", groups: [])
    let bob = Caller(id: "2", name: "bob", groups: ["team"])
    let eve = Caller(id: "3", name: "eve", groups: [])
    let admin = Caller(id: "9", name: "admin", groups: ["admins"])

    func withPermissions(_ body: (WorkspacePermissions) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        let database = try await TestStores.sqlite(in: directory)
        do {
            try await body(try await WorkspacePermissions.make(database: database, logger: TestStores.logger) { Self.principals[$0] ?? [] })
        } catch {
            await database.close()
            throw error
        }
        await database.close()
    }

    @Test("creators own; levels include the weaker ones; groups and the built-in users group count; admins hold all")
    func levels() async throws {
        try await withPermissions { p in
            try await p.recordCreated(.experiments, "7", by: ada)
            #expect(try await p.level(ada, .experiments, "7") == "CAN_MANAGE")
            #expect(try await p.holds(ada, "CAN_READ", .experiments, "7"))
            #expect(try await !p.holds(bob, "CAN_READ", .experiments, "7"))
            #expect(try await p.holds(admin, "CAN_MANAGE", .experiments, "7"))
            #expect(try await p.holds(nil, "CAN_MANAGE", .experiments, "7"))

            try await p.change(.experiments, "7", [AccessEntry(principal: "team", type: .group, level: "CAN_EDIT")], replace: false, caller: ada)
            #expect(try await p.level(bob, .experiments, "7") == "CAN_EDIT")
            #expect(try await !p.holds(bob, "CAN_MANAGE", .experiments, "7"))
            #expect(try await p.visibleIDs(bob, .experiments) == ["0", "7"])  // the Default experiment is everyone's
            #expect(try await p.visibleIDs(eve, .experiments) == ["0"])
            #expect(try await p.visibleIDs(admin, .experiments) == nil)

            // Only CAN_MANAGE changes a list.
            await #expect(throws: KilnError.self) {
                try await p.change(.experiments, "7", [AccessEntry(principal: "eve", type: .user, level: "CAN_READ")], replace: false, caller: bob)
            }
            try await p.change(.experiments, "7", [AccessEntry(principal: "users", type: .group, level: "CAN_READ")], replace: false, caller: ada)
            #expect(try await p.level(eve, .experiments, "7") == "CAN_READ")
        }
    }

    @Test("PUT replaces and PATCH merges; unknown principals and levels change nothing")
    func changes() async throws {
        try await withPermissions { p in
            try await p.recordCreated(.registeredModels, "m", by: ada)
            try await p.change(.registeredModels, "m", [AccessEntry(principal: "bob", type: .user, level: "CAN_MANAGE_STAGING_VERSIONS")],
                               replace: false, caller: ada)
            await #expect(throws: KilnError.self) {
                try await p.change(.registeredModels, "m", [AccessEntry(principal: "nobody", type: .user, level: "CAN_READ")], replace: true, caller: ada)
            }
            await #expect(throws: KilnError.self) {
                try await p.change(.registeredModels, "m", [AccessEntry(principal: "eve", type: .user, level: "CAN_QUERY")], replace: true, caller: ada)
            }
            await #expect(throws: KilnError.self) {  // a user is not a group
                try await p.change(.registeredModels, "m", [AccessEntry(principal: "eve", type: .group, level: "CAN_READ")], replace: true, caller: ada)
            }
            #expect(try await p.entries(.registeredModels, "m").map(\.principal) == ["ada", "bob"])
            try await p.change(.registeredModels, "m", [AccessEntry(principal: "eve", type: .user, level: "CAN_READ")], replace: true, caller: admin)
            #expect(try await p.entries(.registeredModels, "m") == [AccessEntry(principal: "eve", type: .user, level: "CAN_READ")])
            #expect(try await !p.holds(ada, "CAN_READ", .registeredModels, "m"))  // PUT took the creator's entry away too
        }
    }

    @Test("a job has one owner, kept by PUT unless replaced; rename and forget move and drop lists")
    func owners() async throws {
        try await withPermissions { p in
            try await p.recordCreated(.jobs, "5", by: ada)
            #expect(try await p.level(ada, .jobs, "5") == "IS_OWNER")
            try await p.change(.jobs, "5", [AccessEntry(principal: "bob", type: .user, level: "CAN_MANAGE_RUN")], replace: true, caller: ada)
            #expect(try await p.level(ada, .jobs, "5") == "IS_OWNER")
            await #expect(throws: KilnError.self) {
                try await p.change(.jobs, "5", [AccessEntry(principal: "team", type: .group, level: "IS_OWNER")], replace: false, caller: ada)
            }
            await #expect(throws: KilnError.self) {  // the owner may not hand the job (and what its tasks run as) to eve
                try await p.change(.jobs, "5", [AccessEntry(principal: "eve", type: .user, level: "IS_OWNER")], replace: false, caller: ada)
            }
            try await p.change(.jobs, "5", [AccessEntry(principal: "eve", type: .user, level: "IS_OWNER")], replace: false, caller: admin)
            #expect(try await p.level(ada, .jobs, "5") == nil)
            #expect(try await p.level(eve, .jobs, "5") == "IS_OWNER")

            try await p.recordCreated(.registeredModels, "old", by: bob)
            try await p.rename(.registeredModels, from: "old", to: "new")
            #expect(try await p.level(bob, .registeredModels, "new") == "CAN_MANAGE")
            #expect(try await p.level(bob, .registeredModels, "old") == nil)
            try await p.forget(.registeredModels, "new")
            #expect(try await p.level(bob, .registeredModels, "new") == nil)
        }
    }
}
