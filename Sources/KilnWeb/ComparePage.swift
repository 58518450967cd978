import Foundation
import Hummingbird
import KilnCore
import KilnTracking

/// Runs side by side: params, metrics and tags where the runs differ (all of them on request), a parallel-
/// coordinates chart over the numeric columns that differ, a scatter of any two of them, a contour of a third over
/// two, and each metric's history with one line per run.
struct ComparePage: Sendable {
    let tracking: TrackingService
    static let maxRuns = 100
    /// Runs whose metric histories are drawn (each history is a read of up to 100,000 values).
    static let maxChartedRuns = 20

    func render(_ request: Request, experimentID: String, session: WebSession) async throws -> Response {
        let query = request.uri.query ?? ""
        let ids = Array(NSOrderedSet(array: formValues(Substring(query), "runs")).compactMap { $0 as? String }.prefix(Self.maxRuns))
        let fields = formFields(Substring(query))
        let showAll = fields["all"] == "1"
        let base = "/ui/experiments/\(HTML.segment(experimentID))"
        guard ids.count >= 2 else {
            let body = HTML.notice("Pick two or more runs to compare (the boxes in the runs table).") + "<p><a href=\"\(base)\">Back to the runs</a></p>"
            return WebUI.html(HTML.page(title: "Compare runs", session: session, body: body), status: .badRequest)
        }
        var runs: [Run] = []
        for id in ids { runs.append(try await tracking.getRun(id: id)) }

        func values(_ pick: (Run) -> [KeyValue]) -> [(key: String, values: [String?])] {
            // Each run's pairs once, as a dictionary (picking per key re-formatted every metric per key).
            let maps = runs.map { Dictionary(pick($0).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a }) }
            let keys = Set(maps.flatMap(\.keys)).sorted()
            return keys.map { key in (key, maps.map { $0[key] }) }
        }
        let params = values(\.params)
        let metrics = values { run in run.metrics.map { KeyValue($0.key, HTML.number($0.value)) } }
        let tags = values { run in run.tags.filter { !$0.key.hasPrefix("mlflow.") } }
        func differs(_ row: (key: String, values: [String?])) -> Bool { Set(row.values.map { $0 ?? "\u{0}" }).count > 1 }

        let headerCells = runs.map { "<th><a href=\"\(base)/runs/\(HTML.segment($0.info.runID))\">\(HTML.escape($0.info.runName.isEmpty ? $0.info.runID : $0.info.runName))</a></th>" }.joined()
        func table(_ title: String, _ testID: String, _ rows: [(key: String, values: [String?])]) -> String {
            let shown = showAll ? rows : rows.filter(differs)
            let hidden = rows.count - shown.count
            let body = shown.map { row in
                "<tr data-testid=\"\(testID)-row\" data-key=\"\(HTML.escape(row.key))\"\(differs(row) ? " class=\"differs\"" : "")><th>\(HTML.escape(row.key))</th>"
                    + row.values.map { "<td>\(HTML.escape($0 ?? ""))</td>" }.joined() + "</tr>"
            }.joined()
            let note = hidden > 0 ? "<p class=\"hint\">\(hidden) identical \(hidden == 1 ? "row" : "rows") hidden.</p>" : ""
            return "<section><h2>\(title)</h2><div class=\"scroll\"><table data-testid=\"\(testID)\"><thead><tr><th></th>\(headerCells)</tr></thead><tbody>\(body)</tbody></table></div>\(note)</section>"
        }

        // Numeric columns that differ, for the charts: params that parse as numbers, and metrics.
        var columns: [(name: String, values: [Double?])] = []
        for row in params where differs(row) {
            // A param is numeric when every run that has it holds a number.
            let numbers = row.values.map { $0.flatMap(Double.init) }
            if zip(row.values, numbers).allSatisfy({ $0.0 == nil || $0.1 != nil }) { columns.append(("params.\(row.key)", numbers)) }
        }
        let metricValues = runs.map { Dictionary($0.metrics.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a }) }
        for row in metrics where differs(row) {
            columns.append(("metrics.\(row.key)", metricValues.map { $0[row.key] }))
        }
        columns = Array(columns.prefix(10))
        let names = runs.map { $0.info.runName.isEmpty ? String($0.info.runID.prefix(8)) : $0.info.runName }
        var charts = ""
        let options = { (selected: String) in columns.map { "<option\($0.name == selected ? " selected" : "")>\(HTML.escape($0.name))</option>" }.joined() }
        /// The compared runs and those of `names` the page's query set, as hidden fields: a chart's form keeps the rest.
        func keep(_ names: [String]) -> String {
            (ids.map { "<input type=\"hidden\" name=\"runs\" value=\"\(HTML.escape($0))\">" }
                + names.compactMap { name in fields[name].map { "<input type=\"hidden\" name=\"\(name)\" value=\"\(HTML.escape($0))\">" } }).joined()
        }
        if columns.count >= 2 {
            charts += CompareCharts.parallel(columns: columns, runs: names)
            let x = columns.first { $0.name == fields["x"] } ?? columns[0]
            let y = columns.first { $0.name == fields["y"] } ?? columns[1]
            charts += """
                <form method="get" class="search" data-testid="scatter-axes">\(keep([]))
                <label for="x">x</label><select id="x" name="x">\(options(x.name))</select>
                <label for="y">y</label><select id="y" name="y">\(options(y.name))</select>
                <button type="submit">Plot</button></form>
                \(CompareCharts.scatter(x: x, y: y, runs: names))
                """
        }
        if columns.count >= 3 {
            let cx = columns.first { $0.name == fields["cx"] } ?? columns[0]
            let cy = columns.first { $0.name == fields["cy"] } ?? columns[1]
            let cz = columns.first { $0.name == fields["cz"] } ?? columns[2]
            charts += """
                <form method="get" class="search" data-testid="contour-axes">\(keep(["x", "y", "all"]))
                <label for="cx">x</label><select id="cx" name="cx">\(options(cx.name))</select>
                <label for="cy">y</label><select id="cy" name="cy">\(options(cy.name))</select>
                <label for="cz">z</label><select id="cz" name="cz">\(options(cz.name))</select>
                <button type="submit">Plot</button></form>
                \(CompareCharts.contour(x: cx, y: cy, z: cz, runs: names))
                """
        }
        // Every metric's history, one path per run on shared axes (the first 12 metrics and 20 runs).
        let historyOptions = Charts.Options(query: fields, prefix: "h")
        var historyCharts = ""
        let chartedRuns = Array(runs.prefix(Self.maxChartedRuns))
        for key in Set(chartedRuns.flatMap { $0.metrics.map(\.key) }).sorted().prefix(12) {
            let histories = try await tracking.metricHistories(runIDs: chartedRuns.map(\.info.runID), key: key, limit: 400_000)
            var series: [(name: String, history: [Metric])] = []
            for (r, run) in chartedRuns.enumerated() {
                if let history = histories[run.info.runID] { series.append((names[r], history)) }
            }
            historyCharts += Charts.lines(key: key, series: series, options: historyOptions)
        }
        if !historyCharts.isEmpty {
            let more = runs.count > chartedRuns.count ? "<p class=\"hint\">Histories of the first \(chartedRuns.count) runs.</p>" : ""
            historyCharts = "<section><h2>Metric history</h2>\(RunPage.chartControls(historyOptions, prefix: "h", keep: keep(["x", "y", "all"])))\(more)<div class=\"charts\" data-testid=\"history-charts\">\(historyCharts)</div></section>"
        }
        let toggle = ids.map { "runs=\(HTML.query($0))" }.joined(separator: "&amp;") + (showAll ? "" : "&amp;all=1")
        let body = """
            <p class="meta">\(runs.count) runs · <a data-testid="toggle-all" href="?\(toggle)">\(showAll ? "Only differences" : "Show identical rows too")</a></p>
            \(charts.isEmpty ? "" : "<section><h2>Charts</h2>\(charts)</section>")
            \(historyCharts)
            \(table("Parameters", "compare-params", params))
            \(table("Metrics (last value)", "compare-metrics", metrics))
            \(table("Tags", "compare-tags", tags))
            """
        return WebUI.html(HTML.page(title: "Compare \(runs.count) runs", session: session, body: body))
    }
}

/// The comparison charts, as server-drawn SVG.
enum CompareCharts {
    static func scale(_ values: [Double?]) -> (Double) -> Double {
        let present = values.compactMap { $0 }.filter(\.isFinite)
        guard var lo = present.min(), var hi = present.max() else { return { _ in 0.5 } }
        if lo == hi { lo -= 1; hi += 1 }
        return { ($0 - lo) / (hi - lo) }
    }

    /// One vertical axis per column, one path per run through its values (a run missing a value skips that axis).
    static func parallel(columns: [(name: String, values: [Double?])], runs: [String]) -> String {
        let width = max(480.0, Double(columns.count) * 120), height = 260.0, top = 24.0, bottom = 40.0, side = 50.0
        let step = (width - 2 * side) / Double(columns.count - 1)
        let scales = columns.map { scale($0.values) }
        var axes = "", paths = ""
        for (i, column) in columns.enumerated() {
            let x = side + Double(i) * step
            let present = column.values.compactMap { $0 }.filter(\.isFinite)
            axes += "<line x1=\"\(f(x))\" y1=\"\(f(top))\" x2=\"\(f(x))\" y2=\"\(f(height - bottom))\"/>"
            axes += "<text x=\"\(f(x))\" y=\"\(f(height - bottom + 16))\" text-anchor=\"middle\">\(HTML.escape(column.name))</text>"
            axes += "<text x=\"\(f(x + 4))\" y=\"\(f(top - 6))\">\(HTML.number(present.max()))</text>"
        }
        for (r, name) in runs.enumerated() {
            var d = "", pen = "M"
            for (i, column) in columns.enumerated() {
                guard let v = column.values[r], v.isFinite else { pen = "M"; continue }
                let x = side + Double(i) * step, y = top + (1 - scales[i](v)) * (height - top - bottom)
                d += "\(pen)\(f(x)) \(f(y))"
                pen = "L"
            }
            paths += "<path class=\"run-line c\(r % 8)\" data-testid=\"parallel-path\" d=\"\(d)\"><title>\(HTML.escape(name))</title></path>"
        }
        return """
            <figure class="chart wide" data-testid="parallel-chart"><figcaption>Parallel coordinates</figcaption>
            <svg viewBox="0 0 \(Int(width)) \(Int(height))" width="\(Int(width))" height="\(Int(height))" role="img" aria-label="Parallel coordinates">
            <g class="axis" data-testid="parallel-axes">\(axes)</g>\(paths)</svg></figure>
            """
    }

    /// One point per run with both values.
    static func scatter(x: (name: String, values: [Double?]), y: (name: String, values: [Double?]), runs: [String]) -> String {
        let width = 420.0, height = 300.0, left = 56.0, bottom = 40.0, top = 12.0, right = 14.0
        let sx = scale(x.values), sy = scale(y.values)
        var points = ""
        for (r, name) in runs.enumerated() {
            guard let a = x.values[r], let b = y.values[r], a.isFinite, b.isFinite else { continue }
            let px = left + sx(a) * (width - left - right), py = top + (1 - sy(b)) * (height - top - bottom)
            points += "<circle class=\"c\(r % 8)\" data-testid=\"scatter-point\" cx=\"\(f(px))\" cy=\"\(f(py))\" r=\"5\"><title>\(HTML.escape(name)): \(HTML.number(a)), \(HTML.number(b))</title></circle>"
        }
        return """
            <figure class="chart" data-testid="scatter-chart"><figcaption>\(HTML.escape(y.name)) by \(HTML.escape(x.name))</figcaption>
            <svg viewBox="0 0 \(Int(width)) \(Int(height))" width="\(Int(width))" height="\(Int(height))" role="img" aria-label="Scatter">
            <g class="axis"><line x1="\(f(left))" y1="\(f(top))" x2="\(f(left))" y2="\(f(height - bottom))"/>
            <line x1="\(f(left))" y1="\(f(height - bottom))" x2="\(f(width - right))" y2="\(f(height - bottom))"/>
            <text x="\(f(width - right))" y="\(f(height - 10))" text-anchor="end">\(HTML.escape(x.name))</text>
            <text x="\(f(left - 4))" y="\(f(top + 10))" text-anchor="end">\(HTML.number(y.values.compactMap { $0 }.max()))</text></g>\(points)</svg></figure>
            """
    }

    /// z over the x–y plane: z interpolated from the runs (inverse-distance weights, squared, in the plot's
    /// normalized coordinates) on a 24 × 24 grid, each cell filled by which of 8 equal bands of z it falls in
    /// (filled contours, blue low to red high), with the runs on top.
    static func contour(x: (name: String, values: [Double?]), y: (name: String, values: [Double?]),
                        z: (name: String, values: [Double?]), runs: [String]) -> String {
        let sx = scale(x.values), sy = scale(y.values)
        var points: [(x: Double, y: Double, z: Double, run: Int)] = []
        for r in runs.indices {
            guard let a = x.values[r], let b = y.values[r], let c = z.values[r], a.isFinite, b.isFinite, c.isFinite else { continue }
            points.append((sx(a), sy(b), c, r))
        }
        guard points.count >= 3 else {
            return "<p class=\"hint\" data-testid=\"contour-hint\">A contour plot needs three runs with \(HTML.escape(x.name)), \(HTML.escape(y.name)) and \(HTML.escape(z.name)).</p>"
        }
        let width = 420.0, height = 320.0, left = 56.0, bottom = 40.0, top = 12.0, right = 14.0, cells = 24, levels = 8
        let plotW = width - left - right, plotH = height - top - bottom
        let zLow = points.map(\.z).min()!, zHigh = points.map(\.z).max()!
        func band(_ value: Double) -> Int { zHigh == zLow ? levels / 2 : min(levels - 1, Int((value - zLow) / (zHigh - zLow) * Double(levels))) }
        func colour(_ level: Int) -> String { "hsl(\(240 - level * 240 / (levels - 1)), 70%, 55%)" }
        var grid = ""
        for i in 0..<cells {
            for j in 0..<cells {
                let gx = (Double(i) + 0.5) / Double(cells), gy = (Double(j) + 0.5) / Double(cells)
                var weighted = 0.0, total = 0.0, exact: Double?
                for p in points {
                    let d2 = (p.x - gx) * (p.x - gx) + (p.y - gy) * (p.y - gy)
                    if d2 < 1e-12 { exact = p.z; break }
                    weighted += p.z / d2
                    total += 1 / d2
                }
                let value = exact ?? weighted / total
                grid += "<rect data-testid=\"contour-cell\" data-band=\"\(band(value))\" x=\"\(f(left + Double(i) * plotW / Double(cells)))\" "
                    + "y=\"\(f(top + (1 - Double(j + 1) / Double(cells)) * plotH))\" width=\"\(f(plotW / Double(cells) + 0.5))\" "
                    + "height=\"\(f(plotH / Double(cells) + 0.5))\" fill=\"\(colour(band(value)))\"/>"
            }
        }
        let dots = points.map { p in
            "<circle class=\"contour-run\" data-testid=\"contour-point\" cx=\"\(f(left + p.x * plotW))\" cy=\"\(f(top + (1 - p.y) * plotH))\" r=\"4\">"
                + "<title>\(HTML.escape(runs[p.run])): \(HTML.escape(z.name)) = \(HTML.number(p.z))</title></circle>"
        }.joined()
        let legend = (0..<levels).map { level in
            "<li><svg width=\"12\" height=\"10\" aria-hidden=\"true\"><rect width=\"12\" height=\"10\" fill=\"\(colour(level))\"/></svg></li>"
        }.joined()
        return """
            <figure class="chart" data-testid="contour-chart"><figcaption>\(HTML.escape(z.name)) over \(HTML.escape(x.name)) × \(HTML.escape(y.name))</figcaption>
            <svg viewBox="0 0 \(Int(width)) \(Int(height))" width="\(Int(width))" height="\(Int(height))" role="img" aria-label="Contour of \(HTML.escape(z.name))">
            \(grid)\(dots)
            <g class="axis"><line x1="\(f(left))" y1="\(f(top))" x2="\(f(left))" y2="\(f(height - bottom))"/>
            <line x1="\(f(left))" y1="\(f(height - bottom))" x2="\(f(width - right))" y2="\(f(height - bottom))"/>
            <text x="\(f(width - right))" y="\(f(height - 10))" text-anchor="end">\(HTML.escape(x.name))</text>
            <text x="\(f(left - 4))" y="\(f(top + 10))" text-anchor="end">\(HTML.escape(y.name))</text></g></svg>
            <ul class="legend" data-testid="contour-legend"><li>\(HTML.number(zLow))</li>\(legend)<li>\(HTML.number(zHigh))</li></ul></figure>
            """
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }
}
