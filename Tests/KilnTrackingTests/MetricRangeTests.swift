import KilnCore
import KilnStore
import KilnTestSupport
import KilnTracking
import Testing

@Suite("Metric ranges: min/max kept beside the latest value, sorting and grouping by them")
struct MetricRangeTests {
    @Test("min and max follow every batch, out of step order, skipping NaN; all-NaN has no range; the latest value is unchanged")
    func rangesFollowBatches() async throws {
        try await TestStores.withTracking { tracking in
            let id = try await tracking.createRun(experimentID: "0", runName: "r").info.runID
            try await tracking.logBatch(runID: id, metrics: [
                Metric(key: "loss", value: 3, timestamp: 10, step: 2),
                Metric(key: "loss", value: .nan, timestamp: 11, step: 3),
                Metric(key: "odd", value: .nan, timestamp: 1, step: 0),
            ])
            try await tracking.logMetric(runID: id, Metric(key: "loss", value: -7, timestamp: 5, step: 0))  // older step, new min
            try await tracking.logMetric(runID: id, Metric(key: "loss", value: 9, timestamp: 6, step: 1))   // older step, new max
            try await tracking.logMetric(runID: id, Metric(key: "odd", value: .nan, timestamp: 2, step: 1))
            let ranges = try await tracking.metricRanges(runIDs: [id])[id] ?? [:]
            #expect(ranges["loss"]?.min == -7 && ranges["loss"]?.max == 9)
            #expect(ranges["odd"] != nil && ranges["odd"]?.min == nil && ranges["odd"]?.max == nil)
            // The same figures as the history itself, and the latest value is still the highest step.
            let summary = try await tracking.metricSummaries(runID: id)
            #expect(summary["loss"]?.min == -7 && summary["loss"]?.max == 9)
            let latest = try await tracking.getRun(id: id).metrics.first { $0.key == "loss" }
            #expect(latest?.step == 3 && latest?.value.isNaN == true)
        }
    }

    @Test("runs sort by a metric's min or max over the history, runs without a range last")
    func sortByRange() async throws {
        try await TestStores.withTracking { tracking in
            let experiment = try await tracking.createExperiment(name: "ranges")
            // (name, history): the last values order a < b < c, the mins c < a < b, the maxes b < c < a.
            let histories: [(String, [Double])] = [("a", [0, 100, 2]), ("b", [5, 6, 3]), ("c", [-1, 50, 4]), ("nan", [.nan]), ("none", [])]
            for (name, values) in histories {
                let id = try await tracking.createRun(experimentID: experiment, runName: name).info.runID
                for (step, value) in values.enumerated() {
                    try await tracking.logMetric(runID: id, Metric(key: "m", value: value, timestamp: Int64(step), step: Int64(step)))
                }
            }
            func names(_ value: OrderClause.MetricValue, ascending: Bool) async throws -> [String] {
                try await tracking.searchRuns(experimentIDs: [experiment], orders: [OrderClause(entity: .metric, key: "m", ascending: ascending, metricValue: value)])
                    .items.map(\.info.runName)
            }
            #expect(try await names(.last, ascending: true) == ["a", "b", "c", "nan", "none"])
            #expect(try await names(.min, ascending: true) == ["c", "a", "b", "nan", "none"])
            #expect(try await names(.max, ascending: true) == ["b", "c", "a", "nan", "none"])
            #expect(try await names(.max, ascending: false) == ["a", "c", "b", "nan", "none"])
            // The API's order_by strings still mean the latest value.
            let api = try await tracking.searchRuns(experimentIDs: [experiment], orderBy: ["metrics.m DESC"]).items.map(\.info.runName)
            #expect(api == ["c", "b", "a", "nan", "none"])
        }
    }

    @Test("runs group by a param with counts and the mean/min/max of a metric column; a filter narrows the groups")
    func groupByParam() async throws {
        try await TestStores.withTracking { tracking in
            let experiment = try await tracking.createExperiment(name: "groups")
            let rows: [(String?, [Double])] = [("tree", [1, 3]), ("tree", [2, 5]), ("linear", [10]), (nil, [7])]
            for (model, values) in rows {
                let id = try await tracking.createRun(experimentID: experiment, runName: "r").info.runID
                try await tracking.logBatch(runID: id, metrics: values.enumerated().map { Metric(key: "acc", value: $1, timestamp: 1, step: Int64($0)) },
                                            params: model.map { [KeyValue("model", $0)] } ?? [])
            }
            let groups = try await tracking.groupRuns(experimentIDs: [experiment], groupBy: OrderClause(entity: .param, key: "model", ascending: true),
                                                      metrics: [MetricColumn(key: "acc"), MetricColumn(key: "acc", value: .min)])
            #expect(groups.map(\.value) == ["tree", "linear", nil])
            #expect(groups.map(\.count) == [2, 1, 1])
            #expect(groups[0].metrics[0] == MetricAggregate(mean: 4, min: 3, max: 5))   // last values 3 and 5
            #expect(groups[0].metrics[1] == MetricAggregate(mean: 1.5, min: 1, max: 2)) // mins 1 and 2
            let filtered = try await tracking.groupRuns(experimentIDs: [experiment], filter: "metrics.acc > 4",
                                                        groupBy: OrderClause(entity: .param, key: "model", ascending: true), metrics: [])
            #expect(filtered.map(\.value) == ["linear", "tree", nil] && filtered.map(\.count) == [1, 1, 1])
            await #expect(throws: KilnError.self) {
                try await tracking.groupRuns(experimentIDs: [experiment], groupBy: OrderClause(entity: .metric, key: "acc", ascending: true), metrics: [])
            }
        }
    }

    @Test("a store from before the ranges migration gets each metric's range from its history")
    func backfill() async throws {
        let directory = try TemporaryDirectory()
        let initial = Array(TrackingSchema.migrations.prefix { $0.name != "tracking_0003_metric_ranges" })
        #expect(initial.count == TrackingSchema.migrations.count - 1)
        var database = try await TestStores.sqlite(in: directory)
        try await Migrator.migrate(database, initial, logger: TestStores.logger)
        try await database.write { sql in
            try await sql.raw("INSERT INTO experiments VALUES (7, 'e', 'mlflow-artifacts:/7', 'active', 1, 1)").run()
            try await sql.raw("INSERT INTO runs VALUES ('run1', 'n', 7, 'u', 'FINISHED', 1, NULL, NULL, 'active', 'x')").run()
            for (step, value, nan) in [(0, 4.0, 0), (1, -2.0, 0), (2, 0.0, 1), (3, 8.5, 0)] {
                try await sql.raw("INSERT INTO metrics VALUES ('run1', 'loss', \(bind: value), \(bind: nan), \(bind: step), \(bind: step), NULL, NULL, NULL)").run()
            }
            try await sql.raw("INSERT INTO metrics VALUES ('run1', 'odd', 0, 1, 0, 0, NULL, NULL, NULL)").run()
            try await sql.raw("INSERT INTO latest_metrics VALUES ('run1', 'loss', 8.5, 0, 3, 3)").run()
            try await sql.raw("INSERT INTO latest_metrics VALUES ('run1', 'odd', 0, 1, 0, 0)").run()
        }
        await database.close()
        database = try await TestStores.sqlite(in: directory)
        let tracking = try await TrackingService.make(database: database, logger: TestStores.logger)
        let ranges = try await tracking.metricRanges(runIDs: ["run1"])["run1"] ?? [:]
        #expect(ranges["loss"]?.min == -2 && ranges["loss"]?.max == 8.5)
        #expect(ranges["odd"] != nil && ranges["odd"]?.min == nil)
        await database.close()
    }
}
