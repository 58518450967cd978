import KilnCore
import KilnRegistry

/// Proto-JSON encodings of registry entities, as MLflow's `model_registry.proto` spells them.
extension JSONWriter {
    mutating func modelVersion(_ v: ModelVersion) {
        object { w in
            w.field("name", v.name)
            w.field("version", String(v.version))
            w.field("creation_timestamp", v.creationTime)
            w.field("last_updated_timestamp", v.lastUpdatedTime)
            w.field("user_id", v.userID)
            w.field("current_stage", v.stage.rawValue)
            w.field("description", v.description)
            w.field("source", v.source)
            w.field("run_id", v.runID)
            w.field("status", v.status)
            w.field("run_link", v.runLink)
            w.field("model_id", v.modelID)
            if !v.tags.isEmpty { w.keyValues("tags", v.tags) }
            if !v.aliases.isEmpty {
                w.key("aliases")
                w.array { w in for alias in v.aliases { w.value(alias) } }
            }
        }
    }

    /// A registered model; `extra` adds fields (Databricks' `id` and `permission_level`).
    mutating func registeredModel(_ m: RegisteredModel, extra: (inout JSONWriter) -> Void = { _ in }) {
        object { w in
            extra(&w)
            w.field("name", m.name)
            w.field("creation_timestamp", m.creationTime)
            w.field("last_updated_timestamp", m.lastUpdatedTime)
            w.field("user_id", m.userID)
            w.field("description", m.description)
            if !m.latestVersions.isEmpty {
                w.key("latest_versions")
                w.array { w in for v in m.latestVersions { w.modelVersion(v) } }
            }
            if !m.tags.isEmpty { w.keyValues("tags", m.tags) }
            if !m.aliases.isEmpty {
                w.key("aliases")
                w.array { w in
                    for alias in m.aliases { w.object { w in w.field("alias", alias.alias); w.field("version", String(alias.version)) } }
                }
            }
        }
    }
}
