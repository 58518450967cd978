import Foundation
import HTTPTypes
import Hummingbird
import KilnCore
import KilnFeatures
import KilnFrame

/// Feature tables and training sets for `kiln_client.feature_engineering` (docs/features.md). Rows travel as
/// Parquet bodies (`application/vnd.apache.parquet`) both ways; everything else is in the query string. The store
/// checks each call as the caller (a feature table is a table: SELECT, MODIFY, CREATE_TABLE).
///
/// - `POST /api/2.0/kiln/features/tables?name=&primary_keys=a,b[&timeseries_column=][&partition_columns=][&description=]`:
///   creates a feature table with the body's columns (and writes its rows, if any).
/// - `POST /api/2.0/kiln/features/tables/{name}/rows`: `write_table` (merge on the primary key).
/// - `GET /api/2.0/kiln/features/tables/{name}/rows`: `read_table`, as Parquet.
/// - `POST /api/2.0/kiln/features/training-sets?spec=JSON`: the body's label rows with the spec's lookups joined on,
///   as Parquet. `spec` is `{"feature_lookups": [{"table_name", "lookup_key", "feature_names", "rename_outputs",
///   "timestamp_lookup_key", "lookback_window_seconds", "default_values"}], "exclude_columns": [...]}`.
struct FeatureRoutes: Sendable {
    let features: FeatureStore
    let lineage: FeatureLineage
    static let prefix = "/api/2.0/kiln/features/"
    static let parquet = "application/vnd.apache.parquet"
    /// The largest upload taken in one request.
    static let bodyLimit = 2 << 30

    func register(on router: Router<KilnRequestContext>) {
        router.post(RouterPath(Self.prefix + "tables")) { request, context in try await create(request, context) }
        router.post(RouterPath(Self.prefix + "tables/:name/rows")) { request, context in try await write(request, context) }
        router.get(RouterPath(Self.prefix + "tables/:name/rows")) { request, context in try await read(request, context) }
        router.post(RouterPath(Self.prefix + "training-sets")) { request, context in try await trainingSet(request, context) }
        // The online store, as databricks-sdk's `w.feature_store` calls it, and lookups by key.
        MessageRoute.register([
            MessageRoute(.post, "online-stores", createStore),
            MessageRoute(.get, "online-stores", listStores),
            MessageRoute(.get, "online-stores/{name}", getStore),
            MessageRoute(.delete, "online-stores/{name}", deleteStore),
            MessageRoute(.post, "tables/{source_table_name}/publish", publish),
            MessageRoute(.delete, "online-tables/{online_table_name}", dropOnlineTable),
        ], prefixes: ["/api/2.0/feature-store/"], on: router)
        MessageRoute.register([
            MessageRoute(.get, "online-tables", listOnlineTables),
            MessageRoute(.post, "online-tables/{online_table_name}/lookup", lookup),
            MessageRoute(.post, "specs", createSpec),
            MessageRoute(.get, "specs/{name}", getSpec),
            MessageRoute(.delete, "specs/{name}", deleteSpec),
            MessageRoute(.get, "lineage/tables", tableLineage),
            MessageRoute(.get, "lineage/models", modelLineage),
            MessageRoute(.get, "lineage/endpoints", endpointLineage),
        ], prefixes: [Self.prefix], on: router)
    }

    // MARK: - Lineage

    /// `?name=catalog.schema.table[&feature=f]`: the model versions and endpoints that read it (SELECT on it).
    func tableLineage(_ m: RequestMessage) async throws -> Response {
        let table = try await features.checkRead(try m.requireString("name"), caller: m.caller)
        return Self.uses(try await lineage.users(of: table, feature: try m.string("feature")))
    }

    /// `?name=model&version=n`: the feature tables a model version reads (CAN_READ on the model).
    func modelLineage(_ m: RequestMessage) async throws -> Response {
        Self.uses(try await lineage.uses(model: try m.requireString("name"), version: try m.requireString("version")))
    }

    /// `?name=endpoint`: the feature tables an endpoint's entities read (CAN_VIEW on the endpoint).
    func endpointLineage(_ m: RequestMessage) async throws -> Response {
        Self.uses(try await lineage.uses(endpoint: try m.requireString("name")))
    }

    static func uses(_ uses: [FeatureLineage.Use]) -> Response {
        .json { w in
            w.key("uses")
            w.array { w in
                for u in uses {
                    w.object { w in
                        w.field("table_name", u.table)
                        if let f = u.features {
                            w.key("feature_names")
                            w.array { w in for name in f { w.value(name) } }
                        }
                        w.field("model_name", u.model)
                        w.field("model_version", u.version)
                        w.field("endpoint_name", u.endpoint)
                        w.field("feature_spec", u.featureSpec)
                    }
                }
            }
        }
    }

    // MARK: - Feature specs

    /// `{"name", "feature_lookups": [...], "exclude_columns": [...]}`: checked against the tables (SELECT on each).
    func createSpec(_ m: RequestMessage) async throws -> Response {
        let spec = try await features.createSpec(try FeatureSpec(json: .object(m.fields)), caller: m.caller)
        return .json(value: spec.json)
    }

    func getSpec(_ m: RequestMessage) async throws -> Response {
        .json(value: try await features.online.spec(try m.requireString("name")).json)
    }

    func deleteSpec(_ m: RequestMessage) async throws -> Response {
        let spec = try await features.online.spec(try m.requireString("name"))
        if let caller = m.caller, !caller.isAdmin, caller.name != spec.creator {
            throw KilnError(.permissionDenied, "\(caller.name) may not delete feature spec \(spec.name): that is for its creator or an admin")
        }
        try await features.online.deleteSpec(spec.name)
        return .json { _ in }
    }

    // MARK: - Online store

    func createStore(_ m: RequestMessage) async throws -> Response {
        let store = try await features.online.createStore(try m.requireString("name"), capacity: try m.string("capacity"), creator: m.caller?.name,
                                                         now: features.nowMillis)
        return .json { w in Self.write(store, into: &w) }
    }

    func getStore(_ m: RequestMessage) async throws -> Response {
        let store = try await features.online.store(try m.requireString("name"))
        return .json { w in Self.write(store, into: &w) }
    }

    func listStores(_ m: RequestMessage) async throws -> Response {
        let stores = await features.online.listStores()
        return .json { w in
            w.key("online_stores")
            w.array { w in for store in stores { w.object { w in Self.write(store, into: &w) } } }
        }
    }

    func deleteStore(_ m: RequestMessage) async throws -> Response {
        let store = try await features.online.store(try m.requireString("name"))
        try Self.checkOwner(m.caller, store)
        try await features.online.deleteStore(store.name)
        return .json { _ in }
    }

    func publish(_ m: RequestMessage) async throws -> Response {
        guard let spec = try m.message("publish_spec") else { throw KilnError.invalid("publish needs publish_spec: {online_store, online_table_name, publish_mode}") }
        var ttl: Double?
        if let value = spec.fields["ttl_seconds"], value != .null {
            guard case .number(let text) = value, let seconds = Double(text), seconds > 0 else { throw KilnError.invalid("ttl_seconds is a number of seconds above 0") }
            ttl = seconds
        }
        let (name, publication) = try await features.publish(try m.requireString("source_table_name"), store: try spec.requireString("online_store"),
                                                             name: try spec.string("online_table_name"), mode: try spec.string("publish_mode") ?? "TRIGGERED",
                                                             ttlSeconds: ttl, caller: m.caller)
        return .json { w in
            w.field("online_table_name", name)
            w.field("pipeline_id", "kiln-publish-\(name)")
            w.field("published_version", publication.version)
            w.field("incremental", publication.incremental)
            w.field("rows_read", Int64(publication.rowsRead))
            w.field("num_keys", Int64(publication.keys))
        }
    }

    func dropOnlineTable(_ m: RequestMessage) async throws -> Response {
        let name = try m.requireString("online_table_name")
        try Self.checkOwner(m.caller, try await features.online.store(try await features.online.store(ofTable: name)))
        try await features.online.dropTable(name)
        return .json { _ in }
    }

    func listOnlineTables(_ m: RequestMessage) async throws -> Response {
        let tables = await features.online.listTables()
        let errors = await features.online.saveErrors
        return .json { w in
            w.key("online_tables")
            w.array { w in
                for t in tables {
                    w.object { w in
                        w.field("name", t.name)
                        w.field("source_table_name", t.source)
                        w.field("online_store", t.store)
                        w.key("primary_key_columns")
                        w.array { w in for k in t.keys { w.value(k) } }
                        w.field("timeseries_key", t.timeseries)
                        w.field("published_version", t.version)
                        w.field("publish_mode", t.mode)
                        w.field("ttl_seconds", t.ttlMicros.map { Double($0) / 1_000_000 })
                        w.field("num_keys", Int64(t.keyCount))
                        w.field("last_save_error", errors[t.name])
                    }
                }
            }
        }
    }

    /// `{"keys": [{"id": 1}, ...], "features": [...]}` → `{"outputs": [{key columns..., features...} | null per key]}`.
    func lookup(_ m: RequestMessage) async throws -> Response {
        let name = try m.requireString("online_table_name")
        let table = try await features.online.table(name)
        let keys = try m.messages("keys").map { key in
            try table.keys.map { column -> Value in
                guard let value = key.fields[column] else {
                    throw KilnError.invalid("A key of \(name) lacks '\(column)'; give \(table.keys.joined(separator: ", "))")
                }
                return try Self.scalar(value, column)
            }
        }
        var columns: [String]?
        if let wanted = try FeatureSpec.strings(m.fields["features"], "features") { columns = table.keys + wanted.filter { !table.keys.contains($0) } }
        let (names, rows) = try await features.lookup(name, keys: keys, columns: columns, caller: m.caller)
        return .json { w in
            w.key("outputs")
            w.array { w in
                for row in rows {
                    guard let row else { w.null(); continue }
                    w.object { w in
                        for (i, value) in row.enumerated() {
                            w.key(names[i])
                            FeatureJSON.write(value, into: &w)
                        }
                    }
                }
            }
        }
    }

    static func checkOwner(_ caller: Caller?, _ store: OnlineStore.Store) throws {
        guard let caller, !caller.isAdmin, caller.name != store.creator else { return }
        throw KilnError(.permissionDenied, "\(caller.name) may not change online store \(store.name): that is for its creator (\(store.creator ?? "an admin")) or an admin")
    }

    static func write(_ store: OnlineStore.Store, into w: inout JSONWriter) {
        w.field("name", store.name)
        w.field("capacity", store.capacity)
        w.field("state", "AVAILABLE")
        w.field("creation_time", ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(store.creationTime) / 1000)))
        w.field("creator", store.creator)
    }

    static func scalar(_ value: JSONValue, _ column: String) throws -> Value {
        switch value {
        case .string(let s): return .string(s)
        case .bool(let b): return .bool(b)
        case .number(let n):
            if let i = Int64(n) { return .int(i) }
            if let d = Double(n) { return .double(d) }
        case .null: return .null
        default: break
        }
        throw KilnError.invalid("The key value of '\(column)' is a \(value.typeName); keys are numbers, strings or booleans")
    }


    func create(_ request: Request, _ context: KilnRequestContext) async throws -> Response {
        let query = Self.query(request, context)
        guard let name = query["name"], !name.isEmpty else { throw KilnError.invalid("Give the table's name: ?name=catalog.schema.table") }
        let rows = try await Self.rows(request)
        let written = try await features.createTable(name, primaryKeys: Self.list(query["primary_keys"]), timeseriesColumn: query["timeseries_column"].flatMap { $0.isEmpty ? nil : $0 },
                                                     partitionColumns: Self.list(query["partition_columns"]), description: query["description"],
                                                     schema: rows, caller: context.caller)
        return .json { w in
            w.field("name", name)
            if let written { Self.write(written, into: &w) }
        }
    }

    func write(_ request: Request, _ context: KilnRequestContext) async throws -> Response {
        let name = try Self.name(context)
        _ = Self.query(request, context)
        let result = try await features.writeTable(name, rows: try await Self.rows(request), caller: context.caller)
        return .json { w in
            w.field("name", name)
            Self.write(result, into: &w)
        }
    }

    func read(_ request: Request, _ context: KilnRequestContext) async throws -> Response {
        let name = try Self.name(context)
        _ = Self.query(request, context)
        return try Self.parquetResponse(try await features.readTable(name, caller: context.caller))
    }

    func trainingSet(_ request: Request, _ context: KilnRequestContext) async throws -> Response {
        let query = Self.query(request, context)
        guard let text = query["spec"], case .object(let spec)? = try? JSONValue.parse(Array(text.utf8)) else {
            throw KilnError.invalid("Give the training set as ?spec={\"feature_lookups\": [...]} (JSON)")
        }
        var items: [JSONValue] = [], calls: [JSONValue] = []
        if case .array(let l)? = spec["feature_lookups"] { items = l }
        if case .array(let f)? = spec["feature_functions"] { calls = f }
        guard !items.isEmpty || !calls.isEmpty else { throw KilnError.invalid("The spec needs feature_lookups or feature_functions") }
        let lookups = try items.map(FeatureSpec.lookup), functions = try calls.map(FeatureSpec.function)
        let exclude = try FeatureSpec.strings(spec["exclude_columns"], "exclude_columns") ?? []
        let clock = ContinuousClock()
        let start = clock.now
        let labels = try await Self.rows(request)
        let read = clock.now
        let frame = try await features.trainingSet(labels: labels, lookups: lookups, functions: functions, exclude: exclude, caller: context.caller)
        let joined = clock.now
        var response = try Self.parquetResponse(frame)
        // How long each step took, for clients and benchmarks (the Server-Timing header, in milliseconds).
        func ms(_ d: Duration) -> String { String(format: "%.1f", Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15) }
        response.headers[HTTPField.Name("Server-Timing")!] = "decode;dur=\(ms(read - start)), join;dur=\(ms(joined - read)), encode;dur=\(ms(clock.now - joined))"
        return response
    }

    // MARK: - Wire

    static func write(_ result: FeatureStore.WriteResult, into w: inout JSONWriter) {
        if let version = result.version { w.field("version", version) }
        w.field("num_inserted_rows", Int64(result.inserted))
        w.field("num_updated_rows", Int64(result.updated))
        w.key("added_columns")
        w.array { w in for c in result.addedColumns { w.value(c) } }
    }

    /// The query string's fields, recorded for the audit log (bodies are rows, never audited).
    static func query(_ request: Request, _ context: KilnRequestContext) -> [String: String] {
        var fields = RequestMessage.parseQuery(request.uri.query ?? "")
        var out: [String: String] = [:]
        for (k, v) in fields { if case .string(let s) = v { out[k] = s } }
        for (key, value) in context.parameters { fields[String(key)] = .string(String(value).removingPercentEncoding ?? String(value)) }
        context.auditFields.set(fields)
        return out
    }

    static func name(_ context: KilnRequestContext) throws -> String {
        guard let raw = context.parameters.get("name") else { throw KilnError.invalid("Give the feature table's name") }
        return raw.removingPercentEncoding ?? raw
    }

    static func list(_ text: String?) -> [String] {
        (text ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// The request body's rows (a Parquet file).
    static func rows(_ request: Request) async throws -> Frame {
        let buffer = try await request.body.collect(upTo: bodyLimit)
        guard buffer.readableBytes > 0 else { throw KilnError.invalid("Send the rows as a Parquet file in the request body (Content-Type: \(parquet))") }
        do {
            return try Frame.read(parquetBytes: Array(buffer.readableBytesView))
        } catch let error as KilnError {
            throw error
        } catch {
            throw KilnError.invalid("The body is not a Parquet file Kiln can read: \(error)")
        }
    }

    static func parquetResponse(_ frame: Frame) throws -> Response {
        let bytes = try frame.parquetBytes()
        return Response(status: .ok, headers: [.contentType: parquet, .contentLength: String(bytes.count)],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
