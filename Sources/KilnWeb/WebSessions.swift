import Crypto
import Foundation
import KilnCore
import KilnStore
import Logging
import SQLKit

/// A signed-in browser: who it is and the token its forms must send back (CSRF).
public struct WebSession: Sendable {
    /// Who signed in: their name and groups.
    public var caller: Caller
    public var principal: String { caller.name }
    public var csrf: String
    var expires: Date
    /// When the caller was last checked against the identity store (a disabled user's session ends; groups refresh).
    var checkedAt = Date()
    /// The SQL editor's recent statements (newest last, at most 20).
    var statements: [String] = []
    /// The SQL editor's results this session can page through: statement ids and their text (newest last).
    var results: [(id: String, statement: String)] = []
}

/// Browser sessions: a random 256-bit id in an HttpOnly, SameSite=Lax cookie names a principal and a CSRF token.
/// Kept in memory and, given a store, there too (by the id's SHA-256, never the id), so a restart or another server
/// on the same store keeps people signed in; a session restored from the store looks its user up again before use.
/// Sessions end after `lifetime` without use and on sign-out. The token someone signed in with is never kept.
public actor WebSessions {
    private var sessions: [String: WebSession] = [:]
    let lifetime: TimeInterval
    let database: (any KilnDatabase)?
    private let ready: Task<Void, any Error>?

    public init(database: (any KilnDatabase)? = nil, lifetime: TimeInterval = 12 * 3600, logger: Logger = Logger(label: "kiln.web")) {
        self.lifetime = lifetime
        self.database = database
        ready = database.map { db in Task { try await Migrator.migrate(db, Self.migrations, logger: logger) } }
    }

    public static let migrations = [
        Migration("web_0002_sessions", [
            """
            CREATE TABLE web_sessions (
                id_hash VARCHAR(64) PRIMARY KEY,
                principal_id VARCHAR(64) NOT NULL,
                principal VARCHAR(256) NOT NULL,
                csrf VARCHAR(64) NOT NULL,
                expires_at BIGINT NOT NULL,
                statements TEXT NOT NULL
            )
            """,
        ]),
    ]

    static func hash(_ id: String) -> String { Hex.encode(SHA256.hash(data: Array(id.utf8))) }
    static func millis(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970 * 1000) }

    /// Runs `body` on the store, if there is one; a store that fails leaves the session in memory only.
    private func stored(_ body: @escaping @Sendable (any SQLDatabase) async throws -> Void) async {
        guard let database, let ready, (try? await ready.value) != nil else { return }
        try? await database.write { sql in try await body(sql) }
    }

    /// A new session for `caller`: its id (for the cookie) and the session.
    func create(caller: Caller) async -> (id: String, session: WebSession) {
        let now = Date()
        sessions = sessions.filter { $0.value.expires > now }
        let id = Self.randomToken()
        let session = WebSession(caller: caller, csrf: Self.randomToken(), expires: now.addingTimeInterval(lifetime))
        sessions[id] = session
        if let principalID = caller.id {
            let (hash, expires, csrf) = (Self.hash(id), Self.millis(session.expires), session.csrf)
            await stored { sql in
                try await sql.raw("DELETE FROM web_sessions WHERE expires_at < \(bind: Self.millis(now))").run()
                try await sql.raw("""
                    INSERT INTO web_sessions (id_hash, principal_id, principal, csrf, expires_at, statements)
                    VALUES (\(bind: hash), \(bind: principalID), \(bind: caller.name), \(bind: csrf), \(bind: expires), '[]')
                    """).run()
            }
        }
        return (id, session)
    }

    /// The live session `id` names (its expiry pushed back), or nil. A session only the store knows comes back with
    /// its user to be looked up again (no groups until then).
    func session(_ id: String) async -> WebSession? {
        let now = Date()
        var found = sessions[id]
        if found == nil, let restored = await load(id) { found = restored }
        guard var session = found else { return nil }
        guard session.expires > now else {
            await end(id)
            return nil
        }
        let pushed = now.addingTimeInterval(lifetime)
        if pushed.timeIntervalSince(session.expires) > 600 {  // the store hears of use at most every ten minutes
            let (hash, expires) = (Self.hash(id), Self.millis(pushed))
            await stored { sql in try await sql.raw("UPDATE web_sessions SET expires_at = \(bind: expires) WHERE id_hash = \(bind: hash)").run() }
        }
        session.expires = pushed
        sessions[id] = session
        return session
    }

    private func load(_ id: String) async -> WebSession? {
        guard let database, let ready, (try? await ready.value) != nil else { return nil }
        let hash = Self.hash(id)
        let row = try? await database.read { sql in try await sql.raw("SELECT * FROM web_sessions WHERE id_hash = \(bind: hash)").first() }
        guard let row, let principalID = try? row.decode(column: "principal_id", as: String.self),
              let name = try? row.decode(column: "principal", as: String.self), let csrf = try? row.decode(column: "csrf", as: String.self),
              let expires = try? row.decode(column: "expires_at", as: Int64.self) else { return nil }
        var session = WebSession(caller: Caller(id: principalID, name: name, groups: []), csrf: csrf,
                                 expires: Date(timeIntervalSince1970: Double(expires) / 1000), checkedAt: .distantPast)
        if let text = try? row.decode(column: "statements", as: String.self), case .array(let items)? = try? JSONValue.parse(Array(text.utf8)) {
            session.statements = items.compactMap { if case .string(let s) = $0 { s } else { nil } }
        }
        return session
    }

    func end(_ id: String) async {
        sessions[id] = nil
        let hash = Self.hash(id)
        await stored { sql in try await sql.raw("DELETE FROM web_sessions WHERE id_hash = \(bind: hash)").run() }
    }

    /// Records a fresh look at who the session's user is now.
    func refreshed(_ id: String, caller: Caller) {
        sessions[id]?.caller = caller
        sessions[id]?.checkedAt = Date()
    }

    func remember(_ id: String, statement: String) async {
        guard var session = sessions[id] else { return }
        session.statements.removeAll { $0 == statement }
        session.statements.append(statement)
        session.statements = Array(session.statements.suffix(20))
        sessions[id] = session
        let (hash, text) = (Self.hash(id), JSONValue.array(session.statements.map { .string($0) }).json)
        await stored { sql in try await sql.raw("UPDATE web_sessions SET statements = \(bind: text) WHERE id_hash = \(bind: hash)").run() }
    }

    func history(_ id: String) -> [String] { sessions[id]?.statements ?? [] }

    /// Keeps a result (statement `result`) pageable by session `id`, at most `limit` of them; returns the ids of
    /// results it let go (to close).
    func keep(_ id: String, result: String, statement: String, limit: Int = 5) -> [String] {
        guard var session = sessions[id] else { return [result] }
        session.results.append((result, statement))
        let dropped = session.results.dropLast(limit).map(\.id)
        session.results = Array(session.results.suffix(limit))
        sessions[id] = session
        return dropped
    }

    /// The statement text of a result session `id` kept, or nil when it is not one of its results.
    func result(_ id: String, _ result: String) -> String? {
        sessions[id]?.results.first { $0.id == result }?.statement
    }

    /// 32 random bytes, base64url without padding (cookie- and form-safe).
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// Equal without an early exit (tokens compared in constant time).
    static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for i in x.indices { difference |= x[i] ^ y[i] }
        return difference == 0
    }
}
