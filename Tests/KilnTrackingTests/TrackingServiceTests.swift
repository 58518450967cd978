import KilnCore
import KilnTestSupport
import KilnTracking
import Testing

@Suite("Tracking service on SQLite")
struct TrackingServiceTests {
    @Test("the Default experiment exists from the first start")
    func defaultExperiment() async throws {
        try await TestStores.withTracking { tracking in
            let experiment = try await tracking.getExperiment(id: "0")
            #expect(experiment.name == "Default")
            #expect(experiment.artifactLocation == "mlflow-artifacts:/0")
        }
    }

    @Test("creating an experiment with a taken name fails with RESOURCE_ALREADY_EXISTS")
    func duplicateExperimentName() async throws {
        try await TestStores.withTracking { tracking in
            _ = try await tracking.createExperiment(name: "churn")
            let error = await #expect(throws: KilnError.self) { try await tracking.createExperiment(name: "churn") }
            #expect(error?.code == .resourceAlreadyExists)
            let blank = await #expect(throws: KilnError.self) { try await tracking.createExperiment(name: "  ") }
            #expect(blank?.code == .invalidParameterValue)
        }
    }

    @Test("deleting an experiment deletes its runs, restoring brings them back")
    func experimentLifecycle() async throws {
        let clock = MockClock()
        try await TestStores.withTracking(clock: clock) { tracking in
            let id = try await tracking.createExperiment(name: "e")
            let run = try await tracking.createRun(experimentID: id)
            clock.advance(by: 10)
            try await tracking.deleteExperiment(id: id)
            #expect(try await tracking.getRun(id: run.info.runID).info.lifecycleStage == .deleted)
            let blocked = await #expect(throws: KilnError.self) { try await tracking.createRun(experimentID: id) }
            #expect(blocked?.code == .invalidParameterValue)
            try await tracking.restoreExperiment(id: id)
            #expect(try await tracking.getRun(id: run.info.runID).info.lifecycleStage == .active)
        }
    }

    @Test("latest metric is the highest step, then timestamp; NaN and infinities round-trip")
    func latestMetrics() async throws {
        try await TestStores.withTracking { tracking in
            let run = try await tracking.createRun(experimentID: "0", runName: "m")
            let id = run.info.runID
            try await tracking.logBatch(runID: id, metrics: [
                Metric(key: "loss", value: 3, timestamp: 10, step: 2),
                Metric(key: "loss", value: 5, timestamp: 99, step: 1),
                Metric(key: "odd", value: .nan, timestamp: 1, step: 0),
                Metric(key: "big", value: .infinity, timestamp: 1, step: 0),
                Metric(key: "small", value: -.infinity, timestamp: 1, step: 0),
            ])
            try await tracking.logMetric(runID: id, Metric(key: "loss", value: 4, timestamp: 5, step: 2))
            let metrics = Dictionary(uniqueKeysWithValues: try await tracking.getRun(id: id).metrics.map { ($0.key, $0.value) })
            #expect(metrics["loss"] == 3)  // step 2 at timestamp 10 beats step 2 at timestamp 5
            #expect(metrics["odd"]?.isNaN == true)
            #expect(metrics["big"] == .infinity)
            #expect(metrics["small"] == -.infinity)
            let history = try await tracking.metricHistory(runID: id, key: "loss")
            #expect(history.items.map(\.value) == [4, 3, 5])
        }
    }

    @Test("params are immutable and a rejected batch writes nothing")
    func paramsImmutable() async throws {
        try await TestStores.withTracking { tracking in
            let id = try await tracking.createRun(experimentID: "0").info.runID
            try await tracking.logParam(runID: id, key: "lr", value: "0.1")
            try await tracking.logParam(runID: id, key: "lr", value: "0.1")
            let error = await #expect(throws: KilnError.self) {
                try await tracking.logBatch(runID: id, metrics: [Metric(key: "m", value: 1, timestamp: 1, step: 0)],
                                            params: [KeyValue("lr", "0.2")])
            }
            #expect(error?.code == .invalidParameterValue)
            let run = try await tracking.getRun(id: id)
            #expect(run.params == [KeyValue("lr", "0.1")])
            #expect(run.metrics.isEmpty)
        }
    }

    @Test("batch limits and bad keys are INVALID_PARAMETER_VALUE")
    func batchLimits() async throws {
        try await TestStores.withTracking { tracking in
            let id = try await tracking.createRun(experimentID: "0").info.runID
            let tooMany = (0...1000).map { Metric(key: "k\($0)", value: 1, timestamp: 1, step: 0) }
            for bad in [
                { try await tracking.logBatch(runID: id, metrics: tooMany) },
                { try await tracking.logBatch(runID: id, params: (0...100).map { KeyValue("p\($0)", "v") }) },
                { try await tracking.logBatch(runID: id, params: [KeyValue("x", String(repeating: "v", count: 6001))]) },
                { try await tracking.logBatch(runID: id, tags: [KeyValue("../up", "v")]) },
                { try await tracking.logBatch(runID: id, metrics: [Metric(key: "", value: 1, timestamp: 1, step: 0)]) },
            ] as [@Sendable () async throws -> Void] {
                let error = await #expect(throws: KilnError.self) { try await bad() }
                #expect(error?.code == .invalidParameterValue)
            }
            let unknown = await #expect(throws: KilnError.self) { try await tracking.logParam(runID: "nope", key: "a", value: "b") }
            #expect(unknown?.code == .resourceDoesNotExist)
        }
    }

    @Test("run names come from run_name or the mlflow.runName tag, and renaming updates both")
    func runNames() async throws {
        try await TestStores.withTracking { tracking in
            let tagged = try await tracking.createRun(experimentID: "0", tags: [KeyValue("mlflow.runName", "from-tag")])
            #expect(tagged.info.runName == "from-tag")
            let generated = try await tracking.createRun(experimentID: "0")
            #expect(generated.info.runName.split(separator: "-").count == 3)
            _ = try await tracking.updateRun(id: tagged.info.runID, status: .finished, endTime: 5, runName: "renamed")
            let run = try await tracking.getRun(id: tagged.info.runID)
            #expect(run.info.runName == "renamed")
            #expect(run.info.status == .finished)
            #expect(run.info.endTime == 5)
            #expect(run.tags.contains(KeyValue("mlflow.runName", "renamed")))
        }
    }

    @Test("search filters, orders with missing keys last, and pages")
    func search() async throws {
        try await TestStores.withTracking { tracking in
            let exp = try await tracking.createExperiment(name: "s")
            for (i, acc) in [0.5, 0.9, nil, 0.7].enumerated() {
                let id = try await tracking.createRun(experimentID: exp, startTime: Int64(i), runName: "r\(i)").info.runID
                if let acc { try await tracking.logMetric(runID: id, Metric(key: "acc", value: acc, timestamp: 0, step: 0)) }
                try await tracking.logParam(runID: id, key: "kind", value: i % 2 == 0 ? "Tree" : "linear")
            }
            func names(_ filter: String?, _ order: [String] = [], max: Int? = nil, token: String? = nil) async throws -> Page<Run> {
                try await tracking.searchRuns(experimentIDs: [exp], filter: filter, maxResults: max, orderBy: order, pageToken: token)
            }
            #expect(try await names(nil).items.map(\.info.runName) == ["r3", "r2", "r1", "r0"])
            #expect(try await names("metrics.acc > 0.6", ["metrics.acc ASC"]).items.map(\.info.runName) == ["r3", "r1"])
            #expect(try await names(nil, ["metrics.acc DESC"]).items.map(\.info.runName) == ["r1", "r3", "r0", "r2"])
            #expect(try await names("params.kind LIKE 'tree'").items.isEmpty)
            #expect(try await names("params.kind ILIKE 'tree'", ["attributes.run_name ASC"]).items.map(\.info.runName) == ["r0", "r2"])
            let first = try await names(nil, ["attributes.run_name ASC"], max: 3)
            #expect(first.items.map(\.info.runName) == ["r0", "r1", "r2"])
            let second = try await names(nil, ["attributes.run_name ASC"], max: 3, token: first.nextPageToken)
            #expect(second.items.map(\.info.runName) == ["r3"])
            #expect(second.nextPageToken == nil)
            let bad = await #expect(throws: KilnError.self) { try await names("metrics.acc LIKE 'x'") }
            #expect(bad?.code == .invalidParameterValue)
            let badAttribute = await #expect(throws: KilnError.self) { try await names("attributes.color = 'red'") }
            #expect(badAttribute?.code == .invalidParameterValue)
        }
    }

    @Test("logged models are created pending, finalized ready, tagged and searched")
    func loggedModels() async throws {
        try await TestStores.withTracking { tracking in
            let run = try await tracking.createRun(experimentID: "0")
            let model = try await tracking.createLoggedModel(experimentID: "0", name: "model", modelType: "sklearn",
                                                             sourceRunID: run.info.runID, params: [KeyValue("a", "1")])
            #expect(model.status == .pending)
            #expect(model.artifactLocation == "mlflow-artifacts:/0/models/\(model.modelID)/artifacts")
            let ready = try await tracking.finalizeLoggedModel(id: model.modelID, status: .ready)
            #expect(ready.status == .ready)
            try await tracking.setLoggedModelTags(id: model.modelID, tags: [KeyValue("k", "v")])
            try await tracking.logOutputs(runID: run.info.runID, models: [ModelOutput(modelID: model.modelID, step: 0)])
            #expect(try await tracking.getRun(id: run.info.runID).modelOutputs == [ModelOutput(modelID: model.modelID, step: 0)])
            let found = try await tracking.searchLoggedModels(experimentIDs: ["0"], filter: "tags.k = 'v' and name = 'model'")
            #expect(found.items.map(\.modelID) == [model.modelID])
            try await tracking.deleteLoggedModel(id: model.modelID)
            let gone = await #expect(throws: KilnError.self) { try await tracking.getLoggedModel(id: model.modelID) }
            #expect(gone?.code == .resourceDoesNotExist)
        }
    }
}
