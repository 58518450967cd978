import Crypto
import Foundation
import KilnCore
import KilnStore
import Logging
import SQLKit

/// Registry events a webhook can subscribe to, as Databricks names them.
public enum RegistryEvent: String, Sendable, CaseIterable {
    case registeredModelCreated = "REGISTERED_MODEL_CREATED"
    case modelVersionCreated = "MODEL_VERSION_CREATED"
    case modelVersionTagSet = "MODEL_VERSION_TAG_SET"
    case modelVersionTransitionedStage = "MODEL_VERSION_TRANSITIONED_STAGE"
    case modelVersionTransitionedToStaging = "MODEL_VERSION_TRANSITIONED_TO_STAGING"
    case modelVersionTransitionedToProduction = "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION"
    case modelVersionTransitionedToArchived = "MODEL_VERSION_TRANSITIONED_TO_ARCHIVED"
    case transitionRequestCreated = "TRANSITION_REQUEST_CREATED"
    case transitionRequestToStagingCreated = "TRANSITION_REQUEST_TO_STAGING_CREATED"
    case transitionRequestToProductionCreated = "TRANSITION_REQUEST_TO_PRODUCTION_CREATED"
    case transitionRequestToArchivedCreated = "TRANSITION_REQUEST_TO_ARCHIVED_CREATED"
    case commentCreated = "COMMENT_CREATED"

    /// Parses an event name.
    /// - Throws: `INVALID_PARAMETER_VALUE` naming the valid events.
    public static func parse(_ raw: String) throws -> RegistryEvent {
        guard let event = RegistryEvent(rawValue: raw.uppercased()) else {
            throw KilnError.invalid("Invalid webhook event '\(raw)'. Valid events: \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return event
    }
}

/// Whether a webhook fires on events (`ACTIVE`), only from the test endpoint (`TEST_MODE`), or never.
public enum WebhookStatus: String, Sendable {
    case active = "ACTIVE"
    case testMode = "TEST_MODE"
    case disabled = "DISABLED"
}

/// A registry webhook: an HTTPS or HTTP endpoint that receives signed JSON payloads.
public struct RegistryWebhook: Sendable, Equatable {
    public var id: String
    public var modelName: String?
    public var events: [RegistryEvent]
    public var url: String
    public var description: String?
    public var status: WebhookStatus
    public var creationTime: Int64
    public var lastUpdatedTime: Int64
    /// Signs payloads (`X-Databricks-Signature`); never sent back to clients.
    var secret: String?
    /// Sent as the `Authorization` header; never sent back to clients.
    var authorization: String?
}

/// One queued or finished delivery of an event to a webhook.
public struct WebhookDelivery: Sendable, Equatable {
    public var id: String
    public var webhookID: String
    public var event: String
    /// `PENDING`, `DELIVERED` or `FAILED` (gave up after the last retry).
    public var state: String
    public var attempts: Int64
    public var lastStatusCode: Int64?
    public var lastError: String?
    public var creationTime: Int64
}


/// How deliveries are retried.
public struct WebhookPolicy: Sendable {
    /// Attempts before a delivery is marked `FAILED`.
    public var maxAttempts: Int
    /// Delay before the second attempt; each later one doubles it.
    public var retryBaseMillis: Int64

    public init(maxAttempts: Int = 5, retryBaseMillis: Int64 = 1000) {
        self.maxAttempts = maxAttempts
        self.retryBaseMillis = retryBaseMillis
    }
}

extension RegistryService {
    // MARK: Webhook CRUD

    static func validateWebhookURL(_ url: String) throws {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), ["http", "https"].contains(scheme),
              parsed.host?.isEmpty == false else {
            throw KilnError.invalid("Invalid webhook URL '\(url)': use an http:// or https:// URL")
        }
    }

    /// Registers a webhook for `events` of one model, or of every model when `modelName` is nil.
    public func createWebhook(modelName: String?, events: [String], url: String, secret: String?, authorization: String?,
                              description: String?, status: String?) async throws -> RegistryWebhook {
        guard !events.isEmpty else { throw KilnError.invalid("Missing value for required parameter 'events'.") }
        let parsed = try events.map(RegistryEvent.parse)
        try Self.validateWebhookURL(url)
        let state = try status.map { raw in
            guard let s = WebhookStatus(rawValue: raw.uppercased()) else { throw KilnError.invalid("Invalid webhook status '\(raw)': ACTIVE, TEST_MODE or DISABLED") }
            return s
        } ?? .active
        if let modelName { _ = try await getRegisteredModel(name: modelName) }
        let id = Identifiers.hex32()
        let now = clock.nowMillis()
        try await db.write { sql in
            try await sql.raw("""
                INSERT INTO registry_webhooks (id, model_name, events, url, secret, authorization, description, status, creation_time, last_updated_time)
                VALUES (\(bind: id), \(bind: modelName), \(bind: Self.eventList(parsed)), \(bind: url), \(bind: secret), \(bind: authorization),
                    \(bind: description), \(bind: state.rawValue), \(bind: now), \(bind: now))
                """).run()
        }
        return try await webhook(id: id)
    }

    static func eventList(_ events: [RegistryEvent]) -> String {
        "," + Set(events.map(\.rawValue)).sorted().joined(separator: ",") + ","
    }

    /// Fetches one webhook.
    public func webhook(id: String) async throws -> RegistryWebhook {
        try await db.read { sql in try await Self.requireWebhook(sql, id) }
    }

    static func requireWebhook(_ sql: any SQLDatabase, _ id: String) async throws -> RegistryWebhook {
        guard let found = try await loadWebhooks(sql, where: "id = \(bind: id)").first else {
            throw KilnError.notFound("Webhook \(id) not found")
        }
        return found
    }

    static func loadWebhooks(_ sql: any SQLDatabase, where condition: SQLQueryString) async throws -> [RegistryWebhook] {
        try await sql.raw("""
            SELECT id, model_name, events, url, secret, authorization, description, status, creation_time, last_updated_time
            FROM registry_webhooks WHERE \(condition) ORDER BY creation_time, id
            """ as SQLQueryString).all().map { row in
            RegistryWebhook(
                id: try row.decode(column: "id", as: String.self), modelName: try row.decode(column: "model_name", as: String?.self),
                events: try row.decode(column: "events", as: String.self).split(separator: ",").compactMap { RegistryEvent(rawValue: String($0)) },
                url: try row.decode(column: "url", as: String.self), description: try row.decode(column: "description", as: String?.self),
                status: WebhookStatus(rawValue: try row.decode(column: "status", as: String.self)) ?? .disabled,
                creationTime: try row.decode(column: "creation_time", as: Int64.self),
                lastUpdatedTime: try row.decode(column: "last_updated_time", as: Int64.self),
                secret: try row.decode(column: "secret", as: String?.self),
                authorization: try row.decode(column: "authorization", as: String?.self))
        }
    }

    /// Webhooks, optionally only those of one model and/or listening to some events.
    public func listWebhooks(modelName: String?, events: [String]) async throws -> [RegistryWebhook] {
        let wanted = try events.map(RegistryEvent.parse)
        let all = try await db.read { sql in
            try await Self.loadWebhooks(sql, where: modelName.map { "model_name = \(bind: $0)" } ?? "1 = 1")
        }
        return wanted.isEmpty ? all : all.filter { hook in hook.events.contains { wanted.contains($0) } }
    }

    /// Changes a webhook's events, URL, secret, description or status.
    public func updateWebhook(id: String, events: [String]?, url: String?, secret: String?, authorization: String?,
                              description: String?, status: String?) async throws -> RegistryWebhook {
        let parsed = try events.map { try $0.map(RegistryEvent.parse) }
        if let url { try Self.validateWebhookURL(url) }
        let state = try status.map { raw in
            guard let s = WebhookStatus(rawValue: raw.uppercased()) else { throw KilnError.invalid("Invalid webhook status '\(raw)': ACTIVE, TEST_MODE or DISABLED") }
            return s
        }
        let now = clock.nowMillis()
        try await db.write { sql in
            var hook = try await Self.requireWebhook(sql, id)
            if let parsed, !parsed.isEmpty { hook.events = parsed }
            if let url { hook.url = url }
            if let secret { hook.secret = secret }
            if let authorization { hook.authorization = authorization }
            if let description { hook.description = description }
            if let state { hook.status = state }
            try await sql.raw("""
                UPDATE registry_webhooks SET events = \(bind: Self.eventList(hook.events)), url = \(bind: hook.url), secret = \(bind: hook.secret),
                    authorization = \(bind: hook.authorization), description = \(bind: hook.description), status = \(bind: hook.status.rawValue),
                    last_updated_time = \(bind: now)
                WHERE id = \(bind: id)
                """).run()
        }
        return try await webhook(id: id)
    }

    /// Deletes a webhook and its pending deliveries.
    public func deleteWebhook(id: String) async throws {
        try await db.write { sql in
            _ = try await Self.requireWebhook(sql, id)
            try await sql.raw("DELETE FROM registry_webhook_deliveries WHERE webhook_id = \(bind: id) AND state = 'PENDING'").run()
            try await sql.raw("DELETE FROM registry_webhooks WHERE id = \(bind: id)").run()
        }
    }

    /// Sends one test payload now, whatever the webhook's status, and answers what the endpoint said.
    public func testWebhook(id: String, event: String?) async throws -> (status: Int, body: String) {
        let hook = try await webhook(id: id)
        guard let transport else { throw KilnError(.internalError, "Webhook delivery is not configured on this server") }
        let chosen = try event.map(RegistryEvent.parse) ?? hook.events.first ?? .modelVersionCreated
        let payload = Self.payload(event: chosen, webhookID: id, modelName: hook.modelName ?? "test-model",
                                   fields: ["version": "1", "test": "true"], now: clock.nowMillis())
        do {
            return try await transport.post(url: hook.url, headers: Self.headers(for: hook, body: payload), body: payload)
        } catch {
            throw KilnError.invalid("Could not reach \(hook.url): \(error)")
        }
    }

    /// The deliveries of a webhook, newest first.
    public func deliveries(webhookID: String, limit: Int = 100) async throws -> [WebhookDelivery] {
        try await db.read { sql in
            _ = try await Self.requireWebhook(sql, webhookID)
            return try await sql.raw("""
                SELECT id, webhook_id, event, state, attempts, last_status_code, last_error, creation_time
                FROM registry_webhook_deliveries WHERE webhook_id = \(bind: webhookID) ORDER BY seq DESC LIMIT \(bind: limit)
                """).all().map(Self.decodeDelivery)
        }
    }

    static func decodeDelivery(_ row: any SQLRow) throws -> WebhookDelivery {
        WebhookDelivery(
            id: try row.decode(column: "id", as: String.self), webhookID: try row.decode(column: "webhook_id", as: String.self),
            event: try row.decode(column: "event", as: String.self), state: try row.decode(column: "state", as: String.self),
            attempts: try row.decode(column: "attempts", as: Int64.self),
            lastStatusCode: try row.decode(column: "last_status_code", as: Int64?.self),
            lastError: try row.decode(column: "last_error", as: String?.self),
            creationTime: try row.decode(column: "creation_time", as: Int64.self))
    }

    // MARK: Events

    static func payload(event: RegistryEvent, webhookID: String, modelName: String, fields: [String: String], now: Int64) -> [UInt8] {
        var w = JSONWriter()
        w.object { w in
            w.field("event", event.rawValue)
            w.field("webhook_id", webhookID)
            w.field("event_timestamp", now)
            w.field("model_name", modelName)
            for key in fields.keys.sorted() { w.field(key, fields[key]) }
        }
        return w.bytes
    }

    /// `Content-Type`, the HMAC-SHA256 signature of the body under the webhook's secret, and its Authorization.
    static func headers(for hook: RegistryWebhook, body: [UInt8]) -> [(String, String)] {
        var headers = [("Content-Type", "application/json")]
        if let secret = hook.secret, !secret.isEmpty {
            let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array(secret.utf8)))
            headers.append(("X-Databricks-Signature", Hex.encode(mac)))
        }
        if let authorization = hook.authorization, !authorization.isEmpty { headers.append(("Authorization", authorization)) }
        return headers
    }

    /// Queues `events` for every active webhook of `modelName` (or of all models), in the caller's transaction,
    /// so a change and its notifications commit together.
    static func enqueue(_ sql: any SQLDatabase, _ events: [RegistryEvent], modelName: String, fields: [String: String], now: Int64) async throws {
        let hooks = try await loadWebhooks(sql, where: "status = 'ACTIVE' AND (model_name IS NULL OR model_name = \(bind: modelName))")
        for hook in hooks {
            for event in events where hook.events.contains(event) {
                let body = String(decoding: payload(event: event, webhookID: hook.id, modelName: modelName, fields: fields, now: now), as: UTF8.self)
                try await sql.raw("""
                    INSERT INTO registry_webhook_deliveries (id, seq, webhook_id, event, payload, state, attempts, next_attempt_time,
                        last_status_code, last_error, creation_time, last_updated_time)
                    VALUES (\(bind: Identifiers.hex32()), (SELECT COALESCE(MAX(seq), 0) + 1 FROM registry_webhook_deliveries),
                        \(bind: hook.id), \(bind: event.rawValue), \(bind: body), 'PENDING', 0, \(bind: now), NULL, NULL, \(bind: now), \(bind: now))
                    """).run()
            }
        }
    }

    // MARK: Delivery

    /// Delivers every due delivery once: successes become `DELIVERED`, failures are retried with exponential
    /// backoff until `policy.maxAttempts`, then `FAILED`.
    /// - Returns: how many deliveries were attempted.
    @discardableResult
    public func deliverDueWebhooks(logger: Logger) async throws -> Int {
        guard let transport else { return 0 }
        let now = clock.nowMillis()
        let due = try await db.read { sql in
            try await sql.raw("""
                SELECT d.id, d.webhook_id, d.payload, d.attempts FROM registry_webhook_deliveries d
                WHERE d.state = 'PENDING' AND d.next_attempt_time <= \(bind: now) ORDER BY d.seq LIMIT 50
                """).all().map { row in
                (id: try row.decode(column: "id", as: String.self), webhookID: try row.decode(column: "webhook_id", as: String.self),
                 payload: try row.decode(column: "payload", as: String.self), attempts: try row.decode(column: "attempts", as: Int64.self))
            }
        }
        for delivery in due {
            guard let hook = try? await webhook(id: delivery.webhookID) else { continue }
            let body = Array(delivery.payload.utf8)
            var status: Int64?
            var failure: String?
            do {
                let answer = try await transport.post(url: hook.url, headers: Self.headers(for: hook, body: body), body: body)
                status = Int64(answer.status)
                if !(200..<300).contains(answer.status) { failure = "HTTP \(answer.status)" }
            } catch {
                failure = String(describing: error)
            }
            let attempts = delivery.attempts + 1
            let finished = clock.nowMillis()
            let state = failure == nil ? "DELIVERED" : (attempts >= Int64(policy.maxAttempts) ? "FAILED" : "PENDING")
            let next = finished + policy.retryBaseMillis * (Int64(1) << min(attempts - 1, 20))
            let code = status, error = failure
            if let failure {
                logger.info("Webhook delivery failed", metadata: ["kiln.webhook": "\(hook.id)", "kiln.attempt": "\(attempts)", "kiln.error": "\(failure)"])
            }
            try await db.write { sql in
                try await sql.raw("""
                    UPDATE registry_webhook_deliveries SET state = \(bind: state), attempts = \(bind: attempts), next_attempt_time = \(bind: next),
                        last_status_code = \(bind: code), last_error = \(bind: error), last_updated_time = \(bind: finished)
                    WHERE id = \(bind: delivery.id)
                    """).run()
            }
        }
        return due.count
    }

    /// Delivers webhooks until the task is cancelled, checking for due deliveries every `interval`.
    public func runWebhookDelivery(interval: Duration = .milliseconds(200), logger: Logger) async {
        while !Task.isCancelled {
            do {
                try await deliverDueWebhooks(logger: logger)
            } catch {
                logger.warning("Webhook delivery pass failed", metadata: ["kiln.error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }
}
