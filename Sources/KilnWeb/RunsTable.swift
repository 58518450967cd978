import Foundation
import Hummingbird
import KilnCore
import KilnTracking

/// A column of the runs table: a param, a tag, or a metric's latest, smallest or largest value.
struct RunColumn: Hashable {
    var entity: FilterEntity
    var key: String
    var value: OrderClause.MetricValue = .last

    /// `params.KEY`, `tags.KEY`, `metrics.KEY`, `metrics.KEY:min`, `metrics.KEY:max` (MLflow keys have no `:`).
    var id: String {
        switch entity {
        case .param: "params.\(key)"
        case .tag: "tags.\(key)"
        default: value == .last ? "metrics.\(key)" : "metrics.\(key):\(value.rawValue)"
        }
    }

    init(_ entity: FilterEntity, _ key: String, _ value: OrderClause.MetricValue = .last) {
        self.entity = entity
        self.key = key
        self.value = value
    }

    init?(id: String) {
        if id.hasPrefix("params.") {
            self.init(.param, String(id.dropFirst(7)))
        } else if id.hasPrefix("tags.") {
            self.init(.tag, String(id.dropFirst(5)))
        } else if id.hasPrefix("metrics.") {
            let rest = id.dropFirst(8)
            if let colon = rest.lastIndex(of: ":"), let value = OrderClause.MetricValue(rawValue: String(rest[rest.index(after: colon)...])) {
                self.init(.metric, String(rest[..<colon]), value)
            } else {
                self.init(.metric, String(rest))
            }
        } else {
            return nil
        }
        if key.isEmpty { return nil }
    }

    var label: String { value == .last ? key : "\(key) (\(value.rawValue))" }

    /// What the page's `order` parameter says to sort by this column: MLflow's `metrics.key`, or `min(metrics.key)`.
    var orderExpression: String {
        let quoted = Self.quoted(key)
        switch entity {
        case .param: return "params.\(quoted)"
        case .tag: return "tags.\(quoted)"
        default: return value == .last ? "metrics.\(quoted)" : "\(value.rawValue)(metrics.\(quoted))"
        }
    }

    /// `key` as the search syntax names it: bare when it is a plain identifier, else in backquotes.
    static func quoted(_ key: String) -> String {
        key.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } ? key : "`\(key)`"
    }

    /// A page `order` parameter: MLflow's `order_by` syntax, or `min(metrics.KEY) ASC|DESC` / `max(...)`.
    static func order(_ text: String) throws -> OrderClause? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return nil }
        for value in [OrderClause.MetricValue.min, .max] where trimmed.lowercased().hasPrefix("\(value.rawValue)(") {
            guard let close = trimmed.lastIndex(of: ")") else { throw KilnError.invalid("Unclosed '(' in the order '\(trimmed)'") }
            let inner = trimmed[trimmed.index(trimmed.startIndex, offsetBy: 4)..<close]
            var clause = try OrderClause.parse(String(inner) + String(trimmed[trimmed.index(after: close)...]))
            guard clause.entity == .metric else { throw KilnError.invalid("\(value.rawValue)(...) orders by a metric, not '\(inner)'") }
            clause.metricValue = value
            return clause
        }
        return try OrderClause.parse(trimmed)
    }
}

/// An experiment's runs table: MLflow's filter syntax, sorting by any column (a metric's min or max too), the
/// columns a person picked (kept per person and experiment), grouping by a param or tag, children under parents.
struct RunsTable: Sendable {
    let tracking: TrackingService
    let preferences: WebPreferences
    static let pageSize = 100
    /// Metric columns a grouping aggregates.
    static let groupedMetrics = 12

    static func layoutName(_ experimentID: String) -> String { "runs-columns:\(experimentID)" }

    /// `/ui/experiments/ID?filter=DSL&order=COLUMN&group=params.KEY&page=TOKEN`.
    /// - Parameter access: the experiment's access panel (HTML), shown under the runs.
    func render(_ request: Request, experimentID: String, session: WebSession, access: String = "") async throws -> Response {
        let experiment = try await tracking.getExperiment(id: experimentID)
        let query = formFields(Substring(request.uri.query ?? ""))
        let filter = query["filter"] ?? "", order = query["order"] ?? "", group = query["group"] ?? ""
        var notices: [String] = []
        var page = Page<Run>(items: [], nextPageToken: nil)
        do {
            page = try await tracking.searchRuns(experimentIDs: [experimentID], filter: filter.isEmpty ? nil : filter, maxResults: Self.pageSize,
                                                 orders: try RunColumn.order(order).map { [$0] } ?? [],
                                                 pageToken: query["page"].flatMap { $0.isEmpty ? nil : $0 })
        } catch let error as KilnError where error.code == .invalidParameterValue {
            notices.append(error.message)
        }
        let runs = page.items
        let saved = try await preferences.list(session.principal, Self.layoutName(experimentID))?.compactMap(RunColumn.init(id:))
        let pageParams = Set(runs.flatMap { $0.params.map(\.key) }).sorted()
        let pageMetrics = Set(runs.flatMap { $0.metrics.map(\.key) }).sorted()
        let pageTags = Set(runs.flatMap { $0.tags.map(\.key) }).filter { !$0.hasPrefix("mlflow.") }.sorted()
        let columns = saved ?? (pageParams.map { RunColumn(.param, $0) } + pageMetrics.map { RunColumn(.metric, $0) })
        let ranges = columns.contains { $0.entity == .metric && $0.value != .last }
            ? try await tracking.metricRanges(runIDs: runs.map(\.info.runID)) : [:]

        var groupsHTML = ""
        if !group.isEmpty {
            do {
                let by = try OrderClause.parse(group)
                // Each metric column is a join over every matching run: the first 12 (pick columns to choose them).
                let metricColumns = Array(columns.filter { $0.entity == .metric }.prefix(Self.groupedMetrics))
                let groups = try await tracking.groupRuns(experimentIDs: [experimentID], filter: filter.isEmpty ? nil : filter, groupBy: by,
                                                          metrics: metricColumns.map { MetricColumn(key: $0.key, value: $0.value) })
                groupsHTML = groupTable(groups, by: by, metrics: metricColumns, filter: filter, order: order)
            } catch let error as KilnError where error.code == .invalidParameterValue {
                notices.append(error.message)
            }
        }

        func link(order newOrder: String? = nil, page: String? = nil) -> String {
            var parts = ["filter=\(HTML.query(filter))", "order=\(HTML.query(newOrder ?? order))"]
            if !group.isEmpty { parts.append("group=\(HTML.query(group))") }
            if let page { parts.append("page=\(HTML.query(page))") }
            return "?" + parts.joined(separator: "&amp;")
        }
        func sortLink(_ label: String, _ column: String) -> String {
            let next = order == "\(column) DESC" ? "\(column) ASC" : "\(column) DESC"
            let mark = order.hasPrefix(column + " ") ? (order.hasSuffix("ASC") ? " ▲" : " ▼") : ""
            return "<a href=\"\(link(order: next))\" data-testid=\"sort\">\(HTML.escape(label))\(mark)</a>"
        }
        var head = "<th><span class=\"visually-hidden\">Select</span></th><th>\(sortLink("Run", "attributes.run_name"))</th><th>Status</th><th>\(sortLink("Started", "attributes.start_time"))</th><th>Duration</th>"
        for column in columns {
            let kind = column.entity == .metric ? "metric" : column.entity == .param ? "param" : "tag"
            head += "<th class=\"\(kind)\" data-column=\"\(HTML.escape(column.id))\">\(sortLink(column.label, column.orderExpression))</th>"
        }
        var rows = ""
        for (run, ancestors, childCount) in Self.nested(runs) {
            let depth = ancestors.count
            let info = run.info
            let params = Dictionary(run.params.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            let tags = Dictionary(run.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            let metrics = Dictionary(run.metrics.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            let duration = info.startTime.flatMap { start in info.endTime.map { HTML.duration($0 - start) } } ?? ""
            rows += "<tr data-testid=\"run-row\" data-run-id=\"\(HTML.escape(info.runID))\""
            if let parent = ancestors.last {
                rows += " class=\"child depth-\(depth)\" data-parent=\"\(HTML.escape(parent))\" data-ancestors=\"\(HTML.escape(ancestors.joined(separator: " ")))\""
            }
            rows += ">"
            rows += "<td><input type=\"checkbox\" name=\"runs\" value=\"\(HTML.escape(info.runID))\" form=\"compare\" data-testid=\"select-run\" aria-label=\"Select \(HTML.escape(info.runName))\"></td>"
            rows += "<td>"
            if childCount > 0 {
                rows += "<button type=\"button\" class=\"toggle\" data-testid=\"toggle-children\" data-run=\"\(HTML.escape(info.runID))\" "
                    + "data-count=\"\(childCount)\" aria-expanded=\"true\" aria-label=\"Show or hide \(childCount) child runs\">\(childCount)</button>"
            }
            rows += "<a href=\"/ui/experiments/\(HTML.segment(experimentID))/runs/\(HTML.segment(info.runID))\">"
            rows += "\(HTML.escape(info.runName.isEmpty ? info.runID : info.runName))</a></td>"
            rows += "<td><span class=\"status \(info.status.rawValue.lowercased())\">\(info.status.rawValue)</span></td>"
            rows += "<td>\(HTML.time(info.startTime))</td><td class=\"num\">\(duration)</td>"
            for column in columns {
                switch (column.entity, column.value) {
                case (.param, _): rows += "<td>\(HTML.escape(params[column.key] ?? ""))</td>"
                case (.tag, _): rows += "<td>\(HTML.escape(tags[column.key] ?? ""))</td>"
                case (_, .last): rows += "<td class=\"num\">\(HTML.number(metrics[column.key]))</td>"
                case (_, .min): rows += "<td class=\"num\">\(HTML.number(ranges[info.runID]?[column.key]?.min))</td>"
                case (_, .max): rows += "<td class=\"num\">\(HTML.number(ranges[info.runID]?[column.key]?.max))</td>"
                }
            }
            rows += "</tr>"
        }
        let next = page.nextPageToken.map { "<a class=\"next\" data-testid=\"next-page\" href=\"\(link(page: $0))\">Next page</a>" } ?? ""
        let picker = columnPicker(experimentID: experimentID, session: session, chosen: columns, saved: saved != nil,
                                  params: Set(pageParams + columns.filter { $0.entity == .param }.map(\.key)).sorted(),
                                  metrics: Set(pageMetrics + columns.filter { $0.entity == .metric }.map(\.key)).sorted(),
                                  tags: Set(pageTags + columns.filter { $0.entity == .tag }.map(\.key)).sorted(),
                                  back: request.uri.query ?? "")
        let groupOptions = pageParams.map { "params.\($0)" } + pageTags.map { "tags.\($0)" }
        let groupSelect = (["<option value=\"\">(none)</option>"] + Set(groupOptions + (group.isEmpty ? [] : [group])).sorted().map {
            "<option value=\"\(HTML.escape($0))\"\($0 == group ? " selected" : "")>\(HTML.escape($0))</option>"
        }).joined()
        let body = """
            <p class="meta">Experiment \(HTML.escape(experiment.id)) · artifacts at <code>\(HTML.escape(experiment.artifactLocation))</code></p>
            <form method="get" class="search">
            <label for="filter">Filter</label>
            <input id="filter" name="filter" size="60" value="\(HTML.escape(filter))" placeholder="metrics.rmse &lt; 1 and params.model = 'tree'" data-testid="run-filter">
            <label for="group">Group by</label>
            <select id="group" name="group" data-testid="group-by">\(groupSelect)</select>
            <input type="hidden" name="order" value="\(HTML.escape(order))">
            <button type="submit" data-testid="apply-filter">Apply</button></form>
            \(notices.map { HTML.notice($0) }.joined())
            \(picker)
            \(groupsHTML)
            <form id="compare" method="get" action="/ui/experiments/\(HTML.segment(experimentID))/compare" class="search">
            <button type="submit" data-testid="compare-selected">Compare selected</button></form>
            <div class="scroll"><table data-testid="runs"><thead><tr>\(head)</tr></thead>
            <tbody>\(rows.isEmpty ? "<tr><td colspan=\"5\">No runs match.</td></tr>" : rows)</tbody></table></div>
            \(next)
            \(access)
            <script src="/ui/static/runs.js"></script>
            """
        return WebUI.html(HTML.page(title: experiment.name, session: session, body: body))
    }

    /// Runs with children after their parent (when both are on the page): each one's ancestors on the page
    /// (nearest last) and how many children it has here.
    static func nested(_ runs: [Run]) -> [(run: Run, ancestors: [String], children: Int)] {
        let ids = Set(runs.map(\.info.runID))
        func parent(_ run: Run) -> String? {
            run.tags.first { $0.key == "mlflow.parentRunId" }.map(\.value).flatMap { ids.contains($0) ? $0 : nil }
        }
        let children = Dictionary(grouping: runs.filter { parent($0) != nil }, by: { parent($0)! })
        var ordered: [(run: Run, ancestors: [String], children: Int)] = []
        func visit(_ run: Run, _ ancestors: [String]) {
            let mine = ancestors.count < 8 ? children[run.info.runID] ?? [] : []
            ordered.append((run, ancestors, mine.count))
            for child in mine { visit(child, ancestors + [run.info.runID]) }
        }
        for run in runs where parent(run) == nil { visit(run, []) }
        return ordered
    }

    /// The column picker: a checkbox per param, tag and metric value (latest, min, max), saved for this person.
    func columnPicker(experimentID: String, session: WebSession, chosen: [RunColumn], saved: Bool,
                      params: [String], metrics: [String], tags: [String], back: String) -> String {
        let chosenIDs = Set(chosen.map(\.id))
        func box(_ column: RunColumn, _ label: String) -> String {
            let id = column.id
            return "<label><input type=\"checkbox\" name=\"col:\(HTML.escape(id))\"\(chosenIDs.contains(id) ? " checked" : "") data-testid=\"column-option\" data-column=\"\(HTML.escape(id))\"> \(HTML.escape(label))</label>"
        }
        var groups: [String] = []
        if !params.isEmpty { groups.append("<fieldset><legend>Params</legend>\(params.map { box(RunColumn(.param, $0), $0) }.joined())</fieldset>") }
        if !metrics.isEmpty {
            let boxes = metrics.map { key in
                "<span class=\"metric-choice\">" + OrderClause.MetricValue.allCases.map { value in
                    box(RunColumn(.metric, key, value), value == .last ? key : value.rawValue)
                }.joined() + "</span>"
            }
            groups.append("<fieldset><legend>Metrics (latest, min, max)</legend>\(boxes.joined())</fieldset>")
        }
        if !tags.isEmpty { groups.append("<fieldset><legend>Tags</legend>\(tags.map { box(RunColumn(.tag, $0), $0) }.joined())</fieldset>") }
        return """
            <details class="columns" data-testid="column-picker"><summary>Columns\(saved ? " (yours)" : "")</summary>
            <form method="post" action="/ui/experiments/\(HTML.segment(experimentID))/columns">
            <input type="hidden" name="csrf" value="\(HTML.escape(session.csrf))">
            <input type="hidden" name="back" value="\(HTML.escape(back))">
            \(groups.joined())
            <button type="submit" data-testid="save-columns">Save columns</button>
            <button type="submit" name="reset" value="1" data-testid="reset-columns">Reset to all</button>
            </form></details>
            """
    }

    /// `POST /ui/experiments/ID/columns`: saves the ticked columns (or forgets them on reset) and goes back.
    func saveColumns(experimentID: String, form: [String: String], session: WebSession) async throws -> Response {
        _ = try await tracking.getExperiment(id: experimentID)
        let chosen = form.keys.filter { $0.hasPrefix("col:") }.compactMap { RunColumn(id: String($0.dropFirst(4))) }
        // Params, then metrics (latest, min, max), then tags; by key within each.
        func rank(_ c: RunColumn) -> (Int, String, Int) {
            ([.param, .metric, .tag].firstIndex(of: c.entity) ?? 3, c.key, OrderClause.MetricValue.allCases.firstIndex(of: c.value) ?? 0)
        }
        let ordered = chosen.sorted { rank($0) < rank($1) }
        try await preferences.setList(session.principal, Self.layoutName(experimentID), form["reset"] != nil ? nil : ordered.map(\.id))
        let back = (form["back"] ?? "").filter { $0 != "#" && $0 != "\r" && $0 != "\n" }
        return WebUI.redirect("/ui/experiments/\(HTML.segment(experimentID))" + (back.isEmpty ? "" : "?" + back))
    }

    /// The groups of runs sharing a value of `by`: runs per group and each metric column's mean (min – max); a
    /// group's value links to the runs filtered to it.
    func groupTable(_ groups: [RunGroup], by: OrderClause, metrics: [RunColumn], filter: String, order: String) -> String {
        let prefix = by.entity == .param ? "params" : "tags"
        let quoted = RunColumn.quoted(by.key)
        var rows = ""
        for group in groups {
            var cell = "<em>(not set)</em>"
            if let value = group.value {
                let condition = "\(prefix).\(quoted) = \(ExperimentPages.literal(value))"
                let narrowed = filter.trimmingCharacters(in: .whitespaces).isEmpty ? condition : "\(filter) and \(condition)"
                cell = "<a href=\"?filter=\(HTML.query(narrowed))&amp;order=\(HTML.query(order))\">\(HTML.escape(value))</a>"
            }
            rows += "<tr data-testid=\"group-row\"><td>\(cell)</td><td class=\"num\" data-testid=\"group-count\">\(group.count)</td>"
            for aggregate in group.metrics {
                let range = aggregate.min == nil ? "" : " <span class=\"meta\">(\(HTML.number(aggregate.min)) – \(HTML.number(aggregate.max)))</span>"
                rows += "<td class=\"num\">\(HTML.number(aggregate.mean))\(range)</td>"
            }
            rows += "</tr>"
        }
        let head = "<th>\(HTML.escape("\(prefix).\(by.key)"))</th><th>Runs</th>" + metrics.map { "<th>\(HTML.escape($0.label)) mean (min – max)</th>" }.joined()
        return """
            <h2>Grouped by \(HTML.escape("\(prefix).\(by.key)"))</h2>
            <div class="scroll"><table data-testid="run-groups"><thead><tr>\(head)</tr></thead>
            <tbody>\(rows.isEmpty ? "<tr><td colspan=\"2\">No runs match.</td></tr>" : rows)</tbody></table></div>
            """
    }
}
