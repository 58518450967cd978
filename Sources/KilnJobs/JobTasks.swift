import Foundation
import KilnCore
import KilnPython
import KilnLake
import KilnSQL
import Logging

/// What every task of every run shares: the environment (home, SQL and the native tasks), the runner (for ids and
/// run_job_task), the server's address and token (for the stock clients in child processes), and the folder of
/// run outputs (`<home>/jobs/runs/<task run id>/`: output.log, status, values.json, notebook.ipynb).
struct TaskContext: Sendable {
    let environment: JobEnvironment
    let destinations: NotificationDestinations
    let runner: JobRunner
    let store: JobRunStore
    let clock: any KilnClock
    let logger: Logger
    let serverURL: String
    let runs: URL
    let python: String
    let pythonPath: URL
    let ipython: URL
    /// Bytes of stdout and stderr kept per task attempt.
    static let logCap = 5 * 1024 * 1024

    init(environment: JobEnvironment, runner: JobRunner, serverURL: String) throws {
        self.environment = environment
        self.runner = runner
        store = runner.store
        clock = runner.clock
        destinations = runner.destinations
        logger = Logger(label: "kiln.jobs")
        self.serverURL = serverURL
        let jobs = environment.home.appendingPathComponent("jobs")
        runs = jobs.appendingPathComponent("runs")
        python = ProcessInfo.processInfo.environment["KILN_PYTHON"] ?? "python3"
        pythonPath = jobs.appendingPathComponent("python")
        ipython = jobs.appendingPathComponent("ipython")
        let fm = FileManager.default
        try fm.createDirectory(at: runs, withIntermediateDirectories: true)
        try fm.createDirectory(at: pythonPath.appendingPathComponent("dbruntime"), withIntermediateDirectories: true)
        try fm.createDirectory(at: ipython.appendingPathComponent("profile_default/startup"), withIntermediateDirectories: true)
        try Data(DBUtilsShim.module.utf8).write(to: pythonPath.appendingPathComponent("dbruntime/__init__.py"))
        try Data(DBUtilsShim.startup.utf8).write(to: ipython.appendingPathComponent("profile_default/startup/00-kiln-dbutils.py"))
    }

    func directory(_ t: TaskRun) -> URL { Self.directory(home: environment.home, taskRunID: t.taskRunID) }

    /// Where a task run's files live: `<home>/jobs/runs/<task run id>/`.
    static func directory(home: URL, taskRunID: Int64) -> URL {
        home.appendingPathComponent("jobs/runs").appendingPathComponent(String(taskRunID))
    }

    // MARK: Running one attempt

    /// Runs one attempt of a task (already saved as RUNNING) and returns it finished: result, message, outputs.
    func perform(_ attempt: TaskRun, run: JobRun, upstream: [String: TaskRun]) async -> TaskRun {
        var t = attempt
        var timeout: Double?
        if case .number(let n)? = t.task["timeout_seconds"], let s = Double(n), s > 0 { timeout = s }
        do {
            let references = JobReferences(run: run, taskKey: t.taskKey, taskRunID: t.taskRunID, attempt: t.attempt, upstream: upstream,
                                           input: t.info["input"])
            let resolved = try references.resolve(t.task)
            let snapshot = t
            let (outcome, timedOut) = await Self.withTimeout(timeout) { await self.execute(resolved, snapshot, run: run, upstream: upstream) }
            t = outcome
            if timedOut {
                t.result = .timedOut
                t.message = "The task timed out after \(Int(timeout!)) seconds (timeout_seconds)"
            }
        } catch let error as KilnError {
            t.result = .failed
            t.message = error.message
        } catch {
            t.result = .failed
            t.message = "\(error)"
        }
        t.lifeCycle = .terminated
        t.endTime = clock.nowMillis()
        if t.result == nil { t.result = .failed }
        if t.result == .failed, t.info["error"] == nil { t.info["error"] = .string(t.message) }
        return t
    }

    /// Runs `body`; after `seconds` it is canceled (its processes killed) and reported as timed out.
    static func withTimeout(_ seconds: Double?, _ body: @escaping @Sendable () async -> TaskRun) async -> (TaskRun, Bool) {
        guard let seconds else { return (await body(), false) }
        return await withTaskGroup(of: TaskRun?.self) { group in
            group.addTask { await body() }
            group.addTask {
                try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
                return nil
            }
            let first = await group.next()!
            group.cancelAll()
            if let finished = first { return (finished, false) }
            while let next = await group.next() { if let finished = next { return (finished, !Task.isCancelled) } }
            fatalError("the task body always returns")
        }
    }

    func execute(_ task: [String: JSONValue], _ attempt: TaskRun, run: JobRun, upstream: [String: TaskRun]) async -> TaskRun {
        var t = attempt
        do {
            if case .object(let c)? = task["condition_task"] {
                let outcome = try Self.condition(c)
                t.info["outcome"] = .string(outcome ? "true" : "false")
                t.result = .success
                t.message = "Condition \(outcome ? "met" : "not met")"
            } else if case .object(let p)? = task["spark_python_task"] {
                let file = try resolvePath(JSONFields(p).require("python_file"))
                var arguments = try JSONFields(p).strings("parameters") ?? []
                if let legacy = try JSONFields(run.overrides).strings("python_params") { arguments = legacy }
                let env = try await environment(task, run, &t)
                t = try await process([env?.python ?? python, file] + arguments, t, run: run, upstream: upstream, widgets: run.parameters, bin: env?.bin)
            } else if case .object(let n)? = task["notebook_task"] {
                let notebook = try resolvePath(JSONFields(n).require("notebook_path"))
                var widgets = try JSONFields(n).map("base_parameters")
                widgets.merge(run.parameters) { _, job in job }
                widgets.merge(try JSONFields(run.overrides).map("notebook_params")) { _, given in given }
                let output = directory(t).appendingPathComponent("notebook.ipynb").path
                let env = try await environment(task, run, &t)
                var argv = [env?.python ?? python, "-m", "papermill", "--no-progress-bar", "-k", "python3", notebook, output]
                for (k, v) in widgets.sorted(by: { $0.key < $1.key }) { argv += ["-r", k, v] }
                t = try await process(argv, t, run: run, upstream: upstream, widgets: widgets, bin: env?.bin)
                t.info["notebook_path"] = .string(output)
            } else if case .object(let s)? = task["shell_command_task"] {
                let env = try await environment(task, run, &t)
                t = try await process(["/bin/sh", "-c", try JSONFields(s).require("command")], t, run: run, upstream: upstream, widgets: run.parameters, bin: env?.bin)
            } else if case .object(let s)? = task["spark_submit_task"] {
                // spark-submit (PyPI pyspark's, or a Spark install's on PATH) to KILN_SPARK_MASTER, default local[*].
                let env = try await environment(task, run, &t)
                let master = ProcessInfo.processInfo.environment["KILN_SPARK_MASTER"] ?? "local[*]"
                let parameters = try (JSONFields(s).strings("parameters") ?? []).map { p in
                    p.hasSuffix(".py") && !p.hasPrefix("/") && !p.contains("://") ? try resolvePath(p) : p
                }
                guard !parameters.isEmpty else { throw KilnError.invalid("spark_submit_task needs parameters (the application and its arguments)") }
                t = try await process(["spark-submit", "--master", master] + parameters, t, run: run, upstream: upstream, widgets: run.parameters,
                                      bin: env?.bin, extra: ["PYSPARK_PYTHON": env?.python ?? python])
            } else if case .object(let s)? = task["sql_task"] {
                t = try await sql(s, t, as: try await environment.actAs(RunIdentity(run)))
            } else if let native = try NativeTask.from(task) {
                t = try await native.run(t, context: self, as: try await environment.actAs(RunIdentity(run)))
            } else if case .object(let r)? = task["run_job_task"] {
                t = try await runJob(r, t)
            } else if case .object(let f)? = task["for_each_task"] {
                t = try await forEach(f, t, run: run, upstream: upstream)
            } else {
                throw KilnError.invalid("Kiln cannot run this task type")
            }
        } catch let error as KilnError {
            t.result = Task.isCancelled ? .canceled : .failed
            t.message = error.message
        } catch {
            t.result = Task.isCancelled ? .canceled : .failed
            t.message = "\(error)"
        }
        return t
    }

    /// A file a task names: absolute, `file:` URI, or relative to `<home>/workspace`.
    func resolvePath(_ path: String) throws -> String {
        var p = path
        if p.hasPrefix("file://") { p = String(p.dropFirst("file://".count)) }
        if !p.hasPrefix("/") { p = environment.home.appendingPathComponent("workspace").appendingPathComponent(p).path }
        guard FileManager.default.fileExists(atPath: p) else { throw KilnError.invalid("File \(path) does not exist (looked at \(p))") }
        return p
    }

    static func condition(_ c: [String: JSONValue]) throws -> Bool {
        let f = JSONFields(c)
        let op = try f.require("op"), left = try f.string("left") ?? "", right = try f.string("right") ?? ""
        if op == "EQUAL_TO" || op == "NOT_EQUAL" {
            let equal: Bool
            if let a = Double(left), let b = Double(right) { equal = a == b } else { equal = left == right }
            return op == "EQUAL_TO" ? equal : !equal
        }
        guard let a = Double(left), let b = Double(right) else {
            throw KilnError.invalid("condition_task \(op) compares numbers; got '\(left)' and '\(right)'")
        }
        switch op {
        case "GREATER_THAN": return a > b
        case "GREATER_THAN_OR_EQUAL": return a >= b
        case "LESS_THAN": return a < b
        case "LESS_THAN_OR_EQUAL": return a <= b
        default: throw KilnError.invalid("condition_task op must be EQUAL_TO, NOT_EQUAL, GREATER_THAN, GREATER_THAN_OR_EQUAL, LESS_THAN or LESS_THAN_OR_EQUAL")
        }
    }

    // MARK: Processes

    /// Runs a child process for a task attempt with the environment that points stock clients at this server and
    /// gives `dbutils` its task values and widgets.
    func process(_ argv: [String], _ attempt: TaskRun, run: JobRun, upstream: [String: TaskRun], widgets: [String: String], bin: String? = nil,
                 extra: [String: String] = [:]) async throws -> TaskRun {
        var t = attempt
        let dir = directory(t)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let values = upstream.filter { !$0.value.values.isEmpty }.mapValues { JSONValue.object($0.values) }
        try Data(JSONValue.object(values).json.utf8).write(to: dir.appendingPathComponent("upstream.json"))
        try Data(JSONValue.object(widgets.mapValues(JSONValue.string)).json.utf8).write(to: dir.appendingPathComponent("widgets.json"))
        var env = ProcessInfo.processInfo.environment
        let token = try await runner.token(for: run.runID)
        env["MLFLOW_TRACKING_URI"] = serverURL
        env["MLFLOW_TRACKING_TOKEN"] = token
        env["DATABRICKS_HOST"] = serverURL
        env["DATABRICKS_TOKEN"] = token
        env["KILN_TOKEN"] = token
        env["KILN_URL"] = serverURL
        env["KILN_JOB_ID"] = run.jobID.map(String.init) ?? ""
        env["KILN_RUN_ID"] = String(run.runID)
        env["KILN_TASK_RUN_ID"] = String(t.taskRunID)
        env["KILN_TASK_KEY"] = t.taskKey
        env["KILN_TASK_VALUES_FILE"] = dir.appendingPathComponent("values.json").path
        env["KILN_TASK_VALUES_UPSTREAM"] = dir.appendingPathComponent("upstream.json").path
        env["KILN_WIDGETS"] = dir.appendingPathComponent("widgets.json").path
        env["KILN_NOTEBOOK_EXIT_FILE"] = dir.appendingPathComponent("exit.txt").path
        env["PYTHONPATH"] = ([pythonPath.path] + (env["PYTHONPATH"].map { [$0] } ?? [])).joined(separator: ":")
        env["PYTHONUNBUFFERED"] = "1"
        env["IPYTHONDIR"] = ipython.path
        if let bin {
            env["PATH"] = bin + ":" + (env["PATH"] ?? "/usr/bin:/bin")
            env["VIRTUAL_ENV"] = URL(fileURLWithPath: bin).deletingLastPathComponent().path
        }
        for key in ["DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"] { env[key] = nil }
        env.merge(extra) { _, given in given }
        let child = try ChildProcess.spawn(argv, environment: env, directory: dir.path, log: dir.appendingPathComponent("output.log").path,
                                           statusFile: dir.appendingPathComponent("status").path, logCap: Self.logCap)
        t.pid = child.pid
        try? await store.save(t)
        let code = await withTaskCancellationHandler { await child.wait() } onCancel: { ChildProcess.stop(group: child.pid) }
        return finishProcess(t, code: code)
    }

    /// The virtual environment of a task's `libraries` (pypi packages with optional pins, local wheels,
    /// requirements files) and its job environment's `spec.dependencies`, cached by the list's hash; nil when the
    /// task brings none. The resolved versions are recorded on the attempt. - Throws: with pip's message.
    func environment(_ task: [String: JSONValue], _ run: JobRun, _ t: inout TaskRun) async throws -> PythonEnvironments.Environment? {
        var requirements: [String] = []
        if case .array(let libraries)? = task["libraries"] {
            for library in libraries {
                guard case .object(let l) = library else { throw KilnError.invalid("Every library must be an object such as {\"pypi\": {\"package\": \"x==1.0\"}}") }
                if case .object(let pypi)? = l["pypi"] {
                    let package = try JSONFields(pypi).require("package")
                    if let repo = try JSONFields(pypi).string("repo") { requirements.append("--extra-index-url \(repo)") }
                    requirements.append(package)
                } else if let wheel = try JSONFields(l).string("whl") {
                    requirements.append(try resolvePath(wheel))
                } else if let file = try JSONFields(l).string("requirements") {
                    requirements.append("-r \(try resolvePath(file))")
                } else {
                    throw KilnError.invalid("Kiln installs pypi, whl and requirements libraries; got \(library.json)")
                }
            }
        }
        if case .string(let key)? = task["environment_key"] {
            guard case .array(let environments)? = run.settings["environments"],
                  let match = environments.first(where: { if case .object(let e) = $0 { return e["environment_key"] == .string(key) } else { return false } }),
                  case .object(let e) = match else {
                throw KilnError.invalid("The task names environment_key '\(key)', which the job's environments do not define")
            }
            if case .object(let spec)? = e["spec"], let deps = try JSONFields(spec).strings("dependencies") {
                requirements += try deps.map { $0.hasSuffix(".whl") ? try resolvePath($0) : $0 }
            }
        }
        guard !requirements.isEmpty else { return nil }
        let root = environment.home.appendingPathComponent("jobs/envs"), list = requirements
        let environment = try await offload { try PythonEnvironments.prepare(root: root, requirements: list, what: "task's") }
        t.info["libraries"] = .array(environment.resolved.map(JSONValue.string))
        return environment
    }

    /// An attempt's result from its exit status and the files it left.
    func finishProcess(_ attempt: TaskRun, code: Int32?) -> TaskRun {
        var t = attempt
        let dir = directory(t)
        if let data = FileManager.default.contents(atPath: dir.appendingPathComponent("values.json").path),
           case .object(let values)? = try? JSONValue.parse(Array(data)) {
            t.info["values"] = .object(values)
        }
        if let data = FileManager.default.contents(atPath: dir.appendingPathComponent("exit.txt").path) {
            t.info["notebook_result"] = .string(String(decoding: data, as: UTF8.self))
        }
        t.pid = nil
        if Task.isCancelled {
            t.result = .canceled
            t.message = "Canceled"
        } else if let code {
            t.result = code == 0 ? .success : .failed
            if code != 0 {
                let tail = Self.tail(dir.appendingPathComponent("output.log").path, bytes: 2000)
                let lastLine = tail.split(separator: "\n").last.map(String.init) ?? ""
                t.message = "The process exited with status \(code)\(lastLine.isEmpty ? "" : ": \(lastLine)")"
                t.info["error"] = .string(lastLine.isEmpty ? t.message : lastLine)
                t.info["error_trace"] = .string(tail)
            }
        } else {
            t.result = .failed
            t.message = "The task's process vanished while the server was down (no exit status)"
        }
        return t
    }

    /// Finishes an attempt a stopped server left running: waits for its process if it is still there.
    func adopt(_ attempt: TaskRun) async -> TaskRun {
        var t = attempt
        if let pid = t.pid {
            let status = directory(t).appendingPathComponent("status").path
            let code = await withTaskCancellationHandler { await ChildProcess.adopt(pid: pid, statusFile: status) } onCancel: { ChildProcess.stop(group: pid) }
            t = finishProcess(t, code: code)
        } else {
            t.result = .failed
            t.message = "The server stopped while this task ran"
        }
        t.lifeCycle = .terminated
        t.endTime = clock.nowMillis()
        return t
    }

    static func tail(_ path: String, bytes: Int) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > UInt64(bytes) ? size - UInt64(bytes) : 0)
        return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    }

    // MARK: SQL, run_job, for_each

    /// `sql_task`: a `file.path` of statements separated by `;`, or (Kiln) `query.query_text`; `parameters` bind
    /// `:name` markers. The last statement's first 100 rows are kept as output. Runs as `caller` (the run's run-as
    /// identity), with its grants.
    func sql(_ s: [String: JSONValue], _ attempt: TaskRun, as caller: Caller?) async throws -> TaskRun {
        var t = attempt
        var text: String
        if case .object(let file)? = s["file"] {
            let path = try resolvePath(JSONFields(file).require("path"))
            text = try String(contentsOfFile: path, encoding: .utf8)
        } else if case .object(let query)? = s["query"], let q = try JSONFields(query).string("query_text") {
            text = q
        } else {
            throw KilnError.invalid("sql_task needs file.path (a .sql file) or query.query_text")
        }
        text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let parameters = try JSONFields(s).map("parameters").map { StatementService.Parameter(name: $0.key, value: $0.value, type: nil) }
        let statements = text.split(separator: ";").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
        var rows: [JSONValue] = [], names: [String] = [], count = 0
        for statement in statements {
            let used = parameters.filter { statement.contains(":" + $0.name) }
            let snapshot = try await environment.statements.execute(statement, parameters: used, caller: caller, wait: 86_400)
            if let error = snapshot.error { throw error }
            guard snapshot.state == .succeeded else { throw KilnError.invalid("The statement ended \(snapshot.state.rawValue): \(statement.prefix(200))") }
            if let frame = snapshot.result {
                names = frame.names
                count = frame.rowCount
                rows = (0..<min(100, frame.rowCount)).map { r in .array(frame.columns.map { $0.isNull(r) ? .null : .string($0.value(r).text) }) }
            }
        }
        t.info["sql_output"] = .object(["columns": .array(names.map(JSONValue.string)), "rows": .array(rows), "row_count": .number(String(count)),
                                        "statements": .number(String(statements.count))])
        t.result = .success
        return t
    }

    /// `run_job_task`: runs another job (queued behind its max_concurrent_runs) and takes its result.
    func runJob(_ r: [String: JSONValue], _ attempt: TaskRun) async throws -> TaskRun {
        var t = attempt
        let f = JSONFields(r)
        guard let jobID = try f.int64("job_id") else { throw KilnError.invalid("run_job_task needs job_id") }
        var request = JobRunner.RunRequest(jobID: jobID)
        request.jobParameters = try f.map("job_parameters")
        request.trigger = "RUN_JOB_TASK"
        request.parentTaskRunID = t.taskRunID
        request.queue = true
        let (child, _) = try await runner.runNow(request)
        t.info["run_job_run_id"] = .number(String(child))
        try? await store.save(t)
        let runner = self.runner
        let finished = try await withTaskCancellationHandler {
            while true {
                let r = try await store.run(child)
                if r.lifeCycle.isFinal { return r }
                try await Task.sleep(nanoseconds: 50_000_000)
            }
        } onCancel: { Task { try? await runner.cancel(runID: child) } }
        let ok = finished.result == .success || finished.result == .successWithFailures
        t.result = ok ? .success : .failed
        t.message = ok ? "" : "Job run \(child) ended \(finished.result?.rawValue ?? finished.lifeCycle.rawValue): \(finished.message)"
        return t
    }

    /// `for_each_task`: the nested task once per element of `inputs` (a JSON array), `concurrency` at a time; each
    /// iteration is a task run of its own with `{{input}}` bound to the element.
    func forEach(_ f: [String: JSONValue], _ attempt: TaskRun, run: JobRun, upstream: [String: TaskRun]) async throws -> TaskRun {
        var t = attempt
        let fields = JSONFields(f)
        let text = try fields.require("inputs")
        guard case .array(let inputs)? = try? JSONValue.parse(Array(text.utf8)) else {
            throw KilnError.invalid("for_each_task.inputs must be a JSON array, got \(text.prefix(200))")
        }
        guard case .object(let inner)? = f["task"], let innerKey = JobValidation.taskKey(.object(inner)) else {
            throw KilnError.invalid("for_each_task needs a task with a task_key")
        }
        let concurrency = max(1, min(100, Int(try fields.int64("concurrency") ?? 1)))
        let parentID = t.taskRunID, repairID = t.repairID
        let results: [TaskRun] = await withTaskGroup(of: TaskRun.self) { group in
            var out: [TaskRun] = [], next = 0
            func add() {
                let input = inputs[next]
                next += 1
                group.addTask {
                    await TaskAttempts(context: self, run: run, task: inner, key: innerKey, upstream: upstream, repairID: repairID, parent: parentID, input: input)
                        .run(resuming: nil)
                }
            }
            while next < inputs.count && next < concurrency { add() }
            while let done = await group.next() {
                out.append(done)
                if next < inputs.count, !Task.isCancelled { add() }
            }
            return out
        }
        let succeeded = results.filter { $0.result == .success }.count
        t.info["iterations"] = .object(["total_iterations": .number(String(inputs.count)), "succeeded_iterations": .number(String(succeeded)),
                                        "failed_iterations": .number(String(results.count - succeeded)),
                                        "completed_iterations": .number(String(results.count))])
        t.result = Task.isCancelled ? .canceled : succeeded == inputs.count ? .success : .failed
        if t.result == .failed { t.message = "\(inputs.count - succeeded) of \(inputs.count) iterations did not succeed" }
        return t
    }

    // MARK: Notifications

    /// Sends a run's webhook notifications for `event` (on_start, on_success, on_failure), retrying failed
    /// deliveries in the background.
    func notify(_ run: JobRun, event: String) async {
        email(run, event: event)
        guard case .object(let hooks)? = run.settings["webhook_notifications"], case .array(let targets)? = hooks[event] else { return }
        let body = JSONValue.object([
            "event_type": .string("jobs.\(event)"), "job_id": run.jobID.map { .number(String($0)) } ?? .null,
            "run_id": .number(String(run.runID)), "run_name": .string(run.runName),
            "result_state": run.result.map { .string($0.rawValue) } ?? .null, "state_message": .string(run.message),
        ]).json
        for target in targets {
            guard case .object(let o) = target, case .string(let id)? = o["id"] else { continue }
            let logger = self.logger
            Task.detached {
                if let d = try? await destinations.get(id), d.type == "EMAIL", case .object(let e)? = d.config["email"],
                   let addresses = try? JSONFields(e).strings("addresses") {
                    return self.send(to: addresses, run, event: event)
                }
                guard let (url, auth) = await WebhookTargets.target(id, destinations: destinations) else {
                    logger.warning("Unknown notification destination", metadata: ["kiln.destination": "\(id)"])
                    return
                }
                for attempt in 0..<5 {
                    if let (status, _) = try? await environment.webhooks.post(url: url, headers: [("Content-Type", "application/json")] + auth, body: Array(body.utf8)),
                       (200..<300).contains(status) { return }
                    try? await Task.sleep(nanoseconds: UInt64(500_000_000) << attempt)
                }
                logger.warning("Webhook delivery failed after 5 attempts", metadata: ["kiln.url": "\(url)"])
            }
        }
    }
}

extension TaskContext {
    /// Emails a run's `email_notifications` for `event` through `KILN_SMTP_HOST` (port `KILN_SMTP_PORT`, 25;
    /// sender `KILN_SMTP_FROM`), retrying failed deliveries in the background.
    func email(_ run: JobRun, event: String) {
        guard case .object(let mails)? = run.settings["email_notifications"], let to = try? JSONFields(mails).strings(event), !to.isEmpty else { return }
        if run.result == .excluded || run.lifeCycle == .skipped, mails["no_alert_for_skipped_runs"] == .bool(true) { return }
        send(to: to, run, event: event)
    }

    func send(to: [String], _ run: JobRun, event: String) {
        let env = ProcessInfo.processInfo.environment
        guard let host = env["KILN_SMTP_HOST"], !host.isEmpty else {
            logger.warning("A job has email notifications but KILN_SMTP_HOST is not set; not sending", metadata: ["kiln.run_id": "\(run.runID)"])
            return
        }
        let port = env["KILN_SMTP_PORT"].flatMap(Int.init) ?? 25, from = env["KILN_SMTP_FROM"] ?? "kiln@localhost"
        let what = event.replacingOccurrences(of: "on_", with: "").replacingOccurrences(of: "_", with: " ")
        let subject = "[Kiln] \(run.runName) run \(run.runID): \(run.result?.rawValue ?? what)"
        let body = """
            Job: \(run.runName) (\(run.jobID.map(String.init) ?? "one-time run"))
            Run: \(run.runID), triggered \(run.trigger)
            Event: \(what)
            State: \(run.lifeCycle.rawValue) \(run.result?.rawValue ?? "")
            \(run.message)
            Follow it: kiln jobs runs --run-id \(run.runID)
            """
        let logger = self.logger
        Task.detached {
            for attempt in 0..<5 {
                do {
                    try await offload { try SMTPMailer.send(host: host, port: port, from: from, to: to, subject: subject, body: body) }
                    return
                } catch {
                    if attempt == 4 { logger.warning("Email notification failed", metadata: ["error": "\(error)"]) }
                    try? await Task.sleep(nanoseconds: UInt64(500_000_000) << attempt)
                }
            }
        }
    }
}

/// Where a webhook notification goes: a notification destination's URL (and basic auth), or an http(s) URL given as
/// the id directly.
enum WebhookTargets {
    static func target(_ id: String, destinations: NotificationDestinations) async -> (url: String, headers: [(String, String)])? {
        if id.hasPrefix("http://") || id.hasPrefix("https://") { return (id, []) }
        guard let d = try? await destinations.get(id), case .object(let hook)? = d.config["generic_webhook"],
              case .string(let url)? = hook["url"] else { return nil }
        var headers: [(String, String)] = []
        if case .string(let user)? = hook["username"], case .string(let password)? = hook["password"] {
            headers.append(("Authorization", "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()))
        }
        return (url, headers)
    }
}
