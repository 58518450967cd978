import ArgumentParser
import Foundation

/// `kiln jobs`: jobs and their runs on a running server (the Jobs API 2.2 calls databricks-sdk makes).
struct Jobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs", abstract: "Create, list and run jobs; follow, cancel and repair their runs.",
        discussion: """
            Examples:
              kiln jobs create job.json
              kiln jobs run-now 3 --param day=2026-11-29 --wait
              kiln jobs runs --job-id 3
              kiln jobs output 17
              kiln jobs repair 12 --all-failed --wait
            """,
        subcommands: [List.self, Create.self, Get.self, RunNow.self, Runs.self, Output.self, Cancel.self, Repair.self])

    static let api = "api/2.2/jobs"

    /// One line per task: key, attempt, state, result, duration, message.
    static func describe(_ run: [String: Any]) {
        let state = run["state"] as? [String: Any] ?? [:]
        let result = state["result_state"] as? String ?? state["life_cycle_state"] as? String ?? "?"
        let seconds = Double((run["run_duration"] as? NSNumber)?.int64Value ?? 0) / 1000
        print("Run \(run["run_id"] ?? "") of job \(run["job_id"] ?? "-") (\(run["run_name"] ?? "")): \(result) in \(String(format: "%.1f", seconds)) s")
        if let message = state["state_message"] as? String, !message.isEmpty { print("  \(message)") }
        let tasks = run["tasks"] as? [[String: Any]] ?? []
        guard !tasks.isEmpty else { return }
        printTable(["TASK", "RUN ID", "ATTEMPT", "STATE", "RESULT", "SECONDS", "MESSAGE"], tasks.map { t in
            let s = t["state"] as? [String: Any] ?? [:]
            let ms = Double((t["run_duration"] as? NSNumber)?.int64Value ?? 0)
            return [t["task_key"] as? String ?? "", "\(t["run_id"] ?? "")", "\(t["attempt_number"] ?? 0)", s["life_cycle_state"] as? String ?? "",
                    s["result_state"] as? String ?? "", String(format: "%.1f", ms / 1000), String((s["state_message"] as? String ?? "").prefix(60))]
        })
    }

    /// Polls a run until it is final, drawing a bar of finished tasks (with an ETA) on a terminal.
    static func wait(_ client: KilnClient, runID: Int64) async throws -> [String: Any] {
        var bar: ProgressBar?
        defer { bar?.finish() }
        while true {
            let run = try await client.call("GET", "\(api)/runs/get", query: [("run_id", String(runID))])
            let state = run["state"] as? [String: Any] ?? [:]
            if ["TERMINATED", "SKIPPED", "INTERNAL_ERROR"].contains(state["life_cycle_state"] as? String ?? "") { return run }
            let tasks = run["tasks"] as? [[String: Any]] ?? []
            let total = ((run["tasks"] as? [Any])?.count ?? 0)
            let done = tasks.filter { (($0["state"] as? [String: Any])?["result_state"]) != nil }.count
            if bar == nil || bar!.total != max(total, 1) { bar = ProgressBar(total: max(total, 1), unit: "tasks") }
            bar!.update(done)
            try await Task.sleep(nanoseconds: 200_000_000)
        }
    }

    static func succeeded(_ run: [String: Any]) -> Bool {
        let result = (run["state"] as? [String: Any])?["result_state"] as? String
        return result == "SUCCESS" || result == "SUCCESS_WITH_FAILURES"
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List jobs.")
        @OptionGroup var client: ClientOptions
        @Option(help: "Only jobs with this name.") var name: String?

        func run() async throws {
            let c = try client.client()
            var jobs: [[String: Any]] = [], token: String?
            repeat {
                var query = [("limit", "100")]
                if let name { query.append(("name", name)) }
                if let token { query.append(("page_token", token)) }
                let page = try await c.call("GET", "\(api)/list", query: query)
                jobs += page["jobs"] as? [[String: Any]] ?? []
                token = page["next_page_token"] as? String
            } while token != nil
            if client.json { return try printJSON(jobs) }
            printTable(["JOB ID", "NAME", "TASKS", "SCHEDULE", "CREATED"], jobs.map { j in
                let s = j["settings"] as? [String: Any] ?? [:]
                let schedule = (s["schedule"] as? [String: Any]).map { "\($0["quartz_cron_expression"] ?? "") \($0["timezone_id"] ?? "UTC")" } ?? ""
                return ["\(j["job_id"] ?? "")", s["name"] as? String ?? "", "\((s["tasks"] as? [Any])?.count ?? 0)", schedule, formatTime(j["created_time"])]
            })
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a job from a JSON file of job settings ('-' reads stdin).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "JSON file with the job settings (name, tasks, schedule, …).") var file: String

        func run() async throws {
            let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: file))
            guard let settings = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw CLIError("\(file) is not a JSON object of job settings; see docs/jobs.md for an example")
            }
            let created = try await client.client().call("POST", "\(api)/create", body: settings)
            if client.json { return try printJSON(created) }
            print("Created job \(created["job_id"] ?? ""). Run it: kiln jobs run-now \(created["job_id"] ?? "") --wait")
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "get", abstract: "Show a job's settings.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Job id.") var jobID: Int64

        func run() async throws {
            let job = try await client.client().call("GET", "\(api)/get", query: [("job_id", String(jobID))])
            if client.json { return try printJSON(job) }
            let s = job["settings"] as? [String: Any] ?? [:]
            print("Job \(jobID): \(s["name"] ?? "")")
            printTable(["TASK", "TYPE", "DEPENDS ON", "RUN IF", "RETRIES"], (s["tasks"] as? [[String: Any]] ?? []).map { t in
                let type = t.keys.first { $0.hasSuffix("_task") } ?? ""
                let deps = (t["depends_on"] as? [[String: Any]] ?? []).map { d in (d["task_key"] as? String ?? "") + ((d["outcome"] as? String).map { "=\($0)" } ?? "") }
                return [t["task_key"] as? String ?? "", type, deps.joined(separator: ", "), t["run_if"] as? String ?? "ALL_SUCCESS", "\(t["max_retries"] ?? 0)"]
            })
        }
    }

    struct RunNow: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "run-now", abstract: "Start a run of a job.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Job id.") var jobID: Int64
        @Option(name: .customLong("param"), help: "A job parameter, name=value (repeatable).") var params: [String] = []
        @Flag(help: "Wait for the run to finish and show its tasks; exit 1 unless it succeeded.") var wait = false

        func run() async throws {
            let parameters = try keyValues(params, option: "param")
            let c = try client.client()
            let started = try await c.call("POST", "\(api)/run-now", body: ["job_id": jobID, "job_parameters": parameters])
            guard let runID = (started["run_id"] as? NSNumber)?.int64Value else { throw CLIError("The server did not return a run id") }
            guard wait else {
                if client.json { return try printJSON(started) }
                return print("Started run \(runID). Follow it: kiln jobs runs --run-id \(runID)")
            }
            let run = try await Jobs.wait(c, runID: runID)
            if client.json { try printJSON(run) } else { Jobs.describe(run) }
            if !Jobs.succeeded(run) { throw ExitCode(1) }
        }
    }

    struct Runs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "runs", abstract: "List runs (newest first), or show one with --run-id.")
        @OptionGroup var client: ClientOptions
        @Option(name: .customLong("job-id"), help: "Only this job's runs.") var jobID: Int64?
        @Option(name: .customLong("run-id"), help: "Show this run and its tasks.") var runID: Int64?
        @Flag(name: .customLong("active"), help: "Only runs that are not finished.") var activeOnly = false
        @Option(help: "How many runs.") var limit = 25

        func run() async throws {
            let c = try client.client()
            if let runID {
                let run = try await c.call("GET", "\(api)/runs/get", query: [("run_id", String(runID))])
                return client.json ? try printJSON(run) : Jobs.describe(run)
            }
            var query = [("limit", String(limit)), ("active_only", activeOnly ? "true" : "false")]
            if let jobID { query.append(("job_id", String(jobID))) }
            let runs = try await c.call("GET", "\(api)/runs/list", query: query)["runs"] as? [[String: Any]] ?? []
            if client.json { return try printJSON(runs) }
            printTable(["RUN ID", "JOB ID", "NAME", "TRIGGER", "STATE", "RESULT", "STARTED", "SECONDS"], runs.map { r in
                let s = r["state"] as? [String: Any] ?? [:]
                let ms = Double((r["run_duration"] as? NSNumber)?.int64Value ?? 0)
                return ["\(r["run_id"] ?? "")", "\(r["job_id"] ?? "-")", r["run_name"] as? String ?? "", r["trigger"] as? String ?? "",
                        s["life_cycle_state"] as? String ?? "", s["result_state"] as? String ?? "", formatTime(r["start_time"]), String(format: "%.1f", ms / 1000)]
            })
        }
    }

    struct Output: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "output", abstract: "Show a task run's output: logs, error, task values, notebook result.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Task run id (kiln jobs runs --run-id <run> lists them).") var taskRunID: Int64

        func run() async throws {
            let out = try await client.client().call("GET", "\(api)/runs/get-output", query: [("run_id", String(taskRunID))])
            if client.json { return try printJSON(out) }
            if let values = out["task_values"] as? [String: Any], !values.isEmpty {
                print("Task values:")
                printTable(["NAME", "VALUE"], values.sorted { $0.key < $1.key }.map { [$0.key, formatNumber($0.value)] })
            }
            if let result = (out["notebook_output"] as? [String: Any])?["result"] as? String { print("Notebook result: \(result)") }
            if let error = out["error"] as? String { print("Error: \(error)") }
            if let logs = out["logs"] as? String, !logs.isEmpty { print(logs, terminator: logs.hasSuffix("\n") ? "" : "\n") }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a run, or every active run of a job with --all.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Run id (or job id with --all).") var id: Int64
        @Flag(help: "Cancel every active run of job <id>.") var all = false

        func run() async throws {
            let c = try client.client()
            if all { _ = try await c.call("POST", "\(api)/runs/cancel-all", body: ["job_id": id]) } else { _ = try await c.call("POST", "\(api)/runs/cancel", body: ["run_id": id]) }
            if !client.json { print(all ? "Canceling the active runs of job \(id)" : "Canceling run \(id)") }
        }
    }

    struct Repair: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "repair", abstract: "Rerun failed tasks (and what depends on them) inside a finished run.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Run id.") var runID: Int64
        @Option(name: .customLong("task"), help: "A task to rerun (repeatable); default: every failed task.") var tasks: [String] = []
        @Flag(name: .customLong("all-failed"), help: "Rerun every failed task.") var allFailed = false
        @Flag(help: "Wait for the repair to finish.") var wait = false

        func run() async throws {
            let c = try client.client()
            let run = try await c.call("GET", "\(api)/runs/get", query: [("run_id", String(runID))])
            var body: [String: Any] = ["run_id": runID, "rerun_tasks": tasks, "rerun_all_failed_tasks": allFailed || tasks.isEmpty, "rerun_dependent_tasks": true]
            if let last = (run["repair_history"] as? [[String: Any]])?.last, let id = last["id"] { body["latest_repair_id"] = id }
            let repaired = try await c.call("POST", "\(api)/runs/repair", body: body)
            guard wait else {
                if client.json { return try printJSON(repaired) }
                return print("Repair \(repaired["repair_id"] ?? "") of run \(runID) started")
            }
            let done = try await Jobs.wait(c, runID: runID)
            if client.json { try printJSON(done) } else { Jobs.describe(done) }
            if !Jobs.succeeded(done) { throw ExitCode(1) }
        }
    }
}
