import Foundation
import KilnTracking

/// Line charts drawn on the server as inline SVG: no script, no library, and a size that does not grow with the
/// history — a long history is cut into buckets, each drawn by its first, smallest, largest and last point, so
/// spikes survive and the path stays at most ~4 × `buckets` points.
enum Charts {
    static let width = 420.0, height = 180.0
    static let left = 52.0, right = 10.0, top = 10.0, bottom = 26.0

    /// At most ~4 × `buckets` points of `points` (sorted by x) keeping each bucket's extremes, NaN dropped.
    static func downsample(_ points: [(x: Double, y: Double)], buckets: Int = 200) -> [(x: Double, y: Double)] {
        let finite = points.filter { $0.y.isFinite }
        guard finite.count > buckets * 4 else { return finite }
        var out: [(x: Double, y: Double)] = []
        let size = Double(finite.count) / Double(buckets)
        for b in 0..<buckets {
            let range = Int(Double(b) * size)..<min(finite.count, Int(Double(b + 1) * size))
            guard !range.isEmpty else { continue }
            let slice = finite[range]
            let low = slice.indices.min { finite[$0].y < finite[$1].y }!
            let high = slice.indices.max { finite[$0].y < finite[$1].y }!
            for i in Set([range.lowerBound, low, high, range.upperBound - 1]).sorted() { out.append(finite[i]) }
        }
        return out
    }

    /// How a run page draws its charts (`?x=step|time|relative&scale=log&smooth=0.6&outliers=hide`).
    struct Options: Equatable {
        enum Axis: String { case step, time, relative }
        var axis = Axis.step
        var logScale = false
        /// Exponential smoothing weight in [0, 0.99] (TensorBoard's, debiased); 0 draws the raw values.
        var smoothing = 0.0
        /// Scale the y axis to the 5th–95th percentile so a few spikes do not flatten the rest.
        var hideOutliers = false

        init() {}

        /// From a page's query; `prefix` names the fields where the page has other `x`/`scale` fields.
        init(query: [String: String], prefix: String = "") {
            axis = query[prefix + "x"].flatMap(Axis.init) ?? .step
            logScale = query[prefix + "scale"] == "log"
            smoothing = min(0.99, max(0, query[prefix + "smooth"].flatMap(Double.init) ?? 0))
            hideOutliers = query[prefix + "outliers"] == "hide"
        }
    }

    /// Exponential moving average with bias correction (the first points are not pulled toward zero).
    static func smooth(_ ys: [Double], weight: Double) -> [Double] {
        guard weight > 0 else { return ys }
        var last = 0.0, out: [Double] = []
        out.reserveCapacity(ys.count)
        for (i, y) in ys.enumerated() {
            last = last * weight + (1 - weight) * y
            out.append(last / (1 - pow(weight, Double(i + 1))))
        }
        return out
    }

    /// One metric's history as an SVG line chart with its axes' end values labelled.
    static func line(key: String, history: [Metric], options: Options = Options()) -> String {
        lines(key: key, series: [(name: key, history: history)], options: options)
    }

    /// One metric's histories from several runs on shared axes: a path per run (`data-testid="series"`, coloured
    /// by position, named in a legend when there are several). On the relative-time axis each run starts at 0.
    static func lines(key: String, series: [(name: String, history: [Metric])], options: Options = Options()) -> String {
        var drawn: [(index: Int, points: [(x: Double, y: Double)])] = []
        for (index, one) in series.enumerated() {
            let start = one.history.map(\.timestamp).min() ?? 0
            func x(_ m: Metric) -> Double {
                switch options.axis {
                case .step: Double(m.step)
                case .time: Double(m.timestamp)
                case .relative: Double(m.timestamp - start) / 1000
                }
            }
            let ordered = one.history.sorted { (x($0), $0.step) < (x($1), $1.step) }
            let points = downsample(ordered.map { (x($0), $0.value) })
            if !points.isEmpty { drawn.append((index, points)) }
        }
        guard !drawn.isEmpty else {
            return "<p class=\"hint\">\(HTML.escape(key)): no finite values to draw.</p>"
        }
        var note = ""
        let logged = options.logScale && drawn.allSatisfy { $0.points.allSatisfy { $0.y > 0 } }
        if options.logScale && !logged { note = "values ≤ 0: linear scale" }
        drawn = drawn.map { one in
            var points = logged ? one.points.map { ($0.x, log10($0.y)) } : one.points
            let smoothed = smooth(points.map(\.y), weight: options.smoothing)
            points = zip(points, smoothed).map { ($0.0.x, $0.1) }
            return (one.index, points)
        }
        let xs = drawn.flatMap { $0.points.map(\.x) }, ys = drawn.flatMap { $0.points.map(\.y) }
        var (x0, x1) = (xs.min()!, xs.max()!), (y0, y1) = (ys.min()!, ys.max()!)
        if options.hideOutliers, ys.count >= 20 {
            let sorted = ys.sorted()
            (y0, y1) = (sorted[sorted.count * 5 / 100], sorted[sorted.count * 95 / 100])
        }
        if x0 == x1 {
            let pad = options.axis == .time ? 30_000.0 : 1  // half a minute of wall time, else one unit
            x0 -= pad
            x1 += pad
        }
        if y0 == y1 {
            // One value: from 0 for a non-negative one (a latency is never drawn below zero), else ± a margin.
            if y0 >= 0, !logged { (y0, y1) = (0, y1 > 0 ? y1 * 1.25 : 1) } else { y0 -= abs(y0) * 0.1 + 1; y1 += abs(y1) * 0.1 + 1 }
        }
        let plotW = width - left - right, plotH = height - top - bottom
        func px(_ x: Double) -> String { String(format: "%.1f", left + (x - x0) / (x1 - x0) * plotW) }
        func py(_ y: Double) -> String { String(format: "%.1f", top + (1 - (min(max(y, y0), y1) - y0) / (y1 - y0)) * plotH) }
        let several = series.count > 1
        // Short series get a dot per point, so one or two values are visible, not only a hairline.
        var dots = ""
        for (index, points) in drawn where points.count <= 30 {
            let colour = several ? "c\(index % 8)" : "accent"
            dots += points.map { "<circle class=\"dot \(colour)\" cx=\"\(px($0.x))\" cy=\"\(py($0.y))\" r=\"2.5\"/>" }.joined()
        }
        var paths = "", legend = ""
        for (index, points) in drawn {
            let d = points.count == 1 ? "M\(px(points[0].x)) \(py(points[0].y))h0.1"
                : points.enumerated().map { "\($0.offset == 0 ? "M" : "L")\(px($0.element.x)) \(py($0.element.y))" }.joined()
            let name = HTML.escape(series[index].name)
            paths += "<path class=\"series\(several ? " run-line c\(index % 8)" : "")\" data-testid=\"series\" data-name=\"\(name)\" d=\"\(d)\"><title>\(name)</title></path>"
            if several { legend += "<li data-testid=\"legend-item\"><svg width=\"14\" height=\"4\" aria-hidden=\"true\"><line class=\"run-line c\(index % 8)\" x1=\"0\" y1=\"2\" x2=\"14\" y2=\"2\"/></svg> \(name)</li>" }
        }
        func yLabel(_ v: Double) -> String { logged ? HTML.number(pow(10, v)) : HTML.number(v) }
        func xLabel(_ v: Double) -> String {
            switch options.axis {
            case .step: HTML.number(v)
            case .time: HTML.time(Int64(v))
            case .relative: HTML.duration(Int64(v * 1000))
            }
        }
        let bottomY = String(format: "%.1f", height - bottom), rightX = String(format: "%.1f", width - right)
        let axisName = options.axis == .step ? "step" : options.axis == .time ? "time" : "since start"
        return """
            <figure class="chart" data-testid="metric-chart" data-key="\(HTML.escape(key))" data-axis="\(options.axis.rawValue)" \
            data-scale="\(logged ? "log" : "linear")" data-smooth="\(options.smoothing)">
            <figcaption>\(HTML.escape(key))\(note.isEmpty ? "" : " <span class=\"hint\">(\(note))</span>")</figcaption>
            <svg viewBox="0 0 \(Int(width)) \(Int(height))" width="\(Int(width))" height="\(Int(height))" role="img" aria-label="\(HTML.escape(key)) by \(axisName)">
            <g class="axis" data-testid="axes"><line x1="\(Int(left))" y1="\(Int(top))" x2="\(Int(left))" y2="\(bottomY)"/>
            <line x1="\(Int(left))" y1="\(bottomY)" x2="\(rightX)" y2="\(bottomY)"/>
            <text x="\(Int(left) - 4)" y="\(Int(top) + 8)" text-anchor="end">\(yLabel(y1))</text>
            <text x="\(Int(left) - 4)" y="\(bottomY)" text-anchor="end">\(yLabel(y0))</text>
            <text x="\(Int(left))" y="\(Int(height) - 8)" text-anchor="start">\(xLabel(x0))</text>
            <text x="\(rightX)" y="\(Int(height) - 8)" text-anchor="end" data-testid="x-label">\(axisName) \(xLabel(x1))</text></g>
            \(paths)\(dots)
            </svg>\(legend.isEmpty ? "" : "<ul class=\"legend\">\(legend)</ul>")</figure>
            """
    }
}
