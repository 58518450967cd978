import Foundation
import KilnBlob
import KilnCore
import KilnFeatures
import KilnRegistry
import KilnServing

/// Which feature tables and features models and endpoints use, read from what they serve: a model version's
/// `feature_spec.yaml` (written by kiln_client's `log_model`) and the feature specs endpoints serve.
public struct FeatureLineage: Sendable {
    let registry: RegistryService
    let locator: RegistryModelLocator
    let artifacts: any BlobStore
    let serving: ServingService
    let features: FeatureStore

    /// A user of a feature table: a model version or an endpoint, and the table's features it takes (nil: all).
    public struct Use: Sendable, Equatable {
        public var model: String?
        public var version: String?
        public var endpoint: String?
        public var featureSpec: String?
        public var table: String
        public var features: [String]?
    }

    /// The lookups a model version was logged with; nil when it has none.
    public func spec(model: String, version: String) async throws -> FeatureSpec? {
        let (key, _) = try await locator.locate("models:/\(model)/\(version)")
        guard let key, let file = try? BlobKey(key.path + "/feature_spec.yaml"), let bytes = try? artifacts.get(file) else { return nil }
        guard case .object(var o) = try JSONValue.parse(bytes) else { return nil }
        o["name"] = .string("\(model)/\(version)")
        return try FeatureSpec(json: .object(o))
    }

    /// What a model version uses (one entry per lookup).
    public func uses(model: String, version: String) async throws -> [Use] {
        guard let spec = try await spec(model: model, version: version) else { return [] }
        return spec.lookups.map { Use(model: model, version: version, table: $0.tableName, features: $0.featureNames) }
    }

    /// What an endpoint's served entities use.
    public func uses(endpoint name: String) async throws -> [Use] {
        var out: [Use] = []
        for entity in try await serving.get(name: name).config.servedEntities {
            if entity.entityVersion.isEmpty {
                let spec = try await features.online.spec(entity.entityName)
                out += spec.lookups.map { Use(endpoint: name, featureSpec: spec.name, table: $0.tableName, features: $0.featureNames) }
            } else {
                out += try await uses(model: entity.entityName, version: entity.entityVersion).map { use in
                    var u = use
                    u.endpoint = name
                    return u
                }
            }
        }
        return out
    }

    /// Every model version and endpoint that reads `table` (and, with `feature`, that feature: lookups taking every
    /// feature count too).
    public func users(of table: String, feature: String? = nil) async throws -> [Use] {
        func takes(_ lookup: FeatureLookup) -> Bool {
            lookup.tableName == table && (feature == nil || lookup.featureNames.map { $0.contains(feature!) } ?? true)
        }
        var out: [Use] = []
        var specs: [String: FeatureSpec] = [:]
        var token: String?
        repeat {
            let page = try await registry.searchModelVersions(maxResults: 10_000, pageToken: token)
            for v in page.items {
                guard let spec = try? await spec(model: v.name, version: String(v.version)) else { continue }
                specs["\(v.name)/\(v.version)"] = spec
                for lookup in spec.lookups where takes(lookup) {
                    out.append(Use(model: v.name, version: String(v.version), table: table, features: lookup.featureNames))
                }
            }
            token = page.nextPageToken
        } while token != nil
        for endpoint in try await serving.list() {
            for entity in endpoint.config.servedEntities {
                let key = "\(entity.entityName)/\(entity.entityVersion)"
                let spec: FeatureSpec?
                if entity.entityVersion.isEmpty { spec = try? await features.online.spec(entity.entityName) } else { spec = specs[key] }
                for lookup in spec?.lookups ?? [] where takes(lookup) {
                    out.append(Use(model: entity.entityVersion.isEmpty ? nil : entity.entityName,
                                   version: entity.entityVersion.isEmpty ? nil : entity.entityVersion, endpoint: endpoint.name,
                                   featureSpec: entity.entityVersion.isEmpty ? entity.entityName : nil, table: table, features: lookup.featureNames))
                }
            }
        }
        return out
    }
}
