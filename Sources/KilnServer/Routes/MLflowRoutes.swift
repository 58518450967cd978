import Hummingbird
import KilnBlob
import KilnCore
import KilnPermissions
import KilnTracking

/// The MLflow tracking REST API 2.0, under `/api/2.0/mlflow` and `/ajax-api/2.0/mlflow`.
///
/// Handlers only decode the request message, call ``TrackingService`` and encode the answer.
struct MLflowRoutes: Sendable {
    let tracking: TrackingService
    let artifacts: any BlobStore
    let permissions: WorkspacePermissions

    typealias Route = MessageRoute

    var routes: [Route] {
        [
            Route(.post, "experiments/create", createExperiment),
            Route(.get, "experiments/get", getExperiment),
            Route(.get, "experiments/get-by-name", getExperimentByName),
            Route(.post, "experiments/search", searchExperiments),
            Route(.get, "experiments/search", searchExperiments),
            Route(.post, "experiments/update", updateExperiment),
            Route(.post, "experiments/delete", deleteExperiment),
            Route(.post, "experiments/restore", restoreExperiment),
            Route(.post, "experiments/set-experiment-tag", setExperimentTag),
            Route(.post, "experiments/delete-experiment-tag", deleteExperimentTag),
            Route(.post, "runs/create", createRun),
            Route(.get, "runs/get", getRun),
            Route(.post, "runs/update", updateRun),
            Route(.post, "runs/delete", deleteRun),
            Route(.post, "runs/restore", restoreRun),
            Route(.post, "runs/log-metric", logMetric),
            Route(.post, "runs/log-parameter", logParam),
            Route(.post, "runs/set-tag", setTag),
            Route(.post, "runs/delete-tag", deleteTag),
            Route(.post, "runs/log-batch", bodyLimit: TrackingLimits.maxBatchRequestBytes, logBatch),
            Route(.post, "runs/log-inputs", logInputs),
            Route(.post, "runs/outputs", logOutputs),
            Route(.post, "runs/search", searchRuns),
            Route(.get, "metrics/get-history", getMetricHistory),
            Route(.get, "artifacts/list", listArtifacts),
            Route(.post, "logged-models", createLoggedModel),
            Route(.post, "logged-models/search", searchLoggedModels),
            Route(.get, "logged-models/:model_id", getLoggedModel),
            Route(.patch, "logged-models/:model_id", finalizeLoggedModel),
            Route(.delete, "logged-models/:model_id", deleteLoggedModel),
            Route(.patch, "logged-models/:model_id/tags", setLoggedModelTags),
            Route(.delete, "logged-models/:model_id/tags/:tag_key", deleteLoggedModelTag),
            Route(.post, "logged-models/:model_id/params", logLoggedModelParams),
            Route(.get, "logged-models/:model_id/artifacts/directories", listLoggedModelArtifacts),
        ]
    }

    func register(on router: Router<KilnRequestContext>) {
        MessageRoute.register(routes, prefixes: ["/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/"], on: router)
    }

    static let empty = Response.json { _ in }

    // MARK: Experiments

    func createExperiment(_ m: RequestMessage) async throws -> Response {
        let id = try await tracking.createExperiment(
            name: try m.requireString("name"),
            artifactLocation: try m.string("artifact_location"),
            tags: try m.keyValues("tags").map { KeyValue($0.0, $0.1) })
        try await permissions.recordCreated(.experiments, id, by: m.caller)
        return .json { w in w.field("experiment_id", id) }
    }

    func getExperiment(_ m: RequestMessage) async throws -> Response {
        let experiment = try await tracking.getExperiment(id: try m.requireString("experiment_id"))
        return .json { w in w.key("experiment"); w.experiment(experiment) }
    }

    func getExperimentByName(_ m: RequestMessage) async throws -> Response {
        let experiment = try await tracking.getExperiment(name: try m.requireString("experiment_name"))
        return .json { w in w.key("experiment"); w.experiment(experiment) }
    }

    func searchExperiments(_ m: RequestMessage) async throws -> Response {
        let page = try await tracking.searchExperiments(
            filter: try m.string("filter"), orderBy: try m.strings("order_by"), maxResults: try m.int("max_results"),
            pageToken: try m.string("page_token"), viewType: try Self.viewType(m, "view_type"),
            only: try await permissions.visibleIDs(m.caller, .experiments))
        return .json { w in
            w.key("experiments")
            w.array { w in for e in page.items { w.experiment(e) } }
            w.field("next_page_token", page.nextPageToken)
        }
    }

    static func viewType(_ m: RequestMessage, _ key: String) throws -> ViewType {
        guard let raw = try m.string(key), !raw.isEmpty else { return .activeOnly }
        switch raw.uppercased() {
        case "ACTIVE_ONLY", "1": return .activeOnly
        case "DELETED_ONLY", "2": return .deletedOnly
        case "ALL", "3": return .all
        default: throw KilnError.invalid("Invalid value '\(raw)' for parameter '\(key)': use ACTIVE_ONLY, DELETED_ONLY or ALL")
        }
    }

    func updateExperiment(_ m: RequestMessage) async throws -> Response {
        let id = try m.requireString("experiment_id")
        if let name = try m.string("new_name") { try await tracking.renameExperiment(id: id, newName: name) }
        return Self.empty
    }

    func deleteExperiment(_ m: RequestMessage) async throws -> Response {
        try await tracking.deleteExperiment(id: try m.requireString("experiment_id"))
        return Self.empty
    }

    func restoreExperiment(_ m: RequestMessage) async throws -> Response {
        try await tracking.restoreExperiment(id: try m.requireString("experiment_id"))
        return Self.empty
    }

    func setExperimentTag(_ m: RequestMessage) async throws -> Response {
        try await tracking.setExperimentTag(id: try m.requireString("experiment_id"), key: try m.requireString("key"), value: try TextLimit.required(try m.string("value"), "value"))
        return Self.empty
    }

    func deleteExperimentTag(_ m: RequestMessage) async throws -> Response {
        try await tracking.deleteExperimentTag(id: try m.requireString("experiment_id"), key: try m.requireString("key"))
        return Self.empty
    }

    // MARK: Runs

    func createRun(_ m: RequestMessage) async throws -> Response {
        let run = try await tracking.createRun(
            experimentID: try m.string("experiment_id") ?? "0",
            userID: try m.string("user_id") ?? "",
            startTime: try m.int64("start_time"),
            runName: try m.string("run_name"),
            tags: try m.keyValues("tags").map { KeyValue($0.0, $0.1) })
        return .json { w in w.key("run"); w.run(run) }
    }

    func getRun(_ m: RequestMessage) async throws -> Response {
        let run = try await tracking.getRun(id: try m.requireString("run_id", "run_uuid"))
        return .json { w in w.key("run"); w.run(run) }
    }

    func updateRun(_ m: RequestMessage) async throws -> Response {
        var status: RunStatus?
        if let raw = try m.string("status"), !raw.isEmpty {
            guard let parsed = RunStatus(rawValue: raw.uppercased()) else {
                throw KilnError.invalid("Invalid value '\(raw)' for parameter 'status': use RUNNING, SCHEDULED, FINISHED, FAILED or KILLED")
            }
            status = parsed
        }
        let info = try await tracking.updateRun(
            id: try m.requireString("run_id", "run_uuid"), status: status, endTime: try m.int64("end_time"), runName: try m.string("run_name"))
        return .json { w in w.key("run_info"); w.runInfo(info) }
    }

    func deleteRun(_ m: RequestMessage) async throws -> Response {
        try await tracking.deleteRun(id: try m.requireString("run_id"))
        return Self.empty
    }

    func restoreRun(_ m: RequestMessage) async throws -> Response {
        try await tracking.restoreRun(id: try m.requireString("run_id"))
        return Self.empty
    }

    static func metric(_ m: RequestMessage, index: Int? = nil) throws -> Metric {
        let name = index.map { "metrics[\($0)]" } ?? "metric"
        guard let value = try m.double("value") else {
            throw KilnError.invalid("Missing value for required parameter '\(index == nil ? "value" : "\(name).value")'")
        }
        guard let timestamp = try m.int64("timestamp") else {
            throw KilnError.invalid("Missing value for required parameter '\(index == nil ? "timestamp" : "\(name).timestamp")'")
        }
        return Metric(key: try m.requireString("key"), value: value, timestamp: timestamp, step: try m.int64("step") ?? 0,
                      modelID: try m.string("model_id"), datasetName: try m.string("dataset_name"),
                      datasetDigest: try m.string("dataset_digest"))
    }

    func logMetric(_ m: RequestMessage) async throws -> Response {
        try await tracking.logMetric(runID: try m.requireString("run_id", "run_uuid"), try Self.metric(m))
        return Self.empty
    }

    func logParam(_ m: RequestMessage) async throws -> Response {
        try await tracking.logParam(runID: try m.requireString("run_id", "run_uuid"), key: try m.requireString("key"), value: try TextLimit.required(try m.string("value"), "value"))
        return Self.empty
    }

    func setTag(_ m: RequestMessage) async throws -> Response {
        try await tracking.setTag(runID: try m.requireString("run_id", "run_uuid"), key: try m.requireString("key"), value: try TextLimit.required(try m.string("value"), "value"))
        return Self.empty
    }

    func deleteTag(_ m: RequestMessage) async throws -> Response {
        try await tracking.deleteTag(runID: try m.requireString("run_id"), key: try m.requireString("key"))
        return Self.empty
    }

    func logBatch(_ m: RequestMessage) async throws -> Response {
        let metrics = try m.messages("metrics").enumerated().map { try Self.metric($1, index: $0) }
        try await tracking.logBatch(
            runID: try m.requireString("run_id"),
            metrics: metrics,
            params: try m.keyValues("params").map { KeyValue($0.0, $0.1) },
            tags: try m.keyValues("tags").map { KeyValue($0.0, $0.1) })
        return Self.empty
    }

    func logInputs(_ m: RequestMessage) async throws -> Response {
        let datasets = try m.messages("datasets").map { input -> DatasetInput in
            guard let d = try input.message("dataset") else { throw KilnError.invalid("Missing value for required parameter 'datasets.dataset'") }
            return DatasetInput(
                tags: try input.keyValues("tags").map { KeyValue($0.0, $0.1) },
                dataset: Dataset(name: try d.requireString("name"), digest: try d.requireString("digest"),
                                 sourceType: try d.string("source_type") ?? "", source: try d.string("source") ?? "",
                                 schema: try d.string("schema"), profile: try d.string("profile")))
        }
        let models = try m.messages("models").map { try $0.requireString("model_id") }
        try await tracking.logInputs(runID: try m.requireString("run_id"), datasets: datasets, modelIDs: models)
        return Self.empty
    }

    func logOutputs(_ m: RequestMessage) async throws -> Response {
        let models = try m.messages("models").map { ModelOutput(modelID: try $0.requireString("model_id"), step: try $0.int64("step") ?? 0) }
        try await tracking.logOutputs(runID: try m.requireString("run_id"), models: models)
        return Self.empty
    }

    func searchRuns(_ m: RequestMessage) async throws -> Response {
        let page = try await tracking.searchRuns(
            experimentIDs: try m.strings("experiment_ids"), filter: try m.string("filter"),
            viewType: try Self.viewType(m, "run_view_type"), maxResults: try m.int("max_results"),
            orderBy: try m.strings("order_by"), pageToken: try m.string("page_token"))
        return .json { w in
            if !page.items.isEmpty {
                w.key("runs")
                w.array { w in for run in page.items { w.run(run) } }
            }
            w.field("next_page_token", page.nextPageToken)
        }
    }

    func getMetricHistory(_ m: RequestMessage) async throws -> Response {
        let page = try await tracking.metricHistory(
            runID: try m.requireString("run_id", "run_uuid"), key: try m.requireString("metric_key"),
            maxResults: try m.int("max_results"), pageToken: try m.string("page_token"))
        var w = JSONWriter(capacity: 64 + page.items.count * 72)
        w.object { w in
            w.key("metrics")
            w.array { w in for metric in page.items { w.metric(metric) } }
            w.field("next_page_token", page.nextPageToken)
        }
        return .json(w)
    }

    // MARK: Artifacts

    func listArtifacts(_ m: RequestMessage) async throws -> Response {
        let runID = try m.requireString("run_id", "run_uuid")
        let run = try await tracking.getRun(id: runID)
        let path = try m.string("path") ?? ""
        let root = try ArtifactLocation.blobKey(forURI: run.info.artifactURI)
        let folder = try root.appending(path)
        let entries = try artifacts.list(folder)
        return .json { w in
            w.field("root_uri", run.info.artifactURI)
            w.files(entries, under: path)
        }
    }

    // MARK: Logged models

    func createLoggedModel(_ m: RequestMessage) async throws -> Response {
        let model = try await tracking.createLoggedModel(
            experimentID: try m.requireString("experiment_id"), name: try m.string("name"), modelType: try m.string("model_type"),
            sourceRunID: try m.string("source_run_id"),
            params: try m.keyValues("params").map { KeyValue($0.0, $0.1) },
            tags: try m.keyValues("tags").map { KeyValue($0.0, $0.1) })
        return .json { w in w.key("model"); w.loggedModel(model) }
    }

    func getLoggedModel(_ m: RequestMessage) async throws -> Response {
        let model = try await tracking.getLoggedModel(id: try m.requireString("model_id"))
        return .json { w in w.key("model"); w.loggedModel(model) }
    }

    func finalizeLoggedModel(_ m: RequestMessage) async throws -> Response {
        let raw = try m.string("status") ?? LoggedModelStatus.ready.rawValue
        guard let status = LoggedModelStatus(rawValue: raw) else {
            throw KilnError.invalid("Invalid value '\(raw)' for parameter 'status': use LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED")
        }
        let model = try await tracking.finalizeLoggedModel(id: try m.requireString("model_id"), status: status)
        return .json { w in w.key("model"); w.loggedModel(model) }
    }

    func deleteLoggedModel(_ m: RequestMessage) async throws -> Response {
        try await tracking.deleteLoggedModel(id: try m.requireString("model_id"))
        return Self.empty
    }

    func setLoggedModelTags(_ m: RequestMessage) async throws -> Response {
        let id = try m.requireString("model_id")
        try await tracking.setLoggedModelTags(id: id, tags: try m.keyValues("tags").map { KeyValue($0.0, $0.1) })
        let model = try await tracking.getLoggedModel(id: id)
        return .json { w in w.key("model"); w.loggedModel(model) }
    }

    func deleteLoggedModelTag(_ m: RequestMessage) async throws -> Response {
        try await tracking.deleteLoggedModelTag(id: try m.requireString("model_id"), key: try m.requireString("tag_key"))
        return Self.empty
    }

    func logLoggedModelParams(_ m: RequestMessage) async throws -> Response {
        try await tracking.logLoggedModelParams(id: try m.requireString("model_id"), params: try m.keyValues("params").map { KeyValue($0.0, $0.1) })
        return Self.empty
    }

    func searchLoggedModels(_ m: RequestMessage) async throws -> Response {
        var orderBy: [String] = []
        for order in try m.messages("order_by") {
            let field = try order.requireString("field_name")
            let ascending = try order.bool("ascending") ?? true
            orderBy.append("\(field) \(ascending ? "ASC" : "DESC")")
        }
        let page = try await tracking.searchLoggedModels(
            experimentIDs: try m.strings("experiment_ids"), filter: try m.string("filter"), orderBy: orderBy,
            maxResults: try m.int("max_results"), pageToken: try m.string("page_token"))
        return .json { w in
            w.key("models")
            w.array { w in for model in page.items { w.loggedModel(model) } }
            w.field("next_page_token", page.nextPageToken)
        }
    }

    func listLoggedModelArtifacts(_ m: RequestMessage) async throws -> Response {
        let model = try await tracking.getLoggedModel(id: try m.requireString("model_id"))
        let path = try m.string("artifact_directory_path") ?? ""
        let root = try ArtifactLocation.blobKey(forURI: model.artifactLocation)
        let entries = try artifacts.list(try root.appending(path))
        return .json { w in
            w.field("root_uri", model.artifactLocation)
            w.files(entries, under: path)
        }
    }
}

/// Maps artifact URIs that the server proxies (`mlflow-artifacts:/1/<run>/artifacts`) to blob keys.
enum ArtifactLocation {
    static func blobKey(forURI uri: String) throws -> BlobKey {
        guard let key = try BlobKey(proxiedURI: uri) else {
            throw KilnError.invalid("Artifacts at '\(uri)' are not served by this server; only mlflow-artifacts:/ locations are")
        }
        return key
    }
}
