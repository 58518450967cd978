import KilnStore
import KilnTestSupport
import SQLKit
import Testing

@Suite("SQLite store: reads see every write that finished before they began")
struct ReadAfterWriteTests {
    @Test("a row written while long reads hold every reader is read back by the next read")
    func readSeesPriorWrite() async throws {
        let directory = try TemporaryDirectory()
        let database = try await TestStores.sqlite(in: directory)
        try await database.write { sql in try await sql.raw("CREATE TABLE items (id INTEGER PRIMARY KEY)").run() }
        // Long reads on every reader connection, started before the writes: each steps through 300,000 rows, and
        // SQLite lets another statement on the same connection run between two steps (inside the same read).
        let long = (0..<6).map { _ in
            Task {
                try await database.read { sql in
                    try await sql.raw("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) SELECT i, (SELECT COUNT(*) FROM items) AS c FROM n").all().count
                }
            }
        }
        var missed = 0
        for id in 0..<40 {
            try await database.write { sql in try await sql.raw("INSERT INTO items VALUES (\(bind: id))").run() }
            let found = try await database.read { sql in try await sql.raw("SELECT id FROM items WHERE id = \(bind: id)").all().count }
            if found != 1 { missed += 1 }
        }
        for task in long { _ = try await task.value }
        #expect(missed == 0)
        await database.close()
    }
}
