import Foundation
import HTTPTypes
import Hummingbird
import KilnCore
import KilnFrame
import KilnLearn
import KilnPermissions
import KilnPlatform
import KilnServing

/// Databricks Model Serving: the control plane under `/api/2.0/serving-endpoints` (create, get, list, update config,
/// delete) and the data plane `POST /serving-endpoints/{name}/invocations` with the four scoring formats
/// (`dataframe_split`, `dataframe_records`, `instances`, `inputs`), answering `{"predictions": [...]}` with a
/// `served-model-name` header, as databricks-sdk expects.
struct ServingRoutes: Sendable {
    let serving: ServingService
    let permissions: WorkspacePermissions
    /// Whether a caller may read a model (`CallerRules.requireModelRead`: `CAN_READ`, `EXECUTE` in Unity Catalog).
    let requireModelRead: @Sendable (Caller?, String) async throws -> Void

    func register(on router: Router<KilnRequestContext>) {
        MessageRoute.register([
            MessageRoute(.post, "serving-endpoints", create),
            MessageRoute(.get, "serving-endpoints", list),
            MessageRoute(.get, "serving-endpoints/{name}", get),
            MessageRoute(.delete, "serving-endpoints/{name}", delete),
            MessageRoute(.put, "serving-endpoints/{name}/config", updateConfig),
            MessageRoute(.get, "serving-endpoints/{name}/metrics", metrics),
        ], prefixes: ["/api/2.0/"], on: router)
        // Admission comes before the body is read: a request waiting for a slot holds no payload in memory.
        router.post("/serving-endpoints/{name}/invocations") { request, context in
            let name = context.parameters.get("name") ?? ""
            if let caller = context.caller { try await context.authorizer?.require(caller, AccessRules.query, .servingEndpoints, name) }
            let ticket = try await serving.admit(name: name, principal: context.principal)
            defer { ticket.leave() }
            let started = ContinuousClock.now, timestamp = Int64(Date().timeIntervalSince1970 * 1000)
            let requestID = UUID().uuidString.lowercased()
            var body: [UInt8] = []
            do {
                let buffer: ByteBuffer
                do {
                    buffer = try await request.body.collect(upTo: Self.bodyLimit)
                } catch {
                    throw KilnError.invalid("The request body is larger than \(Self.bodyLimit >> 20) MiB; send fewer rows per request")
                }
                body = Array(buffer.readableBytesView)
                let (response, served, answer) = try await invoke(name, body)
                var reply = response
                reply.headers[HTTPField.Name("x-request-id")!] = requestID
                serving.capture(name: name, capture(requestID, body, timestamp, started, status: 200, response: answer, served: served))
                return reply
            } catch {
                let failure = error as? KilnError ?? KilnError.internalError(error)
                var w = JSONWriter()
                w.object { w in w.field("error_code", failure.code.rawValue); w.field("message", failure.message) }
                serving.capture(name: name, capture(requestID, body, timestamp, started, status: failure.httpStatus(alreadyExistsAs409: true),
                                                    response: w.bytes, served: nil))
                throw error
            }
        }
    }

    static let bodyLimit = 16 * 1024 * 1024

    /// An endpoint serves its models to whoever may query it: its creator must be able to read each one.
    func requireReadable(_ config: EndpointConfig, _ caller: Caller?) async throws {
        for model in Set(config.servedEntities.map(\.entityName)).sorted() { try await requireModelRead(caller, model) }
    }

    func create(_ m: RequestMessage) async throws -> Response {
        let name = try m.requireString("name")
        guard case .object(let config)? = m.fields["config"] else { throw KilnError.invalid("Missing config: give served_entities (and traffic_config)") }
        var tags: [KeyValue] = []
        if case .array(let items)? = m.fields["tags"] {
            for case .object(let tag) in items {
                guard case .string(let key)? = tag["key"] else { throw KilnError.invalid("Every tag needs a key") }
                if case .string(let value)? = tag["value"] { tags.append(KeyValue(key, value)) } else { tags.append(KeyValue(key, "")) }
            }
        }
        let parsed = try Self.config(config)
        try await requireReadable(parsed, m.caller)
        let endpoint = try await serving.create(name: name, config: parsed, tags: tags,
                                                description: try m.string("description"), creator: m.principal)
        try await permissions.recordCreated(.servingEndpoints, endpoint.name, by: m.caller)
        let states = serving.servingStates(name: endpoint.name)
        return .json { Self.write(endpoint, states: states, &$0) }
    }

    func list(_ m: RequestMessage) async throws -> Response {
        let visible = try await permissions.visibleIDs(m.caller, .servingEndpoints)
        let endpoints = try await serving.list().filter { visible?.contains($0.name) ?? true }
        return .json { w in
            w.key("endpoints")
            w.array { w in for endpoint in endpoints { w.object { Self.write(endpoint, states: serving.servingStates(name: endpoint.name), &$0) } } }
        }
    }

    func get(_ m: RequestMessage) async throws -> Response {
        let endpoint = try await serving.get(name: try m.requireString("name"))
        let states = serving.servingStates(name: endpoint.name)
        return .json { Self.write(endpoint, states: states, &$0) }
    }

    func delete(_ m: RequestMessage) async throws -> Response {
        try await serving.delete(name: try m.requireString("name"), principal: m.principal)
        try await permissions.forget(.servingEndpoints, try m.requireString("name"))
        return .json { _ in }
    }

    func updateConfig(_ m: RequestMessage) async throws -> Response {
        let config = try Self.config(m.fields)
        try await requireReadable(config, m.caller)
        let endpoint = try await serving.updateConfig(name: try m.requireString("name"), config: config, principal: m.principal)
        let states = serving.servingStates(name: endpoint.name)
        return .json { Self.write(endpoint, states: states, &$0) }
    }

    /// Prometheus text: requests, failures and latency histograms per served entity.
    func metrics(_ m: RequestMessage) async throws -> Response {
        let text = try await serving.metricsText(name: try m.requireString("name"))
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// The inference-table row of one request.
    func capture(_ id: String, _ body: [UInt8], _ timestamp: Int64, _ started: ContinuousClock.Instant, status: Int,
                 response: [UInt8], served: String?) -> ServingService.CapturedRequest {
        let elapsed = started.duration(to: .now)
        // client_request_id only costs a parse when the body has one.
        var client: String?
        if body.firstRange(of: Array("client_request_id".utf8)) != nil, let fields = try? ScoringRequest.fields(body), case .string(let s)? = fields["client_request_id"] { client = s }
        return ServingService.CapturedRequest(requestID: id, clientRequestID: client, timestampMillis: timestamp, statusCode: status,
                                              executionMillis: elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000,
                                              request: String(decoding: body, as: UTF8.self), response: String(decoding: response, as: UTF8.self),
                                              servedEntity: served)
    }

    /// Scores a request body: the response, the served entity that answered, and the response body's bytes (for
    /// capture, which decodes them only when the endpoint has an inference table).
    func invoke(_ name: String, _ body: [UInt8]) async throws -> (Response, String, [UInt8]) {
        let (served, answer) = try await serving.invoke(name: name, body: body)
        let (code, w) = answer.json
        let status = HTTPResponse.Status(code: code)
        var response = Response.json(w, status: status)
        response.headers[HTTPField.Name("served-model-name")!] = served
        return (response, served, w.bytes)
    }

    // MARK: Wire formats

    /// EndpointCoreConfigInput: `served_entities` (or the legacy `served_models`) and `traffic_config.routes`.
    static func config(_ fields: [String: JSONValue]) throws -> EndpointConfig {
        func text(_ value: JSONValue?) -> String? {
            switch value {
            case .string(let s)?: s
            case .number(let n)?: n
            default: nil
            }
        }
        func bool(_ value: JSONValue?) -> Bool { if case .bool(let b)? = value { return b } else { return false } }
        var capture: CaptureConfig?
        if case .object(let c)? = fields["auto_capture_config"] {
            capture = CaptureConfig(catalogName: text(c["catalog_name"]) ?? "", schemaName: text(c["schema_name"]) ?? "",
                                    tableNamePrefix: text(c["table_name_prefix"]) ?? "", enabled: c["enabled"].map { $0 == .bool(true) } ?? true)
        }
        var entities: [ServedEntity] = []
        // served_entities, or the legacy served_models with model_name/model_version.
        for (list, nameKey, versionKey) in [("served_entities", "entity_name", "entity_version"), ("served_models", "model_name", "model_version")] {
            guard case .array(let items)? = fields[list] else { continue }
            for case .object(let e) in items {
                // A feature spec is served without a version.
                guard let name = text(e[nameKey]) else { throw KilnError.invalid("Every entry of \(list) needs \(nameKey) and \(versionKey)") }
                let version = text(e[versionKey]) ?? ""
                entities.append(ServedEntity(name: text(e["name"]), entityName: name, entityVersion: version,
                                             workloadSize: text(e["workload_size"]) ?? "Small", scaleToZeroEnabled: bool(e["scale_to_zero_enabled"])))
            }
        }
        var routes: [TrafficRoute] = [], shadows: [String] = []
        if case .object(let traffic)? = fields["traffic_config"], case .array(let items)? = traffic["shadow_routes"] {
            for case .object(let r) in items {
                guard let name = text(r["served_model_name"]) ?? text(r["served_entity_name"]) else {
                    throw KilnError.invalid("Every shadow route needs served_model_name")
                }
                shadows.append(name)
            }
        }
        if case .object(let traffic)? = fields["traffic_config"], case .array(let items)? = traffic["routes"] {
            for case .object(let r) in items {
                guard let name = text(r["served_model_name"]) ?? text(r["served_entity_name"]) else {
                    throw KilnError.invalid("Every traffic route needs served_model_name")
                }
                guard let share = text(r["traffic_percentage"]).flatMap({ Int($0) }) else { throw KilnError.invalid("traffic_percentage must be a whole number") }
                routes.append(TrafficRoute(servedModelName: name, trafficPercentage: share))
            }
        }
        return EndpointConfig(servedEntities: entities, routes: routes, shadows: shadows, capture: capture)
    }

    /// ServingEndpointDetailed.
    static func write(_ e: ServingEndpoint, states: [String: String] = [:], _ w: inout JSONWriter) {
        w.field("name", e.name)
        w.field("id", e.id)
        w.field("creator", e.creator)
        w.field("creation_timestamp", e.creationTimestamp)
        w.field("last_updated_timestamp", e.lastUpdatedTimestamp)
        w.field("description", e.description)
        w.key("state")
        w.object { w in
            w.field("ready", "READY")
            w.field("config_update", "NOT_UPDATING")
        }
        w.key("config")
        w.object { w in
            w.key("served_entities")
            w.array { w in
                for entity in e.config.servedEntities {
                    w.object { w in
                        w.field("name", entity.name)
                        w.field("entity_name", entity.entityName)
                        w.field("entity_version", entity.entityVersion)
                        w.field("workload_size", entity.workloadSize)
                        w.field("scale_to_zero_enabled", entity.scaleToZeroEnabled)
                        w.key("state")
                        w.object { w in
                            w.field("deployment", "DEPLOYMENT_READY")
                            w.field("deployment_state_message", states[entity.name] ?? "Loads on the first request")
                        }
                    }
                }
            }
            w.key("traffic_config")
            w.object { w in
                w.key("routes")
                w.array { w in
                    for route in e.config.routes {
                        w.object { w in
                            w.field("served_model_name", route.servedModelName)
                            w.field("traffic_percentage", Int64(route.trafficPercentage))
                        }
                    }
                }
                if !e.config.shadows.isEmpty {
                    w.key("shadow_routes")
                    w.array { w in for shadow in e.config.shadows { w.object { w in w.field("served_model_name", shadow) } } }
                }
            }
            w.field("config_version", e.config.version)
            if let capture = e.config.capture {
                w.key("auto_capture_config")
                w.object { w in
                    w.field("catalog_name", capture.catalogName)
                    w.field("schema_name", capture.schemaName)
                    w.field("table_name_prefix", capture.tableNamePrefix)
                    w.field("enabled", capture.enabled)
                    w.key("state")
                    w.object { w in
                        w.key("payload_table")
                        w.object { w in
                            w.field("name", "\(capture.tableNamePrefix)_payload")
                            w.field("status", capture.enabled ? "ACTIVE" : "DISABLED")
                        }
                    }
                }
            }
        }
        if !e.tags.isEmpty {
            w.key("tags")
            w.array { w in for tag in e.tags { w.object { w in w.field("key", tag.key); w.field("value", tag.value) } } }
        }
    }
}
