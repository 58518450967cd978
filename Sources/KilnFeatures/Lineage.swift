import Foundation
import KilnCore

/// The model versions a registry holds and the feature spec each was logged with (implemented over the registry and
/// the artifact store, wired in KilnPlatform).
public protocol LoggedModelSpecs: Sendable {
    /// Every model version, as (name, version).
    func versions() async throws -> [(name: String, version: String)]
    /// The lookups a model version was logged with (its `feature_spec.yaml`); nil when it has none.
    func spec(model: String, version: String) async throws -> FeatureSpec?
}

/// The entities serving endpoints serve (implemented over the serving service, wired in KilnPlatform).
public protocol ServedEntities: Sendable {
    /// Every endpoint's entities, as (endpoint, entity name, entity version — empty for a feature spec).
    func entities() async throws -> [(endpoint: String, name: String, version: String)]
    /// One endpoint's entities.
    func entities(of endpoint: String) async throws -> [(name: String, version: String)]
}

/// Which feature tables and features models and endpoints use, read from what they serve: a model version's
/// `feature_spec.yaml` (written by kiln_client's `log_model`) and the feature specs endpoints serve.
public struct FeatureLineage: Sendable {
    let models: any LoggedModelSpecs
    let endpoints: any ServedEntities
    let online: OnlineStore

    public init(models: any LoggedModelSpecs, endpoints: any ServedEntities, online: OnlineStore) {
        self.models = models
        self.endpoints = endpoints
        self.online = online
    }

    /// A user of a feature table: a model version or an endpoint, and the table's features it takes (nil: all).
    public struct Use: Sendable, Equatable {
        public var model: String?
        public var version: String?
        public var endpoint: String?
        public var featureSpec: String?
        public var table: String
        public var features: [String]?
    }

    /// What a model version uses (one entry per lookup).
    public func uses(model: String, version: String) async throws -> [Use] {
        guard let spec = try await models.spec(model: model, version: version) else { return [] }
        return spec.lookups.map { Use(model: model, version: version, table: $0.tableName, features: $0.featureNames) }
    }

    /// What an endpoint's served entities use.
    public func uses(endpoint name: String) async throws -> [Use] {
        var out: [Use] = []
        for entity in try await endpoints.entities(of: name) {
            out += try await uses(endpoint: name, entity: entity.name, version: entity.version) { _ in true }
        }
        return out
    }

    /// Every model version and endpoint that reads `table` (and, with `feature`, that feature: lookups taking every
    /// feature count too).
    public func users(of table: String, feature: String? = nil) async throws -> [Use] {
        let takes: @Sendable (FeatureLookup) -> Bool = { lookup in
            lookup.tableName == table && (feature == nil || lookup.featureNames.map { $0.contains(feature!) } ?? true)
        }
        var out: [Use] = []
        for v in try await models.versions() {
            out += try await uses(model: v.name, version: v.version).filter { use in
                use.table == table && (feature == nil || use.features.map { $0.contains(feature!) } ?? true)
            }
        }
        for entity in try await endpoints.entities() {
            out += try await uses(endpoint: entity.endpoint, entity: entity.name, version: entity.version, where: takes)
        }
        return out
    }

    /// The lookups of one served entity: a feature spec (no version) or a model version.
    func uses(endpoint: String, entity: String, version: String, where keep: (FeatureLookup) -> Bool) async throws -> [Use] {
        let isSpec = version.isEmpty
        let spec = isSpec ? try? await online.spec(entity) : try await models.spec(model: entity, version: version)
        return (spec?.lookups ?? []).filter(keep).map { lookup in
            Use(model: isSpec ? nil : entity, version: isSpec ? nil : version, endpoint: endpoint, featureSpec: isSpec ? entity : nil,
                table: lookup.tableName, features: lookup.featureNames)
        }
    }
}

extension FeatureSpec {
    /// The spec a logged model carries in its `feature_spec.yaml` (kiln_client writes JSON, which is YAML), named
    /// `model`; the label and excluded columns become what the model is not given. Nil for no file.
    public static func logged(_ bytes: [UInt8]?, model: String) throws -> FeatureSpec? {
        guard let bytes else { return nil }
        guard case .object(var o) = try JSONValue.parse(bytes) else {
            throw KilnError.invalid("The feature_spec.yaml of \(model) is not the JSON kiln_client writes")
        }
        let label = try strings(o["label"], "label") ?? []
        let exclude = try strings(o["exclude_columns"], "exclude_columns") ?? []
        o["name"] = .string(model)
        o["exclude_columns"] = .array((label + exclude).map(JSONValue.string))
        return try FeatureSpec(json: .object(o))
    }
}
