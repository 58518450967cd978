import KilnCore
import KilnTestSupport
@testable import KilnTracking
import SQLKit
import Testing

@Suite("Loading runs reads only the runs asked for")
struct RunLoadPlanTests {
    @Test("the run-data statement looks each child table up by run id: no table is scanned, however many runs exist")
    func noScans() async throws {
        try await TestStores.withTracking { tracking in
            // Enough rows for SQLite's planner to weigh a scan against lookups (it chose scans for params and tags).
            let experiment = try await tracking.createExperiment(name: "plan")
            var ids: [String] = []
            for i in 0..<200 {
                let id = try await tracking.createRun(experimentID: experiment, runName: "r\(i)").info.runID
                try await tracking.logBatch(runID: id, metrics: [Metric(key: "m", value: Double(i), timestamp: 1, step: 0)],
                                            params: (0..<5).map { KeyValue("p\($0)", "\(i)") })
                ids.append(id)
            }
            for count in [1, 20] {
                let query = TrackingService.runDataQuery(Array(ids.prefix(count)))
                var explain: SQLQueryString = "EXPLAIN QUERY PLAN "
                explain += query
                let finalExplain = explain
                let steps = try await tracking.db.read { sql in
                    try await sql.raw(finalExplain).all().map { try $0.decode(column: "detail", as: String.self) }
                }
                let scans = steps.filter { $0.hasPrefix("SCAN") && !$0.hasPrefix("SCAN ids") && !$0.hasPrefix("SCAN json_each") }
                #expect(scans.isEmpty, "\(count) runs: \(steps)")
            }
            let loaded = try await tracking.getRun(id: ids[7])
            #expect(loaded.params.count == 5 && loaded.metrics.first?.value == 7)
        }
    }
}
