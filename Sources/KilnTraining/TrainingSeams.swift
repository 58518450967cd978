import KilnBlob
import KilnCore

/// What training needs of experiment tracking, declared here so `KilnTraining` never imports `KilnTracking`
/// (`KilnPlatform` passes an adapter over `TrackingService`).
public protocol TrainingRunLog: Sendable {
    /// Creates a RUNNING run in the experiment named `experiment` (created when missing; nil = the Default experiment).
    func startRun(experiment: String?, runName: String?, tags: [KeyValue]) async throws -> TrainingRunInfo
    /// A run by id (any status), with its step-0 metrics.
    func run(id: String) async throws -> TrainingRunInfo
    func setTag(runID: String, key: String, value: String) async throws
    /// Logs params and metrics in one batch (at most 1,000 metrics a call).
    func log(runID: String, params: [KeyValue], metrics: [TrainingMetric]) async throws
    /// Records the tables a run read as MLflow dataset inputs.
    func logDatasets(runID: String, _ datasets: [TrainingDataset]) async throws
    /// Ends a run FINISHED, or FAILED when `failed`.
    func endRun(id: String, failed: Bool) async throws
}

/// What training needs of the model registry: where a model URI's files are, and registering a new version.
public protocol ModelLocator: Sendable {
    /// Where the files of `models:/<name>/<version>`, `models:/<name>@<alias>` or `runs:/<run>/<path>` are in the
    /// artifact store, and a label (`name/version` or the URI); `key` is nil for anything else (a local folder).
    func locate(_ uri: String) async throws -> (key: BlobKey?, label: String)
    /// Adds the model at `source` (logged by `runID`) as a new version of `model` (created when missing).
    /// - Returns: the new version number.
    func register(model: String, source: String, runID: String) async throws -> String
}

/// A tracking run as training sees it.
public struct TrainingRunInfo: Sendable, Equatable {
    public var runID: String
    public var runName: String
    public var experimentID: String
    public var experimentName: String
    /// `RUNNING`, `FINISHED`, `FAILED`, …
    public var status: String
    /// The run's artifact URI (`mlflow-artifacts:/…`).
    public var artifactURI: String
    /// The run's metrics logged at step 0 (last value per key).
    public var metrics: [String: Double]

    public init(runID: String, runName: String, experimentID: String, experimentName: String, status: String, artifactURI: String,
                metrics: [String: Double] = [:]) {
        self.runID = runID
        self.runName = runName
        self.experimentID = experimentID
        self.experimentName = experimentName
        self.status = status
        self.artifactURI = artifactURI
        self.metrics = metrics
    }
}

/// One metric value to log.
public struct TrainingMetric: Sendable, Equatable {
    public var key: String
    public var value: Double
    public var timestamp: Int64
    public var step: Int64

    public init(key: String, value: Double, timestamp: Int64, step: Int64) {
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.step = step
    }
}

/// A table version a run read, as an MLflow dataset input (`context` is `training` or `testing`).
public struct TrainingDataset: Sendable, Equatable {
    public var name: String
    public var digest: String
    public var sourceType: String
    public var source: String
    public var profile: String
    public var context: String

    public init(name: String, digest: String, sourceType: String, source: String, profile: String, context: String) {
        self.name = name
        self.digest = digest
        self.sourceType = sourceType
        self.source = source
        self.profile = profile
        self.context = context
    }
}
