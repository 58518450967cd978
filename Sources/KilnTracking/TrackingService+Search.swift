import KilnCore
import KilnStore
import SQLKit

extension TrackingService {
    /// Searches runs with MLflow's filter DSL, ordered and paged.
    ///
    /// - Parameters:
    ///   - filter: e.g. ``metrics.rmse < 1 and params.model = 'tree'``; see ``SearchFilter``.
    ///   - orderBy: e.g. `["metrics.rmse ASC", "attributes.start_time DESC"]`; runs without the key sort last;
    ///     ties break by start time (newest first), then run id.
    ///   - maxResults: 1...50,000, default 1,000.
    /// - Throws: `INVALID_PARAMETER_VALUE` for a bad filter, order, token or limit.
    public func searchRuns(
        experimentIDs: [String],
        filter: String? = nil,
        viewType: ViewType = .activeOnly,
        maxResults: Int? = nil,
        orderBy: [String] = [],
        pageToken: String? = nil
    ) async throws -> Page<Run> {
        try await searchRuns(experimentIDs: experimentIDs, filter: filter, viewType: viewType, maxResults: maxResults,
                             orders: try orderBy.filter { !$0.allSatisfy(\.isWhitespace) }.map(OrderClause.parse), pageToken: pageToken)
    }

    /// ``searchRuns(experimentIDs:filter:viewType:maxResults:orderBy:pageToken:)`` with parsed orders, which may
    /// order by a metric's min or max over its history (``OrderClause/MetricValue``).
    public func searchRuns(
        experimentIDs: [String],
        filter: String? = nil,
        viewType: ViewType = .activeOnly,
        maxResults: Int? = nil,
        orders: [OrderClause],
        pageToken: String? = nil
    ) async throws -> Page<Run> {
        let paging = try Paging(maxResults: maxResults, default: TrackingLimits.defaultRunsPerSearch,
                                limit: TrackingLimits.maxRunsPerSearch, pageToken: pageToken)
        let parsed = try SearchFilter.parse(filter)
        let experimentNumbers = experimentIDs.compactMap { Int64($0) }
        guard experimentNumbers.count == experimentIDs.count else {
            throw KilnError.invalid("Invalid experiment ids: \(experimentIDs.filter { Int64($0) == nil })")
        }
        guard !experimentNumbers.isEmpty else { return Page(items: [], nextPageToken: nil) }

        // The page's run infos come with the ids (no second lookup by id).
        var query: SQLQueryString = "SELECT \(unsafeRaw: Self.runInfoColumns) FROM (SELECT r.*"
        for (i, order) in orders.enumerated() {
            let (rank, value) = try Self.orderExpressions(order)
            query.appendLiteral(", ")
            query += rank
            query.appendLiteral(" AS o\(i)r, ")
            query += value
            query.appendLiteral(" AS o\(i)v")
        }
        query.appendLiteral(" FROM runs r")
        query += try Self.runScope(experiments: experimentNumbers, viewType: viewType, filter: parsed)
        query.appendLiteral(") t ORDER BY ")
        for (i, order) in orders.enumerated() {
            query.appendLiteral("o\(i)r, o\(i)v \(order.ascending ? "ASC" : "DESC"), ")
        }
        query.appendLiteral("start_time DESC, run_uuid ASC")
        paging.append(to: &query)
        let finalQuery = query
        return try await db.read { sql in
            let infos = paging.page(try await sql.raw(finalQuery).all().map(Self.decodeRunInfo))
            return Page(items: try await Self.loadRunData(sql, infos: infos.items), nextPageToken: infos.nextPageToken)
        }
    }

    /// ` WHERE ...` choosing runs `r` of `experiments` in `viewType` that match `filter`.
    static func runScope(experiments: [Int64], viewType: ViewType, filter: SearchFilter) throws -> SQLQueryString {
        var query: SQLQueryString = " WHERE r.experiment_id IN (\(binds: experiments)) AND r.lifecycle_stage IN (\(binds: viewType.stages))"
        for clause in filter.clauses {
            query.appendLiteral(" AND ")
            query += try Self.runClauseSQL(clause)
        }
        return query
    }

    /// The runs of `experimentIDs` matching `filter`, grouped by the value of a param or tag (`groupBy`'s entity and
    /// key), most runs first (then by value, runs without the key last): per group its run count and, per metric column, the mean, min and max over the group's
    /// runs of that column's value (latest, min or max). Runs without the key form one group with a nil value.
    /// - Throws: `INVALID_PARAMETER_VALUE` for a bad filter, or grouping by anything but a param or tag.
    public func groupRuns(experimentIDs: [String], filter: String? = nil, viewType: ViewType = .activeOnly,
                          groupBy: OrderClause, metrics: [MetricColumn], limit: Int = 500) async throws -> [RunGroup] {
        guard groupBy.entity == .param || groupBy.entity == .tag else {
            throw KilnError.invalid("Runs group by a param or a tag, not '\(groupBy.entity)'")
        }
        let parsed = try SearchFilter.parse(filter)
        let experimentNumbers = experimentIDs.compactMap { Int64($0) }
        guard experimentNumbers.count == experimentIDs.count else {
            throw KilnError.invalid("Invalid experiment ids: \(experimentIDs.filter { Int64($0) == nil })")
        }
        let table = groupBy.entity == .param ? "params" : "tags"
        var query: SQLQueryString = "SELECT g.value AS g, COUNT(*) AS n"
        for (i, column) in metrics.enumerated() {
            let value = column.value == .last ? "m\(i).value" : "m\(i).\(column.value.rawValue)_value"
            query.appendLiteral(", AVG(\(value)) AS a\(i), MIN(\(value)) AS l\(i), MAX(\(value)) AS h\(i)")
        }
        query.appendLiteral(" FROM runs r LEFT JOIN \(table) g ON g.run_uuid = r.run_uuid AND g.key = ")
        query.appendInterpolation(bind: groupBy.key)
        for (i, column) in metrics.enumerated() {
            query.appendLiteral(" LEFT JOIN latest_metrics m\(i) ON m\(i).run_uuid = r.run_uuid AND m\(i).is_nan = 0 AND m\(i).key = ")
            query.appendInterpolation(bind: column.key)
        }
        query += try Self.runScope(experiments: experimentNumbers, viewType: viewType, filter: parsed)
        query.appendLiteral(" GROUP BY g.value ORDER BY n DESC, g.value IS NULL, g.value LIMIT \(max(1, min(limit, 10_000)))")
        let finalQuery = query
        return try await db.read { sql in
            try await sql.raw(finalQuery).all().map { row in
                RunGroup(value: try row.decode(column: "g", as: String?.self), count: try row.decode(column: "n", as: Int.self),
                         metrics: try metrics.indices.map { i in
                             MetricAggregate(mean: try row.decode(column: "a\(i)", as: Double?.self),
                                             min: try row.decode(column: "l\(i)", as: Double?.self),
                                             max: try row.decode(column: "h\(i)", as: Double?.self))
                         })
            }
        }
    }

    enum AttributeKind { case string(String), number(String) }

    static func runAttribute(_ key: String) throws -> AttributeKind {
        switch key.lowercased() {
        case "run_id", "run_uuid", "id": return .string("r.run_uuid")
        case "run_name", "run name", "name": return .string("r.name")
        case "status": return .string("r.status")
        case "user_id": return .string("r.user_id")
        case "artifact_uri": return .string("r.artifact_uri")
        case "lifecycle_stage": return .string("r.lifecycle_stage")
        case "start_time", "created": return .number("r.start_time")
        case "end_time": return .number("r.end_time")
        default:
            throw KilnError.invalid("Invalid attribute key '\(key)' specified. Valid keys are 'run_id', 'run_name', 'status', 'user_id', 'artifact_uri', 'start_time', 'end_time', 'created'")
        }
    }

    static func runClauseSQL(_ clause: FilterClause) throws -> SQLQueryString {
        switch clause.entity {
        case .metric:
            var q: SQLQueryString = "EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.key = \(bind: clause.key) AND m.is_nan = 0 AND "
            q += try FilterSQL.numberComparison("m.value", clause)
            q.appendLiteral(")")
            return q
        case .param, .tag:
            return try FilterSQL.keyValueCondition(clause, table: clause.entity == .param ? "params" : "tags", owner: "t.run_uuid = r.run_uuid")
        case .attribute:
            switch try runAttribute(clause.key) {
            case .string(let column): return try FilterSQL.stringComparison(column, clause)
            case .number(let column): return try FilterSQL.numberComparison(column, clause)
            }
        case .dataset:
            let column: String
            switch clause.key.lowercased() {
            case "name": column = "d.name"
            case "digest": column = "d.digest"
            case "context":
                var q: SQLQueryString = "EXISTS (SELECT 1 FROM input_tags it WHERE it.run_uuid = r.run_uuid AND it.key = 'mlflow.data.context' AND "
                q += try FilterSQL.stringComparison("it.value", clause)
                q.appendLiteral(")")
                return q
            default:
                throw KilnError.invalid("Invalid dataset key '\(clause.key)' at position \(clause.position); valid keys are name, digest and context")
            }
            var q: SQLQueryString = "EXISTS (SELECT 1 FROM dataset_inputs di JOIN datasets d ON d.dataset_uuid = di.dataset_uuid WHERE di.run_uuid = r.run_uuid AND "
            q += try FilterSQL.stringComparison(column, clause)
            q.appendLiteral(")")
            return q
        }
    }

    /// The rank (0 present, 1 NaN, 2 missing) and value expressions that order runs by one key.
    static func orderExpressions(_ order: OrderClause) throws -> (SQLQueryString, SQLQueryString) {
        switch order.entity {
        case .metric:
            switch order.metricValue {
            case .last:
                return (
                    "COALESCE((SELECT m.is_nan FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.key = \(bind: order.key)), 2)",
                    "(SELECT m.value FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.key = \(bind: order.key))"
                )
            case .min, .max:
                // A run whose values were all NaN has no range: it ranks with the NaNs.
                let column = order.metricValue == .min ? "min_value" : "max_value"
                return (
                    "COALESCE((SELECT CASE WHEN m.\(unsafeRaw: column) IS NULL THEN 1 ELSE 0 END FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.key = \(bind: order.key)), 2)",
                    "(SELECT m.\(unsafeRaw: column) FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.key = \(bind: order.key))"
                )
            }
        case .param, .tag:
            let table = order.entity == .param ? "params" : "tags"
            var rank = SQLQueryString("(CASE WHEN EXISTS (SELECT 1 FROM \(table) p WHERE p.run_uuid = r.run_uuid AND p.key = ")
            rank.appendInterpolation(bind: order.key)
            rank.appendLiteral(") THEN 0 ELSE 2 END)")
            var value = SQLQueryString("(SELECT p.value FROM \(table) p WHERE p.run_uuid = r.run_uuid AND p.key = ")
            value.appendInterpolation(bind: order.key)
            value.appendLiteral(")")
            return (rank, value)
        case .attribute:
            let column: String
            switch try runAttribute(order.key) {
            case .string(let c), .number(let c): column = c
            }
            return (SQLQueryString("(CASE WHEN \(column) IS NULL THEN 2 ELSE 0 END)"), SQLQueryString(column))
        case .dataset:
            throw KilnError.invalid("Invalid order_by entity 'datasets'; order by metrics, params, tags or attributes")
        }
    }

    // MARK: Experiments

    /// Searches experiments by `name`, `creation_time`, `last_update_time` and `tags.<key>`; with `only`, among
    /// those ids alone (the ones a caller may read).
    public func searchExperiments(
        filter: String? = nil,
        orderBy: [String] = [],
        maxResults: Int? = nil,
        pageToken: String? = nil,
        viewType: ViewType = .activeOnly,
        only visible: Set<String>? = nil
    ) async throws -> Page<Experiment> {
        let paging = try Paging(maxResults: maxResults, default: 1000, limit: 50_000, pageToken: pageToken)
        let parsed = try SearchFilter.parse(filter)
        var condition: SQLQueryString = "lifecycle_stage IN (\(binds: viewType.stages))"
        if let visible {
            let ids = visible.compactMap { Int64($0) }
            condition += ids.isEmpty ? " AND 1 = 0" : " AND experiment_id IN (\(binds: ids))"
        }
        for clause in parsed.clauses {
            condition.appendLiteral(" AND ")
            switch clause.entity {
            case .tag:
                condition += try FilterSQL.keyValueCondition(clause, table: "experiment_tags", owner: "t.experiment_id = experiments.experiment_id")
            case .attribute:
                switch clause.key.lowercased() {
                case "name": condition += try FilterSQL.stringComparison("name", clause)
                case "creation_time", "last_update_time", "experiment_id":
                    condition += try FilterSQL.numberComparison(clause.key.lowercased(), clause)
                default:
                    throw KilnError.invalid("Invalid attribute key '\(clause.key)' specified. Valid keys are 'name', 'creation_time', 'last_update_time'")
                }
            default:
                throw KilnError.invalid("Invalid entity type '\(clause.entity.rawValue)' for experiment search at position \(clause.position); use attributes or tags")
            }
        }
        var suffix = SQLQueryString("ORDER BY ")
        suffix.appendLiteral(try FilterSQL.orderBy(orderBy, columns: [
            "name": "name", "experiment_id": "experiment_id", "creation_time": "creation_time", "last_update_time": "last_update_time",
        ]))
        suffix.appendLiteral("creation_time DESC, experiment_id ASC")
        paging.append(to: &suffix)
        let finalCondition = condition
        let finalSuffix = suffix
        return try await db.read { sql in
            paging.page(try await Self.loadExperiments(sql, where: finalCondition, suffix: finalSuffix))
        }
    }
}
