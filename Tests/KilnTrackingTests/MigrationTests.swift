import KilnCore
import KilnStore
import KilnTestSupport
import KilnTracking
import Testing

@Suite("Tracking schema migrations")
struct TrackingMigrationTests {
    @Test("a store written with the first layout keeps every run, metric, param and tag after the clustered-tables migration")
    func clusteredChildrenKeepData() async throws {
        let directory = try TemporaryDirectory()
        let initial = Array(TrackingSchema.migrations.prefix { $0.name != "tracking_0002_clustered_run_children" })
        #expect(initial.count < TrackingSchema.migrations.count)
        // The first layout, filled through raw SQL the way that version of the service wrote it.
        var database = try await TestStores.sqlite(in: directory)
        try await Migrator.migrate(database, initial, logger: TestStores.logger)
        try await database.write { sql in
            try await sql.raw("INSERT INTO experiments VALUES (7, 'e', 'mlflow-artifacts:/7', 'active', 1, 1)").run()
            for r in 0..<3 {
                try await sql.raw("INSERT INTO runs VALUES (\(bind: "run\(r)"), \(bind: "name\(r)"), 7, 'u', 'FINISHED', \(bind: r), NULL, NULL, 'active', 'x')").run()
                for step in 0..<4 {
                    try await sql.raw("INSERT INTO metrics VALUES (\(bind: "run\(r)"), 'loss', \(bind: Double(step) / 3), 0, \(bind: step * 10), \(bind: step), NULL, NULL, NULL)").run()
                }
                try await sql.raw("INSERT INTO latest_metrics VALUES (\(bind: "run\(r)"), 'loss', 1.0, 0, 30, 3)").run()
                try await sql.raw("INSERT INTO params VALUES (\(bind: "run\(r)"), 'depth', \(bind: String(r)))").run()
                try await sql.raw("INSERT INTO tags VALUES (\(bind: "run\(r)"), 'mlflow.runName', \(bind: "name\(r)"))").run()
            }
        }
        await database.close()

        database = try await TestStores.sqlite(in: directory)
        let tracking = try await TrackingService.make(database: database, logger: TestStores.logger)
        for r in 0..<3 {
            let run = try await tracking.getRun(id: "run\(r)")
            #expect(run.metrics.map(\.key) == ["loss"] && run.metrics[0].step == 3)
            #expect(run.params == [KeyValue("depth", String(r))])
            #expect(run.tags == [KeyValue("mlflow.runName", "name\(r)")])
            let history = try await tracking.metricHistory(runID: "run\(r)", key: "loss")
            #expect(history.items.map(\.value) == (0..<4).map { Double($0) / 3 })
        }
        let found = try await tracking.searchRuns(experimentIDs: ["7"], filter: "params.depth = '1' and metrics.loss > 0.5")
        #expect(found.items.map(\.info.runID) == ["run1"])
        let layouts = try await database.read { sql in
            try await sql.raw("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name IN ('latest_metrics', 'params', 'tags')").all()
                .map { (try $0.decode(column: "name", as: String.self), try $0.decode(column: "sql", as: String.self)) }
        }
        #expect(layouts.count == 3)
        for (name, sql) in layouts { #expect(sql.hasSuffix("WITHOUT ROWID"), "\(name)") }
        await database.close()
    }
}
