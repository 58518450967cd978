import KilnCore
import KilnTracking

extension Platform {
    /// Seeds a `demo` experiment with a few finished runs, once: a no-op when it exists already.
    public func seedDemo() async throws {
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
