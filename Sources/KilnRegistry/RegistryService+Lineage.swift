import KilnBlob
import KilnCore
import KilnModelFormat

/// Everything known about how a version came to be and what happened to it since.
public struct VersionLineage: Sendable {
    public var version: ModelVersion
    /// The source run's params, metrics and datasets; nil when the version has no run or the run is gone.
    public var run: RunLineage?
    /// The version's `MLmodel` file, when its files are held by the server.
    public var mlmodel: MLmodel?
    public var activities: [RegistryActivity]
    /// Alias changes that involved this version.
    public var aliasChanges: [AliasChange]
}

extension RegistryService {
    /// The lineage of one version: creator, source run, model format, and its stage and alias history.
    public func lineage(name: String, version: String) async throws -> VersionLineage {
        let found = try await getModelVersion(name: name, version: version)
        var run: RunLineage?
        if let runID = found.runID, !runID.isEmpty { run = try? await sources.lineage(ofRun: runID) }
        var mlmodel: MLmodel?
        if let key = try BlobKey(proxiedURI: found.storageLocation), let file = try? key.appending("MLmodel"),
           try artifacts.kind(of: file) == false {
            mlmodel = try? MLmodel.parse(String(decoding: try artifacts.get(file), as: UTF8.self))
        }
        let changes = try await aliasHistory(name: name).filter { $0.fromVersion == found.version || $0.toVersion == found.version }
        return VersionLineage(version: found, run: run, mlmodel: mlmodel, activities: try await activities(name: name, version: version),
                              aliasChanges: changes)
    }
}
