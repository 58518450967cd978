import KilnCore
import KilnStore
import Logging
import SQLKit

/// What a signed-in person chose in the UI and expects to find again (on any browser, after a restart): today the
/// runs table's columns per experiment. Kept per principal in the store, as short lists of strings.
public struct WebPreferences: Sendable {
    let database: any KilnDatabase
    /// The table's migration, started when the UI is built and awaited by every use (the router is built
    /// synchronously, and the platform below it knows nothing of the UI).
    private let ready: Task<Void, any Error>
    /// Longest list kept (a runs table with more columns than this is not readable anyway).
    static let maxItems = 500

    /// Preferences in `database`; creates the table in the background if needed.
    public init(database: any KilnDatabase, logger: Logger = Logger(label: "kiln.web")) {
        self.database = database
        ready = Task { try await Migrator.migrate(database, Self.migrations, logger: logger) }
    }

    public static let migrations = [
        Migration("web_0001_preferences", [
            """
            CREATE TABLE web_preferences (
                principal VARCHAR(256) NOT NULL,
                name VARCHAR(300) NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (principal, name)
            )
            """,
        ]),
    ]

    /// The list `principal` saved under `name`, or nil when there is none.
    func list(_ principal: String, _ name: String) async throws -> [String]? {
        try await ready.value
        let stored = try await database.read { sql in
            try await sql.raw("SELECT value FROM web_preferences WHERE principal = \(bind: principal) AND name = \(bind: name)")
                .first()?.decode(column: "value", as: String.self)
        }
        guard let stored, case .array(let items)? = try? JSONValue.parse(Array(stored.utf8)) else { return nil }
        return items.compactMap { if case .string(let s) = $0 { s } else { nil } }
    }

    /// Saves `items` (at most ``maxItems``) under `name` for `principal`; nil forgets the list.
    func setList(_ principal: String, _ name: String, _ items: [String]?) async throws {
        try await ready.value
        try await database.write { sql in
            guard let items else {
                try await sql.raw("DELETE FROM web_preferences WHERE principal = \(bind: principal) AND name = \(bind: name)").run()
                return
            }
            let value = JSONValue.array(items.prefix(Self.maxItems).map { .string($0) }).json
            try await sql.raw("""
                INSERT INTO web_preferences (principal, name, value) VALUES (\(bind: principal), \(bind: name), \(bind: value))
                ON CONFLICT (principal, name) DO UPDATE SET value = excluded.value
                """).run()
        }
    }
}
