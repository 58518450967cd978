import Foundation
import KilnBlob
import KilnCore
import KilnFrame
import KilnFeatures
import KilnLearn
import KilnModelFormat
import KilnRegistry
import KilnServing
import KilnTracking
import KilnTraining
import Logging

// The adapters that connect one capability to another through the small protocols the consumer declares.

/// Lets the registry resolve `runs:/` and `models:/m-…` sources through the tracking service's public API.
struct TrackingModelSources: ModelSourceResolver {
    let tracking: TrackingService

    func artifactURI(ofRun runID: String) async throws -> String {
        try await tracking.getRun(id: runID).info.artifactURI
    }

    func artifactLocation(ofLoggedModel modelID: String) async throws -> String {
        try await tracking.getLoggedModel(id: modelID).artifactLocation
    }

    func sourceRunID(ofLoggedModel modelID: String) async throws -> String? {
        try await tracking.getLoggedModel(id: modelID).sourceRunID
    }

    func lineage(ofRun runID: String) async throws -> RunLineage {
        let run = try await tracking.getRun(id: runID)
        return RunLineage(
            runID: run.info.runID, runName: run.info.runName, experimentID: run.info.experimentID, userID: run.info.userID,
            params: run.params.map { KeyValue($0.key, $0.value) },
            metrics: Dictionary(run.metrics.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a }),
            datasets: run.datasetInputs.map { KeyValue("\($0.dataset.name)@\($0.dataset.digest)", $0.dataset.source) })
    }
}

/// Training's runs, logged through the tracking service.
struct TrackingRunLog: TrainingRunLog {
    let tracking: TrackingService
    let clock: any KilnClock

    func startRun(experiment: String?, runName: String?, tags: [KeyValue]) async throws -> TrainingRunInfo {
        var experimentID = "0"
        if let name = experiment {
            if let existing = try? await tracking.getExperiment(name: name) { experimentID = existing.id }
            else { experimentID = try await tracking.createExperiment(name: name) }
        }
        let run = try await tracking.createRun(experimentID: experimentID, runName: runName, tags: tags)
        return info(run, experimentName: experiment ?? "Default")
    }

    func run(id: String) async throws -> TrainingRunInfo {
        let run = try await tracking.getRun(id: id)
        return info(run, experimentName: (try? await tracking.getExperiment(id: run.info.experimentID))?.name ?? "")
    }

    func info(_ run: Run, experimentName: String) -> TrainingRunInfo {
        var metrics: [String: Double] = [:]
        for m in run.metrics where m.step == 0 { metrics[m.key] = m.value }
        return TrainingRunInfo(runID: run.info.runID, runName: run.info.runName, experimentID: run.info.experimentID,
                               experimentName: experimentName, status: run.info.status.rawValue, artifactURI: run.info.artifactURI,
                               metrics: metrics)
    }

    func setTag(runID: String, key: String, value: String) async throws {
        try await tracking.setTag(runID: runID, key: key, value: value)
    }

    func log(runID: String, params: [KeyValue], metrics: [TrainingMetric]) async throws {
        try await tracking.logBatch(runID: runID, metrics: metrics.map { Metric(key: $0.key, value: $0.value, timestamp: $0.timestamp, step: $0.step) },
                                    params: params)
    }

    func logDatasets(runID: String, _ datasets: [TrainingDataset]) async throws {
        try await tracking.logInputs(runID: runID, datasets: datasets.map {
            DatasetInput(tags: [KeyValue("mlflow.data.context", $0.context)],
                         dataset: Dataset(name: $0.name, digest: $0.digest, sourceType: $0.sourceType, source: $0.source, profile: $0.profile))
        })
    }

    func endRun(id: String, failed: Bool) async throws {
        _ = try await tracking.updateRun(id: id, status: failed ? .failed : .finished, endTime: clock.nowMillis())
    }
}

/// Model URIs resolved through the registry (`models:/…`) and tracking (`runs:/…`); versions registered in the registry.
struct RegistryModelLocator: ModelLocator {
    let registry: RegistryService
    let tracking: TrackingService

    func locate(_ uri: String) async throws -> (key: BlobKey?, label: String) {
        var location: String, label: String
        if uri.hasPrefix("models:/") {
            let rest = String(uri.dropFirst("models:/".count))
            let version: KilnRegistry.ModelVersion
            if let at = rest.firstIndex(of: "@") {
                version = try await registry.version(name: String(rest[..<at]), alias: String(rest[rest.index(after: at)...]))
            } else {
                let parts = rest.split(separator: "/", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw KilnError.invalid("Model URI '\(uri)': use models:/<name>/<version> or models:/<name>@<alias>") }
                version = try await registry.getModelVersion(name: parts[0], version: parts[1])
            }
            location = version.storageLocation
            label = "\(version.name)/\(version.version)"
        } else if uri.hasPrefix("runs:/") {
            let parts = uri.dropFirst("runs:/".count).split(separator: "/", maxSplits: 1).map(String.init)
            guard let runID = parts.first, !runID.isEmpty else { throw KilnError.invalid("Model URI '\(uri)': use runs:/<run_id>/<path>") }
            let run = try await tracking.getRun(id: runID)
            location = run.info.artifactURI + (parts.count > 1 ? "/" + parts[1] : "")
            label = uri
        } else {
            return (nil, uri)
        }
        guard let key = try BlobKey(proxiedURI: location) else {
            throw KilnError.invalid("The model at \(location) is not in Kiln's artifact store")
        }
        return (key, label)
    }

    func register(model name: String, source: String, runID: String) async throws -> String {
        if (try? await registry.getRegisteredModel(name: name)) == nil { _ = try await registry.createRegisteredModel(name: name) }
        return try await registry.createModelVersion(name: name, source: source, runID: runID).version.description
    }
}

/// Serving's model loader: Kiln's flavor scored in process, else a `python_function` model behind a Python scoring
/// process (its files kept under `<home>/serving/models`, its environment under `<home>/serving/envs`).
struct ServableModels: Sendable {
    let locator: RegistryModelLocator
    let artifacts: any BlobStore
    let home: URL
    let logger: Logger
    let features: FeatureStore

    func load(_ uri: String) async throws -> ServedModel {
        // A feature spec (feature serving: `models:/<spec>/` with any version or none).
        let parts = uri.hasPrefix("models:/") ? uri.dropFirst(8).split(separator: "/", omittingEmptySubsequences: false).map(String.init) : []
        if parts.count == 2, await features.online.hasSpec(parts[0]) { return .features(SpecServing(features: features, source: .named(parts[0]))) }
        if parts.count == 2, parts[1].isEmpty { throw KilnError.invalid("Served entity \(parts[0]) needs an entity_version (or name a feature spec)") }
        let (key, label) = try await locator.locate(uri)
        guard let key else { return .native(try KilnModel.read(from: URL(fileURLWithPath: uri))) }
        let serving = home.appendingPathComponent("serving")
        let safe = String(label.map { $0.isLetter || $0.isNumber ? $0 : "-" })
        let directory = serving.appendingPathComponent("models").appendingPathComponent("\(safe)-\(Identifiers.hex32().prefix(8))")
        try TrainingService.download(key, to: directory, from: artifacts)
        let mlmodel = try MLmodel.parse(try String(contentsOf: directory.appendingPathComponent("MLmodel"), encoding: .utf8))
        if mlmodel.flavors["kiln"] != nil {
            defer { try? FileManager.default.removeItem(at: directory) }
            return .native(try KilnModel.read(from: directory))
        }
        guard mlmodel.flavors["python_function"] != nil else {
            try? FileManager.default.removeItem(at: directory)
            throw KilnError.invalid("The model has neither a kiln nor a python_function flavor (flavors: \(mlmodel.flavors.keys.sorted().joined(separator: ", ")))")
        }
        let lookups = try FeatureSpec.logged(FileManager.default.contents(atPath: directory.appendingPathComponent("feature_spec.yaml").path).map { [UInt8]($0) },
                                             model: label).map { SpecServing(features: features, source: .model($0)) }
        let scorer = PythonScorer(modelDirectory: directory, environments: serving.appendingPathComponent("envs"), logger: logger, features: lookups)
        try await scorer.start()
        return .python(scorer)
    }
}

/// Features served by a serving endpoint: a stored feature spec (looked up at each request, so a deleted spec stops
/// serving), or the lookups a model was logged with (done before the model sees a request).
struct SpecServing: FeatureServing {
    enum Source: Sendable {
        case named(String)
        case model(FeatureSpec)
    }
    let features: FeatureStore
    let source: Source

    func rows(_ request: Frame) async throws -> Frame {
        switch source {
        case .named(let name): return try await features.serve(name, request: request)
        case .model(let spec): return try await features.serve(spec, request: request)
        }
    }

    func outputs(_ request: Frame) async throws -> String { FeatureJSON.outputs(try await rows(request)) }
    func completed(_ request: Frame) async throws -> String { FeatureJSON.scoringRequest(try await rows(request)) }
}

/// Model versions and their logged feature specs, from the registry and the artifact store (for lineage).
struct RegistryModelSpecs: LoggedModelSpecs {
    let registry: RegistryService
    let locator: RegistryModelLocator
    let artifacts: any BlobStore

    func versions() async throws -> [(name: String, version: String)] {
        var out: [(name: String, version: String)] = [], token: String?
        repeat {
            let page = try await registry.searchModelVersions(maxResults: 10_000, pageToken: token)
            out += page.items.map { ($0.name, String($0.version)) }
            token = page.nextPageToken
        } while token != nil
        return out
    }

    func spec(model: String, version: String) async throws -> FeatureSpec? {
        guard let key = try await locator.locate("models:/\(model)/\(version)").key, let file = try? BlobKey(key.path + "/feature_spec.yaml") else { return nil }
        return try? FeatureSpec.logged(try? artifacts.get(file), model: "\(model)/\(version)")
    }
}

/// Endpoints' served entities, from the serving service (for lineage).
struct EndpointEntities: ServedEntities {
    let serving: ServingService

    func entities() async throws -> [(endpoint: String, name: String, version: String)] {
        try await serving.list().flatMap { e in e.config.servedEntities.map { (e.name, $0.entityName, $0.entityVersion) } }
    }

    func entities(of endpoint: String) async throws -> [(name: String, version: String)] {
        try await serving.get(name: endpoint).config.servedEntities.map { ($0.entityName, $0.entityVersion) }
    }
}
