import Crypto
import Foundation
import KilnCore
import SQLKit
import Synchronization

/// A personal access token as the Token and Token Management APIs show it: never its value.
public struct TokenInfo: Sendable, Equatable {
    public var tokenID: String
    public var ownerID: String
    public var ownerName: String
    public var createdByID: String
    public var createdByName: String
    public var comment: String
    public var creationTime: Int64
    /// -1: never expires.
    public var expiryTime: Int64
    /// Midnight (UTC, epoch millis) of the last day the token was used; nil when never.
    public var lastUsedDay: Int64?
}

/// Recently authenticated tokens by hash, so a request costs a SHA-256 and a dictionary lookup, not a read.
/// Every identity write clears it in this process; entries also expire after a few seconds, which bounds how long
/// another server sharing the store keeps honouring a revoked token.
final class TokenCache: Sendable {
    struct Entry {
        var caller: Caller
        var expiryTime: Int64
        var cachedAt: Int64
    }

    static let lifetimeMillis: Int64 = 5_000
    private let entries = Mutex<[String: Entry]>([:])

    func lookup(_ hash: String, now: Int64) -> Entry? {
        entries.withLock { table in
            guard let entry = table[hash], now - entry.cachedAt < Self.lifetimeMillis else { return nil }
            return entry
        }
    }

    func store(_ hash: String, _ entry: Entry) {
        entries.withLock { table in
            if table.count > 10_000 { table.removeAll() }
            table[hash] = entry
        }
    }

    func clear() { entries.withLock { $0.removeAll() } }
}

extension IdentityService {
    /// The prefix of every personal access token Kiln issues (as Databricks' `dapi`).
    public static let tokenPrefix = "dapi"

    /// Issues a token for `owner` (a user or service principal id): 256 random bits, shown once; only its SHA-256 is
    /// kept.
    /// - Parameter lifetimeSeconds: nil or 0: never expires.
    /// - Returns: the token's value and its info.
    public func createToken(owner: String, createdBy: String, lifetimeSeconds: Int64?, comment: String?) async throws -> (value: String, info: TokenInfo) {
        if let lifetimeSeconds, lifetimeSeconds < 0 { throw KilnError.invalid("lifetime_seconds must not be negative; leave it out for a token that does not expire") }
        if let comment, comment.count > 1000 { throw KilnError.invalid("comment is longer than 1000 characters") }
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let value = Self.tokenPrefix + Hex.encode(bytes)
        let now = clock.nowMillis()
        let expiry = (lifetimeSeconds ?? 0) > 0 ? now + lifetimeSeconds! * 1000 : -1
        let id = Identifiers.hex32() + Identifiers.hex32()
        let hash = Self.hash(value)
        let info = try await database.write { sql in
            let s = try await Self.snapshot(sql)
            guard let p = s.byID[owner], p.kind != .group else { throw KilnError.notFound("No user or service principal has id \(owner)") }
            guard p.active else { throw KilnError.invalid("\(p.name) is disabled; enable it before issuing tokens") }
            try await sql.raw("""
                INSERT INTO identity_tokens (token_id, token_hash, owner_id, created_by_id, comment, creation_time, expiry_time)
                VALUES (\(bind: id), \(bind: hash), \(bind: owner), \(bind: createdBy), \(bind: comment ?? ""), \(bind: now), \(bind: expiry))
                """).run()
            return TokenInfo(tokenID: id, ownerID: owner, ownerName: p.name, createdByID: createdBy, createdByName: s.byID[createdBy]?.name ?? "",
                             comment: comment ?? "", creationTime: now, expiryTime: expiry, lastUsedDay: nil)
        }
        return (value, info)
    }

    /// Tokens, newest first: those `owner` holds, or every token when nil (the admin view), optionally those created
    /// by one principal.
    public func tokens(owner: String? = nil, createdByID: String? = nil, createdByName: String? = nil) async throws -> [TokenInfo] {
        let (rows, s) = try await database.read { sql in
            (try await sql.raw("SELECT * FROM identity_tokens ORDER BY creation_time DESC, token_id").all(), try await Self.snapshot(sql))
        }
        return try rows.map { row in
            let ownerID = try row.decode(column: "owner_id", as: String.self), creator = try row.decode(column: "created_by_id", as: String.self)
            return TokenInfo(tokenID: try row.decode(column: "token_id", as: String.self), ownerID: ownerID, ownerName: s.byID[ownerID]?.name ?? "",
                             createdByID: creator, createdByName: s.byID[creator]?.name ?? "",
                             comment: try row.decode(column: "comment", as: String.self),
                             creationTime: try row.decode(column: "creation_time", as: Int64.self),
                             expiryTime: try row.decode(column: "expiry_time", as: Int64.self),
                             lastUsedDay: try row.decode(column: "last_used_day", as: Int64?.self))
        }.filter { info in
            (owner == nil || info.ownerID == owner) && (createdByID == nil || info.createdByID == createdByID)
                && (createdByName == nil || info.createdByName.lowercased() == createdByName!.lowercased())
        }
    }

    /// Revokes a token. With `owner` set, only that owner's token is found.
    /// - Throws: `RESOURCE_DOES_NOT_EXIST` when there is no such token (or it is someone else's).
    public func deleteToken(id: String, owner: String? = nil) async throws {
        guard try await tokens(owner: owner).contains(where: { $0.tokenID == id }) else { throw KilnError.notFound("Token \(id) does not exist") }
        try await database.write { sql in try await sql.raw("DELETE FROM identity_tokens WHERE token_id = \(bind: id)").run() }
        cache.clear()
    }

    /// Who a personal access token belongs to; nil when it is unknown, revoked, expired or its owner is disabled.
    public func authenticate(token: String) async throws -> Caller? {
        guard token.hasPrefix(Self.tokenPrefix) else { return nil }
        let hash = Self.hash(token)
        let now = clock.nowMillis()
        if let hit = cache.lookup(hash, now: now) {
            return hit.expiryTime < 0 || hit.expiryTime > now ? hit.caller : nil
        }
        let found = try await database.read { sql -> (TokenInfo, Caller?)? in
            guard let row = try await sql.raw("SELECT * FROM identity_tokens WHERE token_hash = \(bind: hash)").first() else { return nil }
            let owner = try row.decode(column: "owner_id", as: String.self)
            let s = try await Self.snapshot(sql)
            let caller = s.byID[owner].flatMap { p in p.active ? Caller(id: p.id, name: p.name, groups: s.groupNames(of: p.id)) : nil }
            let info = TokenInfo(tokenID: try row.decode(column: "token_id", as: String.self), ownerID: owner, ownerName: caller?.name ?? "",
                                 createdByID: "", createdByName: "", comment: "", creationTime: 0,
                                 expiryTime: try row.decode(column: "expiry_time", as: Int64.self),
                                 lastUsedDay: try row.decode(column: "last_used_day", as: Int64?.self))
            return (info, caller)
        }
        guard let (info, caller) = found, let caller else { return nil }
        guard info.expiryTime < 0 || info.expiryTime > now else { return nil }
        let today = now - now % 86_400_000
        if info.lastUsedDay != today {
            try await database.write { sql in
                try await sql.raw("UPDATE identity_tokens SET last_used_day = \(bind: today) WHERE token_id = \(bind: info.tokenID)").run()
            }
        }
        cache.store(hash, .init(caller: caller, expiryTime: info.expiryTime, cachedAt: now))
        return caller
    }

    static func hash(_ token: String) -> String {
        Hex.encode(SHA256.hash(data: Array(token.utf8)))
    }
}
