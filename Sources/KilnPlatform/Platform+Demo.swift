import KilnCore
import KilnSQL
import KilnTracking

extension Platform {
    /// Seeds a `demo` experiment with a few finished runs and a `main.demo.sales` table, once: a no-op when they
    /// exist already.
    public func seedDemo() async throws {
        let sql = SQLEngine(catalog: Catalog(warehouse: configuration.home.appendingPathComponent("warehouse").path))
        _ = try sql.execute("CREATE SCHEMA IF NOT EXISTS main.demo COMMENT 'Seeded by kiln server --demo'")
        _ = try sql.execute("""
            CREATE TABLE IF NOT EXISTS main.demo.sales PARTITIONED BY (region) AS
            SELECT id, CASE id % 3 WHEN 0 THEN 'us' WHEN 1 THEN 'eu' ELSE 'ap' END AS region,
                   CASE id % 4 WHEN 0 THEN 'kiln' WHEN 1 THEN 'glaze' WHEN 2 THEN 'clay' ELSE 'wheel' END AS product,
                   round((id * 7919 % 1000) / 10.0 + 1, 2) AS amount, DATE '2024-01-01' + CAST(id % 90 AS INT) AS day
            FROM range(1, 1001)
            """)
        if (try? await tracking.getExperiment(name: "demo")) != nil { return }
        let experimentID = try await tracking.createExperiment(name: "demo", tags: [KeyValue("mlflow.note.content", "Runs seeded by `kiln server --demo`.")])
        let now = clock.nowMillis()
        for (i, depth) in [2, 4, 6, 8].enumerated() {
            let run = try await tracking.createRun(experimentID: experimentID, userID: "demo", startTime: now + Int64(i), runName: "tree-depth-\(depth)")
            let id = run.info.runID
            var metrics: [Metric] = []
            for step in 0..<20 {
                let loss = 1.0 / Double(step + 1) + 0.02 * Double(depth)
                metrics.append(Metric(key: "loss", value: loss, timestamp: now + Int64(step), step: Int64(step)))
            }
            metrics.append(Metric(key: "accuracy", value: 0.7 + 0.03 * Double(depth), timestamp: now, step: 0))
            try await tracking.logBatch(runID: id, metrics: metrics,
                                        params: [KeyValue("max_depth", String(depth)), KeyValue("model", "tree")],
                                        tags: [KeyValue("team", "demo")])
            _ = try await tracking.updateRun(id: id, status: .finished, endTime: now + 100)
        }
    }
}
