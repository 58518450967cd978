import Foundation
import Hummingbird
import KilnCore
import KilnServing
import KilnTracking

/// Serving endpoints: the list, and an endpoint's served entities with their traffic shares, state, request and
/// error counts and latency (p50/p99 since the server started), its inference table, and a box to query it.
struct EndpointPages: Sendable {
    let serving: ServingService

    func list(session: WebSession, only visible: Set<String>? = nil) async throws -> Response {
        let endpoints = try await serving.list().filter { visible?.contains($0.name) ?? true }.sorted { $0.name < $1.name }
        let rows = endpoints.map { e -> String in
            let entities = e.config.servedEntities.map { "\($0.entityName) v\($0.entityVersion)" }.joined(separator: ", ")
            let requests = serving.traffic(name: e.name).values.reduce(0) { $0 + $1.requests }
            return """
                <tr data-testid="endpoint-row"><td><a href="/ui/endpoints/\(HTML.segment(e.name))">\(HTML.escape(e.name))</a></td>
                <td>\(HTML.escape(entities))</td><td class="num">\(requests)</td><td>\(HTML.escape(e.creator ?? ""))</td><td>\(HTML.time(e.lastUpdatedTimestamp))</td></tr>
                """
        }.joined()
        let body = """
            <table data-testid="endpoints"><thead><tr><th>Name</th><th>Serves</th><th>Requests</th><th>Creator</th><th>Updated</th></tr></thead>
            <tbody>\(rows.isEmpty ? "<tr><td colspan=\"5\">No serving endpoints.</td></tr>" : rows)</tbody></table>
            """
        return WebUI.html(HTML.page(title: "Serving endpoints", session: session, body: body))
    }

    func endpoint(name: String, session: WebSession, query: String = "", answer: String = "") async throws -> Response {
        let e = try await serving.get(name: name)
        let traffic = serving.traffic(name: name)
        let states = serving.servingStates(name: name)
        let shares = Dictionary(e.config.routes.map { ($0.servedModelName, $0.trafficPercentage) }, uniquingKeysWith: { a, _ in a })
        func seconds(_ s: Double?) -> String { s.map { $0 < 1 ? String(format: "≤ %g ms", $0 * 1000) : String(format: "≤ %g s", $0) } ?? "" }
        let rows = e.config.servedEntities.map { entity -> String in
            let t = traffic[entity.name]
            let share = e.config.shadows.contains(entity.name) ? "shadow" : shares[entity.name].map { "\($0)%" } ?? (e.config.routes.isEmpty ? "100%" : "0%")
            return """
                <tr data-testid="entity-row" data-entity="\(HTML.escape(entity.name))"><td>\(HTML.escape(entity.name))</td>
                <td><a href="/ui/models/\(HTML.segment(entity.entityName))/versions/\(HTML.segment(entity.entityVersion))">\(HTML.escape(entity.entityName)) v\(HTML.escape(entity.entityVersion))</a></td>
                <td class="num" data-testid="traffic-share">\(share)</td><td>\(HTML.escape(entity.workloadSize))\(entity.scaleToZeroEnabled ? ", scales to zero" : "")</td>
                <td>\(HTML.escape(states[entity.name] ?? "not loaded"))</td>
                <td class="num" data-testid="requests">\(t?.requests ?? 0)</td><td class="num" data-testid="errors">\(t?.errors ?? 0)</td>
                <td class="num">\(seconds(t?.p50))</td><td class="num">\(seconds(t?.p99))</td></tr>
                """
        }.joined()
        let charts = Self.trafficCharts(serving.trafficHistory(name: name))
        var capture = ""
        if let c = e.config.capture, c.enabled {
            let table = "\(c.tableNamePrefix)_payload"
            capture = "<p>Requests are captured in <a data-testid=\"inference-table\" href=\"/ui/data/\(HTML.segment(c.catalogName))/\(HTML.segment(c.schemaName))/\(HTML.segment(table))\">\(HTML.escape("\(c.catalogName).\(c.schemaName).\(table)"))</a>.</p>"
        }
        let example = query.isEmpty ? "{\"dataframe_records\": [{}]}" : query
        let body = """
            <p class="meta">Config version \(e.config.version) · created by \(HTML.escape(e.creator ?? "unknown")) · \(HTML.time(e.creationTimestamp))</p>
            \(e.description.map { "<p>\(HTML.escape($0))</p>" } ?? "")
            <section><h2>Served entities</h2><div class="scroll"><table data-testid="entities"><thead><tr><th>Name</th><th>Model</th><th>Traffic</th>
            <th>Size</th><th>State</th><th>Requests</th><th>Errors</th><th>p50</th><th>p99</th></tr></thead><tbody>\(rows)</tbody></table></div>
            <p class="hint">Counts and latency since the server started; Prometheus has them over time at <code>/metrics</code>.</p>\(capture)</section>
            \(charts)
            <section><h2>Query</h2>
            <form method="post" action="/ui/endpoints/\(HTML.segment(name))/query" class="login sql">
            <input type="hidden" name="csrf" value="\(HTML.escape(session.csrf))">
            <label for="body">Request body (MLflow scoring JSON)</label>
            <textarea id="body" name="body" rows="6" data-testid="query-body" spellcheck="false">\(HTML.escape(example))</textarea>
            <button type="submit" data-testid="query-send">Send</button></form>\(answer)</section>
            """
        return WebUI.html(HTML.page(title: e.name, session: session, body: body))
    }

    /// Requests and errors per minute (minutes without traffic drawn as 0) and p50/p99 latency per minute, over
    /// the last hour the server kept, drawn like metric charts with wall time on x.
    static func trafficCharts(_ history: [ServingService.TrafficMinute]) -> String {
        guard let first = history.first, let last = history.last else {
            return "<section><h2>Traffic over time</h2><p class=\"hint\" data-testid=\"no-traffic\">No requests in the last hour.</p></section>"
        }
        let byStart = Dictionary(history.map { ($0.start, $0) }, uniquingKeysWith: { a, _ in a })
        var requests: [Metric] = [], errors: [Metric] = [], p50: [Metric] = [], p99: [Metric] = []
        for (step, start) in stride(from: first.start, through: last.start, by: 60_000).enumerated() {
            let m = byStart[start]
            requests.append(Metric(key: "requests", value: Double(m?.requests ?? 0), timestamp: start, step: Int64(step)))
            errors.append(Metric(key: "errors", value: Double(m?.errors ?? 0), timestamp: start, step: Int64(step)))
            if let v = m?.p50 { p50.append(Metric(key: "p50", value: v * 1000, timestamp: start, step: Int64(step))) }
            if let v = m?.p99 { p99.append(Metric(key: "p99", value: v * 1000, timestamp: start, step: Int64(step))) }
        }
        var options = Charts.Options()
        options.axis = .time
        let total = history.reduce(0) { $0 + $1.requests }
        return """
            <section><h2>Traffic over time</h2><p class="meta" data-testid="traffic-summary">\(total) requests in \(requests.count) \(requests.count == 1 ? "minute" : "minutes") (per minute, latency ≤ the histogram bucket)</p>
            <div class="charts" data-testid="traffic-charts">
            \(Charts.lines(key: "requests / min", series: [("requests", requests), ("errors", errors)], options: options))
            \(Charts.lines(key: "latency ms", series: [("p50", p50), ("p99", p99)], options: options))
            </div></section>
            """
    }

    /// Scores the query box's body as the invocations API would, and shows the answer.
    func query(name: String, body: String, session: WebSession) async throws -> Response {
        var answer: String
        do {
            let (served, result) = try await serving.invoke(name: name, body: Array(body.utf8))
            let (status, json) = result.json
            answer = "<p class=\"meta\" data-testid=\"query-meta\">\(status) from \(HTML.escape(served))</p><pre class=\"preview\" data-testid=\"query-answer\">\(HTML.escape(String(decoding: json.bytes, as: UTF8.self)))</pre>"
        } catch let error as KilnError where error.code != .resourceDoesNotExist {
            answer = HTML.notice(error.message)
        }
        return try await endpoint(name: name, session: session, query: body, answer: answer)
    }
}
