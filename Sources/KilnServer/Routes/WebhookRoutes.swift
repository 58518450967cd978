import Hummingbird
import KilnCore
import KilnPermissions
import KilnRegistry

/// Databricks' registry webhooks API under `/api/2.0/mlflow/registry-webhooks`, and the delivery log under
/// `/api/2.0/kiln/registry/webhook-deliveries`. As Databricks decides it: a model's webhooks are for those with
/// `CAN_MANAGE` on the model; registry-wide ones (no `model_name`) for admins. Lists hold what the caller may manage.
struct WebhookRoutes: Sendable {
    let registry: RegistryService
    let permissions: WorkspacePermissions

    /// - Throws: `PERMISSION_DENIED` unless `caller` may manage webhooks of `model` (nil: registry-wide ones).
    func requireManage(_ caller: Caller?, model: String?) async throws {
        guard let caller, !caller.isAdmin else { return }
        guard let model else {
            throw KilnError(.permissionDenied, "\(caller.name) may not manage registry-wide webhooks: they are for workspace admins; give model_name for a model's")
        }
        try await permissions.require(caller, "CAN_MANAGE", .registeredModels, model)
    }

    /// The webhook `id`, once `caller` may manage it.
    func managed(_ id: String, _ caller: Caller?) async throws -> RegistryWebhook {
        let hook = try await registry.webhook(id: id)
        try await requireManage(caller, model: hook.modelName)
        return hook
    }

    func register(on router: Router<KilnRequestContext>) {
        MessageRoute.register([
            MessageRoute(.post, "registry-webhooks/create", create),
            MessageRoute(.get, "registry-webhooks/list", list),
            MessageRoute(.patch, "registry-webhooks/update", update),
            MessageRoute(.delete, "registry-webhooks/delete", delete),
            MessageRoute(.post, "registry-webhooks/test", test),
        ], prefixes: ["/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/"], on: router)
        MessageRoute.register([MessageRoute(.get, "webhook-deliveries", deliveries)], prefixes: ["/api/2.0/kiln/registry/"], on: router)
    }

    func create(_ m: RequestMessage) async throws -> Response {
        guard let spec = try m.message("http_url_spec") else {
            throw KilnError.invalid("Missing value for required parameter 'http_url_spec' (job_spec webhooks are not supported)")
        }
        try await requireManage(m.caller, model: try m.string("model_name"))
        let hook = try await registry.createWebhook(
            modelName: try m.string("model_name"), events: try m.strings("events"), url: try spec.requireString("url"),
            secret: try spec.string("secret"), authorization: try spec.string("authorization"), description: try m.string("description"),
            status: try m.string("status"))
        return .json { w in w.key("webhook"); w.webhook(hook) }
    }

    func list(_ m: RequestMessage) async throws -> Response {
        var hooks = try await registry.listWebhooks(modelName: try m.string("model_name"), events: try m.strings("events"))
        if let caller = m.caller, !caller.isAdmin {
            var kept: [RegistryWebhook] = []
            for hook in hooks where hook.modelName != nil {
                if try await permissions.holds(caller, "CAN_MANAGE", .registeredModels, hook.modelName!) { kept.append(hook) }
            }
            hooks = kept
        }
        return .json { w in
            w.key("webhooks")
            w.array { w in for hook in hooks { w.webhook(hook) } }
        }
    }

    func update(_ m: RequestMessage) async throws -> Response {
        _ = try await managed(try m.requireString("id"), m.caller)
        let spec = try m.message("http_url_spec")
        let events = try m.strings("events")
        let hook = try await registry.updateWebhook(
            id: try m.requireString("id"), events: events.isEmpty ? nil : events, url: try spec?.string("url"),
            secret: try spec?.string("secret"), authorization: try spec?.string("authorization"),
            description: try m.string("description"), status: try m.string("status"))
        return .json { w in w.key("webhook"); w.webhook(hook) }
    }

    func delete(_ m: RequestMessage) async throws -> Response {
        _ = try await managed(try m.requireString("id"), m.caller)
        try await registry.deleteWebhook(id: try m.requireString("id"))
        return .json { _ in }
    }

    func test(_ m: RequestMessage) async throws -> Response {
        _ = try await managed(try m.requireString("id"), m.caller)
        let answer = try await registry.testWebhook(id: try m.requireString("id"), event: try m.string("event"))
        return .json { w in
            w.field("status_code", Int64(answer.status))
            w.field("body", answer.body)
        }
    }

    func deliveries(_ m: RequestMessage) async throws -> Response {
        _ = try await managed(try m.requireString("webhook_id"), m.caller)
        let log = try await registry.deliveries(webhookID: try m.requireString("webhook_id"))
        return .json { w in
            w.key("deliveries")
            w.array { w in
                for d in log {
                    w.object { w in
                        w.field("id", d.id)
                        w.field("event", d.event)
                        w.field("state", d.state)
                        w.field("attempts", d.attempts)
                        w.field("last_status_code", d.lastStatusCode)
                        w.field("last_error", d.lastError)
                        w.field("creation_timestamp", d.creationTime)
                    }
                }
            }
        }
    }
}

extension JSONWriter {
    mutating func webhook(_ hook: RegistryWebhook) {
        object { w in
            w.field("id", hook.id)
            w.field("creation_timestamp", hook.creationTime)
            w.field("last_updated_timestamp", hook.lastUpdatedTime)
            w.field("description", hook.description)
            w.key("events")
            w.array { w in for e in hook.events { w.value(e.rawValue) } }
            w.key("http_url_spec")
            w.object { w in
                w.field("url", hook.url)
                w.field("enable_ssl_verification", true)
            }
            w.field("model_name", hook.modelName)
            w.field("status", hook.status.rawValue)
        }
    }
}
