import Foundation
import KilnAudit
import KilnCore
import KilnSQL
import KilnStore
import KilnTestSupport
import SQLKit
import Testing

@Suite("Audit log")
struct AuditLogTests {
    /// Runs `body` over a fresh store's audit log, closed afterwards whatever happens.
    func withLog(_ body: (AuditLog, any KilnDatabase, TemporaryDirectory) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        let database = try await TestStores.sqlite(in: directory)
        let log = try await AuditLog.make(database: database, logger: TestStores.logger, flushMillis: 5)
        do {
            try await body(log, database, directory)
        } catch {
            await log.close()
            await database.close()
            throw error
        }
        await log.close()
        await database.close()
    }

    func event(_ i: Int, user: String? = "ada") -> AuditEvent {
        AuditEvent(eventTime: 1_700_000_000_000 + Int64(i), serviceName: "mlflowExperiment", actionName: "postRunsLogMetric", userName: user,
                   sourceIP: "127.0.0.1", userAgent: "test", requestID: "r\(i)", requestParams: ["run_id": "x\(i)", "key": "loss"],
                   statusCode: i % 7 == 0 ? 403 : 200, errorMessage: i % 7 == 0 ? "denied" : nil)
    }

    @Test("records chain in order; changing, deleting or reordering a record breaks the chain at that record")
    func tamper() async throws {
        try await withLog { log, database, _ in
            for i in 0..<150 { log.record(event(i)) }
            let whole = try await log.verify()
            #expect(whole.checked == 150 && whole.broken == nil)

            try await database.write { sql in try await sql.raw("UPDATE audit_events SET user_name = 'mallory' WHERE seq = 42").run() }
            let changed = try await log.verify()
            #expect(changed.broken?.sequence == 42 && changed.checked == 41)
            #expect(changed.broken?.reason.contains("content") == true)
            try await database.write { sql in try await sql.raw("UPDATE audit_events SET user_name = 'ada' WHERE seq = 42").run() }
            #expect(try await log.verify().broken == nil)

            try await database.write { sql in try await sql.raw("DELETE FROM audit_events WHERE seq = 100").run() }
            #expect(try await log.verify().broken?.sequence == 101)
        }
    }

    @Test("a recomputed hash does not hide a change: the next record's link breaks")
    func rehash() async throws {
        try await withLog { log, database, _ in
            for i in 0..<10 { log.record(event(i)) }
            _ = try await log.verify()
            var records = try await log.records(after: 0)
            // Record 8 (event 7) was a denial; forge it into a success with a matching hash.
            #expect(records[7].event.statusCode == 403)
            records[7].event.statusCode = 200
            let forged = AuditLog.hash(sequence: 8, event: records[7].event, previous: records[7].previousHash)
            try await database.write { sql in
                try await sql.raw("UPDATE audit_events SET status_code = 200, hash = \(bind: forged) WHERE seq = 8").run()
            }
            #expect(try await log.verify().broken?.sequence == 9)
        }
    }

    @Test("the Delta export holds each record once, across repeated exports, and SQL reads it")
    func export() async throws {
        try await withLog { log, _, directory in
            let warehouse = directory.url.appendingPathComponent("warehouse").path
            let path = warehouse + "/system/access/audit"
            for i in 0..<30 { log.record(event(i, user: i == 3 ? nil : "ada")) }
            #expect(try await log.export(to: path) == 30)
            #expect(try await log.export(to: path) == 0)
            for i in 30..<45 { log.record(event(i)) }
            #expect(try await log.export(to: path) == 15)
            let engine = SQLEngine(catalog: Catalog(warehouse: warehouse))
            let counts = try engine.execute("""
                SELECT COUNT(*) AS n, COUNT(DISTINCT sequence) AS d, MIN(sequence) AS lo, MAX(sequence) AS hi,
                       SUM(CASE WHEN get_json_object(response, '$.status_code') = '403' THEN 1 ELSE 0 END) AS denied,
                       SUM(CASE WHEN get_json_object(user_identity, '$.email') IS NULL THEN 1 ELSE 0 END) AS anonymous
                FROM system.access.audit
                """)
            #expect(counts.columns.map { $0.value(0) } == [.int(45), .int(45), .int(1), .int(45), .int(7), .int(1)])
            let params = try engine.execute("SELECT get_json_object(request_params, '$.run_id') FROM system.access.audit WHERE sequence = 3")
            #expect(params.columns[0].value(0) == .string("x2"))
        }
    }
}
