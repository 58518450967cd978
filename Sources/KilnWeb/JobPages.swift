import Foundation
import Hummingbird
import KilnCore
import KilnJobs

/// Jobs: the list, a job's run matrix (tasks × recent runs, coloured by state, bars by duration) with run-now,
/// and a run's DAG, timeline and per-task output.
struct JobPages: Sendable {
    let jobs: JobsService
    let runner: JobRunner
    static let matrixRuns = 20

    func list(session: WebSession, only visible: Set<Int64>? = nil) async throws -> Response {
        let (page, _) = try await jobs.list(limit: 100, offset: 0, only: visible)
        var rows = ""
        for job in page {
            let latest = try await runner.list(jobID: job.jobID, activeOnly: false, completedOnly: false, runType: nil, from: nil, to: nil,
                                               limit: 1, offset: 0, expandTasks: false).first?.0
            rows += """
                <tr data-testid="job-row"><td><a href="/ui/jobs/\(job.jobID)">\(HTML.escape(Self.name(job)))</a></td><td class="num">\(job.jobID)</td>
                <td class="num">\(JobRun.taskCount(job.settings))</td><td>\(HTML.escape(Self.schedule(job.settings)))</td>
                <td>\(latest.map { Self.badge(Self.state($0.lifeCycle, $0.result)) } ?? "")</td><td>\(HTML.escape(job.creator ?? ""))</td></tr>
                """
        }
        let body = """
            <table data-testid="jobs"><thead><tr><th>Name</th><th>ID</th><th>Tasks</th><th>Schedule</th><th>Latest run</th><th>Creator</th></tr></thead>
            <tbody>\(rows.isEmpty ? "<tr><td colspan=\"6\">No jobs yet.</td></tr>" : rows)</tbody></table>
            """
        return WebUI.html(HTML.page(title: "Jobs", session: session, body: body))
    }

    func job(id: Int64, session: WebSession, notice: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        let job = try await jobs.get(id: id)
        let runs = try await runner.list(jobID: id, activeOnly: false, completedOnly: false, runType: nil, from: nil, to: nil,
                                         limit: Self.matrixRuns, offset: 0, expandTasks: true).reversed()
        let keys = JobRun.taskKeys(job.settings)
        let longest = max(1, runs.flatMap { $0.1 }.map { ($0.endTime ?? $0.startTime) - $0.startTime }.max() ?? 1)
        var head = "<th>Task</th>"
        for (run, _) in runs {
            head += "<th class=\"run-col\"><a href=\"/ui/jobs/\(id)/runs/\(run.runID)\" title=\"\(HTML.escape(HTML.time(run.startTime)))\">#\(run.numberInJob)</a><br>\(Self.badge(Self.state(run.lifeCycle, run.result)))</th>"
        }
        var rows = ""
        for key in keys {
            rows += "<tr data-testid=\"matrix-row\" data-task=\"\(HTML.escape(key))\"><th>\(HTML.escape(key))</th>"
            for (run, tasks) in runs {
                guard let t = Self.latest(tasks, key) else { rows += "<td></td>"; continue }
                let ms = (t.endTime ?? t.startTime) - t.startTime
                let width = max(4, Int(Double(ms) / Double(longest) * 60))
                let state = Self.state(t.lifeCycle, t.result)
                rows += "<td class=\"cell\" data-testid=\"matrix-cell\" data-state=\"\(state)\"><a href=\"/ui/jobs/\(id)/runs/\(run.runID)#task-\(HTML.escape(key))\" title=\"\(HTML.escape(key)): \(state), \(HTML.duration(ms))\">\(Self.bar(width, state))</a></td>"
            }
            rows += "</tr>"
        }
        let body = """
            <p class="meta">Job \(id) · \(HTML.escape(Self.schedule(job.settings).isEmpty ? "no schedule" : Self.schedule(job.settings))) · created by \(HTML.escape(job.creator ?? "unknown"))</p>
            \(notice.map { HTML.notice($0) } ?? "")
            <form method="post" action="/ui/jobs/\(id)/run-now" class="search"><input type="hidden" name="csrf" value="\(HTML.escape(session.csrf))">
            \(Self.parameterFields(job.settings))
            <button type="submit" data-testid="run-now">Run now</button></form>
            <section><h2>Recent runs</h2>\(runs.isEmpty ? "<p>No runs yet.</p>" : "<div class=\"scroll\"><table class=\"matrix\" data-testid=\"run-matrix\"><thead><tr>\(head)</tr></thead><tbody>\(rows)</tbody></table></div>")</section>
            """
        return WebUI.html(HTML.page(title: Self.name(job), session: session, body: body), status: status)
    }

    func run(jobID: Int64, runID: Int64, session: WebSession) async throws -> Response {
        let (run, tasks) = try await runner.details(runID: runID)
        guard run.jobID == jobID else { throw KilnError.notFound("Run \(runID) is not a run of job \(jobID)") }
        let keys = JobRun.taskKeys(run.settings)
        let state = Self.state(run.lifeCycle, run.result)
        var overview = """
            <tr><th>State</th><td data-testid="run-state">\(Self.badge(state))</td></tr>
            <tr><th>Trigger</th><td>\(HTML.escape(run.trigger))</td></tr>
            <tr><th>Started</th><td>\(HTML.time(run.startTime))</td></tr>
            <tr><th>Duration</th><td>\(run.endTime.map { HTML.duration($0 - run.startTime) } ?? "running")</td></tr>
            """
        if !run.message.isEmpty { overview += "<tr><th>Message</th><td>\(HTML.escape(run.message))</td></tr>" }
        if !run.parameters.isEmpty {
            overview += "<tr><th>Parameters</th><td>\(HTML.escape(run.parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")))</td></tr>"
        }
        if !run.repairs.isEmpty { overview += "<tr><th>Repairs</th><td data-testid=\"repairs\">\(run.repairs.count)</td></tr>" }
        var outputs = ""
        for key in keys {
            let attempts = tasks.filter { $0.taskKey == key }
            guard let last = attempts.last else { continue }
            var log = ""
            if let output = try? await runner.output(taskRunID: last.taskRunID) {
                log = output.logs.map { "<pre class=\"preview\" data-testid=\"task-log\">\(HTML.escape($0))</pre>" } ?? ""
            }
            let error: String
            if case .string(let text)? = last.info["error"] { error = HTML.notice(text, testID: "task-error") } else { error = "" }
            outputs += """
                <details id="task-\(HTML.escape(key))" data-testid="task-output" data-task="\(HTML.escape(key))"\(last.result == .success ? "" : " open")>
                <summary>\(HTML.escape(key)) \(Self.badge(Self.state(last.lifeCycle, last.result))) · \(attempts.count) \(attempts.count == 1 ? "attempt" : "attempts")</summary>
                \(error)\(log.isEmpty ? "<p class=\"hint\">No output.</p>" : log)</details>
                """
        }
        var repair = ""
        if run.lifeCycle.isFinal, let result = run.result, result != .success {
            repair = """
                <form method="post" action="/ui/jobs/\(jobID)/runs/\(runID)/repair" class="search"><input type="hidden" name="csrf" value="\(HTML.escape(session.csrf))">
                <button type="submit" data-testid="repair">Repair: rerun failed tasks and what depends on them</button></form>
                """
        }
        let body = """
            <p class="meta"><a href="/ui/jobs/\(jobID)">\(HTML.escape(run.runName))</a> · run \(run.runID)</p>
            \(repair)
            <section><table class="kv" data-testid="overview">\(overview)</table></section>
            <section><h2>Tasks</h2>\(JobCharts.dag(settings: run.settings, tasks: tasks))</section>
            <section><h2>Timeline</h2>\(JobCharts.timeline(keys: keys, tasks: tasks, start: run.startTime, end: run.endTime))</section>
            <section><h2>Output</h2>\(outputs.isEmpty ? "<p>No task has run.</p>" : outputs)</section>
            """
        return WebUI.html(HTML.page(title: "\(run.runName) #\(run.numberInJob)", session: session, body: body))
    }

    /// Starts a run, with the job parameters the form set (`param:NAME` fields; a blank one keeps its default).
    func runNow(jobID: Int64, form: [String: String] = [:], session: WebSession) async throws -> Response {
        var request = JobRunner.RunRequest(jobID: jobID)
        request.creator = session.principal
        for (field, value) in form where field.hasPrefix("param:") && !value.isEmpty {
            request.jobParameters[String(field.dropFirst(6))] = value
        }
        do {
            let (runID, _) = try await runner.runNow(request)
            return WebUI.redirect("/ui/jobs/\(jobID)/runs/\(runID)")
        } catch let error as KilnError where error.code == .invalidParameterValue {
            return try await job(id: jobID, session: session, notice: error.message, status: .badRequest)
        }
    }

    /// A text field per declared job parameter, its default as the placeholder.
    static func parameterFields(_ settings: [String: JSONValue]) -> String {
        guard case .array(let declared)? = settings["parameters"] else { return "" }
        return declared.compactMap { p -> String? in
            guard case .object(let o) = p, case .string(let name)? = o["name"] else { return nil }
            let fallback = o["default"].map(JSONValue.text) ?? ""
            return "<label for=\"param-\(HTML.escape(name))\">\(HTML.escape(name))</label>"
                + "<input id=\"param-\(HTML.escape(name))\" name=\"param:\(HTML.escape(name))\" placeholder=\"\(HTML.escape(fallback))\" data-testid=\"job-parameter\" data-name=\"\(HTML.escape(name))\">"
        }.joined()
    }

    /// Reruns a finished run's failed tasks and their dependents (the repair the API's `rerun_all_failed_tasks` does).
    func repair(jobID: Int64, runID: Int64) async throws -> Response {
        let (run, _) = try await runner.details(runID: runID)
        guard run.jobID == jobID else { throw KilnError.notFound("Run \(runID) is not a run of job \(jobID)") }
        var latest: Int64?
        if case .number(let id)? = run.repairs.last?["repair_id"] { latest = Int64(id) }
        _ = try await runner.repair(runID: runID, rerunTasks: [], rerunAllFailed: true, rerunDependents: true, latestRepairID: latest, jobParameters: [:])
        return WebUI.redirect("/ui/jobs/\(jobID)/runs/\(runID)")
    }

    // MARK: Helpers

    static func name(_ job: Job) -> String {
        if case .string(let name)? = job.settings["name"], !name.isEmpty { return name }
        return "Job \(job.jobID)"
    }

    static func schedule(_ settings: [String: JSONValue]) -> String {
        guard case .object(let s)? = settings["schedule"], case .string(let cron)? = s["quartz_cron_expression"] else { return "" }
        if case .string(let zone)? = s["timezone_id"] { return "\(cron) (\(zone))" }
        return cron
    }

    /// The newest attempt of a task in a run.
    static func latest(_ tasks: [TaskRun], _ key: String) -> TaskRun? {
        tasks.filter { $0.taskKey == key && $0.parent == nil }.max { ($0.repairID ?? -1, $0.attempt, $0.taskRunID) < ($1.repairID ?? -1, $1.attempt, $1.taskRunID) }
    }

    /// SUCCESS, FAILED, ... when ended; the life-cycle state (RUNNING, PENDING, ...) before that.
    static func state(_ life: LifeCycleState, _ result: ResultState?) -> String { result?.rawValue ?? life.rawValue }

    static func badge(_ state: String) -> String { "<span class=\"badge s-\(state.lowercased())\">\(HTML.escape(state))</span>" }

    /// A duration bar `width` pixels wide, coloured by state (SVG attributes: the CSP allows no inline styles).
    static func bar(_ width: Int, _ state: String) -> String {
        "<svg class=\"bar\" width=\"\(width)\" height=\"10\" aria-hidden=\"true\"><rect class=\"s-\(state.lowercased())\" width=\"\(width)\" height=\"10\" rx=\"2\"/></svg>"
    }
}

extension JobRun {
    static func taskKeys(_ settings: [String: JSONValue]) -> [String] {
        taskList(settings).compactMap { if case .string(let k)? = $0["task_key"] { return k } else { return nil } }
    }

    static func taskCount(_ settings: [String: JSONValue]) -> Int { taskList(settings).count }

    /// Each task's upstream task keys.
    static func dependencies(_ settings: [String: JSONValue]) -> [String: [String]] {
        var out: [String: [String]] = [:]
        for task in taskList(settings) {
            guard case .string(let key)? = task["task_key"] else { continue }
            var deps: [String] = []
            if case .array(let items)? = task["depends_on"] {
                for item in items { if case .object(let o) = item, case .string(let d)? = o["task_key"] { deps.append(d) } }
            }
            out[key] = deps
        }
        return out
    }
}
