import Foundation
import KilnCore

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

/// Browser sessions, in memory: a random 256-bit id in an HttpOnly, SameSite=Lax cookie names a principal and a
/// CSRF token. Sessions end after `lifetime` without use, on sign-out, and when the server restarts (people sign
/// in again). The token someone signed in with is never kept.
public actor WebSessions {
    private var sessions: [String: WebSession] = [:]
    let lifetime: TimeInterval

    public init(lifetime: TimeInterval = 12 * 3600) { self.lifetime = lifetime }

    /// A new session for `caller`: its id (for the cookie) and the session.
    func create(caller: Caller) -> (id: String, session: WebSession) {
        let now = Date()
        sessions = sessions.filter { $0.value.expires > now }
        let id = Self.randomToken()
        let session = WebSession(caller: caller, csrf: Self.randomToken(), expires: now.addingTimeInterval(lifetime))
        sessions[id] = session
        return (id, session)
    }

    /// The live session `id` names (its expiry pushed back), or nil.
    func session(_ id: String) -> WebSession? {
        guard var session = sessions[id] else { return nil }
        let now = Date()
        guard session.expires > now else {
            sessions[id] = nil
            return nil
        }
        session.expires = now.addingTimeInterval(lifetime)
        sessions[id] = session
        return session
    }

    func end(_ id: String) { sessions[id] = nil }

    /// Records a fresh look at who the session's user is now.
    func refreshed(_ id: String, caller: Caller) {
        sessions[id]?.caller = caller
        sessions[id]?.checkedAt = Date()
    }

    func remember(_ id: String, statement: String) {
        guard var session = sessions[id] else { return }
        session.statements.removeAll { $0 == statement }
        session.statements.append(statement)
        session.statements = Array(session.statements.suffix(20))
        sessions[id] = session
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
