import Foundation
import KilnCore
import KilnStore
import Logging
import SQLKit

/// A job run's life cycle (the legacy `state.life_cycle_state` the SDK's waiter polls).
public enum LifeCycleState: String, Sendable, CaseIterable {
    case queued = "QUEUED", pending = "PENDING", running = "RUNNING", terminating = "TERMINATING", terminated = "TERMINATED"
    case skipped = "SKIPPED", internalError = "INTERNAL_ERROR", blocked = "BLOCKED", waitingForRetry = "WAITING_FOR_RETRY"

    /// Whether nothing more will happen to a run or task in this state.
    public var isFinal: Bool { self == .terminated || self == .skipped || self == .internalError }
}

/// How a run or task ended.
public enum ResultState: String, Sendable, CaseIterable {
    case success = "SUCCESS", failed = "FAILED", timedOut = "TIMEDOUT", canceled = "CANCELED", upstreamFailed = "UPSTREAM_FAILED"
    case upstreamCanceled = "UPSTREAM_CANCELED", excluded = "EXCLUDED", successWithFailures = "SUCCESS_WITH_FAILURES"
    case maximumConcurrentRunsReached = "MAXIMUM_CONCURRENT_RUNS_REACHED", disabled = "DISABLED"

    /// Failed in the sense run_if counts: FAILED, TIMEDOUT, UPSTREAM_FAILED.
    var isFailure: Bool { self == .failed || self == .timedOut || self == .upstreamFailed }
    var isCanceled: Bool { self == .canceled || self == .upstreamCanceled }
}

/// One run of a job (or a one-time submitted run): what was run (a snapshot of the settings), with which
/// parameters, and where it stands.
public struct JobRun: Sendable {
    public var runID: Int64
    public var jobID: Int64?
    public var numberInJob: Int64
    public var runName: String
    /// JOB_RUN, SUBMIT_RUN or WORKFLOW_RUN.
    public var runType: String
    /// ONE_TIME, PERIODIC, RETRY, RUN_JOB_TASK, FILE_ARRIVAL, TABLE, CONTINUOUS.
    public var trigger: String
    public var creator: String?
    /// The job settings when the run was created: tasks, parameters, timeouts, notifications.
    public var settings: [String: JSONValue]
    /// Job parameters after defaults and overrides.
    public var parameters: [String: String]
    /// Legacy overrides from run-now: python_params, notebook_params.
    public var overrides: [String: JSONValue]
    public var lifeCycle: LifeCycleState
    public var result: ResultState?
    public var message: String
    public var startTime: Int64
    public var endTime: Int64?
    /// Milliseconds the run waited in the queue.
    public var queueDuration: Int64
    /// Repairs after the original attempt: `{repair_id, start_time, end_time, task_keys[], result_state}`.
    public var repairs: [[String: JSONValue]]
    /// The cron slot (ms) a scheduled run fills; a slot runs at most once per job.
    public var scheduleSlot: Int64?
    /// The job run this run was started from by a `run_job_task` (its task run), if any.
    public var parentTaskRunID: Int64?

    public var tasks: [[String: JSONValue]] { Self.taskList(settings) }

    /// The task definitions of job settings, in order.
    public static func taskList(_ settings: [String: JSONValue]) -> [[String: JSONValue]] {
        if case .array(let items)? = settings["tasks"] { return items.compactMap { if case .object(let o) = $0 { return o } else { return nil } } }
        return []
    }

    /// The latest repair: its id and the task keys it reruns (nil for the original attempt).
    var currentRepair: (id: Int64, keys: Set<String>)? {
        guard let last = repairs.last, case .number(let id)? = last["repair_id"], let repairID = Int64(id),
              case .array(let keys)? = last["task_keys"] else { return nil }
        return (repairID, Set(keys.compactMap { if case .string(let s) = $0 { return s } else { return nil } }))
    }
}

/// One attempt of one task in a run (its own run id, as Databricks gives every task run one).
public struct TaskRun: Sendable {
    public var taskRunID: Int64
    public var runID: Int64
    public var taskKey: String
    public var attempt: Int
    /// The repair that started it (nil: the original attempt).
    public var repairID: Int64?
    public var lifeCycle: LifeCycleState
    public var result: ResultState?
    public var message: String
    public var startTime: Int64
    public var endTime: Int64?
    /// The process group of a process task while it runs.
    public var pid: Int32?
    /// Whether no further retry follows this attempt.
    public var final: Bool
    /// Outputs and details: `values` (task values), `outcome` (condition), `resolved` (parameters after references),
    /// `error`, `error_trace`, `notebook_result`, `sql_output`, `run_job_run_id`, `iterations`, `parent`, `libraries`.
    public var info: [String: JSONValue]
    /// The task definition as it ran.
    public var task: [String: JSONValue]

    public var values: [String: JSONValue] {
        if case .object(let v)? = info["values"] { return v }
        return [:]
    }

    /// The for_each iteration parent, when this is an iteration.
    public var parent: Int64? {
        if case .number(let n)? = info["parent"] { return Int64(n) }
        return nil
    }
}

/// Where job runs and task runs are kept: one row per run and per task attempt, JSON for the rest.
/// Every call runs outside the caller's task, so a canceled run can still record that it was canceled.
public struct JobRunStore: Sendable {
    let store: any KilnDatabase
    var database: ShieldedDatabase { ShieldedDatabase(base: store) }

    init(database: any KilnDatabase) { store = database }

    /// The database, with every call shielded from the caller's cancellation.
    struct ShieldedDatabase: Sendable {
        let base: any KilnDatabase
        func read<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
            try await Task { try await base.read(body) }.value
        }
        func write<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
            try await Task { try await base.write(body) }.value
        }
    }

    public static let migrations = [
        Migration("jobs_0002_runs", [
            """
            CREATE TABLE job_runs (
                run_id BIGINT PRIMARY KEY,
                job_id BIGINT,
                number_in_job BIGINT NOT NULL,
                run_name TEXT NOT NULL,
                run_type VARCHAR(32) NOT NULL,
                trigger_type VARCHAR(32) NOT NULL,
                creator VARCHAR(256),
                settings TEXT NOT NULL,
                parameters TEXT NOT NULL,
                overrides TEXT NOT NULL,
                life_cycle_state VARCHAR(32) NOT NULL,
                result_state VARCHAR(32),
                state_message TEXT NOT NULL,
                start_time BIGINT NOT NULL,
                end_time BIGINT,
                queue_duration BIGINT NOT NULL,
                repairs TEXT NOT NULL,
                schedule_slot BIGINT,
                parent_task_run_id BIGINT,
                idempotency_token VARCHAR(64)
            )
            """,
            "CREATE UNIQUE INDEX job_runs_slot ON job_runs (job_id, schedule_slot)",
            "CREATE UNIQUE INDEX job_runs_idempotency ON job_runs (job_id, idempotency_token)",
            "CREATE INDEX job_runs_state ON job_runs (life_cycle_state)",
            """
            CREATE TABLE job_task_runs (
                task_run_id BIGINT PRIMARY KEY,
                run_id BIGINT NOT NULL,
                task_key VARCHAR(200) NOT NULL,
                attempt_number INTEGER NOT NULL,
                repair_id BIGINT,
                life_cycle_state VARCHAR(32) NOT NULL,
                result_state VARCHAR(32),
                state_message TEXT NOT NULL,
                start_time BIGINT NOT NULL,
                end_time BIGINT,
                pid INTEGER,
                final BOOLEAN NOT NULL,
                info TEXT NOT NULL,
                task TEXT NOT NULL
            )
            """,
            "CREATE INDEX job_task_runs_run ON job_task_runs (run_id, task_run_id)",
            """
            CREATE TABLE job_trigger_state (
                job_id BIGINT PRIMARY KEY,
                state TEXT NOT NULL
            )
            """,
        ]),
        // Tokens task processes call back with: SHA-256 of the token, valid while the run is active.
        Migration("jobs_0005_run_tokens", [
            "CREATE TABLE job_run_tokens (token_hash VARCHAR(64) PRIMARY KEY, run_id BIGINT NOT NULL, created_time BIGINT NOT NULL)",
        ]),
        // Run, task run and repair ids come from the store, so servers sharing it never collide.
        Migration("jobs_0006_run_id_sequence", [
            "CREATE TABLE job_run_sequence (last_id BIGINT NOT NULL)",
            """
            INSERT INTO job_run_sequence (last_id) SELECT CASE WHEN r.m > t.m THEN r.m ELSE t.m END FROM
                (SELECT COALESCE(MAX(run_id), 0) AS m FROM job_runs) r, (SELECT COALESCE(MAX(task_run_id), 0) AS m FROM job_task_runs) t
            """,
        ]),
    ]

    func runTokens() async throws -> [String: Int64] {
        let rows = try await database.read { sql in try await sql.raw("SELECT token_hash, run_id FROM job_run_tokens").all() }
        var out: [String: Int64] = [:]
        for row in rows { out[try row.decode(column: "token_hash", as: String.self)] = try row.decode(column: "run_id", as: Int64.self) }
        return out
    }

    func addRunToken(hash: String, runID: Int64, now: Int64) async throws {
        try await database.write { sql in
            try await sql.raw("INSERT INTO job_run_tokens (token_hash, run_id, created_time) VALUES (\(bind: hash), \(bind: runID), \(bind: now))").run()
        }
    }

    func revokeRunTokens(runID: Int64) async throws {
        try await database.write { sql in try await sql.raw("DELETE FROM job_run_tokens WHERE run_id = \(bind: runID)").run() }
    }

    /// Reserves the next `count` run, task run or repair ids (one sequence for all three) in the store: two servers
    /// on one store never get the same id, and ids are never reused. - Returns: the last id reserved.
    func reserveIDs(_ count: Int64) async throws -> Int64 {
        try await database.write { sql in
            try await sql.raw("UPDATE job_run_sequence SET last_id = last_id + \(bind: count)").run()
            guard let last = try await sql.raw("SELECT last_id FROM job_run_sequence").first()?.decode(column: "last_id", as: Int64.self) else {
                throw KilnError(.internalError, "The job run id sequence is missing")
            }
            return last
        }
    }

    /// Stores a new run; a job's run gets the next number of its job in the same transaction (so two servers never
    /// give two runs one number). - Returns: the run's number in its job.
    /// - Throws: `RESOURCE_ALREADY_EXISTS` when its schedule slot or idempotency token was taken.
    @discardableResult
    func insert(_ run: JobRun, idempotencyToken: String?) async throws -> Int64 {
        try await database.write { sql in
            var number = run.numberInJob
            if let jobID = run.jobID {
                number = try await sql.raw("SELECT COALESCE(MAX(number_in_job), 0) + 1 AS n FROM job_runs WHERE job_id = \(bind: jobID)")
                    .first()?.decode(column: "n", as: Int64.self) ?? 1
            }
            try await sql.raw("""
                INSERT INTO job_runs (run_id, job_id, number_in_job, run_name, run_type, trigger_type, creator, settings, parameters, overrides,
                    life_cycle_state, result_state, state_message, start_time, end_time, queue_duration, repairs, schedule_slot, parent_task_run_id, idempotency_token)
                VALUES (\(bind: run.runID), \(bind: run.jobID), \(bind: number), \(bind: run.runName), \(bind: run.runType), \(bind: run.trigger),
                    \(bind: run.creator), \(bind: JSONValue.object(run.settings).json), \(bind: Self.text(run.parameters)), \(bind: JSONValue.object(run.overrides).json),
                    \(bind: run.lifeCycle.rawValue), \(bind: run.result?.rawValue), \(bind: run.message), \(bind: run.startTime), \(bind: run.endTime),
                    \(bind: run.queueDuration), \(bind: JSONValue.array(run.repairs.map(JSONValue.object)).json), \(bind: run.scheduleSlot),
                    \(bind: run.parentTaskRunID), \(bind: idempotencyToken))
                """).run()
            return number
        }
    }

    /// Writes a run's changing fields.
    func update(_ run: JobRun) async throws {
        try await database.write { sql in try await Self.update(sql, run) }
    }

    static func update(_ sql: any SQLDatabase, _ run: JobRun) async throws {
        try await sql.raw("""
            UPDATE job_runs SET life_cycle_state = \(bind: run.lifeCycle.rawValue), result_state = \(bind: run.result?.rawValue),
                state_message = \(bind: run.message), start_time = \(bind: run.startTime), end_time = \(bind: run.endTime),
                queue_duration = \(bind: run.queueDuration), repairs = \(bind: JSONValue.array(run.repairs.map(JSONValue.object)).json),
                parameters = \(bind: Self.text(run.parameters))
            WHERE run_id = \(bind: run.runID)
            """).run()
    }

    /// Saves `run` (leaving the queue) only if it is still QUEUED in the store: of several servers that launch the
    /// same queued run, exactly one wins it. - Returns: whether this call won it.
    func claim(_ run: JobRun) async throws -> Bool {
        try await database.write { sql in
            let state = try await sql.raw("SELECT life_cycle_state FROM job_runs WHERE run_id = \(bind: run.runID)").first()?
                .decode(column: "life_cycle_state", as: String.self)
            guard state == LifeCycleState.queued.rawValue else { return false }
            try await Self.update(sql, run)
            return true
        }
    }

    func run(_ id: Int64) async throws -> JobRun {
        let rows = try await database.read { sql in try await sql.raw("SELECT * FROM job_runs WHERE run_id = \(bind: id)").all() }
        guard let row = rows.first else { throw KilnError.notFound("Run \(id) does not exist") }
        return try Self.run(row)
    }

    func run(idempotencyToken token: String, jobID: Int64) async throws -> JobRun? {
        let rows = try await database.read { sql in
            try await sql.raw("SELECT * FROM job_runs WHERE job_id = \(bind: jobID) AND idempotency_token = \(bind: token)").all()
        }
        return try rows.first.map(Self.run)
    }

    /// Runs newest first, filtered as `runs/list` asks.
    func runs(jobID: Int64?, activeOnly: Bool, completedOnly: Bool, runType: String?, from: Int64?, to: Int64?, limit: Int, offset: Int,
              visible: RunVisibility? = nil) async throws -> [JobRun] {
        let rows = try await database.read { sql in
            var query = SQLQueryString("SELECT * FROM job_runs WHERE 1 = 1")
            if let visible {
                let jobs = visible.jobs.isEmpty ? [-1] : Array(visible.jobs)
                query = query + " AND (job_id IN (\(binds: jobs)) OR (job_id IS NULL AND creator = \(bind: visible.submitter)))"
            }
            if let jobID { query = query + " AND job_id = \(bind: jobID)" }
            if activeOnly { query = query + " AND life_cycle_state IN ('QUEUED', 'PENDING', 'RUNNING', 'TERMINATING', 'BLOCKED', 'WAITING_FOR_RETRY')" }
            if completedOnly { query = query + " AND life_cycle_state IN ('TERMINATED', 'SKIPPED', 'INTERNAL_ERROR')" }
            if let runType { query = query + " AND run_type = \(bind: runType)" }
            if let from { query = query + " AND start_time >= \(bind: from)" }
            if let to { query = query + " AND start_time < \(bind: to)" }
            query = query + " ORDER BY run_id DESC LIMIT \(bind: limit) OFFSET \(bind: offset)"
            return try await sql.raw(query).all()
        }
        return try rows.map(Self.run)
    }

    /// Runs not yet final (for recovery and concurrency counts).
    func activeRuns() async throws -> [JobRun] {
        try await runs(jobID: nil, activeOnly: true, completedOnly: false, runType: nil, from: nil, to: nil, limit: 1_000_000, offset: 0).reversed()
    }

    func delete(_ runID: Int64) async throws {
        try await database.write { sql in
            try await sql.raw("DELETE FROM job_task_runs WHERE run_id = \(bind: runID)").run()
            try await sql.raw("DELETE FROM job_runs WHERE run_id = \(bind: runID)").run()
        }
    }

    /// Inserts or rewrites a task run.
    func save(_ t: TaskRun) async throws {
        try await database.write { sql in
            try await sql.raw("DELETE FROM job_task_runs WHERE task_run_id = \(bind: t.taskRunID)").run()
            try await sql.raw("""
                INSERT INTO job_task_runs (task_run_id, run_id, task_key, attempt_number, repair_id, life_cycle_state, result_state, state_message,
                    start_time, end_time, pid, final, info, task)
                VALUES (\(bind: t.taskRunID), \(bind: t.runID), \(bind: t.taskKey), \(bind: t.attempt), \(bind: t.repairID), \(bind: t.lifeCycle.rawValue),
                    \(bind: t.result?.rawValue), \(bind: t.message), \(bind: t.startTime), \(bind: t.endTime), \(bind: t.pid), \(bind: t.final),
                    \(bind: JSONValue.object(t.info).json), \(bind: JSONValue.object(t.task).json))
                """).run()
        }
    }

    /// Every task run of a run, in id order.
    func taskRuns(of runID: Int64) async throws -> [TaskRun] {
        let rows = try await database.read { sql in
            try await sql.raw("SELECT * FROM job_task_runs WHERE run_id = \(bind: runID) ORDER BY task_run_id").all()
        }
        return try rows.map(Self.taskRun)
    }

    func taskRun(_ id: Int64) async throws -> TaskRun? {
        let rows = try await database.read { sql in try await sql.raw("SELECT * FROM job_task_runs WHERE task_run_id = \(bind: id)").all() }
        return try rows.first.map(Self.taskRun)
    }

    func triggerState(_ jobID: Int64) async throws -> [String: JSONValue]? {
        let rows = try await database.read { sql in try await sql.raw("SELECT state FROM job_trigger_state WHERE job_id = \(bind: jobID)").all() }
        guard let text = try rows.first?.decode(column: "state", as: String.self), case .object(let o) = try JSONValue.parse(Array(text.utf8)) else { return nil }
        return o
    }

    func setTriggerState(_ jobID: Int64, _ state: [String: JSONValue]) async throws {
        try await database.write { sql in
            try await sql.raw("DELETE FROM job_trigger_state WHERE job_id = \(bind: jobID)").run()
            try await sql.raw("INSERT INTO job_trigger_state (job_id, state) VALUES (\(bind: jobID), \(bind: JSONValue.object(state).json))").run()
        }
    }

    static func text(_ map: [String: String]) -> String { JSONValue.object(map.mapValues(JSONValue.string)).json }

    static func object(_ row: any SQLRow, _ column: String) throws -> [String: JSONValue] {
        let text = try row.decode(column: column, as: String.self)
        guard case .object(let o) = try JSONValue.parse(Array(text.utf8)) else { return [:] }
        return o
    }

    static func run(_ row: any SQLRow) throws -> JobRun {
        var parameters: [String: String] = [:]
        for (k, v) in try object(row, "parameters") { if case .string(let s) = v { parameters[k] = s } }
        var repairs: [[String: JSONValue]] = []
        if case .array(let items) = try JSONValue.parse(Array(try row.decode(column: "repairs", as: String.self).utf8)) {
            repairs = items.compactMap { if case .object(let o) = $0 { return o } else { return nil } }
        }
        return JobRun(
            runID: try row.decode(column: "run_id", as: Int64.self), jobID: try row.decode(column: "job_id", as: Int64?.self),
            numberInJob: try row.decode(column: "number_in_job", as: Int64.self), runName: try row.decode(column: "run_name", as: String.self),
            runType: try row.decode(column: "run_type", as: String.self), trigger: try row.decode(column: "trigger_type", as: String.self),
            creator: try row.decode(column: "creator", as: String?.self), settings: try object(row, "settings"), parameters: parameters,
            overrides: try object(row, "overrides"),
            lifeCycle: LifeCycleState(rawValue: try row.decode(column: "life_cycle_state", as: String.self)) ?? .internalError,
            result: try row.decode(column: "result_state", as: String?.self).flatMap(ResultState.init(rawValue:)),
            message: try row.decode(column: "state_message", as: String.self), startTime: try row.decode(column: "start_time", as: Int64.self),
            endTime: try row.decode(column: "end_time", as: Int64?.self), queueDuration: try row.decode(column: "queue_duration", as: Int64.self),
            repairs: repairs, scheduleSlot: try row.decode(column: "schedule_slot", as: Int64?.self),
            parentTaskRunID: try row.decode(column: "parent_task_run_id", as: Int64?.self))
    }

    static func taskRun(_ row: any SQLRow) throws -> TaskRun {
        TaskRun(
            taskRunID: try row.decode(column: "task_run_id", as: Int64.self), runID: try row.decode(column: "run_id", as: Int64.self),
            taskKey: try row.decode(column: "task_key", as: String.self), attempt: try row.decode(column: "attempt_number", as: Int.self),
            repairID: try row.decode(column: "repair_id", as: Int64?.self),
            lifeCycle: LifeCycleState(rawValue: try row.decode(column: "life_cycle_state", as: String.self)) ?? .internalError,
            result: try row.decode(column: "result_state", as: String?.self).flatMap(ResultState.init(rawValue:)),
            message: try row.decode(column: "state_message", as: String.self), startTime: try row.decode(column: "start_time", as: Int64.self),
            endTime: try row.decode(column: "end_time", as: Int64?.self), pid: try row.decode(column: "pid", as: Int32?.self),
            final: try row.decode(column: "final", as: Bool.self), info: try object(row, "info"), task: try object(row, "task"))
    }
}

/// Which runs a caller may see: those of these jobs, and the one-time runs it submitted.
public struct RunVisibility: Sendable {
    public var jobs: Set<Int64>
    public var submitter: String

    public init(jobs: Set<Int64>, submitter: String) {
        self.jobs = jobs
        self.submitter = submitter
    }
}
