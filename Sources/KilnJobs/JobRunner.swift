import Crypto
import Foundation
import KilnCore
import KilnStore
import Logging

/// Runs jobs: creates runs (run-now, submit, schedules and triggers, run_job_task), queues them behind
/// `max_concurrent_runs`, walks each run's task DAG (run_if, condition outcomes, retries, timeouts), cancels and
/// repairs runs, and resumes the runs a stopped server left behind. Every state change is written to the store
/// before it is acted on, so a restarted server picks up where the last one stopped.
public actor JobRunner {
    let store: JobRunStore
    let jobs: JobsService
    let destinations: NotificationDestinations
    let clock: any KilnClock
    let logger: Logger
    let home: URL
    var context: TaskContext?
    /// Runs whose DAG is being walked, by run id.
    var executions: [Int64: Task<Void, Never>] = [:]
    var executingJobs: [Int64: Int64] = [:]
    var timedOut: Set<Int64> = []
    var scheduler: Task<Void, Never>?
    /// Run tokens: SHA-256 (hex) of each live token → its run; the plain token of each run issued by this process.
    var tokenHashes: [String: Int64] = [:]
    var tokens: [Int64: String] = [:]

    init(store: JobRunStore, jobs: JobsService, destinations: NotificationDestinations, clock: any KilnClock, home: URL, logger: Logger) {
        self.store = store
        self.jobs = jobs
        self.destinations = destinations
        self.clock = clock
        self.home = home
        self.logger = logger
    }

    /// Opens the runner over `database` (its tables migrated), with run outputs under `<home>/jobs`.
    public static func make(database: any KilnDatabase, jobs: JobsService, destinations: NotificationDestinations, clock: any KilnClock, home: URL,
                            logger: Logger) async throws -> JobRunner {
        try await Migrator.migrate(database, JobRunStore.migrations, logger: logger)
        let store = JobRunStore(database: database)
        let runner = JobRunner(store: store, jobs: jobs, destinations: destinations, clock: clock, home: home, logger: logger)
        await runner.setTokenHashes(try await store.runTokens())
        return runner
    }

    func setTokenHashes(_ hashes: [String: Int64]) { tokenHashes = hashes }

    /// The token a run's task processes call back with (`DATABRICKS_TOKEN`, `MLFLOW_TRACKING_TOKEN`): valid only
    /// while the run is active, so a token in a task's log or environment is worthless once the run ends.
    func token(for runID: Int64) async throws -> String {
        if let token = tokens[runID] { return token }
        var bytes = [UInt8](repeating: 0, count: 24)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        let token = "kiln_run_" + Hex.encode(bytes)
        try await store.addRunToken(hash: Self.hash(token), runID: runID, now: clock.nowMillis())
        tokens[runID] = token
        tokenHashes[Self.hash(token)] = runID
        return token
    }

    /// Whose a live run token is: the run, its job, its `run_as` (`user_name` or `service_principal_name`) and whoever
    /// started it; nil for any other token. The platform decides whom it acts as (run_as, else the job's owner, else
    /// the run's starter).
    public func identity(forToken token: String) async -> RunIdentity? {
        guard token.hasPrefix("kiln_run_"), let runID = tokenHashes[Self.hash(token)] else { return nil }
        guard let run = try? await store.run(runID) else { return RunIdentity(runID: runID) }
        return RunIdentity(run)
    }

    func revokeTokens(_ runID: Int64) async {
        tokens[runID] = nil
        tokenHashes = tokenHashes.filter { $0.value != runID }
        do { try await store.revokeRunTokens(runID: runID) } catch {
            logger.error("Could not revoke a run's tokens", metadata: ["kiln.run_id": "\(runID)", "error": "\(error)"])
        }
    }

    static func hash(_ token: String) -> String {
        Hex.encode(SHA256.hash(data: Array(token.utf8)))
    }

    /// Ids `nextFree..<blockEnd` are reserved in the store for this process.
    var nextFree: Int64 = 0
    var blockEnd: Int64 = 0
    /// The reservation in flight: concurrent callers (a DAG layer starting 100 tasks) wait for one store write.
    var refill: Task<Int64, any Error>?
    /// Ids reserved per store write: a 1,000-task DAG costs ~32 writes, not 1,000. Ids stay unique across servers and
    /// increase within a process; a restart skips the rest of a block.
    static let idBlock: Int64 = 32

    /// A new run, task run or repair id from this process's block of the store's sequence.
    func allocateID() async throws -> Int64 {
        while true {
            if nextFree < blockEnd {
                defer { nextFree += 1 }
                return nextFree
            }
            // One reservation at a time; whoever resumes first installs its block and clears it (no caller ever
            // waits on a finished reservation twice, so nobody spins while the block is used up).
            let pending: Task<Int64, any Error>
            if let inFlight = refill {
                pending = inFlight
            } else {
                let store = self.store
                pending = Task.detached { try await store.reserveIDs(Self.idBlock) }
                refill = pending
            }
            do {
                let last = try await pending.value
                install(last)
                if refill == pending { refill = nil }
            } catch {
                if refill == pending { refill = nil }
                throw error
            }
        }
    }

    /// Takes the block ending at `last` unless it (or a newer one) is already in use: blocks only grow.
    func install(_ last: Int64) {
        let first = last - Self.idBlock + 1
        if first >= blockEnd { (nextFree, blockEnd) = (first, last + 1) }
    }

    /// Starts executing: from now on runs go, and the runs a previous server left unfinished are resumed
    /// (processes still running are adopted, vanished ones fail and retry per their policy).
    public func start(environment: JobEnvironment, serverURL: String) async throws {
        let context = try TaskContext(environment: environment, runner: self, serverURL: serverURL)
        self.context = context
        let active = try await store.activeRuns()
        for run in active where run.lifeCycle != .queued {
            logger.info("Resuming job run", metadata: ["kiln.run_id": "\(run.runID)"])
            launch(run)
        }
        for job in Set(active.compactMap(\.jobID)) { try await admit(jobID: job) }
        for run in active where run.jobID == nil && run.lifeCycle == .queued { launch(run) }
        let tick = Double(ProcessInfo.processInfo.environment["KILN_SCHEDULER_TICK_MS"].flatMap(Int.init) ?? 1000) / 1000
        scheduler = Task { await self.schedulerLoop(interval: tick) }
    }

    /// Stops walking DAGs (the server is shutting down); processes keep running and are adopted on restart.
    public func shutdown() {
        context = nil
        scheduler?.cancel()
    }

    // MARK: Creating runs

    /// What `run-now` and the triggers ask for.
    public struct RunRequest: Sendable {
        public var jobID: Int64
        public var jobParameters: [String: String] = [:]
        public var overrides: [String: JSONValue] = [:]
        public var idempotencyToken: String?
        public var only: [String]?
        public var queue: Bool?
        public var trigger = "ONE_TIME"
        public var scheduleSlot: Int64?
        public var parentTaskRunID: Int64?
        public var creator: String?

        public init(jobID: Int64) { self.jobID = jobID }
    }

    /// Creates a run of a job and starts it (or queues it behind max_concurrent_runs, or skips it when the job does
    /// not queue). - Throws: `RESOURCE_DOES_NOT_EXIST` for an unknown job, `INVALID_PARAMETER_VALUE` for unknown
    /// parameters or tasks, `RESOURCE_ALREADY_EXISTS` when the schedule slot already ran.
    public func runNow(_ request: RunRequest) async throws -> (runID: Int64, number: Int64) {
        let job = try await jobs.get(id: request.jobID)
        if let token = request.idempotencyToken, let existing = try await store.run(idempotencyToken: token, jobID: job.jobID) {
            return (existing.runID, existing.numberInJob)
        }
        var settings = job.settings
        var parameters: [String: String] = [:]
        if case .array(let declared)? = settings["parameters"] {
            for p in declared {
                guard case .object(let o) = p, case .string(let name)? = o["name"] else { continue }
                parameters[name] = JSONValue.text(o["default"] ?? .string(""))
            }
        }
        for (name, value) in request.jobParameters {
            guard parameters[name] != nil else {
                throw KilnError.invalid("Job \(job.jobID) has no parameter '\(name)' (it has: \(parameters.keys.sorted().joined(separator: ", ")))")
            }
            parameters[name] = value
        }
        if let only = request.only, !only.isEmpty {
            let keys = Set(JobRun.taskList(settings).map { JobValidation.taskKey(.object($0)) ?? "" })
            for key in only where !keys.contains(key) { throw KilnError.invalid("Job \(job.jobID) has no task '\(key)'") }
            settings["tasks"] = .array(JobRun.taskList(settings).filter { only.contains(JobValidation.taskKey(.object($0)) ?? "") }.map { task in
                var task = task
                if case .array(let deps)? = task["depends_on"] {
                    task["depends_on"] = .array(deps.filter { only.contains(JobValidation.taskKey($0) ?? "") })
                }
                return .object(task)
            })
        }
        let now = clock.nowMillis()
        var run = JobRun(runID: try await allocateID(), jobID: job.jobID, numberInJob: 0,
                         runName: JobsService.name(settings), runType: request.parentTaskRunID == nil ? "JOB_RUN" : "WORKFLOW_RUN",
                         trigger: request.trigger, creator: request.creator, settings: settings, parameters: parameters, overrides: request.overrides,
                         lifeCycle: .queued, result: nil, message: "Waiting to start", startTime: now, endTime: nil, queueDuration: 0, repairs: [],
                         scheduleSlot: request.scheduleSlot, parentTaskRunID: request.parentTaskRunID)
        run.numberInJob = try await store.insert(run, idempotencyToken: request.idempotencyToken)
        let queues: Bool
        if let q = request.queue { queues = q } else if case .object(let q)? = settings["queue"], q["enabled"] == .bool(true) { queues = true } else { queues = false }
        if !queues, executingJobs[job.jobID, default: 0] >= Self.maxConcurrentRuns(settings) {
            var skipped = run
            skipped.lifeCycle = .skipped
            skipped.result = .maximumConcurrentRunsReached
            skipped.message = "Skipped: job \(job.jobID) already has \(Self.maxConcurrentRuns(settings)) active run(s) (max_concurrent_runs); enable queue to wait instead"
            skipped.endTime = now
            try await store.update(skipped)
            return (run.runID, run.numberInJob)
        }
        try await admit(jobID: job.jobID)
        return (run.runID, run.numberInJob)
    }

    /// Creates a one-time run of tasks that are not a saved job (`runs/submit`).
    public func submit(settings: [String: JSONValue], creator: String?, idempotencyToken: String?) async throws -> Int64 {
        try JobValidation.check(settings)
        guard !JobRun.taskList(settings).isEmpty else { throw KilnError.invalid("A submitted run needs at least one task") }
        let name: String
        if case .string(let n)? = settings["run_name"] { name = n } else { name = "Untitled" }
        let run = JobRun(runID: try await allocateID(), jobID: nil, numberInJob: 1, runName: name, runType: "SUBMIT_RUN", trigger: "ONE_TIME",
                         creator: creator, settings: settings, parameters: [:], overrides: [:], lifeCycle: .queued, result: nil,
                         message: "Waiting to start", startTime: clock.nowMillis(), endTime: nil, queueDuration: 0, repairs: [],
                         scheduleSlot: nil, parentTaskRunID: nil)
        try await store.insert(run, idempotencyToken: nil)
        launch(run)
        return run.runID
    }

    static func maxConcurrentRuns(_ settings: [String: JSONValue]) -> Int64 {
        if case .number(let n)? = settings["max_concurrent_runs"], let v = Int64(n) { return v }
        return 1
    }

    /// Starts the job's queued runs, oldest first, while it has room.
    func admit(jobID: Int64) async throws {
        guard context != nil else { return }
        let queued = try await store.runs(jobID: jobID, activeOnly: true, completedOnly: false, runType: nil, from: nil, to: nil, limit: 1_000_000, offset: 0)
            .filter { $0.lifeCycle == .queued }.reversed()
        for run in queued {
            guard executingJobs[jobID, default: 0] < Self.maxConcurrentRuns(run.settings) else { break }
            launch(run)
        }
    }

    func launch(_ run: JobRun) {
        guard let context, executions[run.runID] == nil else { return }
        if let job = run.jobID { executingJobs[job, default: 0] += 1 }
        let runID = run.runID
        executions[runID] = Task {
            let ran = await RunExecution(context: context, runID: runID).execute(timedOut: { await self.timedOut.contains(runID) })
            if ran { await self.finished(run) } else { self.released(run) }
        }
        if case .number(let n)? = run.settings["timeout_seconds"], let seconds = Double(n), seconds > 0 {
            Task {
                try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
                self.timeOut(runID)
            }
        }
        if let threshold = Self.durationThreshold(run.settings) {
            Task {
                try? await Task.sleep(nanoseconds: UInt64(threshold * 1e9))
                if self.executions[runID] != nil, let current = try? await self.store.run(runID) {
                    await context.notify(current, event: "on_duration_warning_threshold_exceeded")
                }
            }
        }
    }

    /// `health.rules` with `RUN_DURATION_SECONDS GREATER_THAN n`: the seconds after which a run warns.
    static func durationThreshold(_ settings: [String: JSONValue]) -> Double? {
        guard case .object(let health)? = settings["health"], case .array(let rules)? = health["rules"] else { return nil }
        for rule in rules {
            if case .object(let r) = rule, r["metric"] == .string("RUN_DURATION_SECONDS"), r["op"] == .string("GREATER_THAN"),
               case .number(let n)? = r["value"], let v = Double(n) { return v }
        }
        return nil
    }

    func timeOut(_ runID: Int64) {
        guard let execution = executions[runID] else { return }
        timedOut.insert(runID)
        execution.cancel()
    }

    /// Forgets a run another server claimed first: its tokens and notifications are that server's.
    func released(_ run: JobRun) {
        executions[run.runID] = nil
        if let job = run.jobID { executingJobs[job, default: 1] -= 1 }
    }

    func finished(_ run: JobRun) async {
        executions[run.runID] = nil
        await revokeTokens(run.runID)
        timedOut.remove(run.runID)
        if let job = run.jobID {
            executingJobs[job, default: 1] -= 1
            do { try await admit(jobID: job) } catch { logger.error("Could not start queued runs", metadata: ["kiln.job_id": "\(job)", "error": "\(error)"]) }
        }
    }

    // MARK: Changing runs

    /// Cancels a run: queued runs end at once, running ones stop their tasks (processes are killed).
    public func cancel(runID: Int64) async throws {
        var run = try await store.run(runID)
        if let execution = executions[runID] {
            execution.cancel()
            return
        }
        guard !run.lifeCycle.isFinal else { return }
        run.lifeCycle = .terminated
        run.result = .canceled
        run.message = "Canceled before it started"
        run.endTime = clock.nowMillis()
        try await store.update(run)
    }

    /// Cancels every active run of a job.
    public func cancelAll(jobID: Int64) async throws {
        _ = try await jobs.get(id: jobID)
        for run in try await store.runs(jobID: jobID, activeOnly: true, completedOnly: false, runType: nil, from: nil, to: nil, limit: 1_000_000, offset: 0) {
            try await cancel(runID: run.runID)
        }
    }

    /// Deletes a finished run. - Throws: `INVALID_STATE` while it is active.
    public func delete(runID: Int64) async throws {
        let run = try await store.run(runID)
        guard run.lifeCycle.isFinal, executions[runID] == nil else {
            throw KilnError(.invalidState, "Run \(runID) is still active; cancel it first")
        }
        try await store.delete(runID)
    }

    /// Reruns some tasks of a finished run inside the same run: the given ones, or all failed ones, plus (by default)
    /// the tasks downstream of them. Returns the repair id.
    public func repair(runID: Int64, rerunTasks: [String], rerunAllFailed: Bool, rerunDependents: Bool, latestRepairID: Int64?,
                       jobParameters: [String: String]) async throws -> Int64 {
        var run = try await store.run(runID)
        guard run.lifeCycle.isFinal, executions[runID] == nil else {
            throw KilnError(.invalidState, "Run \(runID) is still active; repair it after it finishes")
        }
        if let current = run.currentRepair?.id, latestRepairID != current {
            throw KilnError.invalid("latest_repair_id must be \(current), the run's latest repair")
        }
        let tasks = run.tasks
        let keys = tasks.compactMap { JobValidation.taskKey(.object($0)) }
        var selected = Set<String>()
        for key in rerunTasks {
            guard keys.contains(key) else { throw KilnError.invalid("Run \(runID) has no task '\(key)'") }
            selected.insert(key)
        }
        if rerunAllFailed {
            let latest = Dictionary(try await store.taskRuns(of: runID).filter { $0.parent == nil }.map { ($0.taskKey, $0) }, uniquingKeysWith: { _, b in b })
            for (key, t) in latest where t.result.map({ $0.isFailure || $0.isCanceled }) ?? true { selected.insert(key) }
            for key in keys where latest[key] == nil { selected.insert(key) }
        }
        guard !selected.isEmpty else { throw KilnError.invalid("Nothing to repair: name rerun_tasks or set rerun_all_failed_tasks on a run with failed tasks") }
        if rerunDependents {
            var changed = true
            while changed {
                changed = false
                for task in tasks {
                    guard let key = JobValidation.taskKey(.object(task)), !selected.contains(key), case .array(let deps)? = task["depends_on"] else { continue }
                    if deps.contains(where: { selected.contains(JobValidation.taskKey($0) ?? "") }) {
                        selected.insert(key)
                        changed = true
                    }
                }
            }
        }
        for (name, value) in jobParameters {
            guard run.parameters[name] != nil else { throw KilnError.invalid("The run has no job parameter '\(name)'") }
            run.parameters[name] = value
        }
        let repairID = try await allocateID()
        run.repairs.append(["repair_id": .number(String(repairID)), "type": .string("REPAIR"), "start_time": .number(String(clock.nowMillis())),
                            "task_keys": .array(keys.filter(selected.contains).map(JSONValue.string))])
        run.lifeCycle = .queued
        run.result = nil
        run.endTime = nil
        run.message = "Repair \(repairID) waiting to start"
        try await store.update(run)
        if let job = run.jobID { try await admit(jobID: job) } else { launch(run) }
        return repairID
    }
}

extension JobRunner {
    /// A task run's output: the run it belongs to, its log (the last 5 MiB of stdout and stderr) and, for notebook
    /// tasks, the executed notebook.
    public struct TaskOutput: Sendable {
        public var run: JobRun
        public var taskRun: TaskRun
        public var logs: String?
        public var logsTruncated: Bool
        public var notebook: String?
    }

    /// A run and its task runs (every attempt, iterations included).
    public func details(runID: Int64) async throws -> (JobRun, [TaskRun]) {
        (try await store.run(runID), try await store.taskRuns(of: runID))
    }

    /// The job a run (or one task run of it) belongs to, and who started the run; nil when there is no such run.
    /// One-time runs (`runs/submit`) have no job.
    public func origin(ofRun id: Int64) async throws -> (jobID: Int64?, creator: String?)? {
        var runID = id
        if let task = try await store.taskRun(id) { runID = task.runID }
        guard let run = try? await store.run(runID) else { return nil }
        return (run.jobID, run.creator)
    }

    /// Runs newest first, with their task runs when `expandTasks`; with `visible`, only those.
    public func list(jobID: Int64?, activeOnly: Bool, completedOnly: Bool, runType: String?, from: Int64?, to: Int64?, limit: Int, offset: Int,
                     expandTasks: Bool, visible: RunVisibility? = nil) async throws -> [(JobRun, [TaskRun])] {
        if let jobID { _ = try await jobs.get(id: jobID) }
        var out: [(JobRun, [TaskRun])] = []
        for run in try await store.runs(jobID: jobID, activeOnly: activeOnly, completedOnly: completedOnly, runType: runType, from: from, to: to,
                                        limit: limit, offset: offset, visible: visible) {
            out.append((run, expandTasks ? try await store.taskRuns(of: run.runID) : []))
        }
        return out
    }

    /// The output of one task run. - Throws: `INVALID_PARAMETER_VALUE` for the id of a whole (multi-task) run.
    public func output(taskRunID: Int64) async throws -> TaskOutput {
        guard let t = try await store.taskRun(taskRunID) else {
            if (try? await store.run(taskRunID)) != nil {
                throw KilnError.invalid("Retrieving the output of a multi-task run is not supported; pass the run_id of one of its tasks (runs/get lists them)")
            }
            throw KilnError.notFound("Run \(taskRunID) does not exist")
        }
        let run = try await store.run(t.runID)
        let dir = TaskContext.directory(home: home, taskRunID: taskRunID)
        let log = dir.appendingPathComponent("output.log").path
        var logs: String?, truncated = false
        if let size = (try? FileManager.default.attributesOfItem(atPath: log))?[.size] as? Int {
            logs = TaskContext.tail(log, bytes: TaskContext.logCap)
            truncated = size >= TaskContext.logCap
        }
        let notebook = FileManager.default.contents(atPath: dir.appendingPathComponent("notebook.ipynb").path).map { String(decoding: $0, as: UTF8.self) }
        return TaskOutput(run: run, taskRun: t, logs: logs, logsTruncated: truncated, notebook: notebook)
    }
}

/// What a job run's token stands for.
public struct RunIdentity: Sendable {
    public var runID: Int64
    public var jobID: Int64?
    /// The run's `run_as` setting.
    public var runAs: String?
    /// Who started the run (nil for scheduled and triggered runs).
    public var creator: String?

    public init(runID: Int64, jobID: Int64? = nil, runAs: String? = nil, creator: String? = nil) {
        self.runID = runID
        self.jobID = jobID
        self.runAs = runAs
        self.creator = creator
    }

    /// A run's identity: its job, its starter and its `run_as` (`user_name` or `service_principal_name`).
    public init(_ run: JobRun) {
        self.init(runID: run.runID, jobID: run.jobID, creator: run.creator)
        if case .object(let runAs)? = run.settings["run_as"] {
            for key in ["user_name", "service_principal_name"] { if case .string(let name)? = runAs[key], !name.isEmpty { self.runAs = name } }
        }
    }
}
