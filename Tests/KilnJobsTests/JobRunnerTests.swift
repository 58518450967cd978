import Foundation
import KilnCore
@testable import KilnJobs
import KilnPlatform
import KilnTestSupport
import Testing

@Suite("Job runs: DAG rules, references, the scheduler on an injected clock")
struct JobRunnerTests {
    static func withPlatform(_ clock: any KilnClock = SystemClock(), _ body: (Platform) async throws -> Void) async throws {
        let dir = try TemporaryDirectory()
        let platform = try await Platform.open(KilnConfiguration(home: dir.url, port: 0, adminToken: "secret"), clock: clock, logger: TestStores.logger)
        do { try await body(platform) } catch {
            await platform.close()
            throw error
        }
        await platform.close()
    }

    static func condition(_ key: String, _ left: String = "1", deps: [(String, String?)] = [], runIf: String? = nil) -> JSONValue {
        var task: [String: JSONValue] = ["task_key": .string(key),
                                         "condition_task": .object(["op": .string("EQUAL_TO"), "left": .string(left), "right": .string("1")])]
        if !deps.isEmpty {
            task["depends_on"] = .array(deps.map { d in .object(["task_key": .string(d.0)].merging(d.1.map { ["outcome": .string($0)] } ?? [:]) { a, _ in a }) })
        }
        if let runIf { task["run_if"] = .string(runIf) }
        return .object(task)
    }

    static func finished(_ result: ResultState, outcome: String? = nil) -> TaskRun {
        TaskRun(taskRunID: 1, runID: 1, taskKey: "x", attempt: 0, repairID: nil, lifeCycle: .terminated, result: result, message: "", startTime: 0,
                endTime: 0, pid: nil, final: true, info: outcome.map { ["outcome": .string($0)] } ?? [:], task: [:])
    }

    @Test("run_if decides from the dependencies' results and condition outcomes")
    func runIf() {
        let done = ["ok": Self.finished(.success), "bad": Self.finished(.failed), "gone": Self.finished(.canceled),
                    "yes": Self.finished(.success, outcome: "true"), "ex": Self.finished(.excluded)]
        func verdict(_ rule: String, _ deps: [(String, String?)]) -> ResultState? {
            RunExecution.blocked(["run_if": .string(rule)], deps.map { (key: $0.0, outcome: $0.1) }, done)?.0
        }
        #expect(verdict("ALL_SUCCESS", [("ok", nil), ("yes", "true")]) == nil)
        #expect(verdict("ALL_SUCCESS", [("ok", nil), ("yes", "false")]) == .excluded)
        #expect(verdict("ALL_SUCCESS", [("ok", nil), ("bad", nil)]) == .upstreamFailed)
        #expect(verdict("ALL_SUCCESS", [("ok", nil), ("gone", nil)]) == .upstreamCanceled)
        #expect(verdict("AT_LEAST_ONE_SUCCESS", [("ok", nil), ("bad", nil)]) == nil)
        #expect(verdict("AT_LEAST_ONE_SUCCESS", [("bad", nil)]) == .upstreamFailed)
        #expect(verdict("NONE_FAILED", [("ok", nil), ("ex", nil)]) == nil)
        #expect(verdict("NONE_FAILED", [("ok", nil), ("bad", nil)]) == .upstreamFailed)
        #expect(verdict("NONE_FAILED", [("ex", nil)]) == .excluded)
        #expect(verdict("ALL_DONE", [("bad", nil), ("gone", nil)]) == nil)
        #expect(verdict("ALL_DONE", [("ex", nil)]) == .excluded)
        #expect(verdict("AT_LEAST_ONE_FAILED", [("ok", nil), ("bad", nil)]) == nil)
        #expect(verdict("AT_LEAST_ONE_FAILED", [("ok", nil)]) == .excluded)
        #expect(verdict("ALL_FAILED", [("bad", nil)]) == nil)
        #expect(verdict("ALL_FAILED", [("bad", nil), ("ok", nil)]) == .excluded)
    }

    @Test("dynamic value references resolve, and unknown ones name themselves")
    func references() throws {
        let run = JobRun(runID: 77, jobID: 5, numberInJob: 1, runName: "nightly", runType: "JOB_RUN", trigger: "PERIODIC", creator: nil, settings: [:],
                         parameters: ["day": "mon"], overrides: [:], lifeCycle: .running, result: nil, message: "",
                         startTime: 1_764_400_000_000, endTime: nil, queueDuration: 0, repairs: [], scheduleSlot: nil, parentTaskRunID: nil)
        var upstream = Self.finished(.success)
        upstream.info["values"] = .object(["rows": .number("42"), "meta": .object(["a": .bool(true)]), "name": .string("x y")])
        let refs = JobReferences(run: run, taskKey: "train", taskRunID: 80, attempt: 1, upstream: ["load": upstream], input: .string("item"))
        #expect(try refs.resolve("{{job.id}}/{{job.run_id}}/{{ task.name }}/{{task.execution_count}}/{{job.trigger.type}}") == "5/77/train/2/PERIODIC")
        #expect(try refs.resolve("{{job.start_time.iso_date}} {{job.parameters.day}} {{input}}") == "2025-11-29 mon item")
        #expect(try refs.resolve("{{tasks.load.values.rows}} {{tasks.load.values.name}} {{tasks.load.values.meta}} {{tasks.load.result_state}}")
                == "42 x y {\"a\":true} SUCCESS")
        #expect(throws: KilnError.self) { try refs.resolve("{{tasks.load.values.missing}}") }
        #expect(throws: KilnError.self) { try refs.resolve("{{job.nope}}") }
        #expect(try refs.resolve("no references") == "no references")
    }

    @Test("the scheduler runs a due cron slot once, collapses missed slots, and skips paused schedules")
    func scheduler() async throws {
        let clock = AdjustableClock()
        try await Self.withPlatform(clock) { platform in
            let utc = { (s: String) -> Int64 in Int64(ISO8601DateFormatter().date(from: s)!.timeIntervalSince1970 * 1000) }
            clock.set(utc("2030-03-04T00:00:00Z"))
            let hourly = try await platform.jobs.create(settings: ["name": .string("hourly"), "tasks": .array([Self.condition("t")]),
                "schedule": .object(["quartz_cron_expression": .string("0 0 * * * ?"), "timezone_id": .string("UTC")])], creator: nil)
            _ = try await platform.jobs.create(settings: ["name": .string("paused"), "tasks": .array([Self.condition("t")]),
                "schedule": .object(["quartz_cron_expression": .string("* * * * * ?"), "pause_status": .string("PAUSED")])], creator: nil)
            #expect(try await platform.runs.tick() == [])
            clock.set(utc("2030-03-04T00:59:59Z"))
            #expect(try await platform.runs.tick() == [])
            clock.set(utc("2030-03-04T01:00:00Z"))
            let first = try await platform.runs.tick()
            #expect(first.count == 1)
            #expect(try await platform.runs.tick() == [])
            clock.set(utc("2030-03-04T05:30:00Z"))  // 02:00 … 05:00 missed: one run, for 05:00
            let late = try await platform.runs.tick()
            #expect(late.count == 1)
            let (run, _) = try await platform.runs.details(runID: late[0])
            #expect(run.scheduleSlot == utc("2030-03-04T05:00:00Z") && run.trigger == "PERIODIC" && run.jobID == hourly)
        }
    }

    @Test("a DAG of native tasks runs to the end with conditions and run_if")
    func dag() async throws {
        try await Self.withPlatform { platform in
            try await platform.runs.start(platform: platform, serverURL: "http://127.0.0.1:9")
            let job = try await platform.jobs.create(settings: ["name": .string("dag"), "tasks": .array([
                Self.condition("a"), Self.condition("b", "2", deps: [("a", nil)]),
                Self.condition("yes", deps: [("b", "true")]), Self.condition("no", deps: [("b", "false")]),
                Self.condition("last", deps: [("yes", nil), ("no", nil)], runIf: "NONE_FAILED"),
            ])], creator: nil)
            let (id, _) = try await platform.runs.runNow(JobRunner.RunRequest(jobID: job))
            for _ in 0..<200 where try await platform.runs.details(runID: id).0.lifeCycle != .terminated { try await Task.sleep(nanoseconds: 10_000_000) }
            let (run, tasks) = try await platform.runs.details(runID: id)
            let results = Dictionary(tasks.map { ($0.taskKey, $0.result!) }, uniquingKeysWith: { _, b in b })
            #expect(run.result == .success)
            #expect(results == ["a": .success, "b": .success, "yes": .excluded, "no": .success, "last": .success])
        }
    }
}
