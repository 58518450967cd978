import Foundation
import Hummingbird
import KilnCore
import KilnJobs
import KilnPermissions
import KilnRegistry
import KilnServing
import KilnTracking

/// `/ui/search?q=TEXT`: experiments, models, tables, jobs and endpoints whose name contains TEXT (case-insensitive),
/// up to 20 of each.
struct SearchPage: Sendable {
    let tracking: TrackingService
    let registry: RegistryService
    let jobs: JobsService
    let serving: ServingService
    let data: DataPages
    static let perKind = 20

    /// `visible`: the ids of each kind the user may see (nil: all).
    func render(_ request: Request, session: WebSession, visible: [ObjectKind: Set<String>?] = [:]) async throws -> Response {
        func allowed(_ kind: ObjectKind, _ id: String) -> Bool { (visible[kind] ?? nil)?.contains(id) ?? true }
        let text = (formFields(Substring(request.uri.query ?? ""))["q"] ?? "").trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else {
            return WebUI.html(HTML.page(title: "Search", session: session, body: "<p>Type part of a name in the search box above.</p>"))
        }
        let needle = text.lowercased()
        func matches(_ name: String) -> Bool { name.lowercased().contains(needle) }
        var sections: [(title: String, items: [(label: String, link: String)])] = []
        let experiments = try await tracking.searchExperiments(filter: ExperimentPages.nameFilter(text), maxResults: Self.perKind,
                                                               only: visible[.experiments] ?? nil).items
        sections.append(("Experiments", experiments.map { ($0.name, "/ui/experiments/\(HTML.segment($0.id))") }))
        let models = try await registry.searchRegisteredModels(filter: ExperimentPages.nameFilter(text), maxResults: Self.perKind,
                                                               only: visible[.registeredModels] ?? nil).items
        sections.append(("Models", models.map { ($0.name, "/ui/models/\(HTML.segment($0.name))") }))
        sections.append(("Tables", try await tables(matching: matches, session: session)))
        let matchingJobs = try await jobs.all().filter { matches(JobPages.name($0)) && allowed(.jobs, String($0.jobID)) }.prefix(Self.perKind)
        sections.append(("Jobs", matchingJobs.map { (JobPages.name($0), "/ui/jobs/\($0.jobID)") }))
        let endpoints = try await serving.list().filter { matches($0.name) && allowed(.servingEndpoints, $0.name) }.sorted { $0.name < $1.name }.prefix(Self.perKind)
        sections.append(("Serving endpoints", endpoints.map { ($0.name, "/ui/endpoints/\(HTML.segment($0.name))") }))
        var body = ""
        for section in sections where !section.items.isEmpty {
            let items = section.items.map { "<li data-testid=\"search-hit\" data-kind=\"\(HTML.escape(section.title))\"><a href=\"\($0.link)\">\(HTML.escape($0.label))</a></li>" }.joined()
            body += "<section><h2>\(section.title)</h2><ul>\(items)</ul></section>"
        }
        if body.isEmpty { body = "<p data-testid=\"no-hits\">Nothing is named like “\(HTML.escape(text))”.</p>" }
        return WebUI.html(HTML.page(title: "Search: \(text)", session: session, body: body))
    }

    /// Tables whose name matches, walking catalogs and schemas (at most 200 schemas).
    func tables(matching: (String) -> Bool, session: WebSession) async throws -> [(label: String, link: String)] {
        var out: [(label: String, link: String)] = []
        var schemasSeen = 0
        for catalog in DataPages.column(try await data.query("SHOW CATALOGS", session: session).frame, "catalog") {
            for schema in DataPages.column(try await data.query("SHOW SCHEMAS IN \(DataPages.ident(catalog))", session: session).frame, "databaseName") {
                schemasSeen += 1
                guard schemasSeen <= 200 else { return out }
                let tables = DataPages.column(try await data.query("SHOW TABLES IN \(DataPages.ident(catalog)).\(DataPages.ident(schema))", session: session).frame, "tableName")
                for table in tables where matching(table) {
                    out.append(("\(catalog).\(schema).\(table)", "/ui/data/\(HTML.segment(catalog))/\(HTML.segment(schema))/\(HTML.segment(table))"))
                    if out.count >= Self.perKind { return out }
                }
            }
        }
        return out
    }
}
