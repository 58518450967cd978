import Foundation
import KilnCore
import KilnJobs

/// A run's task graph and timeline, drawn as SVG on the server.
enum JobCharts {
    /// Tasks in columns by depth (longest path from a root), edges from each dependency, nodes coloured by the
    /// state of the task's newest attempt.
    static func dag(settings: [String: JSONValue], tasks: [TaskRun]) -> String {
        let keys = JobRun.taskKeys(settings)
        let deps = JobRun.dependencies(settings)
        var depth: [String: Int] = [:]
        func level(_ key: String, _ seen: Set<String>) -> Int {
            if let d = depth[key] { return d }
            let d = (deps[key] ?? []).filter { !seen.contains($0) }.map { level($0, seen.union([key])) + 1 }.max() ?? 0
            depth[key] = d
            return d
        }
        for key in keys { _ = level(key, []) }
        var rowInLevel: [Int: Int] = [:]
        var position: [String: (x: Double, y: Double)] = [:]
        let nodeW = 150.0, nodeH = 34.0, gapX = 60.0, gapY = 18.0, pad = 10.0
        for key in keys {
            let d = depth[key] ?? 0
            let r = rowInLevel[d, default: 0]
            rowInLevel[d] = r + 1
            position[key] = (pad + Double(d) * (nodeW + gapX), pad + Double(r) * (nodeH + gapY))
        }
        let width = pad * 2 + Double((depth.values.max() ?? 0) + 1) * (nodeW + gapX) - gapX
        let height = pad * 2 + Double(rowInLevel.values.max() ?? 1) * (nodeH + gapY) - gapY
        var edges = "", nodes = ""
        for key in keys {
            guard let to = position[key] else { continue }
            for dep in deps[key] ?? [] {
                guard let from = position[dep] else { continue }
                edges += "<path class=\"edge\" data-testid=\"dag-edge\" d=\"M\(f(from.x + nodeW)) \(f(from.y + nodeH / 2))C\(f(from.x + nodeW + gapX / 2)) \(f(from.y + nodeH / 2)) \(f(to.x - gapX / 2)) \(f(to.y + nodeH / 2)) \(f(to.x)) \(f(to.y + nodeH / 2))\"/>"
            }
            let state = JobPages.latest(tasks, key).map { JobPages.state($0.lifeCycle, $0.result) } ?? "NOT_RUN"
            let label = key.count > 20 ? String(key.prefix(19)) + "…" : key
            nodes += """
                <a href="#task-\(HTML.escape(key))"><g class="node" data-testid="dag-node" data-task="\(HTML.escape(key))" data-state="\(state)">
                <rect class="s-\(state.lowercased())" x="\(f(to.x))" y="\(f(to.y))" width="\(f(nodeW))" height="\(f(nodeH))" rx="6"/>
                <text x="\(f(to.x + 10))" y="\(f(to.y + 21))">\(HTML.escape(label))</text><title>\(HTML.escape(key)): \(state)</title></g></a>
                """
        }
        return """
            <svg class="dag" data-testid="dag" viewBox="0 0 \(Int(width)) \(Int(height))" width="\(Int(width))" height="\(Int(height))" role="img" aria-label="Task graph">\(edges)\(nodes)</svg>
            """
    }

    /// One bar per task attempt from its start to its end, on the run's time axis.
    static func timeline(keys: [String], tasks: [TaskRun], start: Int64, end: Int64?) -> String {
        let attempts = tasks.filter { $0.parent == nil }
        guard !attempts.isEmpty else { return "<p class=\"hint\">No task has started.</p>" }
        let stop = max(end ?? 0, attempts.map { $0.endTime ?? $0.startTime }.max() ?? start, start + 1)
        let label = 150.0, width = 720.0, rowH = 22.0
        let scale = (width - label - 10) / Double(stop - start)
        var bars = "", row = 0
        for key in keys {
            let mine = attempts.filter { $0.taskKey == key }
            guard !mine.isEmpty else { continue }
            let y = Double(row) * rowH + 4
            bars += "<text x=\"0\" y=\"\(f(y + 12))\">\(HTML.escape(key))</text>"
            for t in mine {
                let x = label + Double(t.startTime - start) * scale
                let w = max(2, Double((t.endTime ?? stop) - t.startTime) * scale)
                let state = JobPages.state(t.lifeCycle, t.result)
                bars += "<rect class=\"s-\(state.lowercased())\" data-testid=\"timeline-bar\" x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(w))\" height=\"14\" rx=\"2\"><title>\(HTML.escape(key)) attempt \(t.attempt): \(state), \(HTML.duration((t.endTime ?? stop) - t.startTime))</title></rect>"
            }
            row += 1
        }
        let height = Double(row) * rowH + 8
        return "<svg class=\"timeline\" data-testid=\"timeline\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\" aria-label=\"Timeline\">\(bars)</svg>"
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }
}
