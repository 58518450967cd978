import Foundation
import Hummingbird
import KilnCore
import KilnTracking

/// The experiment list (an experiment's runs table is ``RunsTable``).
struct ExperimentPages: Sendable {
    let tracking: TrackingService
    static let pageSize = 100

    /// `/ui/experiments?q=TEXT&page=TOKEN`: experiments whose name contains TEXT, newest first, 100 a page.
    func list(_ request: Request, session: WebSession, only visible: Set<String>? = nil) async throws -> Response {
        let query = formFields(Substring(request.uri.query ?? ""))
        let text = query["q"] ?? ""
        var notice = ""
        var page = Page<Experiment>(items: [], nextPageToken: nil)
        do {
            page = try await tracking.searchExperiments(filter: Self.nameFilter(text), orderBy: ["last_update_time DESC"],
                                                        maxResults: Self.pageSize, pageToken: query["page"].flatMap { $0.isEmpty ? nil : $0 },
                                                        only: visible)
        } catch let error as KilnError where error.code == .invalidParameterValue {
            notice = HTML.notice(error.message)
        }
        var rows = ""
        for e in page.items {
            rows += """
                <tr data-testid="experiment-row"><td><a href="/ui/experiments/\(HTML.segment(e.id))">\(HTML.escape(e.name))</a></td>
                <td class="num">\(HTML.escape(e.id))</td><td>\(HTML.time(e.creationTime))</td><td>\(HTML.time(e.lastUpdateTime))</td></tr>
                """
        }
        let next = page.nextPageToken.map {
            "<a class=\"next\" data-testid=\"next-page\" href=\"/ui/experiments?q=\(HTML.query(text))&amp;page=\(HTML.query($0))\">Next page</a>"
        } ?? ""
        let body = """
            <form method="get" action="/ui/experiments" class="search">
            <label for="q">Name contains</label>
            <input id="q" name="q" value="\(HTML.escape(text))" data-testid="experiment-search">
            <button type="submit">Search</button></form>
            \(notice)
            <table data-testid="experiments"><thead><tr><th>Name</th><th>ID</th><th>Created</th><th>Last updated</th></tr></thead>
            <tbody>\(rows.isEmpty ? "<tr><td colspan=\"4\">No experiments match.</td></tr>" : rows)</tbody></table>
            \(next)
            """
        return WebUI.html(HTML.page(title: "Experiments", session: session, body: body))
    }

    /// `name ILIKE '%TEXT%'` in the search DSL, nil for no text.
    static func nameFilter(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return nil }
        return "name ILIKE \(literal("%\(trimmed)%"))"
    }

    /// `text` as a search-DSL string literal, quoted so it needs no escaping (a character that is both quotes
    /// becomes the `%` wildcard, which only a LIKE pattern should carry).
    static func literal(_ text: String) -> String {
        if !text.contains("'") { return "'\(text)'" }
        if !text.contains("\"") { return "\"\(text)\"" }
        return "'\(text.replacingOccurrences(of: "'", with: "%"))'"
    }
}
