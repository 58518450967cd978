import KilnCore
import KilnStore
import SQLKit

extension TrackingService {
    // MARK: Runs

    /// Starts a run in an active experiment.
    /// - Parameters:
    ///   - runName: a readable name; generated (`swift-owl-417`) when nil, or taken from an `mlflow.runName` tag.
    public func createRun(
        experimentID: String,
        userID: String = "",
        startTime: Int64? = nil,
        runName: String? = nil,
        tags: [KeyValue] = []
    ) async throws -> Run {
        let numeric = try Validate.experimentID(experimentID)
        try Validate.runName(runName)
        try Validate.runName(tags.last(where: { $0.key == "mlflow.runName" })?.value)
        for tag in tags {
            try Validate.key(tag.key, kind: "tag")
            try Validate.tagValue(tag.value, key: tag.key)
        }
        let tagName = tags.last(where: { $0.key == "mlflow.runName" })?.value
        if let runName, let tagName, !runName.isEmpty, runName != tagName {
            throw KilnError.invalid("Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='\(runName)', mlflow.runName='\(tagName)').")
        }
        let name = (runName?.isEmpty == false ? runName : nil) ?? tagName ?? Identifiers.runName()
        let runID = Identifiers.hex32()
        let start = startTime ?? clock.nowMillis()
        var allTags = tags.filter { $0.key != "mlflow.runName" }
        allTags.append(KeyValue("mlflow.runName", name))
        if !userID.isEmpty, !allTags.contains(where: { $0.key == "mlflow.user" }) {
            allTags.append(KeyValue("mlflow.user", userID))
        }
        let finalTags = allTags
        try await db.write { sql in
            let experiment = try await Self.requireExperiment(sql, numeric, experimentID)
            guard experiment.lifecycleStage == .active else {
                throw KilnError.invalid("The experiment \(experimentID) must be in the 'active' state. Current state is deleted.")
            }
            let artifactURI = "\(experiment.artifactLocation)/\(runID)/artifacts"
            try await sql.raw("""
                INSERT INTO runs (run_uuid, name, experiment_id, user_id, status, start_time, end_time, deleted_time, lifecycle_stage, artifact_uri)
                VALUES (\(bind: runID), \(bind: name), \(bind: numeric), \(bind: userID), 'RUNNING', \(bind: start), NULL, NULL, 'active', \(bind: artifactURI))
                """).run()
            try await Self.upsertTags(sql, runID: runID, tags: finalTags)
        }
        return try await getRun(id: runID)
    }

    static func upsertTags(_ sql: any SQLDatabase, runID: String, tags: [KeyValue]) async throws {
        guard !tags.isEmpty else { return }
        var deduplicated: [String: String] = [:]
        var order: [String] = []
        for tag in tags {
            if deduplicated.updateValue(tag.value, forKey: tag.key) == nil { order.append(tag.key) }
        }
        try await insertKeyValues(sql, table: "tags", runID: runID, order.map { KeyValue($0, deduplicated[$0]!) }, replace: true)
        if let name = deduplicated["mlflow.runName"] {
            try Validate.runName(name)
            try await sql.raw("UPDATE runs SET name = \(bind: name) WHERE run_uuid = \(bind: runID)").run()
        }
    }

    /// One multi-row insert of `(run_uuid, key, value)` rows into `params` or `tags`; `replace` overwrites values.
    static func insertKeyValues(_ sql: any SQLDatabase, table: String, runID: String, _ pairs: [KeyValue], replace: Bool) async throws {
        guard !pairs.isEmpty else { return }
        var query = SQLQueryString("INSERT INTO \(table) (run_uuid, key, value) VALUES ")
        for (i, pair) in pairs.enumerated() {
            query.appendLiteral(i == 0 ? "(" : ", (")
            query.appendInterpolation(bind: runID)
            query.appendLiteral(", ")
            query.appendInterpolation(bind: pair.key)
            query.appendLiteral(", ")
            query.appendInterpolation(bind: pair.value)
            query.appendLiteral(")")
        }
        if replace { query.appendLiteral(" ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value") }
        try await sql.raw(query).run()
    }

    /// Fetches a run with its latest metrics, params, tags, inputs and outputs, deleted or not.
    public func getRun(id: String) async throws -> Run {
        try await db.read { sql in
            guard let run = try await Self.loadRuns(sql, ids: [id]).first else {
                throw KilnError.notFound("Run with id=\(id) not found")
            }
            return run
        }
    }

    static func requireRunInfo(_ sql: any SQLDatabase, _ id: String) async throws -> RunInfo {
        guard let info = try await loadRunInfos(sql, ids: [id]).first else {
            throw KilnError.notFound("Run with id=\(id) not found")
        }
        return info
    }

    static func requireActiveRun(_ sql: any SQLDatabase, _ id: String) async throws -> RunInfo {
        let info = try await requireRunInfo(sql, id)
        guard info.lifecycleStage == .active else {
            throw KilnError.invalid("The run \(id) must be in the 'active' state. Current state is deleted.")
        }
        return info
    }

    /// The `runs` columns ``decodeRunInfo(_:)`` reads.
    static let runInfoColumns = "run_uuid, name, experiment_id, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri"

    static func decodeRunInfo(_ row: any SQLRow) throws -> RunInfo {
        RunInfo(
            runID: try row.decode(column: "run_uuid", as: String.self),
            runName: try row.decode(column: "name", as: String.self),
            experimentID: String(try row.decode(column: "experiment_id", as: Int64.self)),
            userID: try row.decode(column: "user_id", as: String.self),
            status: RunStatus(rawValue: try row.decode(column: "status", as: String.self)) ?? .running,
            startTime: try row.decode(column: "start_time", as: Int64?.self),
            endTime: try row.decode(column: "end_time", as: Int64?.self),
            artifactURI: try row.decode(column: "artifact_uri", as: String.self),
            lifecycleStage: LifecycleStage(rawValue: try row.decode(column: "lifecycle_stage", as: String.self)) ?? .active
        )
    }

    static func loadRunInfos(_ sql: any SQLDatabase, ids: [String]) async throws -> [RunInfo] {
        guard !ids.isEmpty else { return [] }
        let rows = try await sql.raw("SELECT \(unsafeRaw: runInfoColumns) FROM runs WHERE run_uuid IN (\(binds: ids))").all()
        var byID: [String: RunInfo] = [:]
        for row in rows {
            let info = try decodeRunInfo(row)
            byID[info.runID] = info
        }
        return ids.compactMap { byID[$0] }
    }

    /// Loads whole runs, in the order of `ids`; unknown ids are skipped.
    static func loadRuns(_ sql: any SQLDatabase, ids: [String]) async throws -> [Run] {
        var runs: [Run] = []
        for chunk in ids.chunked(by: 500) {
            runs += try await loadRunData(sql, infos: try await loadRunInfos(sql, ids: Array(chunk)))
        }
        return runs
    }

    /// The statement ``loadRunData(_:infos:)`` runs for one chunk of run ids (internal for its query-plan test).
    static func runDataQuery(_ ids: [String]) -> SQLQueryString {
        var query: SQLQueryString = "WITH ids(id) AS MATERIALIZED (SELECT value FROM json_each("
        query.appendInterpolation(bind: JSONValue.array(ids.map { .string($0) }).json)
        query.appendLiteral("""
            ))
            SELECT 0 AS kind, run_uuid AS run, key AS k, NULL AS v, value AS x, is_nan AS a, timestamp AS b, step AS c,
                   NULL AS d1, NULL AS d2, NULL AS d3, NULL AS d4, NULL AS d5 FROM ids CROSS JOIN latest_metrics ON latest_metrics.run_uuid = ids.id
            UNION ALL SELECT 1, run_uuid, key, value, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM ids CROSS JOIN params ON params.run_uuid = ids.id
            UNION ALL SELECT 2, run_uuid, key, value, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM ids CROSS JOIN tags ON tags.run_uuid = ids.id
            UNION ALL SELECT 3, run_uuid, key, value, NULL, NULL, NULL, NULL, dataset_uuid, NULL, NULL, NULL, NULL FROM ids CROSS JOIN input_tags ON input_tags.run_uuid = ids.id
            UNION ALL SELECT 4, run_uuid, model_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM ids CROSS JOIN run_model_inputs ON run_model_inputs.run_uuid = ids.id
            UNION ALL SELECT 5, run_uuid, model_id, NULL, NULL, NULL, NULL, step, NULL, NULL, NULL, NULL, NULL FROM ids CROSS JOIN run_model_outputs ON run_model_outputs.run_uuid = ids.id
            UNION ALL SELECT 6, i.run_uuid, d.name, d.dataset_uuid, NULL, NULL, NULL, NULL, d.digest, d.source_type, d.source, d.schema_json, d.profile
                FROM ids CROSS JOIN dataset_inputs i ON i.run_uuid = ids.id JOIN datasets d ON d.dataset_uuid = i.dataset_uuid
            """)
        return query
    }

    /// The latest metrics, params, tags, dataset inputs and model inputs/outputs of `infos`, as whole runs in the
    /// order of `infos`: one statement per 5,000 runs (a UNION ALL over the child tables). The ids are bound once,
    /// as one JSON array read by `json_each`, so the statement's text is the same for every page: a `VALUES` list
    /// of a bind per id made SQLite parse ~1,300 opcodes per search (1.1 ms of a 327-run page). `CROSS JOIN` keeps
    /// the ids as the outer loop: SQLite 3.54 otherwise scanned whole `params`/`tags` tables against a bloom
    /// filter of the ids (one run's load grew with the store: 0.9 ms at 100 runs, 2 ms at 3,000).
    static func loadRunData(_ sql: any SQLDatabase, infos: [RunInfo]) async throws -> [Run] {
        var runs: [Run] = []
        runs.reserveCapacity(infos.count)
        for chunk in infos.chunked(by: 5000) {
            let query = Self.runDataQuery(chunk.map(\.runID))
            var metrics: [String: [Metric]] = [:], params: [String: [KeyValue]] = [:], tags: [String: [KeyValue]] = [:]
            var inputTags: [String: [KeyValue]] = [:], modelInputs: [String: [String]] = [:], outputs: [String: [ModelOutput]] = [:]
            var datasets: [String: [(id: String, dataset: Dataset)]] = [:]
            for row in try await sql.raw(query).all() {
                let run = try row.decode(column: "run", as: String.self)
                let key = try row.decode(column: "k", as: String.self)
                switch try row.decode(column: "kind", as: Int.self) {
                case 0:
                    let isNaN = try row.decode(column: "a", as: Int.self) != 0
                    metrics[run, default: []].append(Metric(
                        key: key, value: isNaN ? .nan : try row.decode(column: "x", as: Double.self),
                        timestamp: try row.decode(column: "b", as: Int64.self), step: try row.decode(column: "c", as: Int64.self)))
                case 1: params[run, default: []].append(KeyValue(key, try row.decode(column: "v", as: String.self)))
                case 2: tags[run, default: []].append(KeyValue(key, try row.decode(column: "v", as: String.self)))
                case 3: inputTags["\(run)/\(try row.decode(column: "d1", as: String.self))", default: []].append(KeyValue(key, try row.decode(column: "v", as: String.self)))
                case 4: modelInputs[run, default: []].append(key)
                case 5: outputs[run, default: []].append(ModelOutput(modelID: key, step: try row.decode(column: "c", as: Int64.self)))
                default:
                    datasets[run, default: []].append((try row.decode(column: "v", as: String.self), Dataset(
                        name: key,
                        digest: try row.decode(column: "d1", as: String.self),
                        sourceType: try row.decode(column: "d2", as: String.self),
                        source: try row.decode(column: "d3", as: String.self),
                        schema: try row.decode(column: "d4", as: String?.self),
                        profile: try row.decode(column: "d5", as: String?.self))))
                }
            }
            // Sorting here, per run, is cheaper than ORDER BY over the union.
            for info in chunk {
                let id = info.runID
                let inputs = (datasets[id] ?? [])
                    .sorted { ($0.dataset.name, $0.dataset.digest) < ($1.dataset.name, $1.dataset.digest) }
                    .map { DatasetInput(tags: (inputTags["\(id)/\($0.id)"] ?? []).sorted { $0.key < $1.key }, dataset: $0.dataset) }
                runs.append(Run(
                    info: info, metrics: (metrics[id] ?? []).sorted { $0.key < $1.key },
                    params: (params[id] ?? []).sorted { $0.key < $1.key },
                    tags: (tags[id] ?? []).sorted { $0.key < $1.key },
                    datasetInputs: inputs, modelInputs: (modelInputs[id] ?? []).sorted(),
                    modelOutputs: (outputs[id] ?? []).sorted { ($0.step, $0.modelID) < ($1.step, $1.modelID) }))
            }
        }
        return runs
    }

    static func decodeKeyValue(_ row: any SQLRow) throws -> KeyValue {
        KeyValue(try row.decode(column: "key", as: String.self), try row.decode(column: "value", as: String.self))
    }

    static func decodeMetric(_ row: any SQLRow) throws -> Metric {
        let isNaN = try row.decode(column: "is_nan", as: Int.self) != 0
        return Metric(
            key: try row.decode(column: "key", as: String.self),
            value: isNaN ? .nan : try row.decode(column: "value", as: Double.self),
            timestamp: try row.decode(column: "timestamp", as: Int64.self),
            step: try row.decode(column: "step", as: Int64.self)
        )
    }

    /// Updates a run's status, end time and/or name.
    /// - Returns: the updated run info.
    public func updateRun(id: String, status: RunStatus? = nil, endTime: Int64? = nil, runName: String? = nil) async throws -> RunInfo {
        try Validate.runName(runName)
        return try await db.write { sql in
            _ = try await Self.requireActiveRun(sql, id)
            if let status {
                try await sql.raw("UPDATE runs SET status = \(bind: status.rawValue) WHERE run_uuid = \(bind: id)").run()
            }
            if let endTime {
                try await sql.raw("UPDATE runs SET end_time = \(bind: endTime) WHERE run_uuid = \(bind: id)").run()
            }
            if let runName, !runName.isEmpty {
                try await Self.upsertTags(sql, runID: id, tags: [KeyValue("mlflow.runName", runName)])
            }
            return try await Self.requireRunInfo(sql, id)
        }
    }

    /// Soft-deletes a run.
    public func deleteRun(id: String) async throws {
        let now = clock.nowMillis()
        try await db.write { sql in
            _ = try await Self.requireRunInfo(sql, id)
            try await sql.raw("UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = \(bind: now) WHERE run_uuid = \(bind: id)").run()
        }
    }

    /// Restores a deleted run.
    public func restoreRun(id: String) async throws {
        try await db.write { sql in
            _ = try await Self.requireRunInfo(sql, id)
            try await sql.raw("UPDATE runs SET lifecycle_stage = 'active', deleted_time = NULL WHERE run_uuid = \(bind: id)").run()
        }
    }

    // MARK: Logging

    /// Logs metrics, params and tags to an active run in one transaction, within MLflow's batch limits.
    ///
    /// Params are immutable: logging a key again with the same value is a no-op, with another value an error.
    /// - Throws: `INVALID_PARAMETER_VALUE` for limits, bad names, changed params or an inactive run;
    ///   `RESOURCE_DOES_NOT_EXIST` for an unknown run. Nothing is written when it throws.
    public func logBatch(runID: String, metrics: [Metric] = [], params: [KeyValue] = [], tags: [KeyValue] = []) async throws {
        guard metrics.count <= TrackingLimits.maxMetricsPerBatch else {
            throw KilnError.invalid("A batch logging request can contain at most \(TrackingLimits.maxMetricsPerBatch) metrics. Got \(metrics.count) metrics. Please split up metrics across multiple requests and try again.")
        }
        guard params.count + tags.count <= TrackingLimits.maxParamsTagsPerBatch else {
            throw KilnError.invalid("A batch logging request can contain at most \(TrackingLimits.maxParamsTagsPerBatch) params and tags combined. Got \(params.count) params and \(tags.count) tags. Please split up params and tags across multiple requests and try again.")
        }
        guard metrics.count + params.count + tags.count <= TrackingLimits.maxEntitiesPerBatch else {
            throw KilnError.invalid("A batch logging request can contain at most \(TrackingLimits.maxEntitiesPerBatch) metrics, params and tags in total.")
        }
        for metric in metrics { try Validate.key(metric.key, kind: "metric") }
        var checkedParams: [String: String] = [:]
        for param in params {
            try Validate.key(param.key, kind: "param")
            try Validate.paramValue(param.value, key: param.key)
            if let previous = checkedParams[param.key], previous != param.value {
                throw KilnError.invalid("Duplicate parameter keys have been submitted: '\(param.key)' with different values.")
            }
            checkedParams[param.key] = param.value
        }
        for tag in tags {
            try Validate.key(tag.key, kind: "tag")
            try Validate.tagValue(tag.value, key: tag.key)
        }
        let paramValues = checkedParams
        try await db.write { sql in
            _ = try await Self.requireActiveRun(sql, runID)
            if !paramValues.isEmpty {
                let keys = Array(paramValues.keys)
                let existing = try await sql.raw("SELECT key, value FROM params WHERE run_uuid = \(bind: runID) AND key IN (\(binds: keys))").all()
                var present = Set<String>()
                for row in existing {
                    let old = try Self.decodeKeyValue(row)
                    present.insert(old.key)
                    if let new = paramValues[old.key], new != old.value {
                        throw KilnError.invalid("Changing param values is not allowed. Param with key='\(old.key)' was already logged with value='\(old.value)' for run ID='\(runID)'. Attempted logging new value '\(new)'.")
                    }
                }
                let fresh = keys.filter { !present.contains($0) }.sorted()
                try await Self.insertKeyValues(sql, table: "params", runID: runID, fresh.map { KeyValue($0, paramValues[$0]!) }, replace: false)
            }
            if !metrics.isEmpty { try await Self.insertMetrics(sql, runID: runID, metrics) }
            try await Self.upsertTags(sql, runID: runID, tags: tags)
        }
    }

    static func insertMetrics(_ sql: any SQLDatabase, runID: String, _ metrics: [Metric]) async throws {
        for chunk in metrics.chunked(by: 400) {
            var query: SQLQueryString = """
                INSERT INTO metrics (run_uuid, key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest) VALUES 
                """
            for (i, m) in chunk.enumerated() {
                query.appendLiteral(i == 0 ? "(" : ", (")
                query.appendInterpolation(bind: runID)
                query.appendLiteral(", ")
                query.appendInterpolation(bind: m.key)
                query.appendLiteral(", ")
                appendNumbers(&query, m)
                for optional in [m.modelID, m.datasetName, m.datasetDigest] {
                    query.appendLiteral(", ")
                    if let optional { query.appendInterpolation(bind: optional) } else { query.appendLiteral("NULL") }
                }
                query.appendLiteral(")")
            }
            query.appendLiteral(" ON CONFLICT (run_uuid, key, step, timestamp, value, is_nan) DO NOTHING")
            try await sql.raw(query).run()
        }
        // Latest value per key: highest step, then timestamp, then value (NaN counts as lowest); and the batch's
        // range per key, folded into the stored range.
        var latest: [String: Metric] = [:]
        var ranges: [String: (min: Double, max: Double)] = [:]
        for m in metrics {
            if !m.value.isNaN {
                let range = ranges[m.key]
                ranges[m.key] = (Swift.min(range?.min ?? m.value, m.value), Swift.max(range?.max ?? m.value, m.value))
            }
            if let current = latest[m.key], !isNewer(m, than: current) { continue }
            latest[m.key] = m
        }
        for chunk in Array(latest.values).sorted(by: { $0.key < $1.key }).chunked(by: 400) {
            var query: SQLQueryString = "INSERT INTO latest_metrics (run_uuid, key, value, is_nan, timestamp, step, min_value, max_value) VALUES "
            for (i, m) in chunk.enumerated() {
                query.appendLiteral(i == 0 ? "(" : ", (")
                query.appendInterpolation(bind: runID)
                query.appendLiteral(", ")
                query.appendInterpolation(bind: m.key)
                query.appendLiteral(", ")
                appendNumbers(&query, m)
                if let range = ranges[m.key] {
                    query.appendLiteral(", ")
                    query.appendInterpolation(bind: range.min)
                    query.appendLiteral(", ")
                    query.appendInterpolation(bind: range.max)
                    query.appendLiteral(")")
                } else {
                    query.appendLiteral(", NULL, NULL)")
                }
            }
            // Every SET expression reads the row as it was before this update.
            let newer = """
                (excluded.step > latest_metrics.step
                 OR (excluded.step = latest_metrics.step AND excluded.timestamp > latest_metrics.timestamp)
                 OR (excluded.step = latest_metrics.step AND excluded.timestamp = latest_metrics.timestamp
                     AND excluded.is_nan = 0 AND (latest_metrics.is_nan = 1 OR excluded.value > latest_metrics.value)))
                """
            let latestColumns = ["value", "is_nan", "timestamp", "step"].map {
                "\($0) = CASE WHEN \(newer) THEN excluded.\($0) ELSE latest_metrics.\($0) END"
            }
            let rangeColumns = [("min_value", "<"), ("max_value", ">")].map { column, op in
                """
                \(column) = CASE WHEN excluded.\(column) IS NULL THEN latest_metrics.\(column)
                    WHEN latest_metrics.\(column) IS NULL OR excluded.\(column) \(op) latest_metrics.\(column) THEN excluded.\(column)
                    ELSE latest_metrics.\(column) END
                """
            }
            query.appendLiteral(" ON CONFLICT (run_uuid, key) DO UPDATE SET ")
            query.appendLiteral((latestColumns + rangeColumns).joined(separator: ", "))
            try await sql.raw(query).run()
        }
    }

    /// Appends `value, is_nan, timestamp, step`. The integers go in as literals (formatted here from `Int64`,
    /// so nothing user-typed reaches the SQL text): binding ~9,000 values per batch cost more than the insert
    /// itself. Values stay bound so every double round-trips bit for bit.
    static func appendNumbers(_ query: inout SQLQueryString, _ m: Metric) {
        if m.value.isNaN {
            query.appendLiteral("0, 1, ")
        } else {
            query.appendInterpolation(bind: m.value)
            query.appendLiteral(", 0, ")
        }
        query.appendLiteral("\(m.timestamp), \(m.step)")
    }

    static func isNewer(_ a: Metric, than b: Metric) -> Bool {
        if a.step != b.step { return a.step > b.step }
        if a.timestamp != b.timestamp { return a.timestamp > b.timestamp }
        if a.value.isNaN { return false }
        if b.value.isNaN { return true }
        return a.value > b.value
    }

    /// Logs one metric; shorthand for ``logBatch(runID:metrics:params:tags:)``.
    public func logMetric(runID: String, _ metric: Metric) async throws {
        try await logBatch(runID: runID, metrics: [metric])
    }

    /// Logs one param; shorthand for ``logBatch(runID:metrics:params:tags:)``.
    public func logParam(runID: String, key: String, value: String) async throws {
        try await logBatch(runID: runID, params: [KeyValue(key, value)])
    }

    /// Sets one tag; shorthand for ``logBatch(runID:metrics:params:tags:)``.
    public func setTag(runID: String, key: String, value: String) async throws {
        try await logBatch(runID: runID, tags: [KeyValue(key, value)])
    }

    /// Deletes a tag from an active run.
    /// - Throws: `RESOURCE_DOES_NOT_EXIST` when the run has no such tag.
    public func deleteTag(runID: String, key: String) async throws {
        try await db.write { sql in
            _ = try await Self.requireActiveRun(sql, runID)
            let rows = try await sql.raw("SELECT key FROM tags WHERE run_uuid = \(bind: runID) AND key = \(bind: key)").all()
            guard !rows.isEmpty else { throw KilnError.notFound("No tag with name: \(key) in run with id \(runID)") }
            try await sql.raw("DELETE FROM tags WHERE run_uuid = \(bind: runID) AND key = \(bind: key)").run()
        }
    }

    /// Records datasets (with input tags) and logged models a run used.
    public func logInputs(runID: String, datasets: [DatasetInput], modelIDs: [String] = []) async throws {
        for input in datasets {
            guard !input.dataset.name.isEmpty else { throw KilnError.invalid("Missing value for required parameter 'dataset.name'") }
            guard !input.dataset.digest.isEmpty else { throw KilnError.invalid("Missing value for required parameter 'dataset.digest'") }
            guard input.dataset.name.count <= 500, input.dataset.digest.count <= 36 else {
                throw KilnError.invalid("Dataset name or digest is too long (limits: name 500, digest 36 characters)")
            }
            for tag in input.tags {
                try Validate.key(tag.key, kind: "input tag")
                try Validate.tagValue(tag.value, key: tag.key)
            }
        }
        try await db.write { sql in
            let info = try await Self.requireActiveRun(sql, runID)
            let experimentID = Int64(info.experimentID) ?? 0
            for input in datasets {
                let d = input.dataset
                let existing = try await sql.raw("""
                    SELECT dataset_uuid FROM datasets WHERE experiment_id = \(bind: experimentID) AND name = \(bind: d.name) AND digest = \(bind: d.digest)
                    """).first()
                let datasetID: String
                if let existing {
                    datasetID = try existing.decode(column: "dataset_uuid", as: String.self)
                } else {
                    datasetID = Identifiers.hex32()
                    try await sql.raw("""
                        INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, source, schema_json, profile)
                        VALUES (\(bind: datasetID), \(bind: experimentID), \(bind: d.name), \(bind: d.digest), \(bind: d.sourceType), \(bind: d.source), \(bind: d.schema), \(bind: d.profile))
                        """).run()
                }
                try await sql.raw("""
                    INSERT INTO dataset_inputs (run_uuid, dataset_uuid) VALUES (\(bind: runID), \(bind: datasetID)) ON CONFLICT (run_uuid, dataset_uuid) DO NOTHING
                    """).run()
                for tag in input.tags {
                    try await sql.raw("""
                        INSERT INTO input_tags (run_uuid, dataset_uuid, key, value) VALUES (\(bind: runID), \(bind: datasetID), \(bind: tag.key), \(bind: tag.value))
                        ON CONFLICT (run_uuid, dataset_uuid, key) DO UPDATE SET value = excluded.value
                        """).run()
                }
            }
            for modelID in modelIDs {
                try await sql.raw("""
                    INSERT INTO run_model_inputs (run_uuid, model_id) VALUES (\(bind: runID), \(bind: modelID)) ON CONFLICT (run_uuid, model_id) DO NOTHING
                    """).run()
            }
        }
    }

    /// Records logged models a run produced.
    public func logOutputs(runID: String, models: [ModelOutput]) async throws {
        try await db.write { sql in
            _ = try await Self.requireActiveRun(sql, runID)
            for model in models {
                try await sql.raw("""
                    INSERT INTO run_model_outputs (run_uuid, model_id, step) VALUES (\(bind: runID), \(bind: model.modelID), \(bind: model.step))
                    ON CONFLICT (run_uuid, model_id) DO UPDATE SET step = excluded.step
                    """).run()
            }
        }
    }

    /// Per metric key of a run: the smallest and largest value over its whole history (NaN values skipped) and how
    /// many values were logged — what a run page shows beside the last value.
    public func metricSummaries(runID: String) async throws -> [String: MetricSummary] {
        try await db.read { sql in
            _ = try await Self.requireRunInfo(sql, runID)
            let rows = try await sql.raw("""
                SELECT key, MIN(CASE WHEN is_nan = 0 THEN value END) AS low, MAX(CASE WHEN is_nan = 0 THEN value END) AS high,
                       COUNT(*) AS n FROM metrics WHERE run_uuid = \(bind: runID) GROUP BY key
                """).all()
            var out: [String: MetricSummary] = [:]
            for row in rows {
                out[try row.decode(column: "key", as: String.self)] = MetricSummary(
                    min: try row.decode(column: "low", as: Double?.self), max: try row.decode(column: "high", as: Double?.self),
                    count: try row.decode(column: "n", as: Int.self))
            }
            return out
        }
    }

    /// Each run's metric ranges (smallest and largest non-NaN value over the history; `count` 0 as it is not
    /// read) by run id and key, from the latest-metrics table: cheap for a page of runs.
    public func metricRanges(runIDs: [String]) async throws -> [String: [String: MetricSummary]] {
        guard !runIDs.isEmpty else { return [:] }
        var out: [String: [String: MetricSummary]] = [:]
        for chunk in runIDs.chunked(by: 1000).map(Array.init) {
            let rows = try await db.read { sql in
                try await sql.raw("SELECT run_uuid, key, min_value, max_value FROM latest_metrics WHERE run_uuid IN (\(binds: chunk))").all()
            }
            for row in rows {
                out[try row.decode(column: "run_uuid", as: String.self), default: [:]][try row.decode(column: "key", as: String.self)] =
                    MetricSummary(min: try row.decode(column: "min_value", as: Double?.self),
                                  max: try row.decode(column: "max_value", as: Double?.self), count: 0)
            }
        }
        return out
    }

    /// Every value logged for one metric of a run, oldest first, paged.
    public func metricHistory(runID: String, key: String, maxResults: Int? = nil, pageToken: String? = nil) async throws -> Page<Metric> {
        let paging = try Paging(maxResults: maxResults, default: TrackingLimits.maxHistoryPage, limit: 1_000_000, pageToken: pageToken)
        var query: SQLQueryString = """
            SELECT key, value, is_nan, timestamp, step FROM metrics WHERE run_uuid = \(bind: runID) AND key = \(bind: key)
            ORDER BY timestamp, step, value
            """
        paging.append(to: &query)
        let finalQuery = query
        return try await db.read { sql in
            _ = try await Self.requireRunInfo(sql, runID)
            return paging.page(try await sql.raw(finalQuery).all().map(Self.decodeMetric))
        }
    }

    /// One metric's history for each of `runIDs` in one statement (a compare page's chart), each oldest first, at
    /// most `limit` values over all runs (then the rest of the last runs is cut). Runs without the metric are absent.
    public func metricHistories(runIDs: [String], key: String, limit: Int = 1_000_000) async throws -> [String: [Metric]] {
        guard !runIDs.isEmpty else { return [:] }
        let ids = Array(runIDs.prefix(1000))
        return try await db.read { sql in
            let rows = try await sql.raw("""
                SELECT run_uuid, key, value, is_nan, timestamp, step FROM metrics WHERE key = \(bind: key) AND run_uuid IN (\(binds: ids))
                ORDER BY run_uuid, timestamp, step, value LIMIT \(unsafeRaw: String(max(1, limit)))
                """).all()
            var out: [String: [Metric]] = [:]
            for row in rows { out[try row.decode(column: "run_uuid", as: String.self), default: []].append(try Self.decodeMetric(row)) }
            return out
        }
    }
}
