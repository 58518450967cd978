import KilnCore
import Logging
import SQLKit

/// The metadata store seam: SQL through sql-kit, with one writer at a time and transactions as closures.
///
/// Contract for implementers: `write` runs `body` inside one transaction that commits when `body` returns and
/// rolls back when it throws, and no two `write` bodies overlap; `read` sees only committed data. Both map
/// unique-constraint violations to `RESOURCE_ALREADY_EXISTS` and other driver errors to `INTERNAL_ERROR`.
///
/// ```swift
/// try await db.write { sql in
///     try await sql.raw("INSERT INTO t (k) VALUES (\(bind: key))").run()
/// }
/// ```
public protocol KilnDatabase: Sendable {
    /// The dialect's capabilities that Kiln's SQL depends on.
    var capabilities: DatabaseCapabilities { get }
    /// Runs `body` on a connection that sees committed data.
    func read<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R
    /// Runs `body` in one write transaction.
    func write<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R
    /// Closes every connection.
    func close() async
}

/// What differs between backends, as data rather than `if`s.
public struct DatabaseCapabilities: Sendable {
    /// The largest number of bound values one statement may carry.
    public var maxBindings: Int
    /// Name of the backend, for logs.
    public var name: String

    public init(maxBindings: Int, name: String) {
        self.maxBindings = maxBindings
        self.name = name
    }
}

/// A named, forward-only schema change, applied once in its own transaction.
public struct Migration: Sendable {
    public let name: String
    public let statements: [String]
    /// The backends (``DatabaseCapabilities/name``) it applies to; nil: all. Elsewhere it is recorded as applied
    /// without running (for storage layouts only one backend has, such as SQLite's `WITHOUT ROWID`).
    public let only: Set<String>?

    public init(_ name: String, only: Set<String>? = nil, _ statements: [String]) {
        self.name = name
        self.only = only
        self.statements = statements
    }
}

/// Applies migrations in order, recording each by name in `kiln_migrations`.
public enum Migrator {
    /// Applies every migration not yet recorded.
    /// - Parameter migrations: in order; names must be unique across all services.
    public static func migrate(_ db: any KilnDatabase, _ migrations: [Migration], logger: Logger) async throws {
        try await db.write { sql in
            try await sql.raw("CREATE TABLE IF NOT EXISTS kiln_migrations (name VARCHAR(200) PRIMARY KEY, applied_at BIGINT NOT NULL)").run()
        }
        let applied = try await db.read { sql in
            try await sql.raw("SELECT name FROM kiln_migrations").all().map { try $0.decode(column: "name", as: String.self) }
        }
        let done = Set(applied)
        for migration in migrations where !done.contains(migration.name) {
            logger.info("Applying migration", metadata: ["kiln.migration": "\(migration.name)"])
            let applies = migration.only.map { $0.contains(db.capabilities.name) } ?? true
            try await db.write { sql in
                for statement in migration.statements where applies {
                    try await sql.raw(SQLQueryString(statement)).run()
                }
                let now = SystemClock().nowMillis()
                try await sql.raw("INSERT INTO kiln_migrations (name, applied_at) VALUES (\(bind: migration.name), \(bind: now))").run()
            }
        }
    }
}
