import KilnCore
import KilnStore
import SQLKit

extension RegistryService {
    /// Searches registered models by `name` and `tags.<key>`; ordered by `name`, `creation_timestamp` or
    /// `last_updated_timestamp` (default `name ASC`).
    /// With `only`, among those names alone (the models a caller may read).
    public func searchRegisteredModels(filter: String? = nil, orderBy: [String] = [], maxResults: Int? = nil, pageToken: String? = nil,
                                       only visible: Set<String>? = nil) async throws -> Page<RegisteredModel> {
        let paging = try Paging(maxResults: maxResults, default: 100, limit: 1000, pageToken: pageToken)
        var query: SQLQueryString = "SELECT name FROM registered_models WHERE 1 = 1"
        if let visible { query += visible.isEmpty ? " AND 1 = 0" : " AND name IN (\(binds: Array(visible)))" }
        for clause in try SearchFilter.parse(filter).clauses {
            query.appendLiteral(" AND ")
            switch (clause.entity, clause.key.lowercased()) {
            case (.attribute, "name"): query += try FilterSQL.stringComparison("name", clause)
            case (.tag, _): query += try FilterSQL.keyValueCondition(clause, table: "registered_model_tags", owner: "t.name = registered_models.name",
                                                                      notEqualIncludesMissing: true)
            default:
                throw KilnError.invalid("Invalid filter key '\(clause.key)' for registered models at position \(clause.position); use name or tags.<key>")
            }
        }
        query.appendLiteral(" ORDER BY ")
        query.appendLiteral(try FilterSQL.orderBy(orderBy, columns: [
            "name": "name", "creation_timestamp": "creation_time", "creation_time": "creation_time",
            "last_updated_timestamp": "last_updated_time", "last_updated_time": "last_updated_time",
        ]))
        query.appendLiteral("name ASC")
        paging.append(to: &query)
        let finalQuery = query
        return try await db.read { sql in
            let names = paging.page(try await sql.raw(finalQuery).all().map { try $0.decode(column: "name", as: String.self) })
            return Page(items: try await Self.loadModels(sql, names: names.items), nextPageToken: names.nextPageToken)
        }
    }

    /// Searches versions by `name`, `run_id`, `source_path`, `version_number`, `model_id` and `tags.<key>`;
    /// ordered by `name`, `version_number`, `creation_timestamp` or `last_updated_timestamp`
    /// (default newest version first within each name).
    /// With `only`, among the versions of those models alone.
    public func searchModelVersions(filter: String? = nil, orderBy: [String] = [], maxResults: Int? = nil, pageToken: String? = nil,
                                    only visible: Set<String>? = nil) async throws -> Page<ModelVersion> {
        let paging = try Paging(maxResults: maxResults, default: 10_000, limit: 200_000, pageToken: pageToken)
        var condition: SQLQueryString = "1 = 1"
        if let visible { condition += visible.isEmpty ? " AND 1 = 0" : " AND name IN (\(binds: Array(visible)))" }
        for clause in try SearchFilter.parse(filter).clauses {
            condition.appendLiteral(" AND ")
            switch (clause.entity, clause.key.lowercased()) {
            case (.attribute, "name"): condition += try FilterSQL.stringComparison("name", clause)
            case (.attribute, "run_id"): condition += try FilterSQL.stringComparison("run_id", clause)
            case (.attribute, "source_path"), (.attribute, "source"): condition += try FilterSQL.stringComparison("source", clause)
            case (.attribute, "model_id"): condition += try FilterSQL.stringComparison("model_id", clause)
            case (.attribute, "version_number"), (.attribute, "version"): condition += try FilterSQL.numberComparison("version", clause)
            case (.tag, _):
                condition += try FilterSQL.keyValueCondition(clause, table: "model_version_tags",
                                                             owner: "t.name = model_versions.name AND t.version = model_versions.version",
                                                             notEqualIncludesMissing: true)
            default:
                throw KilnError.invalid("Invalid filter key '\(clause.key)' for model versions at position \(clause.position); use name, run_id, source_path, version_number or tags.<key>")
            }
        }
        var suffix = SQLQueryString("ORDER BY ")
        suffix.appendLiteral(try FilterSQL.orderBy(orderBy, columns: [
            "name": "name", "version_number": "version", "version": "version",
            "creation_timestamp": "creation_time", "creation_time": "creation_time",
            "last_updated_timestamp": "last_updated_time", "last_updated_time": "last_updated_time",
        ]))
        suffix.appendLiteral("name ASC, version DESC")
        paging.append(to: &suffix)
        let finalCondition = condition, finalSuffix = suffix
        return try await db.read { sql in
            paging.page(try await Self.loadVersions(sql, where: finalCondition, suffix: finalSuffix))
        }
    }
}
