import Foundation
import Hummingbird
import KilnCore
import KilnTracking

/// The experiment list and an experiment's runs table.
struct ExperimentPages: Sendable {
    let tracking: TrackingService
    static let pageSize = 100

    /// `/ui/experiments?q=TEXT&page=TOKEN`: experiments whose name contains TEXT, newest first, 100 a page.
    func list(_ request: Request, session: WebSession) async throws -> Response {
        let query = formFields(Substring(request.uri.query ?? ""))
        let text = query["q"] ?? ""
        var notice = ""
        var page = Page<Experiment>(items: [], nextPageToken: nil)
        do {
            page = try await tracking.searchExperiments(filter: Self.nameFilter(text), orderBy: ["last_update_time DESC"],
                                                        maxResults: Self.pageSize, pageToken: query["page"].flatMap { $0.isEmpty ? nil : $0 })
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

    /// `/ui/experiments/ID?filter=DSL&order=COLUMN&page=TOKEN`: the experiment's runs, filtered with MLflow's search
    /// syntax, one column per param and metric on the page, 100 runs a page; child runs indented under parents.
    func runs(_ request: Request, experimentID: String, session: WebSession) async throws -> Response {
        let experiment = try await tracking.getExperiment(id: experimentID)
        let query = formFields(Substring(request.uri.query ?? ""))
        let filter = query["filter"] ?? ""
        let order = query["order"] ?? ""
        var notice = ""
        var page = Page<Run>(items: [], nextPageToken: nil)
        do {
            page = try await tracking.searchRuns(experimentIDs: [experimentID], filter: filter.isEmpty ? nil : filter,
                                                 maxResults: Self.pageSize, orderBy: order.isEmpty ? [] : [order],
                                                 pageToken: query["page"].flatMap { $0.isEmpty ? nil : $0 })
        } catch let error as KilnError where error.code == .invalidParameterValue {
            notice = HTML.notice(error.message)
        }
        let runs = page.items
        let paramKeys = Set(runs.flatMap { $0.params.map(\.key) }).sorted()
        let metricKeys = Set(runs.flatMap { $0.metrics.map(\.key) }).sorted()
        // Children follow their parent when both are on the page.
        let ids = Set(runs.map(\.info.runID))
        func parent(_ run: Run) -> String? {
            run.tags.first { $0.key == "mlflow.parentRunId" }.map(\.value).flatMap { ids.contains($0) ? $0 : nil }
        }
        let children = Dictionary(grouping: runs.filter { parent($0) != nil }, by: { parent($0)! })
        var ordered: [(run: Run, depth: Int)] = []
        func visit(_ run: Run, _ depth: Int) {
            ordered.append((run, depth))
            for child in children[run.info.runID] ?? [] where depth < 8 { visit(child, depth + 1) }
        }
        for run in runs where parent(run) == nil { visit(run, 0) }

        func sortLink(_ label: String, _ column: String) -> String {
            let next = order == "\(column) DESC" ? "\(column) ASC" : "\(column) DESC"
            let mark = order.hasPrefix(column + " ") ? (order.hasSuffix("ASC") ? " ▲" : " ▼") : ""
            return "<a href=\"?filter=\(HTML.query(filter))&amp;order=\(HTML.query(next))\">\(HTML.escape(label))\(mark)</a>"
        }
        func quoted(_ key: String) -> String { key.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } ? key : "`\(key)`" }
        var head = "<th><span class=\"visually-hidden\">Select</span></th><th>\(sortLink("Run", "attributes.run_name"))</th><th>Status</th><th>\(sortLink("Started", "attributes.start_time"))</th><th>Duration</th>"
        head += paramKeys.map { "<th class=\"param\">\(sortLink($0, "params.\(quoted($0))"))</th>" }.joined()
        head += metricKeys.map { "<th class=\"metric\">\(sortLink($0, "metrics.\(quoted($0))"))</th>" }.joined()
        var rows = ""
        for (run, depth) in ordered {
            let info = run.info
            let params = Dictionary(run.params.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            let metrics = Dictionary(run.metrics.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            let duration = info.startTime.flatMap { start in info.endTime.map { HTML.duration($0 - start) } } ?? ""
            rows += "<tr data-testid=\"run-row\" data-run-id=\"\(HTML.escape(info.runID))\"\(depth > 0 ? " class=\"child depth-\(depth)\"" : "")>"
            rows += "<td><input type=\"checkbox\" name=\"runs\" value=\"\(HTML.escape(info.runID))\" form=\"compare\" data-testid=\"select-run\" aria-label=\"Select \(HTML.escape(info.runName))\"></td>"
            rows += "<td><a href=\"/ui/experiments/\(HTML.segment(experimentID))/runs/\(HTML.segment(info.runID))\">"
            rows += "\(HTML.escape(info.runName.isEmpty ? info.runID : info.runName))</a></td>"
            rows += "<td><span class=\"status \(info.status.rawValue.lowercased())\">\(info.status.rawValue)</span></td>"
            rows += "<td>\(HTML.time(info.startTime))</td><td class=\"num\">\(duration)</td>"
            rows += paramKeys.map { "<td>\(HTML.escape(params[$0] ?? ""))</td>" }.joined()
            rows += metricKeys.map { "<td class=\"num\">\(HTML.number(metrics[$0]))</td>" }.joined()
            rows += "</tr>"
        }
        let next = page.nextPageToken.map {
            "<a class=\"next\" data-testid=\"next-page\" href=\"?filter=\(HTML.query(filter))&amp;order=\(HTML.query(order))&amp;page=\(HTML.query($0))\">Next page</a>"
        } ?? ""
        let body = """
            <p class="meta">Experiment \(HTML.escape(experiment.id)) · artifacts at <code>\(HTML.escape(experiment.artifactLocation))</code></p>
            <form method="get" class="search">
            <label for="filter">Filter</label>
            <input id="filter" name="filter" size="60" value="\(HTML.escape(filter))" placeholder="metrics.rmse &lt; 1 and params.model = 'tree'" data-testid="run-filter">
            <input type="hidden" name="order" value="\(HTML.escape(order))">
            <button type="submit" data-testid="apply-filter">Apply</button></form>
            \(notice)
            <form id="compare" method="get" action="/ui/experiments/\(HTML.segment(experimentID))/compare" class="search">
            <button type="submit" data-testid="compare-selected">Compare selected</button></form>
            <div class="scroll"><table data-testid="runs"><thead><tr>\(head)</tr></thead>
            <tbody>\(rows.isEmpty ? "<tr><td colspan=\"5\">No runs match.</td></tr>" : rows)</tbody></table></div>
            \(next)
            """
        return WebUI.html(HTML.page(title: experiment.name, session: session, body: body))
    }
}
