import Foundation
import KilnCore
import Logging

/// Walks one run's task DAG: starts every task whose dependencies have finished and whose `run_if` holds, skips the
/// others with the reason (UPSTREAM_FAILED, UPSTREAM_CANCELED, EXCLUDED), retries failed attempts per the task's
/// policy, and ends the run with a result from its leaf tasks. Resumes a run a stopped server left: finished tasks
/// keep their results, running ones are adopted or, when their process vanished, failed and retried.
struct RunExecution: Sendable {
    let context: TaskContext
    let runID: Int64

    var store: JobRunStore { context.store }
    var clock: any KilnClock { context.clock }

    /// Runs the DAG. - Returns: false when another server claimed the queued run first (this one did nothing).
    @discardableResult
    func execute(timedOut: @escaping @Sendable () async -> Bool) async -> Bool {
        do {
            return try await walk(timedOut: timedOut)
        } catch {
            context.logger.error("Job run failed internally", metadata: ["kiln.run_id": "\(runID)", "error": "\(error)"])
            if var run = try? await store.run(runID) {
                run.lifeCycle = .internalError
                run.result = .failed
                run.message = "Kiln could not run this: \(error)"
                run.endTime = clock.nowMillis()
                try? await store.update(run)
            }
            return true
        }
    }

    func walk(timedOut: @escaping @Sendable () async -> Bool) async throws -> Bool {
        var run = try await store.run(runID)
        guard !run.lifeCycle.isFinal else { return true }  // a stale launch of a run that already ended
        let now = clock.nowMillis()
        if run.lifeCycle == .queued {
            if run.repairs.isEmpty { run.queueDuration = max(0, now - run.startTime) }
            run.lifeCycle = .running
            run.message = run.repairs.isEmpty ? "" : "Repairing"
            // Servers sharing a store may both launch a queued run: only the one that moves it out of the queue runs it.
            guard try await store.claim(run) else { return false }
            await context.notify(run, event: "on_start")
        }
        let tasks = run.tasks
        let repair = run.currentRepair
        var done: [String: TaskRun] = [:], resume: [String: TaskRun] = [:]
        for t in try await store.taskRuns(of: runID) where t.parent == nil {
            if let repair, repair.keys.contains(t.taskKey), t.repairID != repair.id { continue }
            if t.lifeCycle.isFinal && t.final { done[t.taskKey] = t; resume[t.taskKey] = nil } else { resume[t.taskKey] = t; done[t.taskKey] = nil }
        }
        let frozenRun = run
        await withTaskGroup(of: TaskRun.self) { group in
            var running = Set<String>()
            func launchReady() async {
                var changed = true
                while changed {
                    changed = false
                    for task in tasks {
                        guard let key = JobValidation.taskKey(.object(task)), done[key] == nil, !running.contains(key) else { continue }
                        let deps = Self.dependencies(task)
                        guard deps.allSatisfy({ done[$0.key] != nil }) else { continue }
                        if Task.isCancelled {
                            done[key] = await skip(task, key, .upstreamCanceled, "The run was canceled before this task started")
                            changed = true
                            continue
                        }
                        if let (result, reason) = Self.blocked(task, deps, done) {
                            done[key] = await skip(task, key, result, reason)
                            changed = true
                            continue
                        }
                        running.insert(key)
                        let upstream = done, previous = resume[key]
                        group.addTask { await TaskAttempts(context: context, run: frozenRun, task: task, key: key, upstream: upstream, repairID: repair?.id).run(resuming: previous) }
                    }
                }
            }
            await launchReady()
            while let finished = await group.next() {
                running.remove(finished.taskKey)
                done[finished.taskKey] = finished
                await launchReady()
            }
        }
        run = try await store.run(runID)
        let wasTimedOut = await timedOut()
        let results = done.values.compactMap(\.result)
        let leaves = Self.leaves(tasks)
        if Task.isCancelled || wasTimedOut || results.contains(where: { $0 == .canceled }) && !results.contains(where: \.isFailure) {
            run.result = wasTimedOut ? .timedOut : .canceled
            run.message = wasTimedOut ? "The run timed out after timeout_seconds" : "The run was canceled"
        } else if let failed = leaves.compactMap({ done[$0] }).first(where: { $0.result?.isFailure ?? true || $0.result?.isCanceled ?? false }) {
            run.result = .failed
            let root = done.values.filter { $0.result == .failed || $0.result == .timedOut }.sorted { $0.taskRunID < $1.taskRunID }.first ?? failed
            run.message = "Task \(root.taskKey) failed with message: \(root.message)"
        } else if results.contains(where: \.isFailure) {
            run.result = .successWithFailures
            run.message = "Some tasks failed; the leaf tasks succeeded"
        } else {
            run.result = .success
            run.message = ""
        }
        run.lifeCycle = .terminated
        run.endTime = clock.nowMillis()
        if !run.repairs.isEmpty {
            run.repairs[run.repairs.count - 1]["end_time"] = .number(String(run.endTime!))
            run.repairs[run.repairs.count - 1]["result_state"] = .string(run.result!.rawValue)
        }
        try await store.update(run)
        await context.notify(run, event: run.result == .success || run.result == .successWithFailures ? "on_success" : "on_failure")
        return true
    }

    /// Records a task that will not run.
    func skip(_ task: [String: JSONValue], _ key: String, _ result: ResultState, _ reason: String) async -> TaskRun {
        let now = clock.nowMillis()
        let run = (try? await store.run(runID))
        // Without an id (the store failed) the skip is decided but not recorded, as a failed save is.
        let id = try? await context.runner.allocateID()
        let t = TaskRun(taskRunID: id ?? 0, runID: runID, taskKey: key, attempt: 0, repairID: run?.currentRepair?.id,
                        lifeCycle: result == .excluded ? .skipped : .terminated, result: result, message: reason, startTime: now, endTime: now,
                        pid: nil, final: true, info: [:], task: task)
        if id != nil { try? await store.save(t) }
        return t
    }

    static func dependencies(_ task: [String: JSONValue]) -> [(key: String, outcome: String?)] {
        guard case .array(let deps)? = task["depends_on"] else { return [] }
        return deps.compactMap { dep in
            guard case .object(let o) = dep, case .string(let key)? = o["task_key"] else { return nil }
            if case .string(let outcome)? = o["outcome"] { return (key, outcome) }
            return (key, nil)
        }
    }

    /// Why a task whose dependencies have finished does not run under its `run_if`, or nil when it runs.
    static func blocked(_ task: [String: JSONValue], _ deps: [(key: String, outcome: String?)], _ done: [String: TaskRun]) -> (ResultState, String)? {
        if task["disabled"] == .bool(true) { return (.disabled, "The task is disabled") }
        guard !deps.isEmpty else { return nil }
        var succeeded = 0, failed = 0, canceled = 0, excluded = 0
        for dep in deps {
            let t = done[dep.key]!
            let result = t.result ?? .failed
            if result == .success || result == .successWithFailures {
                if let outcome = dep.outcome, case .string(let actual)? = t.info["outcome"], actual != outcome { excluded += 1 } else { succeeded += 1 }
            } else if result.isFailure { failed += 1 }
            else if result.isCanceled { canceled += 1 }
            else { excluded += 1 }
        }
        var rule = "ALL_SUCCESS"
        if case .string(let r)? = task["run_if"] { rule = r }
        let upstream: (ResultState, String) = failed > 0 ? (.upstreamFailed, "An upstream task failed")
            : canceled > 0 ? (.upstreamCanceled, "An upstream task was canceled") : (.excluded, "Excluded: its dependencies' conditions were not met")
        let notMet: (ResultState, String) = (.excluded, "Excluded: run_if \(rule) was not met")
        switch rule {
        case "ALL_SUCCESS": return succeeded == deps.count ? nil : upstream
        case "AT_LEAST_ONE_SUCCESS": return succeeded > 0 ? nil : upstream
        case "NONE_FAILED": return failed == 0 && canceled == 0 && succeeded > 0 ? nil : (failed + canceled > 0 ? upstream : notMet)
        case "ALL_DONE": return excluded == deps.count ? notMet : nil
        case "AT_LEAST_ONE_FAILED": return failed > 0 ? nil : notMet
        case "ALL_FAILED": return failed == deps.count ? nil : notMet
        default: return upstream
        }
    }

    /// Tasks nothing depends on.
    static func leaves(_ tasks: [[String: JSONValue]]) -> [String] {
        let parents = Set(tasks.flatMap { dependencies($0).map(\.key) })
        return tasks.compactMap { JobValidation.taskKey(.object($0)) }.filter { !parents.contains($0) }
    }
}

/// One task's attempts: runs it, and again after a failure (or a timeout with `retry_on_timeout`) up to
/// `max_retries` times (-1: no limit) with `min_retry_interval_millis` between attempts.
struct TaskAttempts: Sendable {
    let context: TaskContext
    let run: JobRun
    let task: [String: JSONValue]
    let key: String
    let upstream: [String: TaskRun]
    let repairID: Int64?
    var parent: Int64? = nil
    var input: JSONValue? = nil

    func run(resuming previous: TaskRun?) async -> TaskRun {
        var attempt = 0
        if var previous {
            if !previous.lifeCycle.isFinal {
                // Left running by a stopped server: adopt its process if it is still there, else it vanished.
                previous = await context.adopt(previous)
            }
            if let retried = await decide(previous) { return retried }
            attempt = previous.attempt + 1
            await pause(since: previous.endTime ?? context.clock.nowMillis())
        }
        while true {
            let id: Int64
            do { id = try await context.runner.allocateID() } catch {
                // Without an id nothing can be recorded: the task fails for good, as a failed store write would.
                let now = context.clock.nowMillis()
                return TaskRun(taskRunID: 0, runID: run.runID, taskKey: key, attempt: attempt, repairID: repairID, lifeCycle: .terminated, result: .failed,
                               message: "The store did not hand out a task run id: \(error)", startTime: now, endTime: now, pid: nil, final: true,
                               info: [:], task: task)
            }
            var t = TaskRun(taskRunID: id, runID: run.runID, taskKey: key, attempt: attempt, repairID: repairID,
                            lifeCycle: .running, result: nil, message: "", startTime: context.clock.nowMillis(), endTime: nil, pid: nil,
                            final: false, info: parent.map { ["parent": .number(String($0))] } ?? [:], task: task)
            if let input { t.info["input"] = input }
            if Task.isCancelled {
                t.lifeCycle = .terminated
                t.result = .canceled
                t.message = "Canceled"
                t.final = true
                t.endTime = t.startTime
                try? await context.store.save(t)
                return t
            }
            try? await context.store.save(t)
            t = await context.perform(t, run: run, upstream: upstream)
            if let finished = await decide(t) { return finished }
            await pause(since: t.endTime ?? context.clock.nowMillis())
            attempt += 1
        }
    }

    /// Saves a finished attempt and returns it when no retry follows; nil when the task should run again.
    func decide(_ attempt: TaskRun) async -> TaskRun? {
        var t = attempt
        var maxRetries: Int64 = 0
        if case .number(let n)? = task["max_retries"], let v = Int64(n) { maxRetries = v }
        let retriable = t.result == .failed || (t.result == .timedOut && task["retry_on_timeout"] == .bool(true))
        let retry = retriable && !Task.isCancelled && (maxRetries < 0 || Int64(t.attempt) < maxRetries)
        t.final = !retry
        try? await context.store.save(t)
        return retry ? nil : t
    }

    func pause(since end: Int64) async {
        var interval: Int64 = 0
        if case .number(let n)? = task["min_retry_interval_millis"], let v = Int64(n) { interval = v }
        let wait = interval - (context.clock.nowMillis() - end)
        if wait > 0 { try? await Task.sleep(nanoseconds: UInt64(wait) * 1_000_000) }
    }
}
