import KilnCore

/// A named model with versions, tags and aliases.
public struct RegisteredModel: Sendable, Equatable {
    public var name: String
    public var creationTime: Int64
    public var lastUpdatedTime: Int64
    public var description: String?
    public var userID: String?
    public var tags: [KeyValue]
    public var aliases: [ModelAlias]
    /// The newest version in each stage.
    public var latestVersions: [ModelVersion]
}

/// An alias such as `champion` pointing at one version.
public struct ModelAlias: Sendable, Equatable {
    public var alias: String
    public var version: Int64
}

/// The classic registry stages.
public enum ModelStage: String, Sendable, CaseIterable {
    case none = "None"
    case staging = "Staging"
    case production = "Production"
    case archived = "Archived"

    /// Parses a stage name case-insensitively.
    /// - Throws: `INVALID_PARAMETER_VALUE` naming the valid stages.
    public static func parse(_ raw: String) throws -> ModelStage {
        guard let stage = allCases.first(where: { $0.rawValue.lowercased() == raw.lowercased() }) else {
            throw KilnError.invalid("Invalid Model Version stage: \(raw). Value must be one of None, Staging, Production, Archived.")
        }
        return stage
    }
}

/// One version of a registered model, with its files copied into registry-owned storage.
public struct ModelVersion: Sendable, Equatable {
    public var name: String
    public var version: Int64
    public var creationTime: Int64
    public var lastUpdatedTime: Int64
    public var userID: String?
    public var stage: ModelStage
    public var description: String?
    /// What the client registered (`models:/m-…`, `runs:/…`, a URI).
    public var source: String
    /// Where the version's files live; what `get-download-uri` answers.
    public var storageLocation: String
    public var runID: String?
    public var runLink: String?
    public var modelID: String?
    public var tags: [KeyValue]
    public var aliases: [String]
    /// `READY`, or `PENDING_REGISTRATION` for a Unity Catalog version whose files the client has not finalized.
    public var status: String = "READY"
}

/// What a version's source run says about how the model was made.
public struct RunLineage: Sendable, Equatable {
    public var runID: String
    public var runName: String
    public var experimentID: String
    public var userID: String
    public var params: [KeyValue]
    public var metrics: [String: Double]
    /// Dataset inputs as `name@digest` with their source.
    public var datasets: [KeyValue]

    public init(runID: String, runName: String, experimentID: String, userID: String, params: [KeyValue],
                metrics: [String: Double], datasets: [KeyValue]) {
        self.runID = runID
        self.runName = runName
        self.experimentID = experimentID
        self.userID = userID
        self.params = params
        self.metrics = metrics
        self.datasets = datasets
    }
}

/// Resolves registration sources to artifact locations; the tracking service implements it in `KilnPlatform`.
public protocol ModelSourceResolver: Sendable {
    /// The params, latest metrics and dataset inputs of a run.
    func lineage(ofRun runID: String) async throws -> RunLineage
    /// The artifact URI of a run.
    func artifactURI(ofRun runID: String) async throws -> String
    /// The artifact location of a logged model (`m-…`).
    func artifactLocation(ofLoggedModel modelID: String) async throws -> String
    /// The run a logged model was logged from, if any.
    func sourceRunID(ofLoggedModel modelID: String) async throws -> String?
}
