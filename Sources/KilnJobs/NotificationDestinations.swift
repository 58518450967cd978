import Foundation
import KilnCore
import KilnStore
import Logging
import SQLKit

/// Notification destinations (`/api/2.0/notification-destinations`): named webhook or email targets that jobs'
/// `webhook_notifications` name by id. Secrets (a webhook's password) are kept, never returned.
public struct NotificationDestinations: Sendable {
    let database: any KilnDatabase

    /// Opens the destinations over `database`, its table migrated.
    public static func make(database: any KilnDatabase, logger: Logger) async throws -> NotificationDestinations {
        try await Migrator.migrate(database, migrations, logger: logger)
        return NotificationDestinations(database: database)
    }

    public static let migrations = [
        Migration("jobs_0003_notification_destinations", [
            """
            CREATE TABLE notification_destinations (
                id VARCHAR(64) PRIMARY KEY,
                display_name TEXT NOT NULL,
                destination_type VARCHAR(32) NOT NULL,
                config TEXT NOT NULL
            )
            """,
        ]),
    ]

    /// A stored destination: id, name, type (WEBHOOK, EMAIL) and the config as sent.
    public struct Destination: Sendable {
        public var id: String
        public var displayName: String
        public var type: String
        public var config: [String: JSONValue]

        /// The config as the API shows it: secrets replaced by `<field>_set: true`.
        public var publicConfig: [String: JSONValue] {
            var out = config
            if case .object(var hook)? = config["generic_webhook"] {
                for secret in ["password", "username"] where hook[secret] != nil {
                    hook[secret] = nil
                    hook["\(secret)_set"] = .bool(true)
                }
                hook["url_set"] = .bool(hook["url"] != nil)
                out["generic_webhook"] = .object(hook)
            }
            return out
        }
    }

    /// - Throws: `INVALID_PARAMETER_VALUE` unless the config holds a `generic_webhook` with a URL or an `email`
    ///   with addresses.
    public func create(displayName: String, config: [String: JSONValue]) async throws -> Destination {
        guard !displayName.isEmpty else { throw KilnError.invalid("display_name is required") }
        let type = try Self.type(config)
        let d = Destination(id: UUID().uuidString.lowercased(), displayName: displayName, type: type, config: config)
        try await database.write { sql in
            try await sql.raw("""
                INSERT INTO notification_destinations (id, display_name, destination_type, config)
                VALUES (\(bind: d.id), \(bind: d.displayName), \(bind: d.type), \(bind: JSONValue.object(d.config).json))
                """).run()
        }
        return d
    }

    static func type(_ config: [String: JSONValue]) throws -> String {
        if case .object(let hook)? = config["generic_webhook"] {
            guard case .string(let url)? = hook["url"], url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw KilnError.invalid("config.generic_webhook.url must be an http(s) URL")
            }
            return "WEBHOOK"
        }
        if case .object(let email)? = config["email"], case .array(let addresses)? = email["addresses"], !addresses.isEmpty { return "EMAIL" }
        throw KilnError.invalid("config needs generic_webhook {url} or email {addresses}; Kiln delivers these two kinds")
    }

    public func get(_ id: String) async throws -> Destination {
        let rows = try await database.read { sql in try await sql.raw("SELECT * FROM notification_destinations WHERE id = \(bind: id)").all() }
        guard let row = rows.first else { throw KilnError.notFound("Notification destination \(id) does not exist") }
        return try Self.destination(row)
    }

    public func list() async throws -> [Destination] {
        try await database.read { sql in try await sql.raw("SELECT * FROM notification_destinations ORDER BY display_name, id").all() }.map(Self.destination)
    }

    /// Changes the name and/or config (a config's omitted secrets keep their stored values).
    public func update(_ id: String, displayName: String?, config: [String: JSONValue]?) async throws -> Destination {
        var d = try await get(id)
        if let displayName { d.displayName = displayName }
        if var config {
            if case .object(var hook)? = config["generic_webhook"], case .object(let old)? = d.config["generic_webhook"] {
                for secret in ["password", "username", "url"] where hook[secret] == nil { hook[secret] = old[secret] }
                config["generic_webhook"] = .object(hook)
            }
            d.type = try Self.type(config)
            d.config = config
        }
        let updated = d
        try await database.write { sql in
            try await sql.raw("""
                UPDATE notification_destinations SET display_name = \(bind: updated.displayName), destination_type = \(bind: updated.type),
                    config = \(bind: JSONValue.object(updated.config).json) WHERE id = \(bind: id)
                """).run()
        }
        return d
    }

    public func delete(_ id: String) async throws {
        _ = try await get(id)
        try await database.write { sql in try await sql.raw("DELETE FROM notification_destinations WHERE id = \(bind: id)").run() }
    }

    static func destination(_ row: any SQLRow) throws -> Destination {
        Destination(id: try row.decode(column: "id", as: String.self), displayName: try row.decode(column: "display_name", as: String.self),
                    type: try row.decode(column: "destination_type", as: String.self), config: try JobRunStore.object(row, "config"))
    }
}
