import KilnCore
import KilnStore
import SQLKit

extension TrackingService {
    /// Creates a logged model (MLflow 3) in `PENDING` state; its files go under the returned artifact location.
    public func createLoggedModel(
        experimentID: String,
        name: String?,
        modelType: String? = nil,
        sourceRunID: String? = nil,
        params: [KeyValue] = [],
        tags: [KeyValue] = []
    ) async throws -> LoggedModel {
        let numeric = try Validate.experimentID(experimentID)
        for param in params {
            try Validate.key(param.key, kind: "param")
            try Validate.paramValue(param.value, key: param.key)
        }
        for tag in tags {
            try Validate.key(tag.key, kind: "tag")
            try Validate.tagValue(tag.value, key: tag.key)
        }
        let modelID = "m-\(Identifiers.hex32())"
        let modelName = (name?.isEmpty == false) ? name! : Identifiers.runName()
        let now = clock.nowMillis()
        try await db.write { sql in
            let experiment = try await Self.requireExperiment(sql, numeric, experimentID)
            guard experiment.lifecycleStage == .active else {
                throw KilnError.invalid("The experiment \(experimentID) must be in the 'active' state. Current state is deleted.")
            }
            if let sourceRunID, !sourceRunID.isEmpty { _ = try await Self.requireRunInfo(sql, sourceRunID) }
            let location = "\(experiment.artifactLocation)/models/\(modelID)/artifacts"
            try await sql.raw("""
                INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, creation_time, last_updated_time, status,
                    status_message, lifecycle_stage, model_type, source_run_id)
                VALUES (\(bind: modelID), \(bind: numeric), \(bind: modelName), \(bind: location), \(bind: now), \(bind: now),
                    \(bind: LoggedModelStatus.pending.rawValue), NULL, 'active', \(bind: modelType), \(bind: sourceRunID))
                """).run()
            try await Self.upsertModelKeyValues(sql, table: "logged_model_params", modelID: modelID, params)
            try await Self.upsertModelKeyValues(sql, table: "logged_model_tags", modelID: modelID, tags)
        }
        return try await getLoggedModel(id: modelID)
    }

    static func upsertModelKeyValues(_ sql: any SQLDatabase, table: String, modelID: String, _ pairs: [KeyValue]) async throws {
        for pair in pairs {
            try await sql.raw("""
                INSERT INTO \(unsafeRaw: table) (model_id, key, value) VALUES (\(bind: modelID), \(bind: pair.key), \(bind: pair.value))
                ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value
                """).run()
        }
    }

    /// Fetches a logged model.
    public func getLoggedModel(id: String) async throws -> LoggedModel {
        try await db.read { sql in
            guard let model = try await Self.loadLoggedModels(sql, where: "model_id = \(bind: id) AND lifecycle_stage = 'active'").first else {
                throw KilnError.notFound("Logged model with ID '\(id)' not found.")
            }
            return model
        }
    }

    static func loadLoggedModels(_ sql: any SQLDatabase, where condition: SQLQueryString, suffix: SQLQueryString = "") async throws -> [LoggedModel] {
        let rows = try await sql.raw("""
            SELECT model_id, experiment_id, name, artifact_location, creation_time, last_updated_time, status, status_message,
                lifecycle_stage, model_type, source_run_id FROM logged_models WHERE \(condition) \(suffix)
            """ as SQLQueryString).all()
        var models = try rows.map { row in
            LoggedModel(
                modelID: try row.decode(column: "model_id", as: String.self),
                experimentID: String(try row.decode(column: "experiment_id", as: Int64.self)),
                name: try row.decode(column: "name", as: String.self),
                artifactLocation: try row.decode(column: "artifact_location", as: String.self),
                creationTime: try row.decode(column: "creation_time", as: Int64.self),
                lastUpdatedTime: try row.decode(column: "last_updated_time", as: Int64.self),
                status: LoggedModelStatus(rawValue: try row.decode(column: "status", as: String.self)) ?? .unspecified,
                statusMessage: try row.decode(column: "status_message", as: String?.self),
                lifecycleStage: LifecycleStage(rawValue: try row.decode(column: "lifecycle_stage", as: String.self)) ?? .active,
                modelType: try row.decode(column: "model_type", as: String?.self),
                sourceRunID: try row.decode(column: "source_run_id", as: String?.self),
                params: [], tags: [], metrics: []
            )
        }
        guard !models.isEmpty else { return [] }
        let ids = models.map(\.modelID)
        var params: [String: [KeyValue]] = [:]
        for row in try await sql.raw("SELECT model_id, key, value FROM logged_model_params WHERE model_id IN (\(binds: ids)) ORDER BY key").all() {
            params[try row.decode(column: "model_id", as: String.self), default: []].append(try decodeKeyValue(row))
        }
        var tags: [String: [KeyValue]] = [:]
        for row in try await sql.raw("SELECT model_id, key, value FROM logged_model_tags WHERE model_id IN (\(binds: ids)) ORDER BY key").all() {
            tags[try row.decode(column: "model_id", as: String.self), default: []].append(try decodeKeyValue(row))
        }
        var metrics: [String: [Metric]] = [:]
        for row in try await sql.raw("""
            SELECT model_id, key, value, is_nan, timestamp, step, dataset_name, dataset_digest FROM metrics
            WHERE model_id IN (\(binds: ids)) ORDER BY key, step, timestamp
            """).all() {
            var metric = try decodeMetric(row)
            metric.modelID = try row.decode(column: "model_id", as: String.self)
            metric.datasetName = try row.decode(column: "dataset_name", as: String?.self)
            metric.datasetDigest = try row.decode(column: "dataset_digest", as: String?.self)
            metrics[metric.modelID!, default: []].append(metric)
        }
        for i in models.indices {
            models[i].params = params[models[i].modelID] ?? []
            models[i].tags = tags[models[i].modelID] ?? []
            models[i].metrics = metrics[models[i].modelID] ?? []
        }
        return models
    }

    static func requireLoggedModel(_ sql: any SQLDatabase, _ id: String) async throws {
        let rows = try await sql.raw("SELECT model_id FROM logged_models WHERE model_id = \(bind: id) AND lifecycle_stage = 'active'").all()
        guard !rows.isEmpty else { throw KilnError.notFound("Logged model with ID '\(id)' not found.") }
    }

    /// Marks a logged model `READY` (or failed) once its files are uploaded.
    public func finalizeLoggedModel(id: String, status: LoggedModelStatus) async throws -> LoggedModel {
        let now = clock.nowMillis()
        try await db.write { sql in
            try await Self.requireLoggedModel(sql, id)
            try await sql.raw("UPDATE logged_models SET status = \(bind: status.rawValue), last_updated_time = \(bind: now) WHERE model_id = \(bind: id)").run()
        }
        return try await getLoggedModel(id: id)
    }

    /// Soft-deletes a logged model.
    public func deleteLoggedModel(id: String) async throws {
        let now = clock.nowMillis()
        try await db.write { sql in
            try await Self.requireLoggedModel(sql, id)
            try await sql.raw("UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_time = \(bind: now) WHERE model_id = \(bind: id)").run()
        }
    }

    /// Sets tags on a logged model.
    public func setLoggedModelTags(id: String, tags: [KeyValue]) async throws {
        for tag in tags {
            try Validate.key(tag.key, kind: "tag")
            try Validate.tagValue(tag.value, key: tag.key)
        }
        try await db.write { sql in
            try await Self.requireLoggedModel(sql, id)
            try await Self.upsertModelKeyValues(sql, table: "logged_model_tags", modelID: id, tags)
        }
    }

    /// Deletes one tag of a logged model.
    public func deleteLoggedModelTag(id: String, key: String) async throws {
        try await db.write { sql in
            let rows = try await sql.raw("SELECT key FROM logged_model_tags WHERE model_id = \(bind: id) AND key = \(bind: key)").all()
            guard !rows.isEmpty else { throw KilnError.notFound("No tag with key '\(key)' found for logged model '\(id)'.") }
            try await sql.raw("DELETE FROM logged_model_tags WHERE model_id = \(bind: id) AND key = \(bind: key)").run()
        }
    }

    /// Logs params on a logged model.
    public func logLoggedModelParams(id: String, params: [KeyValue]) async throws {
        for param in params {
            try Validate.key(param.key, kind: "param")
            try Validate.paramValue(param.value, key: param.key)
        }
        try await db.write { sql in
            try await Self.requireLoggedModel(sql, id)
            try await Self.upsertModelKeyValues(sql, table: "logged_model_params", modelID: id, params)
        }
    }

    /// Searches logged models in experiments; the filter takes attributes (`name`, `model_id`, `model_type`,
    /// `status`, `source_run_id`, `creation_time`, `last_updated_time`), `tags.<key>` and `params.<key>`.
    public func searchLoggedModels(
        experimentIDs: [String],
        filter: String? = nil,
        orderBy: [String] = [],
        maxResults: Int? = nil,
        pageToken: String? = nil
    ) async throws -> Page<LoggedModel> {
        let paging = try Paging(maxResults: maxResults, default: 100, limit: 50_000, pageToken: pageToken)
        let parsed = try SearchFilter.parse(filter)
        let numbers = experimentIDs.compactMap { Int64($0) }
        var condition: SQLQueryString = "lifecycle_stage = 'active'"
        if !experimentIDs.isEmpty {
            guard !numbers.isEmpty else { return Page(items: [], nextPageToken: nil) }
            condition.appendLiteral(" AND experiment_id IN (")
            condition.appendInterpolation(binds: numbers)
            condition.appendLiteral(")")
        }
        for clause in parsed.clauses {
            condition.appendLiteral(" AND ")
            switch clause.entity {
            case .tag, .param:
                condition += try FilterSQL.keyValueCondition(clause, table: clause.entity == .tag ? "logged_model_tags" : "logged_model_params",
                                                            owner: "t.model_id = logged_models.model_id")
            case .attribute:
                switch clause.key.lowercased() {
                case "name", "model_id", "model_type", "status", "source_run_id":
                    condition += try FilterSQL.stringComparison(clause.key.lowercased(), clause)
                case "creation_time", "creation_timestamp", "last_updated_time", "last_updated_timestamp":
                    let column = clause.key.lowercased().hasPrefix("creation") ? "creation_time" : "last_updated_time"
                    condition += try FilterSQL.numberComparison(column, clause)
                default:
                    throw KilnError.invalid("Invalid attribute key '\(clause.key)' for logged model search")
                }
            default:
                throw KilnError.invalid("Invalid entity type '\(clause.entity.rawValue)' for logged model search at position \(clause.position)")
            }
        }
        var suffix = SQLQueryString("ORDER BY ")
        suffix.appendLiteral(try FilterSQL.orderBy(orderBy, columns: [
            "name": "name", "creation_time": "creation_time", "last_updated_time": "last_updated_time", "model_id": "model_id",
            "creation_timestamp": "creation_time", "last_updated_timestamp": "last_updated_time",
        ]))
        suffix.appendLiteral("creation_time DESC, model_id ASC")
        paging.append(to: &suffix)
        let finalCondition = condition
        let finalSuffix = suffix
        return try await db.read { sql in
            paging.page(try await Self.loadLoggedModels(sql, where: finalCondition, suffix: finalSuffix))
        }
    }
}
