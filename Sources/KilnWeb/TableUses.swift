import Foundation

/// A model version or serving endpoint that reads a table's features (feature lineage), as a table's page lists it.
public struct TableUse: Sendable, Equatable {
    public var model: String?
    public var version: String?
    public var endpoint: String?
    public var featureSpec: String?
    /// The features it reads; nil: all of them.
    public var features: [String]?

    public init(model: String?, version: String?, endpoint: String?, featureSpec: String?, features: [String]?) {
        self.model = model
        self.version = version
        self.endpoint = endpoint
        self.featureSpec = featureSpec
        self.features = features
    }
}

/// Who uses a table (`catalog.schema.table`): wired by the server to the feature store's lineage.
public typealias TableUsers = @Sendable (String) async throws -> [TableUse]

extension DataPages {
    /// The "Used by" section of a table's page: models and endpoints whose feature lookups read it (none: a line
    /// saying so; no lineage source: nothing).
    func usedBy(_ fullName: String) async -> String {
        guard let users else { return "" }
        guard let uses = try? await users(fullName) else { return "" }
        let rows = uses.map { u -> String in
            let model = u.model.map { m in
                "<a href=\"/ui/models/\(HTML.segment(m))\(u.version.map { "/versions/\(HTML.segment($0))" } ?? "")\">\(HTML.escape(m))\(u.version.map { " v\(HTML.escape($0))" } ?? "")</a>"
            } ?? ""
            let endpoint = u.endpoint.map { "<a href=\"/ui/endpoints/\(HTML.segment($0))\">\(HTML.escape($0))</a>" } ?? ""
            return "<tr data-testid=\"used-by-row\"><td>\(model)</td><td>\(endpoint)</td><td>\(HTML.escape(u.featureSpec ?? ""))</td>"
                + "<td>\(HTML.escape(u.features?.joined(separator: ", ") ?? "all"))</td></tr>"
        }.joined()
        return """
            <section><h2>Used by</h2><table data-testid="used-by"><thead><tr><th>Model version</th><th>Endpoint</th><th>Feature spec</th><th>Features</th></tr></thead>
            <tbody>\(rows.isEmpty ? "<tr><td colspan=\"4\">No model or endpoint reads this table's features.</td></tr>" : rows)</tbody></table></section>
            """
    }
}
