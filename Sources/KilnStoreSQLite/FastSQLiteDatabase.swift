import Logging
import NIOCore
import SQLKit
import SQLiteKit
import SQLiteNIO

/// An `SQLDatabase` over one `SQLiteConnection` that binds and decodes the common scalar types without
/// sqlite-kit's generic coders (whose per-value protocol-conformance lookups dominated search and history
/// profiles); anything else falls back to `SQLiteDataEncoder`/`SQLiteDataDecoder`.
struct FastSQLiteDatabase: SQLDatabase {
    let connection: SQLiteConnection
    var logger: Logger { connection.logger }
    var eventLoop: any EventLoop { connection.eventLoop }
    var dialect: any SQLDialect { SQLiteDialect() }
    var queryLogLevel: Logger.Level? { nil }

    static let encoder = SQLiteDataEncoder()

    static func bind(_ value: any Encodable & Sendable) throws -> SQLiteData {
        switch value {
        case let v as String: return .text(v)
        case let v as Int64: return .integer(SQLiteInt64(v))
        case let v as Int: return .integer(SQLiteInt64(v))
        case let v as Double: return .float(v)
        case let v as Bool: return .integer(v ? 1 : 0)
        case let v as String?: return v.map { .text($0) } ?? .null
        case let v as Int64?: return v.map { .integer(SQLiteInt64($0)) } ?? .null
        case let v as Double?: return v.map { .float($0) } ?? .null
        default: return try encoder.encode(value)
        }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
        let (sql, rawBinds) = serialize(query)
        do {
            let binds = try rawBinds.map(Self.bind)
            return connection.query(sql, binds, logger: logger) { onRow(FastSQLiteRow(row: $0)) }
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        let (sql, rawBinds) = serialize(query)
        let binds = try rawBinds.map(Self.bind)
        try await connection.query(sql, binds) { onRow(FastSQLiteRow(row: $0)) }
    }
}

/// An `SQLRow` that decodes `String`, `Int64`, `Int`, `Double`, `Bool` and their optionals directly.
struct FastSQLiteRow: SQLRow {
    let row: SQLiteRow
    static let decoder = SQLiteDataDecoder()

    struct MissingColumn: Error { let column: String }
    struct WrongType: Error { let column: String, expected: String }

    var allColumns: [String] { row.columns.map(\.name) }

    func contains(column: String) -> Bool { row.column(column) != nil }

    func decodeNil(column: String) throws -> Bool {
        guard let data = row.column(column) else { return true }
        return data == .null
    }

    func decode<D: Decodable>(column: String, as type: D.Type) throws -> D {
        guard let data = row.column(column) else { throw MissingColumn(column: column) }
        if D.self == String.self, case .text(let v) = data { return v as! D }
        if D.self == Int64.self, case .integer(let v) = data { return Int64(v) as! D }
        if D.self == Int.self, case .integer(let v) = data { return Int(v) as! D }
        if D.self == Double.self {
            if case .float(let v) = data { return v as! D }
            if case .integer(let v) = data { return Double(v) as! D }
        }
        if D.self == String?.self {
            if case .null = data { return String?.none as! D }
            if case .text(let v) = data { return String?.some(v) as! D }
        }
        if D.self == Int64?.self {
            if case .null = data { return Int64?.none as! D }
            if case .integer(let v) = data { return Int64?.some(Int64(v)) as! D }
        }
        return try Self.decoder.decode(D.self, from: data)
    }
}
