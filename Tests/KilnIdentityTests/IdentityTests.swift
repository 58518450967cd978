import KilnCore
import KilnIdentity
import KilnTestSupport
import Testing

@Suite("SCIM filters")
struct SCIMFilterTests {
    let user: JSONValue = .object([
        "userName": .string("Ada@Example.com"), "displayName": .string("Ada Lovelace"), "active": .bool(true),
        "emails": .array([.object(["value": .string("ada@example.com"), "primary": .bool(true)])]),
    ])

    @Test("comparisons are case-insensitive; multi-valued attributes match on any value; and/or/not/pr combine")
    func matching() throws {
        #expect(try SCIMFilter.parse("userName eq \"ada@example.com\"").matches(user))
        #expect(try SCIMFilter.parse("USERNAME EQ \"ADA@EXAMPLE.COM\"").matches(user))
        #expect(try !SCIMFilter.parse("userName ne \"ada@example.com\"").matches(user))
        #expect(try SCIMFilter.parse("displayName co \"love\"").matches(user))
        #expect(try SCIMFilter.parse("displayName sw \"ada\" and active eq true").matches(user))
        #expect(try !SCIMFilter.parse("displayName sw \"bob\" and active eq true").matches(user))
        #expect(try SCIMFilter.parse("displayName sw \"bob\" or emails.value ew \"example.com\"").matches(user))
        #expect(try SCIMFilter.parse("emails eq \"ada@example.com\"").matches(user))
        #expect(try SCIMFilter.parse("not (externalId pr)").matches(user))
        #expect(try !SCIMFilter.parse("(userName pr) and not (active eq true)").matches(user))
        #expect(try SCIMFilter.parse("displayName eq \"Ada \\\"the\\\" Lovelace\"") == .compare(path: ["displayname"], op: "eq", value: .string("Ada \"the\" Lovelace")))
    }

    @Test("bad filters are INVALID_PARAMETER_VALUE naming the problem", arguments: [
        "userName", "userName eq", "userName like \"a\"", "userName eq \"open", "(userName pr", "userName eq bare", "userName pr extra",
    ])
    func rejects(_ text: String) {
        #expect(throws: KilnError.self) { try SCIMFilter.parse(text) }
    }
}

@Suite("Identities and tokens")
struct IdentityServiceTests {
    /// Runs `body` over a fresh store, closed afterwards whatever happens.
    func withIdentity(_ body: (IdentityService, MockClock) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        let clock = MockClock()
        let database = try await TestStores.sqlite(in: directory)
        do {
            try await body(try await IdentityService.make(database: database, clock: clock, logger: TestStores.logger), clock)
        } catch {
            await database.close()
            throw error
        }
        await database.close()
    }

    @Test("the bootstrap admin is a member of admins and can be neither deleted, disabled nor removed from admins")
    func bootstrap() async throws {
        try await withIdentity { identity, _ in
            let admin = try #require(try await identity.caller(named: "admin"))
            #expect(admin.isAdmin)
            #expect(admin.id != nil)
            let admins = try await identity.list(.group, filter: "displayName eq \"admins\"").page[0]
            await #expect(throws: KilnError.self) { try await identity.delete(.user, id: admin.id!) }
            await #expect(throws: KilnError.self) { try await identity.delete(.group, id: admins.principal.id) }
            await #expect(throws: KilnError.self) {
                try await identity.patch(.user, id: admin.id!, operations: [.object(["op": .string("replace"), "path": .string("active"), "value": .bool(false)])])
            }
            await #expect(throws: KilnError.self) {
                try await identity.patch(.group, id: admins.principal.id, operations: [.object(["op": .string("replace"), "path": .string("members"), "value": .array([])])])
            }
            #expect(try await identity.caller(named: "admin")?.isAdmin == true)
        }
    }

    @Test("nested groups give their members every enclosing group; cycles are refused")
    func nesting() async throws {
        try await withIdentity { identity, _ in
            let ada = try await identity.create(.user, ["userName": .string("ada@example.com")]).principal
            let data = try await identity.create(.group, ["displayName": .string("data"), "members": .array([.object(["value": .string(ada.id)])])]).principal
            let eng = try await identity.create(.group, ["displayName": .string("eng"), "members": .array([.object(["value": .string(data.id)])])]).principal
            #expect(try await identity.caller(named: "ADA@example.com")?.groups == ["data", "eng"])
            await #expect(throws: KilnError.self) {
                try await identity.patch(.group, id: data.id, operations: [.object(["op": .string("add"), "path": .string("members"),
                                                                                      "value": .array([.object(["value": .string(eng.id)])])])])
            }
            _ = try await identity.patch(.group, id: data.id, operations: [.object(["op": .string("remove"), "path": .string("members[value eq \"\(ada.id)\"]")])])
            #expect(try await identity.caller(named: "ada@example.com")?.groups == [])
            await #expect(throws: KilnError.self) { try await identity.create(.user, ["userName": .string("Ada@Example.com")]) }
        }
    }

    @Test("tokens: stored hashed, expire, die with a disabled or deleted owner; the value is never read back")
    func tokens() async throws {
        try await withIdentity { identity, clock in
            let ada = try await identity.create(.user, ["userName": .string("ada@example.com")]).principal
            let (value, info) = try await identity.createToken(owner: ada.id, createdBy: ada.id, lifetimeSeconds: 60, comment: "ci")
            #expect(value.hasPrefix("dapi") && value.count == 68)
            #expect(try await identity.authenticate(token: value)?.name == "ada@example.com")
            #expect(try await identity.authenticate(token: value + "0") == nil)
            #expect(try await identity.tokens(owner: ada.id).map(\.tokenID) == [info.tokenID])
            clock.advance(by: 61_000)
            #expect(try await identity.authenticate(token: value) == nil)

            let (forever, _) = try await identity.createToken(owner: ada.id, createdBy: ada.id, lifetimeSeconds: nil, comment: nil)
            #expect(try await identity.authenticate(token: forever) != nil)
            _ = try await identity.patch(.user, id: ada.id, operations: [.object(["op": .string("replace"), "value": .object(["active": .string("false")])])])
            #expect(try await identity.authenticate(token: forever) == nil)
            #expect(try await identity.tokens(owner: ada.id).isEmpty)
            await #expect(throws: KilnError.self) { try await identity.createToken(owner: ada.id, createdBy: ada.id, lifetimeSeconds: nil, comment: nil) }

            _ = try await identity.patch(.user, id: ada.id, operations: [.object(["op": .string("replace"), "path": .string("active"), "value": .bool(true)])])
            let (third, third_) = try await identity.createToken(owner: ada.id, createdBy: ada.id, lifetimeSeconds: nil, comment: nil)
            #expect(try await identity.authenticate(token: third) != nil)
            try await identity.deleteToken(id: third_.tokenID)
            #expect(try await identity.authenticate(token: third) == nil)
            let (fourth, _) = try await identity.createToken(owner: ada.id, createdBy: ada.id, lifetimeSeconds: nil, comment: nil)
            try await identity.delete(.user, id: ada.id)
            #expect(try await identity.authenticate(token: fourth) == nil)
        }
    }

    @Test("lists page from startIndex 1, sort by the naming attribute, and are empty past the end")
    func paging() async throws {
        try await withIdentity { identity, _ in
            for name in ["carol", "alice", "bob"] { _ = try await identity.create(.user, ["userName": .string(name)]) }
            let all = try await identity.list(.user, filter: nil)
            #expect(all.page.map(\.principal.name) == ["admin", "alice", "bob", "carol"])
            let second = try await identity.list(.user, filter: nil, startIndex: 2, count: 2)
            #expect(second.total == 4 && second.page.map(\.principal.name) == ["alice", "bob"])
            #expect(try await identity.list(.user, filter: nil, startIndex: 5, count: 2).page.isEmpty)
            #expect(try await identity.list(.user, filter: nil, sortBy: "userName", descending: true).page.first?.principal.name == "carol")
        }
    }
}
