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

    /// One metric's history by step as an SVG line chart with its axes' end values labelled.
    static func line(key: String, history: [Metric]) -> String {
        let points = downsample(history.map { (Double($0.step), $0.value) })
        guard let first = points.first else {
            return "<p class=\"hint\">\(HTML.escape(key)): no finite values to draw.</p>"
        }
        let xs = points.map(\.x), ys = points.map(\.y)
        var (x0, x1) = (xs.min()!, xs.max()!), (y0, y1) = (ys.min()!, ys.max()!)
        if x0 == x1 { x0 -= 1; x1 += 1 }
        if y0 == y1 { y0 -= abs(y0) * 0.1 + 1; y1 += abs(y1) * 0.1 + 1 }
        let plotW = width - left - right, plotH = height - top - bottom
        func px(_ x: Double) -> String { String(format: "%.1f", left + (x - x0) / (x1 - x0) * plotW) }
        func py(_ y: Double) -> String { String(format: "%.1f", top + (1 - (y - y0) / (y1 - y0)) * plotH) }
        var d = points.count == 1 ? "M\(px(first.x)) \(py(first.y))h0.1" : ""
        if points.count > 1 {
            d = points.enumerated().map { "\($0.offset == 0 ? "M" : "L")\(px($0.element.x)) \(py($0.element.y))" }.joined()
        }
        let bottomY = String(format: "%.1f", height - bottom), rightX = String(format: "%.1f", width - right)
        return """
            <figure class="chart" data-testid="metric-chart" data-key="\(HTML.escape(key))">
            <figcaption>\(HTML.escape(key))</figcaption>
            <svg viewBox="0 0 \(Int(width)) \(Int(height))" width="\(Int(width))" height="\(Int(height))" role="img" aria-label="\(HTML.escape(key)) by step">
            <g class="axis" data-testid="axes"><line x1="\(Int(left))" y1="\(Int(top))" x2="\(Int(left))" y2="\(bottomY)"/>
            <line x1="\(Int(left))" y1="\(bottomY)" x2="\(rightX)" y2="\(bottomY)"/>
            <text x="\(Int(left) - 4)" y="\(Int(top) + 8)" text-anchor="end">\(HTML.number(y1))</text>
            <text x="\(Int(left) - 4)" y="\(bottomY)" text-anchor="end">\(HTML.number(y0))</text>
            <text x="\(Int(left))" y="\(Int(height) - 8)" text-anchor="start">\(HTML.number(x0))</text>
            <text x="\(rightX)" y="\(Int(height) - 8)" text-anchor="end">step \(HTML.number(x1))</text></g>
            <path class="series" data-testid="series" d="\(d)"/>
            </svg></figure>
            """
    }
}
