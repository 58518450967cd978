import KilnCore

/// Whether an entity is live or soft-deleted.
public enum LifecycleStage: String, Sendable {
    case active
    case deleted
}

/// Which entities a search or list returns, by lifecycle stage.
public enum ViewType: String, Sendable {
    case activeOnly = "ACTIVE_ONLY"
    case deletedOnly = "DELETED_ONLY"
    case all = "ALL"

    var stages: [String] {
        switch self {
        case .activeOnly: ["active"]
        case .deletedOnly: ["deleted"]
        case .all: ["active", "deleted"]
        }
    }
}

/// A run's state.
public enum RunStatus: String, Sendable, CaseIterable {
    case running = "RUNNING"
    case scheduled = "SCHEDULED"
    case finished = "FINISHED"
    case failed = "FAILED"
    case killed = "KILLED"
}

/// An experiment: a named group of runs with a default artifact location.
public struct Experiment: Sendable, Equatable {
    public var id: String
    public var name: String
    public var artifactLocation: String
    public var lifecycleStage: LifecycleStage
    public var creationTime: Int64
    public var lastUpdateTime: Int64
    public var tags: [KeyValue]
}

/// A metric's range over a run's whole history; `min`/`max` are nil when every value was NaN.
public struct MetricSummary: Sendable, Equatable {
    public var min: Double?
    public var max: Double?
    public var count: Int
}

/// A metric as a column of the runs table: its latest value, or its min or max over the run's history.
public struct MetricColumn: Sendable, Hashable {
    public var key: String
    public var value: OrderClause.MetricValue

    public init(key: String, value: OrderClause.MetricValue = .last) {
        self.key = key
        self.value = value
    }
}

/// A metric column's mean, min and max over a group of runs (nil when no run of the group has a value).
public struct MetricAggregate: Sendable, Equatable {
    public var mean: Double?
    public var min: Double?
    public var max: Double?

    public init(mean: Double?, min: Double?, max: Double?) {
        self.mean = mean
        self.min = min
        self.max = max
    }
}

/// Runs sharing one value of a param or tag (`value` nil: runs without it), from ``TrackingService/groupRuns``.
public struct RunGroup: Sendable, Equatable {
    public var value: String?
    public var count: Int
    /// One per requested metric column, in order.
    public var metrics: [MetricAggregate]
}

/// One metric value at a step and time.
public struct Metric: Sendable, Equatable {
    public var key: String
    public var value: Double
    public var timestamp: Int64
    public var step: Int64
    public var modelID: String?
    public var datasetName: String?
    public var datasetDigest: String?

    public init(key: String, value: Double, timestamp: Int64, step: Int64,
                modelID: String? = nil, datasetName: String? = nil, datasetDigest: String? = nil) {
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.step = step
        self.modelID = modelID
        self.datasetName = datasetName
        self.datasetDigest = datasetDigest
    }

    public static func == (a: Metric, b: Metric) -> Bool {
        a.key == b.key && a.timestamp == b.timestamp && a.step == b.step && a.modelID == b.modelID
            && (a.value == b.value || (a.value.isNaN && b.value.isNaN))
    }
}

/// A run's identity and lifecycle.
public struct RunInfo: Sendable, Equatable {
    public var runID: String
    public var runName: String
    public var experimentID: String
    public var userID: String
    public var status: RunStatus
    public var startTime: Int64?
    public var endTime: Int64?
    public var artifactURI: String
    public var lifecycleStage: LifecycleStage
}

/// A dataset a run used.
public struct Dataset: Sendable, Equatable {
    public var name: String
    public var digest: String
    public var sourceType: String
    public var source: String
    public var schema: String?
    public var profile: String?

    public init(name: String, digest: String, sourceType: String, source: String, schema: String? = nil, profile: String? = nil) {
        self.name = name
        self.digest = digest
        self.sourceType = sourceType
        self.source = source
        self.schema = schema
        self.profile = profile
    }
}

/// A dataset as a run's input, with input tags such as `mlflow.data.context`.
public struct DatasetInput: Sendable, Equatable {
    public var tags: [KeyValue]
    public var dataset: Dataset
    public init(tags: [KeyValue], dataset: Dataset) {
        self.tags = tags
        self.dataset = dataset
    }
}

/// A run with its latest metrics, params, tags, inputs and outputs.
public struct Run: Sendable, Equatable {
    public var info: RunInfo
    public var metrics: [Metric]
    public var params: [KeyValue]
    public var tags: [KeyValue]
    public var datasetInputs: [DatasetInput]
    public var modelInputs: [String]
    public var modelOutputs: [ModelOutput]
}

/// A logged model a run produced at a step.
public struct ModelOutput: Sendable, Equatable {
    public var modelID: String
    public var step: Int64
    public init(modelID: String, step: Int64) {
        self.modelID = modelID
        self.step = step
    }
}

/// Status of a logged model.
public enum LoggedModelStatus: String, Sendable {
    case unspecified = "LOGGED_MODEL_STATUS_UNSPECIFIED"
    case pending = "LOGGED_MODEL_PENDING"
    case ready = "LOGGED_MODEL_READY"
    case failed = "LOGGED_MODEL_UPLOAD_FAILED"
}

/// A model logged to an experiment (MLflow 3 `LoggedModel`), whose files live under its artifact location.
public struct LoggedModel: Sendable, Equatable {
    public var modelID: String
    public var experimentID: String
    public var name: String
    public var artifactLocation: String
    public var creationTime: Int64
    public var lastUpdatedTime: Int64
    public var status: LoggedModelStatus
    public var statusMessage: String?
    public var lifecycleStage: LifecycleStage
    public var modelType: String?
    public var sourceRunID: String?
    public var params: [KeyValue]
    public var tags: [KeyValue]
    public var metrics: [Metric]
}
