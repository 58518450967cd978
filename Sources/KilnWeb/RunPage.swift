import Foundation
import Hummingbird
import KilnCore
import KilnTracking

/// A run's overview: its attributes, parent and children, params, metrics (last, min, max over the whole history),
/// datasets, logged models and tags.
struct RunPage: Sendable {
    let tracking: TrackingService

    func render(experimentID: String, runID: String, session: WebSession, query: [String: String] = [:]) async throws -> Response {
        let run = try await tracking.getRun(id: runID)
        let info = run.info
        guard info.experimentID == experimentID else {
            return WebUI.redirect("/ui/experiments/\(HTML.segment(info.experimentID))/runs/\(HTML.segment(runID))")
        }
        let experiment = try await tracking.getExperiment(id: experimentID)
        let summaries = try await tracking.metricSummaries(runID: runID)
        let children = try await tracking.searchRuns(experimentIDs: [experimentID], filter: "tags.mlflow.parentRunId = '\(runID)'",
                                                     maxResults: 200, orderBy: ["attributes.start_time ASC"]).items
        let parentID = run.tags.first { $0.key == "mlflow.parentRunId" }?.value
        func runLink(_ id: String, _ name: String) -> String {
            "<a href=\"/ui/experiments/\(HTML.segment(experimentID))/runs/\(HTML.segment(id))\">\(HTML.escape(name.isEmpty ? id : name))</a>"
        }

        var overview = """
            <tr><th>Run ID</th><td><code data-testid="run-id">\(HTML.escape(info.runID))</code></td></tr>
            <tr><th>Experiment</th><td><a href="/ui/experiments/\(HTML.segment(experimentID))">\(HTML.escape(experiment.name))</a></td></tr>
            <tr><th>Status</th><td><span class="status \(info.status.rawValue.lowercased())" data-testid="run-status">\(info.status.rawValue)</span></td></tr>
            <tr><th>Started</th><td>\(HTML.time(info.startTime))</td></tr>
            <tr><th>Ended</th><td>\(HTML.time(info.endTime))</td></tr>
            <tr><th>User</th><td>\(HTML.escape(info.userID))</td></tr>
            <tr><th>Artifacts</th><td><a data-testid="artifacts-link" href="/ui/experiments/\(HTML.segment(experimentID))/runs/\(HTML.segment(runID))/artifacts">Browse</a> <code>\(HTML.escape(info.artifactURI))</code></td></tr>
            """
        if let start = info.startTime, let end = info.endTime { overview += "<tr><th>Duration</th><td>\(HTML.duration(end - start))</td></tr>" }
        if let parentID { overview += "<tr><th>Parent run</th><td data-testid=\"parent-run\">\(runLink(parentID, parentID))</td></tr>" }

        var metricRows = ""
        for metric in run.metrics.sorted(by: { $0.key < $1.key }) {
            let summary = summaries[metric.key]
            metricRows += """
                <tr data-testid="metric-row" data-key="\(HTML.escape(metric.key))"><th>\(HTML.escape(metric.key))</th>
                <td class="num" data-testid="metric-last">\(HTML.number(metric.value))</td>
                <td class="num" data-testid="metric-min">\(HTML.number(summary?.min))</td>
                <td class="num" data-testid="metric-max">\(HTML.number(summary?.max))</td>
                <td class="num">\(metric.step)</td><td class="num">\(summary?.count ?? 1)</td></tr>
                """
        }
        let paramRows = run.params.sorted { $0.key < $1.key }.map {
            "<tr data-testid=\"param-row\"><th>\(HTML.escape($0.key))</th><td>\(HTML.escape($0.value))</td></tr>"
        }.joined()
        let tagRows = run.tags.sorted { $0.key < $1.key }.map {
            "<tr data-testid=\"tag-row\"><th>\(HTML.escape($0.key))</th><td>\(HTML.escape($0.value))</td></tr>"
        }.joined()
        let options = Charts.Options(query: query)
        // A chart per metric (the first 24 keys), each from at most 100,000 values, drawn from ≤ ~800 points.
        var charts = ""
        for metric in run.metrics.sorted(by: { $0.key < $1.key }).prefix(24) {
            let history = try await tracking.metricHistory(runID: runID, key: metric.key, maxResults: 100_000).items
            charts += Charts.line(key: metric.key, history: history, options: options)
        }
        // What the run read (datasets) and the logged models it took in or produced.
        let datasetRows = run.datasetInputs.map { input -> String in
            let context = input.tags.first { $0.key == "mlflow.data.context" }?.value ?? ""
            return "<tr data-testid=\"dataset-row\"><td>\(HTML.escape(input.dataset.name))</td><td><code>\(HTML.escape(input.dataset.digest))</code></td>"
                + "<td>\(HTML.escape(context))</td><td>\(HTML.escape(input.dataset.sourceType))</td></tr>"
        }.joined()
        var modelRows = ""
        for (id, role) in run.modelOutputs.map({ ($0.modelID, "output at step \($0.step)") }) + run.modelInputs.map({ ($0, "input") }) {
            let model = try? await tracking.getLoggedModel(id: id)
            modelRows += "<tr data-testid=\"model-row\"><td>\(HTML.escape(model?.name ?? id))</td><td><code>\(HTML.escape(id))</code></td><td>\(HTML.escape(role))</td>"
                + "<td>\(HTML.escape(model?.modelType ?? ""))</td></tr>"
        }
        var inputs = ""
        if !datasetRows.isEmpty {
            inputs += "<section><h2>Datasets</h2><table data-testid=\"datasets\"><thead><tr><th>Name</th><th>Digest</th><th>Context</th><th>Source</th></tr></thead><tbody>\(datasetRows)</tbody></table></section>"
        }
        if !modelRows.isEmpty {
            inputs += "<section><h2>Logged models</h2><table data-testid=\"logged-models\"><thead><tr><th>Name</th><th>Model ID</th><th>Role</th><th>Type</th></tr></thead><tbody>\(modelRows)</tbody></table></section>"
        }
        let childItems = children.map { "<li data-testid=\"child-run\">\(runLink($0.info.runID, $0.info.runName))</li>" }.joined()

        let body = """
            <section><table class="kv" data-testid="overview">\(overview)</table></section>
            <section><h2>Metrics</h2>
            <table data-testid="metrics"><thead><tr><th>Metric</th><th>Last</th><th>Min</th><th>Max</th><th>Last step</th><th>Values</th></tr></thead>
            <tbody>\(metricRows.isEmpty ? "<tr><td colspan=\"6\">No metrics logged.</td></tr>" : metricRows)</tbody></table></section>
            \(charts.isEmpty ? "" : "<section><h2>Charts</h2>\(Self.chartControls(options))<div class=\"charts\">\(charts)</div></section>")
            \(inputs)
            <section><h2>Parameters</h2><table class="kv" data-testid="params">\(paramRows.isEmpty ? "<tr><td>No parameters.</td></tr>" : paramRows)</table></section>
            <section><h2>Tags</h2><table class="kv" data-testid="tags">\(tagRows.isEmpty ? "<tr><td>No tags.</td></tr>" : tagRows)</table></section>
            \(childItems.isEmpty ? "" : "<section><h2>Child runs</h2><ul data-testid=\"children\">\(childItems)</ul></section>")
            """
        return WebUI.html(HTML.page(title: info.runName.isEmpty ? info.runID : info.runName, session: session, body: body))
    }

    /// The chart options as a small GET form (no script: the page redraws on the server); `prefix` as in
    /// ``Charts/Options/init(query:prefix:)``, `keep` hidden fields the page needs back (a compare page's runs).
    static func chartControls(_ o: Charts.Options, prefix: String = "", keep: String = "") -> String {
        func option(_ value: String, _ label: String, _ selected: Bool) -> String {
            "<option value=\"\(value)\"\(selected ? " selected" : "")>\(label)</option>"
        }
        let axes = [("step", "Step"), ("time", "Wall time"), ("relative", "Relative time")].map { option($0.0, $0.1, o.axis.rawValue == $0.0) }.joined()
        let smoothing = [0, 0.3, 0.6, 0.8, 0.9, 0.95].map { option("\($0)", $0 == 0 ? "None" : "\($0)", o.smoothing == $0) }.joined()
        return """
            <form method="get" class="search" data-testid="chart-options">\(keep)
            <label for="\(prefix)x">x axis</label><select id="\(prefix)x" name="\(prefix)x">\(axes)</select>
            <label for="\(prefix)scale">y scale</label><select id="\(prefix)scale" name="\(prefix)scale">\(option("linear", "Linear", !o.logScale))\(option("log", "Log", o.logScale))</select>
            <label for="\(prefix)smooth">Smoothing</label><select id="\(prefix)smooth" name="\(prefix)smooth">\(smoothing)</select>
            <label><input type="checkbox" name="\(prefix)outliers" value="hide"\(o.hideOutliers ? " checked" : "")> Ignore outliers</label>
            <button type="submit" data-testid="apply-chart-options">Apply</button></form>
            """
    }
}
