import Foundation
import Hummingbird
import KilnCore
import KilnJobs
import KilnPermissions
import KilnPlatform

/// Jobs API 2.1/2.2 runs, as databricks-sdk calls them: run-now, runs/submit, runs/get (what `run_now(...).result()`
/// polls), runs/list, runs/cancel, runs/cancel-all, runs/delete, runs/get-output, runs/export, runs/repair.
struct JobRunRoutes: Sendable {
    let runs: JobRunner
    let permissions: WorkspacePermissions

    func register(on router: Router<KilnRequestContext>) {
        MessageRoute.register([
            MessageRoute(.post, "jobs/run-now", runNow),
            MessageRoute(.post, "jobs/runs/submit", submit),
            MessageRoute(.get, "jobs/runs/get", get),
            MessageRoute(.get, "jobs/runs/list", list),
            MessageRoute(.post, "jobs/runs/cancel", cancel),
            MessageRoute(.post, "jobs/runs/cancel-all", cancelAll),
            MessageRoute(.post, "jobs/runs/delete", delete),
            MessageRoute(.get, "jobs/runs/get-output", output),
            MessageRoute(.get, "jobs/runs/export", export),
            MessageRoute(.post, "jobs/runs/repair", repair),
        ], prefixes: ["/api/2.1/", "/api/2.2/"], on: router)
    }

    func runNow(_ m: RequestMessage) async throws -> Response {
        var request = JobRunner.RunRequest(jobID: try JobRoutes.jobID(m))
        request.jobParameters = try JSONFields(m.fields).map("job_parameters")
        request.idempotencyToken = try m.string("idempotency_token")
        request.only = m.fields["only"] == nil ? nil : try m.strings("only")
        if case .object(let q)? = m.fields["queue"], case .bool(let enabled)? = q["enabled"] { request.queue = enabled }
        for key in ["python_params", "notebook_params"] where m.fields[key] != nil { request.overrides[key] = m.fields[key] }
        request.creator = m.principal
        let (id, number) = try await runs.runNow(request)
        return .json { w in
            w.field("run_id", id)
            w.field("number_in_job", number)
        }
    }

    func submit(_ m: RequestMessage) async throws -> Response {
        var settings = m.fields
        settings["idempotency_token"] = nil
        try JobRoutes.checkRunAs(settings, m.caller)
        let id = try await runs.submit(settings: settings, creator: m.principal, idempotencyToken: try m.string("idempotency_token"))
        return .json { w in w.field("run_id", id) }
    }

    func get(_ m: RequestMessage) async throws -> Response {
        let (run, tasks) = try await runs.details(runID: try Self.runID(m))
        return .json(value: JobWire.run(run, tasks: tasks, includeTasks: true))
    }

    func list(_ m: RequestMessage) async throws -> Response {
        let limit = Int(try m.int64("limit") ?? 25)
        guard (1...100).contains(limit) else { throw KilnError.invalid("limit must be between 1 and 100") }
        let offset = try m.string("page_token").map { token -> Int in
            guard let n = Int(token), n >= 0 else { throw KilnError.invalid("page_token '\(token)' is not one this server gave") }
            return n
        } ?? Int(try m.int64("offset") ?? 0)
        let activeOnly = try m.bool("active_only") ?? false, completedOnly = try m.bool("completed_only") ?? false
        guard !(activeOnly && completedOnly) else { throw KilnError.invalid("active_only and completed_only cannot both be true") }
        let expand = try m.bool("expand_tasks") ?? false
        let visible = try await permissions.visibleIDs(m.caller, .jobs).map {
            RunVisibility(jobs: Set($0.compactMap { Int64($0) }), submitter: m.principal ?? "")
        }
        let page = try await runs.list(jobID: try m.int64("job_id"), activeOnly: activeOnly, completedOnly: completedOnly,
                                       runType: try m.string("run_type"), from: try m.int64("start_time_from"), to: try m.int64("start_time_to"),
                                       limit: limit + 1, offset: offset, expandTasks: expand, visible: visible)
        let hasMore = page.count > limit
        return .json { w in
            w.key("runs")
            w.array { w in for (run, tasks) in page.prefix(limit) { w.raw(JobWire.run(run, tasks: tasks, includeTasks: expand).json) } }
            w.field("has_more", hasMore)
            if hasMore { w.field("next_page_token", String(offset + limit)) }
        }
    }

    func cancel(_ m: RequestMessage) async throws -> Response {
        try await runs.cancel(runID: try Self.runID(m))
        return .json { _ in }
    }

    func cancelAll(_ m: RequestMessage) async throws -> Response {
        try await runs.cancelAll(jobID: try JobRoutes.jobID(m))
        return .json { _ in }
    }

    func delete(_ m: RequestMessage) async throws -> Response {
        try await runs.delete(runID: try Self.runID(m))
        return .json { _ in }
    }

    func output(_ m: RequestMessage) async throws -> Response {
        let output = try await runs.output(taskRunID: try Self.runID(m))
        return .json(value: JobWire.output(output))
    }

    func export(_ m: RequestMessage) async throws -> Response {
        let output = try await runs.output(taskRunID: try Self.runID(m))
        return .json { w in
            w.key("views")
            w.array { w in
                if let notebook = output.notebook {
                    w.object { w in
                        w.field("content", notebook)
                        w.field("name", output.taskRun.taskKey)
                        w.field("type", "NOTEBOOK")
                    }
                }
            }
        }
    }

    func repair(_ m: RequestMessage) async throws -> Response {
        let id = try await runs.repair(runID: try Self.runID(m), rerunTasks: try m.strings("rerun_tasks"),
                                       rerunAllFailed: try m.bool("rerun_all_failed_tasks") ?? false,
                                       rerunDependents: try m.bool("rerun_dependent_tasks") ?? false,
                                       latestRepairID: try m.int64("latest_repair_id"), jobParameters: try JSONFields(m.fields).map("job_parameters"))
        return .json { w in w.field("repair_id", id) }
    }

    /// `POST /api/2.0/kiln/test/clock {"now_ms"}` (only with `KILN_TEST_CLOCK=1`): moves the server's clock, so
    /// schedules can be tested without waiting for them.
    static func registerTestClock(_ clock: AdjustableClock, runs: JobRunner, on router: Router<KilnRequestContext>) {
        MessageRoute.register([MessageRoute(.post, "test/clock") { m in
            guard let now = try m.int64("now_ms") else { throw KilnError.invalid("Missing now_ms") }
            clock.set(now)
            let started = try await runs.tick()
            return .json { w in
                w.key("started_run_ids")
                w.array { w in for id in started { w.value(id) } }
            }
        }], prefixes: ["/api/2.0/kiln/"], on: router)
    }

    static func runID(_ m: RequestMessage) throws -> Int64 {
        guard let id = try m.int64("run_id") else { throw KilnError.invalid("Missing run_id") }
        return id
    }
}

/// The Run, RunTask and RunOutput objects of the Jobs API.
enum JobWire {
    static func number(_ v: Int64?) -> JSONValue { v.map { .number(String($0)) } ?? .null }

    static func state(_ life: LifeCycleState, _ result: ResultState?, _ message: String) -> (JSONValue, JSONValue) {
        var state: [String: JSONValue] = ["life_cycle_state": .string(life.rawValue), "state_message": .string(message),
                                          "user_cancelled_or_timedout": .bool(result == .canceled || result == .timedOut)]
        if let result { state["result_state"] = .string(result.rawValue) }
        let v2: String
        switch life {
        case .queued: v2 = "QUEUED"
        case .pending: v2 = "PENDING"
        case .running: v2 = "RUNNING"
        case .terminating: v2 = "TERMINATING"
        case .blocked: v2 = "BLOCKED"
        case .waitingForRetry: v2 = "WAITING"
        default: v2 = "TERMINATED"
        }
        var status: [String: JSONValue] = ["state": .string(v2)]
        if let result {
            let code: String, type: String
            switch result {
            case .success, .successWithFailures: (code, type) = ("SUCCESS", "SUCCESS")
            case .canceled, .upstreamCanceled: (code, type) = ("USER_CANCELED", "SUCCESS")
            case .maximumConcurrentRunsReached: (code, type) = ("MAX_CONCURRENT_RUNS_EXCEEDED", "CLIENT_ERROR")
            case .excluded, .disabled: (code, type) = ("SKIPPED", "SUCCESS")
            default: (code, type) = (life == .internalError ? "INTERNAL_ERROR" : "RUN_EXECUTION_ERROR", life == .internalError ? "INTERNAL_ERROR" : "CLIENT_ERROR")
            }
            status["termination_details"] = .object(["code": .string(code), "type": .string(type), "message": .string(message)])
        }
        return (.object(state), .object(status))
    }

    static func run(_ run: JobRun, tasks: [TaskRun], includeTasks: Bool) -> JSONValue {
        let (state, status) = Self.state(run.lifeCycle, run.result, run.message)
        let end = run.endTime ?? 0
        let duration = run.endTime.map { $0 - run.startTime } ?? 0
        var o: [String: JSONValue] = [
            "run_id": number(run.runID), "job_id": number(run.jobID), "number_in_job": number(run.numberInJob), "original_attempt_run_id": number(run.runID),
            "run_name": .string(run.runName), "run_type": .string(run.runType), "trigger": .string(run.trigger), "creator_user_name": run.creator.map(JSONValue.string) ?? .null,
            "start_time": number(run.startTime), "end_time": number(end), "setup_duration": .number("0"), "cleanup_duration": .number("0"),
            "execution_duration": number(max(0, duration - run.queueDuration)), "run_duration": number(duration), "queue_duration": number(run.queueDuration),
            "state": state, "status": status, "attempt_number": .number("0"), "run_page_url": .string("/#job/\(run.jobID ?? 0)/run/\(run.runID)"),
            "job_parameters": .array(run.parameters.sorted { $0.key < $1.key }.map { .object(["name": .string($0.key), "value": .string($0.value)]) }),
        ]
        if let slot = run.scheduleSlot { o["schedule_slot"] = number(slot) }
        if includeTasks {
            var latest: [String: TaskRun] = [:]
            for t in tasks where t.parent == nil { latest[t.taskKey] = t }
            var order = run.tasks.compactMap { task -> String? in if case .string(let k)? = task["task_key"] { return k } else { return nil } }
            order = order.filter { latest[$0] != nil }
            o["tasks"] = .array(order.map { Self.task(latest[$0]!) })
            var history: [JSONValue] = [.object(["type": .string("ORIGINAL"), "start_time": number(run.startTime),
                                                 "task_run_ids": .array(tasks.filter { $0.repairID == nil && $0.parent == nil }.map { number($0.taskRunID) })])]
            for repair in run.repairs {
                var entry = repair
                entry["id"] = repair["repair_id"]
                let id: Int64? = { if case .number(let n)? = repair["repair_id"] { return Int64(n) } else { return nil } }()
                entry["task_run_ids"] = .array(tasks.filter { $0.repairID == id && $0.parent == nil }.map { number($0.taskRunID) })
                history.append(.object(entry))
            }
            o["repair_history"] = .array(history)
        }
        return .object(o)
    }

    static func task(_ t: TaskRun) -> JSONValue {
        var o = t.task
        let (state, status) = Self.state(t.lifeCycle, t.result, t.message)
        o["run_id"] = number(t.taskRunID)
        o["attempt_number"] = .number(String(t.attempt))
        o["state"] = state
        o["status"] = status
        o["start_time"] = number(t.startTime)
        o["end_time"] = number(t.endTime ?? 0)
        o["execution_duration"] = number(t.endTime.map { $0 - t.startTime } ?? 0)
        o["run_duration"] = number(t.endTime.map { $0 - t.startTime } ?? 0)
        o["setup_duration"] = .number("0")
        o["cleanup_duration"] = .number("0")
        if case .object(var c)? = o["condition_task"], let outcome = t.info["outcome"] {
            c["outcome"] = outcome
            o["condition_task"] = .object(c)
        }
        if case .object(var f)? = o["for_each_task"], let stats = t.info["iterations"] {
            f["stats"] = .object(["task_run_stats": stats])
            o["for_each_task"] = .object(f)
        }
        if let repair = t.repairID { o["repair_id"] = number(repair) }
        // Kiln extension: the versions the task's libraries resolved to.
        if let libraries = t.info["libraries"] { o["resolved_libraries"] = libraries }
        return .object(o)
    }

    static func output(_ output: JobRunner.TaskOutput) -> JSONValue {
        let t = output.taskRun
        var o: [String: JSONValue] = ["metadata": .object(Self.runMetadata(output))]
        if let logs = output.logs {
            o["logs"] = .string(logs)
            o["logs_truncated"] = .bool(output.logsTruncated)
        }
        if case .string(let result)? = t.info["notebook_result"] {
            o["notebook_output"] = .object(["result": .string(result), "truncated": .bool(false)])
        } else if t.task["notebook_task"] != nil {
            o["notebook_output"] = .object([:])
        }
        if let error = t.info["error"], t.result != .success { o["error"] = error }
        if let trace = t.info["error_trace"], t.result != .success { o["error_trace"] = trace }
        if let sql = t.info["sql_output"] { o["sql_output"] = .object(["query_output": sql]) }
        if let child = t.info["run_job_run_id"] { o["run_job_output"] = .object(["run_id": child]) }
        // Kiln extension: the task values the task set.
        if !t.values.isEmpty { o["task_values"] = .object(t.values) }
        if let outcome = t.info["outcome"] { o["condition_outcome"] = outcome }
        return .object(o)
    }

    static func runMetadata(_ output: JobRunner.TaskOutput) -> [String: JSONValue] {
        guard case .object(var o) = run(output.run, tasks: [], includeTasks: false) else { return [:] }
        let t = output.taskRun
        let (state, status) = Self.state(t.lifeCycle, t.result, t.message)
        o["run_id"] = number(t.taskRunID)
        o["task_key"] = .string(t.taskKey)
        o["attempt_number"] = .number(String(t.attempt))
        o["state"] = state
        o["status"] = status
        o["start_time"] = number(t.startTime)
        o["end_time"] = number(t.endTime ?? 0)
        o["tasks"] = .array([task(t)])
        return o
    }
}

/// `/api/2.0/notification-destinations` as databricks-sdk's `w.notification_destinations` calls it.
struct NotificationDestinationRoutes: Sendable {
    let destinations: NotificationDestinations

    func register(on router: Router<KilnRequestContext>) {
        MessageRoute.register([
            MessageRoute(.post, "notification-destinations", create),
            MessageRoute(.get, "notification-destinations", list),
            MessageRoute(.get, "notification-destinations/{id}", get),
            MessageRoute(.patch, "notification-destinations/{id}", update),
            MessageRoute(.delete, "notification-destinations/{id}", delete),
        ], prefixes: ["/api/2.0/"], on: router)
    }

    static func value(_ d: NotificationDestinations.Destination) -> JSONValue {
        .object(["id": .string(d.id), "display_name": .string(d.displayName), "destination_type": .string(d.type), "config": .object(d.publicConfig)])
    }

    func create(_ m: RequestMessage) async throws -> Response {
        guard case .object(let config)? = m.fields["config"] else { throw KilnError.invalid("Missing config") }
        return .json(value: Self.value(try await destinations.create(displayName: try m.requireString("display_name"), config: config)))
    }

    func list(_ m: RequestMessage) async throws -> Response {
        let size = Int(try m.int64("page_size") ?? 100)
        guard (1...1000).contains(size) else { throw KilnError.invalid("page_size must be between 1 and 1000") }
        let offset = try m.string("page_token").map { token -> Int in
            guard let n = Int(token), n >= 0 else { throw KilnError.invalid("page_token '\(token)' is not one this server gave") }
            return n
        } ?? 0
        let all = try await destinations.list()
        let page = all.dropFirst(offset).prefix(size)
        var out: [String: JSONValue] = ["results": .array(page.map { .object(["id": .string($0.id), "display_name": .string($0.displayName),
                                                                              "destination_type": .string($0.type)]) })]
        if offset + page.count < all.count { out["next_page_token"] = .string(String(offset + page.count)) }
        return .json(value: .object(out))
    }

    func get(_ m: RequestMessage) async throws -> Response {
        .json(value: Self.value(try await destinations.get(try m.requireString("id"))))
    }

    func update(_ m: RequestMessage) async throws -> Response {
        var config: [String: JSONValue]?
        if case .object(let c)? = m.fields["config"] { config = c }
        return .json(value: Self.value(try await destinations.update(try m.requireString("id"), displayName: try m.string("display_name"), config: config)))
    }

    func delete(_ m: RequestMessage) async throws -> Response {
        try await destinations.delete(try m.requireString("id"))
        return .json { _ in }
    }
}
