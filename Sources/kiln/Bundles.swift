import ArgumentParser
import Foundation
import KilnCore
import KilnBundles
import KilnJobs
import KilnPlatform

/// `kiln bundle`: jobs as code. A `kiln.yml` (shaped like a Databricks Asset Bundle) declares jobs, experiments,
/// registered models and serving endpoints, with targets (dev, staging, prod) that override variables; deploys are
/// idempotent (what was created is remembered in `.kiln/<target>/state.json` and updated in place).
struct Bundles: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle", abstract: "Jobs as code: init, validate, deploy, run and destroy a kiln.yml bundle.",
        discussion: """
            Examples:
              kiln bundle init ml-project --name churn && cd churn
              kiln bundle validate
              kiln bundle deploy --target dev
              kiln bundle run retrain --target dev
              kiln bundle destroy --target dev --auto-approve
            """,
        subcommands: [Init.self, Validate.self, Deploy.self, Run.self, Destroy.self])

    struct Options: ParsableArguments {
        @Option(name: .shortAndLong, help: "Target in kiln.yml (default: the one marked default).") var target: String?
        @Option(name: .customLong("var"), help: "Override a variable, name=value (repeatable).") var vars: [String] = []
        @Option(help: "Bundle folder (default: the current folder).") var directory = "."

        func load() throws -> AssetBundle {
            let overrides = try keyValues(vars, option: "var")
            do {
                return try AssetBundle.load(directory: URL(fileURLWithPath: directory), target: target, overrides: overrides, validateJob: JobValidation.check)
            } catch let error as KilnError {
                throw CLIError(error.message)
            }
        }
    }

    /// What a deploy created, by kind and key: job ids, experiment ids, model and endpoint names.
    struct State {
        var url: URL
        var ids: [String: [String: String]]

        static func load(_ bundle: AssetBundle) -> State {
            let url = bundle.root.appendingPathComponent(".kiln/\(bundle.target)/state.json")
            let object = (try? JSONSerialization.jsonObject(with: Data(contentsOf: url))) as? [String: [String: String]] ?? [:]
            return State(url: url, ids: object)
        }

        func save() throws {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try JSONSerialization.data(withJSONObject: ids, options: [.prettyPrinted, .sortedKeys]).write(to: url, options: .atomic)
        }
    }

    static func any(_ value: JSONValue) -> Any { (try? JSONSerialization.jsonObject(with: Data(value.json.utf8), options: .fragmentsAllowed)) ?? NSNull() }

    static func value(_ any: Any?) -> JSONValue {
        guard let any, let data = try? JSONSerialization.data(withJSONObject: any, options: .fragmentsAllowed) else { return .null }
        return (try? JSONValue.parse(Array(data))) ?? .null
    }

    /// Jobs in deploy order: a job that references `${resources.jobs.<key>.id}` comes after that job.
    static func jobOrder(_ jobs: [String: [String: JSONValue]]) throws -> [(String, [String: JSONValue])] {
        var order: [(String, [String: JSONValue])] = [], placed = Set<String>()
        func references(_ settings: [String: JSONValue]) -> Set<String> {
            let text = JSONValue.object(settings).json
            return Set(jobs.keys.filter { text.contains("${resources.jobs.\($0).id}") })
        }
        while placed.count < jobs.count {
            guard let next = jobs.keys.sorted().first(where: { !placed.contains($0) && references(jobs[$0]!).subtracting([$0]).isSubset(of: placed) }) else {
                throw CLIError("The bundle's jobs reference each other's ids in a cycle: \(jobs.keys.filter { !placed.contains($0) }.sorted().joined(separator: ", "))")
            }
            placed.insert(next)
            order.append((next, jobs[next]!))
        }
        return order
    }

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "init", abstract: "Create a bundle from a built-in template (ml-project, minimal).")
        @Argument(help: "Template: ml-project (ingest → train → evaluate → promote → serve, with tests) or minimal.") var template = "ml-project"
        @Option(help: "Project name (letters, digits, _).") var name = "my_project"
        @Option(help: "Folder to create (default: ./<name>).") var dir: String?

        func run() async throws {
            guard name.range(of: "^[A-Za-z][A-Za-z0-9_]{0,40}$", options: .regularExpression) != nil else {
                throw ValidationError("--name must start with a letter and hold only letters, digits and _ (it names tables and models)")
            }
            guard let files = BundleTemplates.files(template, name: name) else {
                throw ValidationError("Unknown template '\(template)'; use one of \(BundleTemplates.names.joined(separator: ", "))")
            }
            let root = URL(fileURLWithPath: dir ?? name)
            guard !FileManager.default.fileExists(atPath: root.appendingPathComponent("kiln.yml").path) else {
                throw CLIError("\(root.path) already holds a kiln.yml; pick another --dir")
            }
            for (path, text) in files.sorted(by: { $0.key < $1.key }) {
                let url = root.appendingPathComponent(path)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(text.utf8).write(to: url)
                print("  \(path)")
            }
            print("Created the \(template) bundle in \(root.path). Next: cd \(root.path) && kiln bundle validate && kiln bundle deploy")
        }
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "validate", abstract: "Check kiln.yml for a target and list its resources.")
        @OptionGroup var options: Options
        @Flag(help: "Print the resolved resources as JSON.") var json = false

        func run() async throws {
            let bundle = try options.load()
            if json { return try printJSON(["bundle": bundle.name, "target": bundle.target, "variables": bundle.variables,
                                            "resources": bundle.resources.mapValues { $0.mapValues { Bundles.any(.object($0)) } }]) }
            let state = State.load(bundle)
            print("Bundle \(bundle.name), target \(bundle.target): valid")
            printTable(["KIND", "KEY", "NAME", "DEPLOYED"], AssetBundle.kinds.flatMap { kind in
                (bundle.resources[kind] ?? [:]).sorted { $0.key < $1.key }.map { key, r in
                    [kind, key, JSONValue.text(r["name"]), state.ids[kind]?[key] ?? "-"]
                }
            })
        }
    }

    struct Deploy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "deploy", abstract: "Create or update the bundle's resources on the server (idempotent).")
        @OptionGroup var options: Options
        @OptionGroup var client: ClientOptions

        func run() async throws {
            let bundle = try options.load()
            let c = try client.client()
            var state = State.load(bundle)
            var report: [[String]] = []
            func record(_ kind: String, _ key: String, _ id: String, _ action: String, _ name: String) throws {
                state.ids[kind, default: [:]][key] = id
                try state.save()
                report.append([kind, key, name, id, action])
            }
            for (key, r) in (bundle.resources["experiments"] ?? [:]).sorted(by: { $0.key < $1.key }) {
                let name = JSONValue.text(r["name"])
                if let found = try await c.find("GET", "api/2.0/mlflow/experiments/get-by-name", query: [("experiment_name", name)]),
                   let id = (found["experiment"] as? [String: Any])?["experiment_id"] as? String {
                    try record("experiments", key, id, "unchanged", name)
                } else {
                    let id = try await c.call("POST", "api/2.0/mlflow/experiments/create", body: ["name": name])["experiment_id"] as? String ?? ""
                    try record("experiments", key, id, "created", name)
                }
            }
            for (key, r) in (bundle.resources["registered_models"] ?? [:]).sorted(by: { $0.key < $1.key }) {
                let name = JSONValue.text(r["name"]), description = JSONValue.text(r["description"])
                if let found = try await c.find("GET", "api/2.0/mlflow/registered-models/get", query: [("name", name)]) {
                    let current = (found["registered_model"] as? [String: Any])?["description"] as? String ?? ""
                    if current != description { _ = try await c.call("PATCH", "api/2.0/mlflow/registered-models/update", body: ["name": name, "description": description]) }
                    try record("registered_models", key, name, current == description ? "unchanged" : "updated", name)
                } else {
                    _ = try await c.call("POST", "api/2.0/mlflow/registered-models/create", body: ["name": name, "description": description])
                    try record("registered_models", key, name, "created", name)
                }
            }
            for (key, declared) in try Bundles.jobOrder(bundle.resources["jobs"] ?? [:]) {
                // ${resources.jobs.<key>.id}: the referenced jobs are deployed first, so their ids are known.
                let ids = state.ids["jobs"] ?? [:]
                guard case .object(let settings) = JSONValue.object(declared).mapStrings({ text in
                    ids.reduce(text) { $0.replacingOccurrences(of: "${resources.jobs.\($1.key).id}", with: $1.value) }
                }) else { continue }
                let name = JSONValue.text(settings["name"])
                if let id = state.ids["jobs"]?[key], let found = try await c.find("GET", "api/2.2/jobs/get", query: [("job_id", id)]) {
                    if Bundles.value(found["settings"]) == .object(settings) {
                        try record("jobs", key, id, "unchanged", name)
                    } else {
                        _ = try await c.call("POST", "api/2.2/jobs/reset", body: ["job_id": Int64(id) ?? 0, "new_settings": Bundles.any(.object(settings))])
                        try record("jobs", key, id, "updated", name)
                    }
                } else {
                    let created = try await c.call("POST", "api/2.2/jobs/create", body: Bundles.any(.object(settings)) as? [String: Any] ?? [:])
                    try record("jobs", key, "\(created["job_id"] ?? "")", "created", name)
                }
            }
            for (key, r) in (bundle.resources["model_serving_endpoints"] ?? [:]).sorted(by: { $0.key < $1.key }) {
                let name = JSONValue.text(r["name"])
                let config = Bundles.any(r["config"] ?? .object([:]))
                if try await c.find("GET", "api/2.0/serving-endpoints/\(name)") != nil {
                    _ = try await c.call("PUT", "api/2.0/serving-endpoints/\(name)/config", body: config as? [String: Any] ?? [:], timeout: 600)
                    try record("model_serving_endpoints", key, name, "updated", name)
                } else {
                    _ = try await c.call("POST", "api/2.0/serving-endpoints", body: ["name": name, "config": config], timeout: 600)
                    try record("model_serving_endpoints", key, name, "created", name)
                }
            }
            if client.json { return try printJSON(state.ids) }
            print("Deployed bundle \(bundle.name) to target \(bundle.target) at \(client.baseURL)")
            printTable(["KIND", "KEY", "NAME", "ID", "ACTION"], report)
            if let job = bundle.resources["jobs"]?.keys.sorted().first { print("Run it: kiln bundle run \(job) --target \(bundle.target)") }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "run", abstract: "Run a deployed job of the bundle and wait for it.")
        @OptionGroup var options: Options
        @OptionGroup var client: ClientOptions
        @Argument(help: "The job's key under resources.jobs.") var key: String
        @Option(name: .customLong("param"), help: "A job parameter, name=value (repeatable).") var params: [String] = []
        @Flag(name: .customLong("no-wait"), help: "Start the run and return.") var noWait = false

        func run() async throws {
            let bundle = try options.load()
            guard bundle.resources["jobs"]?[key] != nil else {
                throw CLIError("The bundle has no job '\(key)' (it has: \((bundle.resources["jobs"] ?? [:]).keys.sorted().joined(separator: ", ")))")
            }
            guard let id = State.load(bundle).ids["jobs"]?[key], let jobID = Int64(id) else {
                throw CLIError("Job '\(key)' is not deployed to target \(bundle.target); run `kiln bundle deploy --target \(bundle.target)` first")
            }
            let parameters = try keyValues(params, option: "param")
            let c = try client.client()
            let started = try await c.call("POST", "api/2.2/jobs/run-now", body: ["job_id": jobID, "job_parameters": parameters])
            guard let runID = (started["run_id"] as? NSNumber)?.int64Value else { throw CLIError("The server did not return a run id") }
            if noWait { return client.json ? try printJSON(started) : print("Started run \(runID) of job \(jobID)") }
            let run = try await Jobs.wait(c, runID: runID)
            if client.json { try printJSON(run) } else { Jobs.describe(run) }
            if !Jobs.succeeded(run) { throw ExitCode(1) }
        }
    }

    struct Destroy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "destroy", abstract: "Delete everything a deploy of this target created.")
        @OptionGroup var options: Options
        @OptionGroup var client: ClientOptions
        @Flag(name: .customLong("auto-approve"), help: "Do not ask for confirmation.") var autoApprove = false

        func run() async throws {
            let bundle = try options.load()
            var state = State.load(bundle)
            guard !state.ids.values.allSatisfy(\.isEmpty) else { return print("Nothing deployed for target \(bundle.target)") }
            if !autoApprove {
                print("This deletes the target \(bundle.target)'s endpoints, jobs (and their runs), registered models (with their versions) and experiments. Type 'yes': ", terminator: "")
                guard readLine() == "yes" else { throw CLIError("Not destroyed") }
            }
            let c = try client.client()
            var report: [[String]] = []
            for (key, name) in state.ids["model_serving_endpoints"] ?? [:] {
                if try await c.find("GET", "api/2.0/serving-endpoints/\(name)") != nil { _ = try await c.call("DELETE", "api/2.0/serving-endpoints/\(name)") }
                report.append(["model_serving_endpoints", key, name])
            }
            for (key, id) in state.ids["jobs"] ?? [:] {
                if try await c.find("GET", "api/2.2/jobs/get", query: [("job_id", id)]) != nil {
                    _ = try await c.call("POST", "api/2.2/jobs/runs/cancel-all", body: ["job_id": Int64(id) ?? 0])
                    _ = try await c.call("POST", "api/2.2/jobs/delete", body: ["job_id": Int64(id) ?? 0])
                }
                report.append(["jobs", key, id])
            }
            for (key, name) in state.ids["registered_models"] ?? [:] {
                if try await c.find("GET", "api/2.0/mlflow/registered-models/get", query: [("name", name)]) != nil {
                    _ = try await c.call("DELETE", "api/2.0/mlflow/registered-models/delete", body: ["name": name])
                }
                report.append(["registered_models", key, name])
            }
            for (key, id) in state.ids["experiments"] ?? [:] {
                if try await c.find("GET", "api/2.0/mlflow/experiments/get", query: [("experiment_id", id)]) != nil {
                    _ = try await c.call("POST", "api/2.0/mlflow/experiments/delete", body: ["experiment_id": id])
                }
                report.append(["experiments", key, id])
            }
            state.ids = [:]
            try FileManager.default.removeItem(at: state.url)
            if client.json { return try printJSON(report.map { ["kind": $0[0], "key": $0[1], "id": $0[2]] }) }
            print("Destroyed target \(bundle.target) of bundle \(bundle.name)")
            printTable(["KIND", "KEY", "ID"], report)
        }
    }
}
