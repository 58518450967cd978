import ArgumentParser
import Foundation

struct Runs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs", abstract: "List, search and inspect runs on a running server.",
        subcommands: [List.self, Search.self, Get.self, Reproduce.self]
    )

    static func table(_ runs: [[String: Any]], metricColumns: Int = 3) {
        var metricKeys: [String] = []
        for run in runs {
            let metrics = (run["data"] as? [String: Any])?["metrics"] as? [[String: Any]] ?? []
            for m in metrics { if let k = m["key"] as? String, !metricKeys.contains(k) { metricKeys.append(k) } }
        }
        metricKeys = Array(metricKeys.sorted().prefix(metricColumns))
        let rows = runs.map { run -> [String] in
            let info = run["info"] as? [String: Any] ?? [:]
            let metrics = (run["data"] as? [String: Any])?["metrics"] as? [[String: Any]] ?? []
            var row = [info["run_id"] as? String ?? "", info["run_name"] as? String ?? "", info["status"] as? String ?? "",
                       formatTime(info["start_time"])]
            for key in metricKeys {
                let value = metrics.first { $0["key"] as? String == key }?["value"]
                row.append(value.map(formatNumber) ?? "")
            }
            return row
        }
        printTable(["RUN ID", "NAME", "STATUS", "STARTED"] + metricKeys.map { $0.uppercased() }, rows)
    }

    struct Search: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "search", abstract: "Search runs with MLflow's filter syntax.")
        @OptionGroup var client: ClientOptions
        @Option(name: .customLong("experiment-id"), help: "Experiment id (repeatable; default 0).") var experimentIDs: [String] = []
        @Option(help: "Filter, e.g. \"metrics.rmse < 1 and params.model = 'tree'\".") var filter: String?
        @Option(name: .customLong("order-by"), help: "Order, e.g. 'metrics.rmse ASC' (repeatable).") var orderBy: [String] = []
        @Option(help: "Most runs to return.") var maxResults: Int = 100

        func run() async throws {
            var body: [String: Any] = ["experiment_ids": experimentIDs.isEmpty ? ["0"] : experimentIDs, "max_results": maxResults, "order_by": orderBy]
            if let filter { body["filter"] = filter }
            let response = try await client.client().call("POST", "api/2.0/mlflow/runs/search", body: body)
            let runs = response["runs"] as? [[String: Any]] ?? []
            if client.json { return try printJSON(runs) }
            Runs.table(runs)
        }
    }

    struct Reproduce: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reproduce", abstract: "Re-run a kiln train run from its logged spec and say whether the metrics match.")
        @Argument(help: "The run to reproduce.") var runID: String
        @OptionGroup var client: ClientOptions

        func run() async throws {
            let response = try await client.client().call("POST", "api/2.0/kiln/runs/reproduce", body: ["run_id": runID], timeout: 24 * 3600)
            if client.json { return try printJSON(response) }
            let metrics = response["metrics"] as? [String: [String: Any]] ?? [:]
            let rows = metrics.keys.sorted().map { key -> [String] in
                let original = metrics[key]?["original"], reproduced = metrics[key]?["reproduced"]
                let same = original.map(formatNumber) == reproduced.map(formatNumber) && original as? Double == reproduced as? Double
                return [key, original.map(formatNumber) ?? "", reproduced.map(formatNumber) ?? "", same ? "" : "differs"]
            }
            printTable(["METRIC", "ORIGINAL", "REPRODUCED", ""], rows)
            let matches = response["matches"] as? Bool ?? false
            print("\(matches ? "Match" : "MISMATCH"): run \(response["run_id"] as? String ?? "") reproduces \(runID)")
            if !matches { throw ExitCode(1) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the runs of an experiment, newest first.")
        @OptionGroup var client: ClientOptions
        @Option(name: .customLong("experiment-id"), help: "Experiment id (default 0).") var experimentID: String = "0"

        func run() async throws {
            let response = try await client.client().call("POST", "api/2.0/mlflow/runs/search", body: ["experiment_ids": [experimentID], "max_results": 1000])
            let runs = response["runs"] as? [[String: Any]] ?? []
            if client.json { return try printJSON(runs) }
            Runs.table(runs)
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "get", abstract: "Show one run: info, params, latest metrics and tags.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The run id.") var runID: String

        func run() async throws {
            let response = try await client.client().call("GET", "api/2.0/mlflow/runs/get", query: [("run_id", runID)])
            let run = response["run"] as? [String: Any] ?? [:]
            if client.json { return try printJSON(run) }
            let info = run["info"] as? [String: Any] ?? [:]
            let data = run["data"] as? [String: Any] ?? [:]
            printTable(["FIELD", "VALUE"], [
                ["run_id", info["run_id"] as? String ?? ""], ["name", info["run_name"] as? String ?? ""],
                ["experiment_id", info["experiment_id"] as? String ?? ""], ["status", info["status"] as? String ?? ""],
                ["started", formatTime(info["start_time"])], ["ended", formatTime(info["end_time"])],
                ["artifact_uri", info["artifact_uri"] as? String ?? ""],
            ])
            for (title, key, valueKey) in [("PARAM", "params", "value"), ("METRIC", "metrics", "value"), ("TAG", "tags", "value")] {
                let items = data[key] as? [[String: Any]] ?? []
                guard !items.isEmpty else { continue }
                print("")
                printTable([title, "VALUE"], items.map { [$0["key"] as? String ?? "", $0[valueKey].map(formatNumber) ?? ""] })
            }
        }
    }
}
