import Foundation
#if canImport(Glibc)
import Glibc
#endif
import KilnCore
import KilnFrame
import KilnLake
import KilnLearn
import KilnStore
import Logging
import CoreMetrics
import SQLKit

/// A registered model version served by an endpoint.
public struct ServedEntity: Codable, Sendable, Equatable {
    /// The name requests and traffic routes know it by (default `<model>-<version>`).
    public var name: String
    /// The registered model's name and version.
    public var entityName: String
    public var entityVersion: String
    /// Small, Medium or Large: how many requests it scores at once.
    public var workloadSize: String
    public var scaleToZeroEnabled: Bool

    public init(name: String? = nil, entityName: String, entityVersion: String, workloadSize: String = "Small", scaleToZeroEnabled: Bool = false) {
        let base = entityName.replacingOccurrences(of: ".", with: "-")
        self.name = name ?? (entityVersion.isEmpty ? base : "\(base)-\(entityVersion)")
        self.entityName = entityName
        self.entityVersion = entityVersion
        self.workloadSize = workloadSize
        self.scaleToZeroEnabled = scaleToZeroEnabled
    }

    enum CodingKeys: String, CodingKey {
        case name, entityName = "entity_name", entityVersion = "entity_version", workloadSize = "workload_size", scaleToZeroEnabled = "scale_to_zero_enabled"
    }

    /// The model URI it loads.
    var modelURI: String { "models:/\(entityName)/\(entityVersion)" }
}

/// A share of an endpoint's requests, in whole percent.
public struct TrafficRoute: Codable, Sendable, Equatable {
    public var servedModelName: String
    public var trafficPercentage: Int

    public init(servedModelName: String, trafficPercentage: Int) {
        self.servedModelName = servedModelName
        self.trafficPercentage = trafficPercentage
    }

    enum CodingKeys: String, CodingKey { case servedModelName = "served_model_name", trafficPercentage = "traffic_percentage" }
}

/// Where an endpoint's requests and responses are captured: the Delta table `<catalog>.<schema>.<prefix>_payload`.
public struct CaptureConfig: Codable, Sendable, Equatable {
    public var catalogName: String
    public var schemaName: String
    public var tableNamePrefix: String
    public var enabled: Bool

    public init(catalogName: String, schemaName: String, tableNamePrefix: String, enabled: Bool = true) {
        self.catalogName = catalogName
        self.schemaName = schemaName
        self.tableNamePrefix = tableNamePrefix
        self.enabled = enabled
    }

    /// The inference table's three-level name.
    public var tableName: String { "\(catalogName).\(schemaName).\(tableNamePrefix)_payload" }

    enum CodingKeys: String, CodingKey {
        case catalogName = "catalog_name", schemaName = "schema_name", tableNamePrefix = "table_name_prefix", enabled
    }
}

/// What an endpoint serves and how requests are split.
public struct EndpointConfig: Codable, Sendable, Equatable {
    public var servedEntities: [ServedEntity]
    public var routes: [TrafficRoute]
    /// Served entities that get a copy of every request; their answers are compared with the one returned, never
    /// returned themselves (a Kiln extension: `traffic_config.shadow_routes`).
    public var shadows: [String]
    /// Counts config updates, from 1.
    public var version: Int64
    /// The inference table, when requests are captured.
    public var capture: CaptureConfig?

    public init(servedEntities: [ServedEntity], routes: [TrafficRoute] = [], shadows: [String] = [], version: Int64 = 1, capture: CaptureConfig? = nil) {
        self.servedEntities = servedEntities
        self.routes = routes
        self.shadows = shadows
        self.version = version
        self.capture = capture
    }

    enum CodingKeys: String, CodingKey {
        case servedEntities = "served_entities", routes, shadows = "shadow_routes", version = "config_version", capture = "auto_capture_config"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        servedEntities = try c.decode([ServedEntity].self, forKey: .servedEntities)
        routes = try c.decode([TrafficRoute].self, forKey: .routes)
        shadows = try c.decodeIfPresent([String].self, forKey: .shadows) ?? []
        version = try c.decode(Int64.self, forKey: .version)
        capture = try c.decodeIfPresent(CaptureConfig.self, forKey: .capture)
    }

    /// The config with defaults filled in (one entity → all traffic), checked.
    /// - Throws: for no or duplicate entities, unknown sizes, routes naming unknown entities or not summing to 100.
    func normalized() throws -> EndpointConfig {
        guard !servedEntities.isEmpty else { throw KilnError.invalid("config.served_entities is empty: serve at least one model version") }
        var out = self
        var names = Set<String>()
        for entity in servedEntities {
            // A feature spec is served without a version; the loader asks a model for one.
            guard !entity.entityName.isEmpty else {
                throw KilnError.invalid("Every served entity needs entity_name (a registered model, with entity_version, or a feature spec)")
            }
            guard names.insert(entity.name).inserted else { throw KilnError.invalid("Served entity name '\(entity.name)' is used twice") }
            guard ["Small", "Medium", "Large"].contains(entity.workloadSize) else {
                throw KilnError.invalid("workload_size '\(entity.workloadSize)' is not Small, Medium or Large")
            }
        }
        if routes.isEmpty {
            guard servedEntities.count == 1 else {
                throw KilnError.invalid("With \(servedEntities.count) served entities, give traffic_config.routes (percentages summing to 100)")
            }
            out.routes = [TrafficRoute(servedModelName: servedEntities[0].name, trafficPercentage: 100)]
        }
        for route in out.routes {
            guard names.contains(route.servedModelName) else {
                throw KilnError.invalid("Traffic route names '\(route.servedModelName)', which is not a served entity (\(names.sorted().joined(separator: ", ")))")
            }
            guard (0...100).contains(route.trafficPercentage) else { throw KilnError.invalid("traffic_percentage must be between 0 and 100") }
        }
        for shadow in shadows where !names.contains(shadow) {
            throw KilnError.invalid("Shadow route names '\(shadow)', which is not a served entity (\(names.sorted().joined(separator: ", ")))")
        }
        let total = out.routes.reduce(0) { $0 + $1.trafficPercentage }
        guard total == 100 else { throw KilnError.invalid("Traffic percentages sum to \(total); they must sum to 100") }
        if let capture, capture.enabled {
            for part in [capture.catalogName, capture.schemaName, capture.tableNamePrefix] {
                guard part.range(of: "^[A-Za-z0-9_]+$", options: .regularExpression) != nil else {
                    throw KilnError.invalid("auto_capture_config needs catalog_name, schema_name and table_name_prefix made of letters, digits and '_' (got '\(part)')")
                }
            }
        }
        return out
    }
}

/// A serving endpoint as stored.
public struct ServingEndpoint: Sendable, Equatable {
    public var name: String
    public var id: String
    public var creator: String?
    public var creationTimestamp: Int64
    public var lastUpdatedTimestamp: Int64
    public var config: EndpointConfig
    public var tags: [KeyValue]
    public var description: String?
}

/// Serving endpoints: their configs in the store, their models loaded in memory. Kiln models (and XGBoost boosters)
/// are scored in-process. A config change loads and warms the new models before requests move to them, so no
/// request sees a half-loaded endpoint; after a restart (or when nothing was loaded) the first request loads them.
public final class ServingService: @unchecked Sendable {
    let database: any KilnDatabase
    let clock: any KilnClock
    let load: @Sendable (String) async throws -> ServedModel
    /// The directory of a three-level table name (inference tables).
    let tablePath: @Sendable (String) -> String

    /// Loaded models of one config version, the endpoint's admission gate, the cumulative route shares, and where
    /// requests are captured.
    struct Deployment: Sendable {
        var version: Int64
        var models: [String: ServedModel]
        var gate: Gate
        var routes: [(name: String, upTo: Int)]
        var capture: CaptureConfig?
        var entities: [String: ServedEntity]
        var shadows: [String]
        /// Whether every served entity may scale to zero.
        var scalesToZero: Bool
    }

    private let lock = NSLock()
    private var deployments: [String: Deployment] = [:]
    private var stats: [String: [String: EntityStats]] = [:]
    private var rejected: [String: Int] = [:]
    /// Per endpoint, its traffic minute by minute (all served entities), the last ``TrafficMinute/kept`` minutes.
    private var minutes: [String: [MinuteStats]] = [:]

    /// How long a request may wait for a scoring slot before it gets 503.
    public var queueTimeout: Duration = .seconds(30)
    /// Endpoints whose served entities all have scale_to_zero_enabled unload after this long without requests (env
    /// `KILN_SCALE_TO_ZERO_SECONDS`, default 30 minutes); the next request loads them again.
    public var scaleToZeroAfter: Duration = .seconds(Int(ProcessInfo.processInfo.environment["KILN_SCALE_TO_ZERO_SECONDS"] ?? "") ?? 1800)
    /// The authorization hook: called with the principal, the endpoint and "query" or "manage" before either
    /// happens; throwing (e.g. `PERMISSION_DENIED`) refuses it. Allows everything until governance sets it.
    public var authorize: @Sendable (_ principal: String?, _ endpoint: String, _ action: String) throws -> Void = { _, _, _ in }
    private var lastUsed: [String: ContinuousClock.Instant] = [:]
    private var sweeper: Task<Void, Never>?

    /// Requests handled at once per served entity, by workload size (Databricks' provisioned concurrency); an
    /// endpoint admits the sum over its served entities.
    static func concurrency(_ workloadSize: String) -> Int {
        switch workloadSize {
        case "Large": 64
        case "Medium": 16
        default: 4
        }
    }

    /// Requests that may wait for a slot beyond those scoring: more get 429 at once, so memory stays bounded.
    static let queuePerSlot = 8

    public static let migrations = [
        Migration("serving_0001_endpoints", [
            """
            CREATE TABLE serving_endpoints (
                name VARCHAR(256) PRIMARY KEY,
                id VARCHAR(64) NOT NULL,
                creator VARCHAR(256),
                creation_time BIGINT NOT NULL,
                last_updated_time BIGINT NOT NULL,
                config TEXT NOT NULL,
                tags TEXT NOT NULL,
                description TEXT
            )
            """,
        ]),
    ]

    init(database: any KilnDatabase, clock: any KilnClock, logger: Logger, tablePath: @escaping @Sendable (String) -> String,
         load: @escaping @Sendable (String) async throws -> ServedModel) {
        self.database = database
        self.clock = clock
        self.logger = logger
        self.tablePath = tablePath
        self.load = load
    }

    let logger: Logger

    public static func make(database: any KilnDatabase, clock: any KilnClock, logger: Logger, tablePath: @escaping @Sendable (String) -> String,
                     load: @escaping @Sendable (String) async throws -> ServedModel) async throws -> ServingService {
        try await Migrator.migrate(database, migrations, logger: logger)
        return ServingService(database: database, clock: clock, logger: logger, tablePath: tablePath, load: load)
    }

    // MARK: Control plane

    /// Creates an endpoint after loading every served model.
    /// - Throws: `INVALID_PARAMETER_VALUE` for a bad name or config or a model that cannot be served,
    ///   `RESOURCE_ALREADY_EXISTS` when the name is taken.
    public func create(name: String, config input: EndpointConfig, tags: [KeyValue] = [], description: String? = nil, creator: String?) async throws -> ServingEndpoint {
        try authorize(creator, name, "manage")
        guard name.range(of: "^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$", options: .regularExpression) != nil else {
            throw KilnError.invalid("Endpoint name '\(name.prefix(80))' must be 1–63 letters, digits, '-' or '_', starting with a letter or digit")
        }
        // Databricks' limits on endpoint tags (key 127, value 255 characters) and a 1,000-character description.
        try TextLimit.check(description, "description", max: 1000)
        for tag in tags {
            try TextLimit.check(tag.key, "tags key", max: 127)
            try TextLimit.check(tag.value, "tags['\(tag.key.prefix(40))']", max: 255)
        }
        if (try? await get(name: name)) != nil { throw KilnError(.resourceAlreadyExists, "Serving endpoint '\(name)' already exists") }
        var config = try input.normalized()
        config.version = 1
        let deployment = try await deploy(config)
        let now = clock.nowMillis()
        let endpoint = ServingEndpoint(name: name, id: Identifiers.hex32(), creator: creator, creationTimestamp: now, lastUpdatedTimestamp: now,
                                       config: config, tags: tags, description: description)
        let configText = try Self.encode(config), tagsText = try Self.encode(tags.map { ["key": $0.key, "value": $0.value] })
        try await database.write { sql in
            try await sql.raw("""
                INSERT INTO serving_endpoints (name, id, creator, creation_time, last_updated_time, config, tags, description)
                VALUES (\(bind: name), \(bind: endpoint.id), \(bind: creator), \(bind: now), \(bind: now), \(bind: configText), \(bind: tagsText), \(bind: description))
                """).run()
        }
        install(name, deployment)
        return endpoint
    }

    public func get(name: String) async throws -> ServingEndpoint {
        let rows = try await database.read { sql in
            try await sql.raw("SELECT * FROM serving_endpoints WHERE name = \(bind: name)").all()
        }
        guard let row = rows.first else { throw KilnError.notFound("Serving endpoint '\(name)' does not exist") }
        return try Self.endpoint(row)
    }

    public func list() async throws -> [ServingEndpoint] {
        try await database.read { sql in try await sql.raw("SELECT * FROM serving_endpoints ORDER BY name").all() }.map(Self.endpoint)
    }

    /// Replaces the served entities and routes. The new models are loaded and warmed first; requests move to them
    /// only once all are ready (the old ones keep answering meanwhile).
    public func updateConfig(name: String, config input: EndpointConfig, principal: String? = nil) async throws -> ServingEndpoint {
        try authorize(principal, name, "manage")
        var endpoint = try await get(name: name)
        var config = try input.normalized()
        config.version = endpoint.config.version + 1
        let deployment = try await deploy(config)
        let now = clock.nowMillis()
        let configText = try Self.encode(config)
        try await database.write { sql in
            try await sql.raw("UPDATE serving_endpoints SET config = \(bind: configText), last_updated_time = \(bind: now) WHERE name = \(bind: name)").run()
        }
        install(name, deployment)
        endpoint.config = config
        endpoint.lastUpdatedTimestamp = now
        return endpoint
    }

    public func delete(name: String, principal: String? = nil) async throws {
        try authorize(principal, name, "manage")
        _ = try await get(name: name)
        try await database.write { sql in try await sql.raw("DELETE FROM serving_endpoints WHERE name = \(bind: name)").run() }
        let removed = lock.withLock { () -> Deployment? in
            _ = stats.removeValue(forKey: name)
            _ = minutes.removeValue(forKey: name)
            _ = rejected.removeValue(forKey: name)
            _ = shadowStats.removeValue(forKey: name)
            return deployments.removeValue(forKey: name)
        }
        if let removed { Self.retire(removed) }
    }

    // MARK: Data plane

    /// The endpoint's deployment, loading it on a cold start (after a restart, or never loaded in this process).
    func deployment(_ name: String) async throws -> Deployment {
        if let loaded = lock.withLock({ deployments[name] }) { return loaded }
        let endpoint = try await get(name: name)
        let loaded = try await deploy(endpoint.config)
        install(name, loaded)
        return loaded
    }

    /// Admits one request to the endpoint before its body is read, so waiting requests hold no payload: returns a
    /// ticket to `leave` when done.
    /// - Throws: `RESOURCE_DOES_NOT_EXIST`; `REQUEST_LIMIT_EXCEEDED` (429) when the endpoint's queue is full;
    ///   `TEMPORARILY_UNAVAILABLE` (503) when no slot frees up within `queueTimeout`.
    public func admit(name: String, principal: String? = nil) async throws -> AdmissionTicket {
        try authorize(principal, name, "query")
        let gate = try await deployment(name).gate
        lock.withLock { lastUsed[name] = .now }
        do {
            try await gate.enter(timeout: queueTimeout)
        } catch {
            lock.withLock { rejected[name, default: 0] += 1 }
            throw error
        }
        return AdmissionTicket(gate: gate)
    }

    /// What a served entity answered: Kiln's predictions, or a Python scorer's status and JSON body as it sent them.
    public enum Answer: Sendable {
        case predictions([ServedPrediction])
        case forwarded(status: Int, body: String)

        /// The HTTP status and JSON body a client gets: `{"predictions": [...]}`, or a Python scorer's answer as it
        /// sent it (MLflow's predictions or its error).
        public var json: (status: Int, body: JSONWriter) {
            var w = JSONWriter()
            switch self {
            case .predictions(let predictions):
                w.object { w in
                    w.key("predictions")
                    w.array { w in
                        for p in predictions {
                            switch p {
                            case .number(let v): w.value(v)
                            case .integer(let v): w.value(v)
                            case .text(let v): w.value(v)
                            case .vector(let v): w.array { w in for x in v { w.value(x) } }
                            }
                        }
                    }
                }
                return (200, w)
            case .forwarded(let code, let body):
                w.raw(body)
                return (code, w)
            }
        }
    }

    /// Per served entity of an endpoint since the server started: requests, failures, and latency quantiles read
    /// off the histogram (the upper bound of the bucket the quantile falls in; nil past the last bound).
    public struct Traffic: Sendable, Equatable {
        public var requests: Int
        public var errors: Int
        public var p50: Double?
        public var p99: Double?
    }

    /// One minute of an endpoint's traffic over all its served entities: requests, failures, and latency
    /// quantiles as in ``Traffic``.
    public struct TrafficMinute: Sendable, Equatable {
        /// How many minutes an endpoint's history keeps (in memory, since the server started).
        public static let kept = 60
        /// The minute's start, in milliseconds since the epoch.
        public var start: Int64
        public var requests: Int
        public var errors: Int
        public var p50: Double?
        public var p99: Double?
    }

    struct MinuteStats: Sendable {
        var start: Int64
        var requests = 0
        var errors = 0
        var buckets = [Int](repeating: 0, count: EntityStats.bounds.count)
    }

    /// The endpoint's traffic per minute over the last hour, oldest first; minutes without requests are left out.
    public func trafficHistory(name: String) -> [TrafficMinute] {
        let kept = lock.withLock { minutes[name] ?? [] }
        return kept.map { m in
            TrafficMinute(start: m.start, requests: m.requests, errors: m.errors,
                          p50: Self.quantile(0.5, requests: m.requests, buckets: m.buckets),
                          p99: Self.quantile(0.99, requests: m.requests, buckets: m.buckets))
        }
    }

    /// The upper bound of the histogram bucket quantile `q` falls in (nil without requests or past the last bound).
    static func quantile(_ q: Double, requests: Int, buckets: [Int]) -> Double? {
        guard requests > 0 else { return nil }
        let target = Int((Double(requests) * q).rounded(.up))
        return zip(EntityStats.bounds, buckets).first { $0.1 >= target }?.0
    }

    public func traffic(name: String) -> [String: Traffic] {
        let entities = lock.withLock { stats[name] ?? [:] }
        return entities.mapValues { s in
            Traffic(requests: s.requests, errors: s.errors, p50: Self.quantile(0.5, requests: s.requests, buckets: s.buckets),
                    p99: Self.quantile(0.99, requests: s.requests, buckets: s.buckets))
        }
    }

    /// Scores a request (the scoring-format fields of its JSON body) on the endpoint: picks a served entity by the
    /// traffic shares; a Kiln model checks the columns and predicts in process, a Python-flavored model gets the
    /// request forwarded to its scoring process.
    /// - Throws: `RESOURCE_DOES_NOT_EXIST` for an unknown endpoint, `INVALID_PARAMETER_VALUE` for a malformed request
    ///   or missing columns, `TEMPORARILY_UNAVAILABLE` while a Python scorer restarts.
    public func invoke(name: String, body: [UInt8]) async throws -> (servedEntity: String, answer: Answer) {
        let started = ContinuousClock.now
        let deployment = try await deployment(name)
        let draw = Int.random(in: 0..<100)
        let served = deployment.routes.first { draw < $0.upTo }?.name ?? deployment.routes.last!.name
        guard let model = deployment.models[served] else { throw KilnError(.internalError, "Served entity \(served) is not loaded") }
        do {
            let answer: Answer
            switch model {
            case .native(let model):
                let frame = try ScoringRequest.frame(body: body)
                let missing = model.inputColumns.filter { frame.index(of: $0) == nil }
                guard missing.isEmpty else {
                    throw KilnError.invalid("The request lacks column\(missing.count > 1 ? "s" : "") \(missing.joined(separator: ", ")); the model needs \(model.inputColumns.joined(separator: ", "))")
                }
                answer = .predictions(try model.servedPredictions(frame))
            case .python(let scorer):
                // Forwarded as sent (after checking it is JSON), or with the model's features looked up first.
                let forwarded: String
                if let features = scorer.features {
                    forwarded = try await features.completed(try ScoringRequest.frame(body: body))
                } else {
                    _ = try ScoringRequest.fields(body)
                    forwarded = String(decoding: body, as: UTF8.self)
                }
                let (status, reply) = try await scorer.invoke(forwarded)
                answer = .forwarded(status: status, body: reply)
            case .features(let spec):
                answer = .forwarded(status: 200, body: try await spec.outputs(try ScoringRequest.frame(body: body)))
            }
            var failed = false
            if case .forwarded(let status, _) = answer, status != 200 { failed = true }
            record(name, served, seconds: started.duration(to: .now), failed: failed)
            for shadow in deployment.shadows where shadow != served {
                guard let mirror = deployment.models[shadow] else { continue }
                Task.detached { [weak self] in await self?.mirror(name, shadow, mirror, body, against: answer) }
            }
            return (served, answer)
        } catch {
            record(name, served, seconds: started.duration(to: .now), failed: true)
            throw error
        }
    }

    /// Scores a copy of a request on a shadow entity and compares its answer with the one returned: the same
    /// predictions (classes equal, numbers within 1e-9 relative) or a disagreement.
    func mirror(_ endpoint: String, _ shadow: String, _ model: ServedModel, _ request: [UInt8], against primary: Answer) async {
        var agrees = false
        do {
            switch (model, primary) {
            case (.native(let m), .predictions(let expected)):
                let got = try m.servedPredictions(try ScoringRequest.frame(body: request))
                agrees = got.count == expected.count && zip(got, expected).allSatisfy(Self.same)
            case (.python(let scorer), .forwarded(_, let body)):
                agrees = try await scorer.invoke(String(decoding: request, as: UTF8.self)).body == body
            case (.native(let m), .forwarded(_, let body)):
                // A Kiln shadow of a Python model: compare the predictions list.
                let got = try m.servedPredictions(try ScoringRequest.frame(body: request))
                if case .object(let o) = try JSONValue.parse(Array(body.utf8)), case .array(let list)? = o["predictions"] {
                    agrees = list.count == got.count && zip(got, list).allSatisfy { p, v in
                        switch (p, v) {
                        case (.number(let a), .number(let b)): Double(b).map { Self.same(.number(a), .number($0)) } ?? false
                        case (.integer(let a), .number(let b)): Double(b) == Double(a)
                        case (.text(let a), .string(let b)): a == b
                        default: false
                        }
                    }
                }
            case (.features(let spec), .forwarded(_, let body)):
                agrees = try await spec.outputs(try ScoringRequest.frame(body: request)) == body
            case (.features, .predictions):
                agrees = false
            case (.python(let scorer), .predictions):
                _ = try await scorer.invoke(String(decoding: request, as: UTF8.self))
                agrees = false  // not comparable without parsing Python's output types; counted as a disagreement
            }
        } catch {
            agrees = false
        }
        lock.withLock {
            var s = shadowStats[endpoint, default: [:]][shadow, default: (0, 0)]
            s.requests += 1
            if !agrees { s.disagreements += 1 }
            shadowStats[endpoint, default: [:]][shadow] = s
        }
    }

    static func same(_ a: ServedPrediction, _ b: ServedPrediction) -> Bool {
        switch (a, b) {
        case (.number(let x), .number(let y)): return x == y || abs(x - y) <= 1e-9 * max(abs(x), abs(y))
        case (.vector(let x), .vector(let y)): return x.count == y.count && zip(x, y).allSatisfy { same(.number($0), .number($1)) }
        default: return a == b
        }
    }

    private var shadowStats: [String: [String: (requests: Int, disagreements: Int)]] = [:]

    /// Per served entity, how it is served (for the endpoint's state message).
    public func servingStates(name: String) -> [String: String] {
        lock.withLock {
            guard let deployment = deployments[name] else { return [:] }
            return deployment.models.mapValues { model in
                switch model {
                case .native: return "Served in process by Kiln"
                case .features: return "Features served in process from the online store"
                case .python(let scorer):
                    guard let status = scorer.status else { return "Python scoring process starting" }
                    return "Python scoring process pid \(status.pid) on port \(status.port)"
                }
            }
        }
    }

    // MARK: Inference tables

    /// One request and its answer, as an inference table row.
    public struct CapturedRequest: Sendable {
        public var requestID: String
        public var clientRequestID: String?
        public var timestampMillis: Int64
        public var statusCode: Int
        public var executionMillis: Int64
        public var request: String
        public var response: String
        public var servedEntity: String?

        public init(requestID: String, clientRequestID: String?, timestampMillis: Int64, statusCode: Int, executionMillis: Int64,
                    request: String, response: String, servedEntity: String?) {
            self.requestID = requestID
            self.clientRequestID = clientRequestID
            self.timestampMillis = timestampMillis
            self.statusCode = statusCode
            self.executionMillis = executionMillis
            self.request = request
            self.response = response
            self.servedEntity = servedEntity
        }
    }

    private var captured: [String: [(endpoint: String, entity: ServedEntity?, row: CapturedRequest)]] = [:]
    private var flusher: Task<Void, Never>?
    private let flushLock = NSLock()
    /// How often buffered requests are appended to their inference tables.
    public var flushInterval: Duration = .milliseconds(500)

    /// Buffers `row` for the endpoint's inference table (when it has one); a background task appends buffered rows
    /// in micro-batches, one commit per table per flush, off the request path.
    /// `row` is only built when the endpoint has an inference table.
    public func capture(name: String, _ makeRow: @autoclosure () -> CapturedRequest) {
        guard lock.withLock({ deployments[name]?.capture != nil }) else { return }
        let row = makeRow()
        lock.withLock {
            guard let deployment = deployments[name], let capture = deployment.capture else { return }
            captured[capture.tableName, default: []].append((name, row.servedEntity.flatMap { deployment.entities[$0] }, row))
            if flusher == nil {
                let interval = flushInterval
                flusher = Task.detached { [weak self] in
                    while !Task.isCancelled {
                        try? await Task.sleep(for: interval)
                        self?.flush()
                    }
                }
            }
        }
    }

    /// Appends every buffered request to its inference table now (also called at shutdown).
    public func flush() {
        flushLock.withLock {
            let batches = lock.withLock { () -> [String: [(endpoint: String, entity: ServedEntity?, row: CapturedRequest)]] in
                defer { captured = [:] }
                return captured
            }
            for (table, rows) in batches.sorted(by: { $0.key < $1.key }) where !rows.isEmpty {
                do {
                    try append(rows, to: table)
                } catch {
                    logger.error("Could not append to inference table", metadata: ["kiln.table": "\(table)", "kiln.error": "\(error)"])
                }
            }
        }
    }

    /// Stops the flusher after a last flush, and every Python scorer.
    public func close() {
        let all = lock.withLock { () -> [Deployment] in
            flusher?.cancel()
            sweeper?.cancel()
            return Array(deployments.values)
        }
        flush()
        for deployment in all { for case .python(let scorer) in deployment.models.values { scorer.stop() } }
    }

    func append(_ rows: [(endpoint: String, entity: ServedEntity?, row: CapturedRequest)], to table: String) throws {
        func text(_ values: [String?]) -> Column { Column.from(values.map { $0.map(Value.string) ?? .null }, type: .string) }
        let frame = Frame(names: ["databricks_request_id", "client_request_id", "date", "timestamp_ms", "status_code", "execution_time_ms",
                                  "request", "response", "served_entity_name", "endpoint_name", "model_name", "model_version"],
                          columns: [
                              text(rows.map(\.row.requestID)), text(rows.map(\.row.clientRequestID)),
                              Column(type: .date, values: .int(rows.map { $0.row.timestampMillis / 86_400_000 })),
                              Column(type: .int64, values: .int(rows.map(\.row.timestampMillis))),
                              Column(type: .int64, values: .int(rows.map { Int64($0.row.statusCode) })),
                              Column(type: .int64, values: .int(rows.map(\.row.executionMillis))),
                              text(rows.map(\.row.request)), text(rows.map(\.row.response)), text(rows.map(\.row.servedEntity)),
                              text(rows.map(\.endpoint)), text(rows.map { $0.entity?.entityName }), text(rows.map { $0.entity?.entityVersion }),
                          ])
        let schema = DeltaSchema(zip(frame.names, frame.columns).map { DeltaField(name: $0, type: $1.type.delta) })
        let path = tablePath(table)
        let batch = try frame.lakeBatch(schema)
        try DeltaTable.append(to: path, creatingWith: schema, name: table) { emit in try emit(batch) }
    }

    // MARK: Metrics

    /// Requests, failures and a latency histogram of one served entity.
    struct EntityStats: Sendable {
        static let bounds: [Double] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
        var requests = 0
        var errors = 0
        var buckets = [Int](repeating: 0, count: bounds.count)
        var seconds = 0.0
    }

    func record(_ endpoint: String, _ entity: String, seconds duration: Duration, failed: Bool) {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        let now = clock.nowMillis()
        // Also in the server's /metrics (swift-metrics → Prometheus).
        let dimensions = [("endpoint", endpoint), ("served_entity", entity)]
        CoreMetrics.Counter(label: "kiln_serving_requests_total", dimensions: dimensions).increment()
        if failed { CoreMetrics.Counter(label: "kiln_serving_errors_total", dimensions: dimensions).increment() }
        CoreMetrics.Timer(label: "kiln_serving_latency_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
            .recordNanoseconds(Int64(seconds * 1e9))
        lock.withLock {
            var s = stats[endpoint, default: [:]][entity, default: EntityStats()]
            s.requests += 1
            if failed { s.errors += 1 }
            s.seconds += seconds
            for (k, bound) in EntityStats.bounds.enumerated() where seconds <= bound { s.buckets[k] += 1 }
            stats[endpoint, default: [:]][entity] = s
            let minute = now / 60_000 * 60_000
            var history = minutes[endpoint] ?? []
            if history.last?.start != minute { history.append(MinuteStats(start: minute)) }
            history[history.count - 1].requests += 1
            if failed { history[history.count - 1].errors += 1 }
            for (k, bound) in EntityStats.bounds.enumerated() where seconds <= bound { history[history.count - 1].buckets[k] += 1 }
            history.removeAll { $0.start <= minute - Int64(TrafficMinute.kept) * 60_000 }
            minutes[endpoint] = history
        }
    }

    /// The endpoint's request counts, failures and latency histograms per served entity, in Prometheus' text format.
    public func metricsText(name: String) async throws -> String {
        _ = try await get(name: name)
        let (entities, refused, shadows) = lock.withLock { (stats[name] ?? [:], rejected[name] ?? 0, shadowStats[name] ?? [:]) }
        func labels(_ entity: String, _ extra: String = "") -> String {
            "{endpoint=\"\(name)\",served_entity=\"\(entity)\"\(extra)}"
        }
        var out = "# HELP kiln_serving_rejected_total Requests refused at admission (429 queue full, 503 timed out).\n"
            + "# TYPE kiln_serving_rejected_total counter\nkiln_serving_rejected_total{endpoint=\"\(name)\"} \(refused)\n"
        out += "# HELP kiln_serving_requests_total Requests scored, per served entity.\n# TYPE kiln_serving_requests_total counter\n"
        for (entity, s) in entities.sorted(by: { $0.key < $1.key }) { out += "kiln_serving_requests_total\(labels(entity)) \(s.requests)\n" }
        out += "# HELP kiln_serving_errors_total Requests that failed after reaching a served entity.\n# TYPE kiln_serving_errors_total counter\n"
        for (entity, s) in entities.sorted(by: { $0.key < $1.key }) { out += "kiln_serving_errors_total\(labels(entity)) \(s.errors)\n" }
        out += "# HELP kiln_serving_shadow_requests_total Requests mirrored to a shadow entity.\n# TYPE kiln_serving_shadow_requests_total counter\n"
        for (entity, s) in shadows.sorted(by: { $0.key < $1.key }) { out += "kiln_serving_shadow_requests_total\(labels(entity)) \(s.requests)\n" }
        out += "# HELP kiln_serving_shadow_disagreements_total Mirrored requests whose shadow answer differed.\n"
            + "# TYPE kiln_serving_shadow_disagreements_total counter\n"
        for (entity, s) in shadows.sorted(by: { $0.key < $1.key }) { out += "kiln_serving_shadow_disagreements_total\(labels(entity)) \(s.disagreements)\n" }
        out += "# HELP kiln_serving_latency_seconds Time from request to predictions.\n# TYPE kiln_serving_latency_seconds histogram\n"
        for (entity, s) in entities.sorted(by: { $0.key < $1.key }) {
            for (k, bound) in EntityStats.bounds.enumerated() {
                out += "kiln_serving_latency_seconds_bucket\(labels(entity, ",le=\"\(bound)\"")) \(s.buckets[k])\n"
            }
            out += "kiln_serving_latency_seconds_bucket\(labels(entity, ",le=\"+Inf\"")) \(s.requests)\n"
            out += "kiln_serving_latency_seconds_sum\(labels(entity)) \(s.seconds)\n"
            out += "kiln_serving_latency_seconds_count\(labels(entity)) \(s.requests)\n"
        }
        return out
    }

    /// Loads (and warms: one prediction of zeros) every served model of `config`.
    func deploy(_ config: EndpointConfig) async throws -> Deployment {
        var models: [String: ServedModel] = [:]
        let slots = config.servedEntities.reduce(0) { $0 + Self.concurrency($1.workloadSize) }
        do {
            for entity in config.servedEntities {
                let model: ServedModel
                do {
                    model = try await load(entity.modelURI)
                } catch let error as KilnError {
                    throw KilnError.invalid("Cannot serve \(entity.entityName) version \(entity.entityVersion): \(error.message)")
                }
                if case .native(let native) = model {
                    _ = try? native.predict([Double](repeating: 0, count: native.featureNames.count), rows: 1)
                }
                models[entity.name] = model
            }
        } catch {
            for case .python(let scorer) in models.values { scorer.stop() }
            throw error
        }
        var upTo = 0
        let routes = config.routes.filter { $0.trafficPercentage > 0 }.map { route -> (String, Int) in
            upTo += route.trafficPercentage
            return (route.servedModelName, upTo)
        }
        return Deployment(version: config.version, models: models, gate: Gate(slots: slots, queue: slots * Self.queuePerSlot), routes: routes,
                          capture: config.capture?.enabled == true ? config.capture : nil,
                          entities: Dictionary(uniqueKeysWithValues: config.servedEntities.map { ($0.name, $0) }), shadows: config.shadows,
                          scalesToZero: config.servedEntities.allSatisfy(\.scaleToZeroEnabled))
    }

    private func install(_ name: String, _ deployment: Deployment) {
        let replaced: Deployment? = lock.withLock {
            lastUsed[name] = .now
            if sweeper == nil {
                let interval = min(Duration.seconds(30), scaleToZeroAfter / 2)
                sweeper = Task.detached { [weak self] in
                    while !Task.isCancelled {
                        try? await Task.sleep(for: interval)
                        self?.scaleIdleToZero()
                    }
                }
            }
            // A slower, older update must not replace a newer config.
            if let current = deployments[name], current.version > deployment.version { return deployment }
            defer { deployments[name] = deployment }
            return deployments[name]
        }
        if let replaced { Self.retire(replaced) }
    }

    /// Unloads endpoints that may scale to zero and saw no request for `scaleToZeroAfter`.
    func scaleIdleToZero() {
        let now = ContinuousClock.now
        let idle: [Deployment] = lock.withLock {
            var out: [Deployment] = []
            for (name, deployment) in deployments where deployment.scalesToZero {
                if let used = lastUsed[name], now - used < scaleToZeroAfter { continue }
                out.append(deployment)
                deployments.removeValue(forKey: name)
            }
            return out
        }
        for deployment in idle { for case .python(let scorer) in deployment.models.values { scorer.stop() } }
    }

    /// Stops a replaced deployment's Python scorers once requests already sent to them have had time to finish.
    static func retire(_ deployment: Deployment) {
        let scorers = deployment.models.values.compactMap { if case .python(let s) = $0 { return s } else { return nil } }
        guard !scorers.isEmpty else { return }
        Task {
            try? await Task.sleep(for: .seconds(10))
            for scorer in scorers { scorer.stop() }
        }
    }

    static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func endpoint(_ row: any SQLRow) throws -> ServingEndpoint {
        let config = try JSONDecoder().decode(EndpointConfig.self, from: Data(try row.decode(column: "config", as: String.self).utf8))
        let tags = try JSONDecoder().decode([[String: String]].self, from: Data(try row.decode(column: "tags", as: String.self).utf8))
        return ServingEndpoint(name: try row.decode(column: "name", as: String.self), id: try row.decode(column: "id", as: String.self),
                               creator: try row.decode(column: "creator", as: String?.self),
                               creationTimestamp: try row.decode(column: "creation_time", as: Int64.self),
                               lastUpdatedTimestamp: try row.decode(column: "last_updated_time", as: Int64.self),
                               config: config, tags: tags.map { KeyValue($0["key"] ?? "", $0["value"] ?? "") },
                               description: try row.decode(column: "description", as: String?.self))
    }
}

/// A request's admission to an endpoint; `leave` exactly once when it is done.
public struct AdmissionTicket: Sendable {
    let gate: Gate
    public func leave() { gate.leave() }
}

/// Admission to an endpoint: `slots` requests score at once, up to `queue` more wait (FIFO), the rest are refused
/// with 429 at once; a waiter that waits past its timeout gets 503.
final class Gate: @unchecked Sendable {
    let slots: Int
    let queue: Int
    private let lock = NSLock()
    private var running = 0
    private var waiters: [(id: UInt64, continuation: CheckedContinuation<Bool, Never>)] = []
    private var nextID: UInt64 = 0

    init(slots: Int, queue: Int) {
        self.slots = slots
        self.queue = queue
    }

    /// Waits for a slot.
    /// - Throws: `REQUEST_LIMIT_EXCEEDED` (429) when the queue is full, `TEMPORARILY_UNAVAILABLE` (503) after `timeout`.
    func enter(timeout: Duration) async throws {
        enum Admission { case now, full, wait(UInt64) }
        let admission: Admission = lock.withLock {
            if running < slots { running += 1; return .now }
            if waiters.count >= queue { return .full }
            nextID += 1
            return .wait(nextID)
        }
        switch admission {
        case .now: return
        case .full: throw KilnError(.requestLimitExceeded, "The endpoint is at capacity (\(slots) scoring, \(queue) waiting); retry with backoff")
        case .wait(let id):
            let admitted = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                lock.withLock { waiters.append((id, continuation)) }
                Task {
                    try? await Task.sleep(for: timeout)
                    self.expire(id)
                }
            }
            guard admitted else { throw KilnError(.temporarilyUnavailable, "No scoring slot freed up within \(timeout); the endpoint is overloaded") }
        }
    }

    /// Frees a slot: hands it to the longest waiter, if any.
    func leave() {
        let next: CheckedContinuation<Bool, Never>? = lock.withLock {
            if waiters.isEmpty { running -= 1; return nil }
            return waiters.removeFirst().continuation
        }
        next?.resume(returning: true)
    }

    private func expire(_ id: UInt64) {
        let expired: CheckedContinuation<Bool, Never>? = lock.withLock {
            guard let k = waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return waiters.remove(at: k).continuation
        }
        expired?.resume(returning: false)
    }
}

/// A served model: a Kiln model scored in process, or a Python-flavored model behind its scoring process.
public enum ServedModel: Sendable {
    case native(KilnModel)
    case python(PythonScorer)
    /// A feature spec: the request's keys answered with features (`{"outputs": [...]}`).
    case features(any FeatureServing)
}

/// What a feature-serving endpoint serves (implemented by the feature store, wired in KilnPlatform).
public protocol FeatureServing: Sendable {
    /// The JSON body answering a request's rows: `{"outputs": [{column: value, ...}, ...]}`.
    func outputs(_ request: Frame) async throws -> String
    /// A scoring request (`{"dataframe_split": ...}`) of the request's rows with the features joined on.
    func completed(_ request: Frame) async throws -> String
}

/// The scoring formats databricks-sdk and MLflow clients send, read into a frame.
public enum ScoringRequest {
    /// The frame of a request body: numeric `dataframe_split` bodies straight from the bytes (no value tree),
    /// anything else through `fields` and `frame(_:)`.
    public static func frame(body: [UInt8]) throws -> Frame {
        if let frame = numericSplit(body) { return frame }
        return try frame(try fields(body))
    }

    /// The top-level members of a JSON object body.
    /// - Throws: `INVALID_PARAMETER_VALUE` when the body is not a JSON object.
    public static func fields(_ body: [UInt8]) throws -> [String: JSONValue] {
        guard case .object(let fields) = try JSONValue.parse(body) else { throw KilnError.invalid("The request body must be a JSON object") }
        return fields
    }

    /// `{"dataframe_split": {"columns": [names], "data": [[numbers or null]], "index": [...]?}}` read directly into
    /// double columns; nil for any other shape (the general reader takes it).
    static func numericSplit(_ body: [UInt8]) -> Frame? {
        return body.withUnsafeBufferPointer { b -> Frame? in
            var i = 0
            func ws() { while i < b.count, b[i] == 0x20 || b[i] == 0x0a || b[i] == 0x0d || b[i] == 0x09 { i += 1 } }
            func take(_ c: UInt8) -> Bool { ws(); if i < b.count, b[i] == c { i += 1; return true }; return false }
            func string() -> String? {
                guard take(UInt8(ascii: "\"")) else { return nil }
                let start = i
                while i < b.count, b[i] != UInt8(ascii: "\"") { if b[i] == UInt8(ascii: "\\") || b[i] < 0x20 { return nil }; i += 1 }
                guard i < b.count else { return nil }
                defer { i += 1 }
                return String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
            }
            guard take(UInt8(ascii: "{")), string() == "dataframe_split", take(UInt8(ascii: ":")), take(UInt8(ascii: "{")) else { return nil }
            var names: [String]?, columns: [[Double]] = [], valid: [[Bool]] = []
            var sawData = false
            repeat {
                guard let key = string(), take(UInt8(ascii: ":")) else { return nil }
                switch key {
                case "columns":
                    guard names == nil, !sawData, take(UInt8(ascii: "[")) else { return nil }
                    var list: [String] = []
                    if !take(UInt8(ascii: "]")) {
                        repeat { guard let name = string() else { return nil }; list.append(name) } while take(UInt8(ascii: ","))
                        guard take(UInt8(ascii: "]")) else { return nil }
                    }
                    guard Set(list).count == list.count, !list.isEmpty else { return nil }
                    names = list
                    columns = Array(repeating: [], count: list.count)
                    valid = Array(repeating: [], count: list.count)
                case "data":
                    guard let names, take(UInt8(ascii: "[")) else { return nil }
                    sawData = true
                    if take(UInt8(ascii: "]")) { return nil }
                    repeat {
                        guard take(UInt8(ascii: "[")) else { return nil }
                        for c in 0..<names.count {
                            if c > 0, !take(UInt8(ascii: ",")) { return nil }
                            ws()
                            if i + 4 <= b.count, b[i] == UInt8(ascii: "n"), b[i + 1] == UInt8(ascii: "u"), b[i + 2] == UInt8(ascii: "l"), b[i + 3] == UInt8(ascii: "l") {
                                i += 4
                                columns[c].append(0)
                                valid[c].append(false)
                                continue
                            }
                            guard let (value, end) = DecimalNumber.parseDouble(b, from: i) else { return nil }
                            i = end
                            columns[c].append(value)
                            valid[c].append(true)
                        }
                        guard take(UInt8(ascii: "]")) else { return nil }
                    } while take(UInt8(ascii: ","))
                    guard take(UInt8(ascii: "]")) else { return nil }
                case "index":
                    // Row labels: skipped (numbers or strings only).
                    guard take(UInt8(ascii: "[")) else { return nil }
                    if !take(UInt8(ascii: "]")) {
                        repeat {
                            ws()
                            if i < b.count, b[i] == UInt8(ascii: "\"") { guard string() != nil else { return nil }; continue }
                            let start = i
                            while i < b.count, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: ".") || (b[i] >= UInt8(ascii: "0") && b[i] <= UInt8(ascii: "9")) { i += 1 }
                            guard i > start else { return nil }
                        } while take(UInt8(ascii: ","))
                        guard take(UInt8(ascii: "]")) else { return nil }
                    }
                default:
                    return nil
                }
            } while take(UInt8(ascii: ","))
            guard take(UInt8(ascii: "}")), take(UInt8(ascii: "}")), let names, sawData else { return nil }
            ws()
            guard i == b.count else { return nil }
            return Frame(names: names, columns: zip(columns, valid).map { Column(type: .float64, values: .double($0), validity: $1) })
        }
    }

    /// A frame from one of `dataframe_split`, `dataframe_records`, `instances` or `inputs`: columns of numbers
    /// (doubles), text or booleans, nulls allowed.
    public static func frame(_ fields: [String: JSONValue]) throws -> Frame {
        var names: [String] = [], columns: [String: [JSONValue]] = [:]
        func add(_ name: String) { if columns[name] == nil { names.append(name); columns[name] = [] } }
        func records(_ rows: [JSONValue]) throws {
            for case .object(let row) in rows { for key in row.keys.sorted() { add(key) } }
            for row in rows {
                guard case .object(let object) = row else { throw KilnError.invalid("Each record must be an object of column: value") }
                for name in names { columns[name]!.append(object[name] ?? .null) }
            }
        }
        if case .object(let split)? = fields["dataframe_split"] {
            guard case .array(let cols)? = split["columns"], case .array(let data)? = split["data"] else {
                throw KilnError.invalid("dataframe_split needs columns and data")
            }
            for case .string(let name) in cols { add(name) }
            guard names.count == cols.count else { throw KilnError.invalid("dataframe_split columns must be distinct names") }
            for row in data {
                guard case .array(let values) = row, values.count == names.count else {
                    throw KilnError.invalid("Every dataframe_split data row needs \(names.count) values")
                }
                for (name, value) in zip(names, values) { columns[name]!.append(value) }
            }
        } else if case .array(let rows)? = fields["dataframe_records"] {
            try records(rows)
        } else if case .array(let rows)? = fields["instances"] {
            guard rows.allSatisfy({ if case .object = $0 { return true } else { return false } }) else {
                throw KilnError.invalid("instances must be objects of column: value (or send dataframe_split with column names)")
            }
            try records(rows)
        } else if let inputs = fields["inputs"] {
            switch inputs {
            case .object(let object):
                for key in object.keys.sorted() {
                    guard case .array(let values) = object[key]! else { throw KilnError.invalid("inputs.\(key) must be a list of values") }
                    add(key)
                    columns[key] = values
                }
                guard Set(columns.values.map(\.count)).count <= 1 else { throw KilnError.invalid("Every inputs column must have the same length") }
            case .array(let rows): try records(rows)
            default: throw KilnError.invalid("inputs must be an object of columns or a list of records")
            }
        } else {
            throw KilnError.invalid("Send one of dataframe_split, dataframe_records, instances or inputs")
        }
        let rows = columns[names.first ?? ""]?.count ?? 0
        guard rows > 0 else { throw KilnError.invalid("The request has no rows to score") }
        return Frame(names: names, columns: try names.map { name in try column(name, columns[name]!) })
    }

    static func column(_ name: String, _ values: [JSONValue]) throws -> Column {
        let present = values.filter { $0 != .null }
        if present.allSatisfy({ if case .number = $0 { return true } else { return false } }) {
            var out = [Double](repeating: 0, count: values.count), valid = [Bool](repeating: true, count: values.count)
            for (i, v) in values.enumerated() {
                if case .number(let n) = v, let d = Double(n) { out[i] = d } else { valid[i] = false }
            }
            return Column(type: .float64, values: .double(out), validity: valid)
        }
        if present.allSatisfy({ if case .string = $0 { return true } else { return false } }) {
            return Column.from(values.map { if case .string(let s) = $0 { return Value.string(s) } else { return Value.null } }, type: .string)
        }
        if present.allSatisfy({ if case .bool = $0 { return true } else { return false } }) {
            return Column.from(values.map { if case .bool(let b) = $0 { return Value.bool(b) } else { return Value.null } }, type: .bool)
        }
        throw KilnError.invalid("Column '\(name)' mixes types; send numbers, strings or booleans (null for missing)")
    }
}
