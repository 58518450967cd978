import Foundation
import KilnCore
import KilnStore
import Logging
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit

/// The embedded ``KilnDatabase``: one SQLite file in WAL mode, one writer connection whose transactions are
/// serialized, and a few reader connections that see committed data while a write runs, each lent to one read at
/// a time (so a read that starts after a commit always sees it).
public final class SQLiteKilnDatabase: KilnDatabase {
    public let capabilities = DatabaseCapabilities(maxBindings: 30_000, name: "sqlite")
    private let writer: SQLiteConnection
    private let readers: [SQLiteConnection]
    private let readerPool: AsyncPool<SQLiteConnection>
    private let writeLock = AsyncSerialLock()
    private let logger: Logger

    private init(writer: SQLiteConnection, readers: [SQLiteConnection], logger: Logger) {
        self.writer = writer
        self.readers = readers
        self.readerPool = AsyncPool(readers)
        self.logger = logger
    }

    /// Opens (creating if needed) the database file at `path`.
    /// - Parameters:
    ///   - path: the file, or `":memory:"`-style paths are refused: readers need a shared file.
    ///   - readerCount: connections for concurrent reads.
    public static func open(path: String, readerCount: Int = 4, logger: Logger) async throws -> SQLiteKilnDatabase {
        let writer = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        let sql = writer.sql(queryLogLevel: nil)
        for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON",
                       "PRAGMA case_sensitive_like=ON", "PRAGMA busy_timeout=10000"] {
            try await sql.raw(SQLQueryString(pragma)).run()
        }
        var readers: [SQLiteConnection] = []
        for _ in 0..<max(readerCount, 1) {
            let reader = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
            let rsql = reader.sql(queryLogLevel: nil)
            for pragma in ["PRAGMA case_sensitive_like=ON", "PRAGMA busy_timeout=10000", "PRAGMA query_only=ON"] {
                try await rsql.raw(SQLQueryString(pragma)).run()
            }
            readers.append(reader)
        }
        return SQLiteKilnDatabase(writer: writer, readers: readers, logger: logger)
    }

    public func read<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        do {
            return try await readerPool.withItem { connection in try await body(FastSQLiteDatabase(connection: connection)) }
        } catch {
            throw Self.map(error)
        }
    }

    public func write<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        let sql = FastSQLiteDatabase(connection: writer)
        do {
            return try await writeLock.withLock {
                try await sql.raw("BEGIN IMMEDIATE").run()
                do {
                    let result = try await body(sql)
                    try await sql.raw("COMMIT").run()
                    return result
                } catch {
                    try? await sql.raw("ROLLBACK").run()
                    throw error
                }
            }
        } catch {
            throw Self.map(error)
        }
    }

    public func close() async {
        for connection in readers { try? await connection.close() }
        try? await writer.close()
    }

    static func map(_ error: any Error) -> any Error {
        if error is KilnError { return error }
        if let sqliteError = error as? SQLiteError {
            switch sqliteError.reason {
            case .constraintUniqueFailed, .constraintPrimaryKeyFailed:
                return KilnError(.resourceAlreadyExists, "A resource with that key already exists", cause: error)
            case .constraintForeignKeyFailed:
                return KilnError(.resourceDoesNotExist, "A referenced resource does not exist", cause: error)
            default:
                break
            }
        }
        return KilnError.internalError(error)
    }
}
