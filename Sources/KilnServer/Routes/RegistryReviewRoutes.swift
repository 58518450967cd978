import Hummingbird
import KilnCore
import KilnRegistry

/// Databricks' registry review API (transition requests and comments) under `/api/2.0/mlflow`, and Kiln's
/// history views under `/api/2.0/kiln/registry`.
struct RegistryReviewRoutes: Sendable {
    let registry: RegistryService

    func register(on router: Router<KilnRequestContext>) {
        MessageRoute.register([
            MessageRoute(.post, "transition-requests/create", createRequest),
            MessageRoute(.get, "transition-requests/list", listRequests),
            MessageRoute(.post, "transition-requests/approve", approveRequest),
            MessageRoute(.post, "transition-requests/reject", rejectRequest),
            MessageRoute(.delete, "transition-requests/delete", cancelRequest),
            MessageRoute(.post, "comments/create", createComment),
            MessageRoute(.patch, "comments/update", updateComment),
            MessageRoute(.delete, "comments/delete", deleteComment),
        ], prefixes: ["/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/"], on: router)
        MessageRoute.register([
            MessageRoute(.get, "activities", activities),
            MessageRoute(.get, "alias-history", aliasHistory),
            MessageRoute(.get, "lineage", lineage),
        ], prefixes: ["/api/2.0/kiln/registry/"], on: router)
    }

    static func user(_ m: RequestMessage) -> String { m.principal ?? "anonymous" }

    func createRequest(_ m: RequestMessage) async throws -> Response {
        let request = try await registry.createTransitionRequest(
            name: try m.requireString("name"), version: try m.requireString("version"),
            stage: try ModelStage.parse(try m.requireString("stage")), comment: try m.string("comment"), userID: Self.user(m))
        return .json { w in
            w.key("request")
            w.object { w in
                w.field("creation_timestamp", request.creationTime)
                w.field("to_stage", request.toStage)
                w.field("user_id", request.userID)
                w.field("comment", request.comment)
                w.key("available_actions")
                w.array { w in for a in ["APPROVE_TRANSITION_REQUEST", "REJECT_TRANSITION_REQUEST", "CANCEL_TRANSITION_REQUEST"] { w.value(a) } }
            }
        }
    }

    func listRequests(_ m: RequestMessage) async throws -> Response {
        let requests = try await registry.transitionRequests(name: try m.requireString("name"), version: try m.requireString("version"))
        return .json { w in
            w.key("requests")
            w.array { w in
                for request in requests {
                    w.object { w in
                        w.field("activity_type", "REQUESTED_TRANSITION")
                        w.field("to_stage", request.toStage)
                        w.field("user_id", request.userID)
                        w.field("comment", request.comment)
                        w.field("creation_timestamp", request.creationTime)
                        w.field("last_updated_timestamp", request.creationTime)
                    }
                }
            }
        }
    }

    func approveRequest(_ m: RequestMessage) async throws -> Response {
        let activity = try await registry.approveTransitionRequest(
            name: try m.requireString("name"), version: try m.requireString("version"),
            stage: try ModelStage.parse(try m.requireString("stage")),
            archiveExisting: try m.bool("archive_existing_versions") ?? false, comment: try m.string("comment"), userID: Self.user(m))
        return .json { w in w.key("activity"); w.activity(activity) }
    }

    func rejectRequest(_ m: RequestMessage) async throws -> Response {
        let activity = try await registry.rejectTransitionRequest(
            name: try m.requireString("name"), version: try m.requireString("version"),
            stage: try ModelStage.parse(try m.requireString("stage")), comment: try m.string("comment"), userID: Self.user(m))
        return .json { w in w.key("activity"); w.activity(activity) }
    }

    func cancelRequest(_ m: RequestMessage) async throws -> Response {
        try await registry.cancelTransitionRequest(
            name: try m.requireString("name"), version: try m.requireString("version"),
            stage: try ModelStage.parse(try m.requireString("stage")), creator: try m.string("creator") ?? Self.user(m),
            comment: try m.string("comment"))
        return .json { _ in }
    }

    func createComment(_ m: RequestMessage) async throws -> Response {
        let comment = try await registry.createComment(name: try m.requireString("name"), version: try m.requireString("version"),
                                                       comment: try m.requireString("comment"), userID: Self.user(m))
        return .json { w in w.key("comment"); w.comment(comment) }
    }

    func updateComment(_ m: RequestMessage) async throws -> Response {
        let comment = try await registry.updateComment(id: try m.requireString("id"), comment: try m.requireString("comment"))
        return .json { w in w.key("comment"); w.comment(comment) }
    }

    func deleteComment(_ m: RequestMessage) async throws -> Response {
        try await registry.deleteComment(id: try m.requireString("id"))
        return .json { _ in }
    }

    func activities(_ m: RequestMessage) async throws -> Response {
        let activities = try await registry.activities(name: try m.requireString("name"), version: try m.requireString("version"))
        return .json { w in
            w.key("activities")
            w.array { w in for activity in activities { w.activity(activity) } }
        }
    }

    func lineage(_ m: RequestMessage) async throws -> Response {
        let lineage = try await registry.lineage(name: try m.requireString("name"), version: try m.requireString("version"))
        return .json { w in
            w.key("model_version")
            w.modelVersion(lineage.version)
            w.field("created_by", lineage.version.userID)
            if let run = lineage.run {
                w.key("run")
                w.object { w in
                    w.field("run_id", run.runID)
                    w.field("run_name", run.runName)
                    w.field("experiment_id", run.experimentID)
                    w.field("user_id", run.userID)
                    w.keyValues("params", run.params)
                    w.key("metrics")
                    w.object { w in for key in run.metrics.keys.sorted() { w.field(key, run.metrics[key]) } }
                    w.key("datasets")
                    w.array { w in for d in run.datasets { w.object { w in w.field("name", d.key); w.field("source", d.value) } } }
                }
            }
            if let model = lineage.mlmodel {
                w.key("mlmodel")
                w.object { w in
                    w.key("flavors")
                    w.array { w in for flavor in model.flavors.keys.sorted() { w.value(flavor) } }
                    w.field("loader_module", model.pythonLoaderModule)
                    w.field("model_id", model.modelID)
                    w.field("signature_inputs", model.signature?.inputs)
                    w.field("signature_outputs", model.signature?.outputs)
                }
            }
            w.key("activities")
            w.array { w in for activity in lineage.activities { w.activity(activity) } }
            w.key("alias_changes")
            w.array { w in for change in lineage.aliasChanges { w.aliasChange(change) } }
        }
    }

    func aliasHistory(_ m: RequestMessage) async throws -> Response {
        let changes = try await registry.aliasHistory(name: try m.requireString("name"))
        return .json { w in
            w.key("changes")
            w.array { w in for change in changes { w.aliasChange(change) } }
        }
    }
}

extension JSONWriter {
    mutating func aliasChange(_ change: AliasChange) {
        object { w in
            w.field("alias", change.alias)
            w.field("from_version", change.fromVersion.map(String.init))
            w.field("to_version", change.toVersion.map(String.init))
            w.field("user_id", change.userID)
            w.field("timestamp", change.time)
        }
    }

    mutating func activity(_ a: RegistryActivity) {
        object { w in
            w.field("id", a.id)
            w.field("activity_type", a.activityType)
            w.field("from_stage", a.fromStage)
            w.field("to_stage", a.toStage)
            w.field("user_id", a.userID)
            w.field("comment", a.comment)
            w.field("system_comment", a.systemComment)
            w.field("creation_timestamp", a.creationTime)
            w.field("last_updated_timestamp", a.lastUpdatedTime)
        }
    }

    mutating func comment(_ c: VersionComment) {
        object { w in
            w.field("id", c.id)
            w.field("comment", c.comment)
            w.field("user_id", c.userID)
            w.field("creation_timestamp", c.creationTime)
            w.field("last_updated_timestamp", c.lastUpdatedTime)
            w.key("available_actions")
            w.array { w in w.value("EDIT_COMMENT"); w.value("DELETE_COMMENT") }
        }
    }
}
