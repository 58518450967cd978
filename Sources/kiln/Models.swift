import ArgumentParser
import Foundation

struct Models: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models", abstract: "Work with the model registry on a running server.",
        subcommands: [List.self, Get.self, Versions.self, Register.self, Transition.self, Alias.self, Delete.self, Compare.self]
    )

    static func versionRows(_ versions: [[String: Any]]) -> [[String]] {
        versions.map { v in
            [v["name"] as? String ?? "", v["version"] as? String ?? "", v["current_stage"] as? String ?? "",
             (v["aliases"] as? [String] ?? []).joined(separator: ","), formatTime(v["creation_timestamp"]),
             v["run_id"] as? String ?? ""]
        }
    }

    static let versionHeaders = ["NAME", "VERSION", "STAGE", "ALIASES", "CREATED", "RUN ID"]

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List registered models.")
        @OptionGroup var client: ClientOptions
        @Option(help: "Filter, e.g. \"name LIKE 'churn%'\".") var filter: String?

        func run() async throws {
            var query = [("max_results", "1000")]
            if let filter { query.append(("filter", filter)) }
            let response = try await client.client().call("GET", "api/2.0/mlflow/registered-models/search", query: query)
            let models = response["registered_models"] as? [[String: Any]] ?? []
            if client.json { return try printJSON(models) }
            printTable(["NAME", "LATEST", "ALIASES", "UPDATED", "DESCRIPTION"], models.map { m in
                let latest = (m["latest_versions"] as? [[String: Any]] ?? []).compactMap { $0["version"] as? String }.compactMap(Int.init).max()
                let aliases = (m["aliases"] as? [[String: Any]] ?? []).map { "\($0["alias"] ?? "")=\($0["version"] ?? "")" }
                return [m["name"] as? String ?? "", latest.map(String.init) ?? "", aliases.joined(separator: ","),
                        formatTime(m["last_updated_timestamp"]), m["description"] as? String ?? ""]
            })
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "get", abstract: "Show a registered model and its latest versions.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The model's name.") var name: String

        func run() async throws {
            let response = try await client.client().call("GET", "api/2.0/mlflow/registered-models/get", query: [("name", name)])
            let model = response["registered_model"] as? [String: Any] ?? [:]
            if client.json { return try printJSON(model) }
            print("\(name)\(((model["description"] as? String).map { ": \($0)" }) ?? "")")
            printTable(Models.versionHeaders, Models.versionRows(model["latest_versions"] as? [[String: Any]] ?? []))
        }
    }

    struct Versions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "versions", abstract: "List the versions of a registered model.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The model's name.") var name: String

        func run() async throws {
            let escaped = name.replacingOccurrences(of: "'", with: "''")
            let response = try await client.client().call("GET", "api/2.0/mlflow/model-versions/search",
                                                          query: [("filter", "name = '\(escaped)'"), ("max_results", "1000")])
            let versions = response["model_versions"] as? [[String: Any]] ?? []
            if client.json { return try printJSON(versions) }
            printTable(Models.versionHeaders, Models.versionRows(versions))
        }
    }

    struct Register: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "register", abstract: "Register a new version from runs:/<run>/<path>, models:/m-<id> or an artifact URI.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The model's name; created when it does not exist.") var name: String
        @Argument(help: "The source, e.g. runs:/<run_id>/model.") var source: String

        func run() async throws {
            let api = try client.client()
            do {
                _ = try await api.call("GET", "api/2.0/mlflow/registered-models/get", query: [("name", name)])
            } catch let error as ValidationError where error.message.hasPrefix("RESOURCE_DOES_NOT_EXIST") {
                _ = try await api.call("POST", "api/2.0/mlflow/registered-models/create", body: ["name": name])
            }
            var body: [String: Any] = ["name": name, "source": source]
            if source.hasPrefix("runs:/") { body["run_id"] = source.dropFirst(6).split(separator: "/").first.map(String.init) ?? "" }
            if source.hasPrefix("models:/m-") { body["model_id"] = String(source.dropFirst(8)) }
            let response = try await api.call("POST", "api/2.0/mlflow/model-versions/create", body: body)
            let version = response["model_version"] as? [String: Any] ?? [:]
            if client.json { return try printJSON(version) }
            print("Registered \(name) version \(version["version"] as? String ?? "?")")
        }
    }

    struct Transition: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "transition", abstract: "Move a version to None, Staging, Production or Archived.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The model's name.") var name: String
        @Argument(help: "The version.") var version: String
        @Argument(help: "The target stage.") var stage: String
        @Flag(help: "Archive the other versions in the target stage.") var archiveExisting = false

        func run() async throws {
            let response = try await client.client().call("POST", "api/2.0/mlflow/model-versions/transition-stage", body: [
                "name": name, "version": version, "stage": stage, "archive_existing_versions": archiveExisting,
            ])
            let moved = response["model_version"] as? [String: Any] ?? [:]
            if client.json { return try printJSON(moved) }
            print("\(name) version \(version) is now in \(moved["current_stage"] as? String ?? stage)")
        }
    }

    struct Alias: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "alias", abstract: "Point an alias at a version, or remove it with --delete.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The model's name.") var name: String
        @Argument(help: "The alias, e.g. champion.") var alias: String
        @Argument(help: "The version (omit with --delete).") var version: String?
        @Flag(help: "Remove the alias.") var delete = false

        func validate() throws {
            if !delete, version == nil { throw ValidationError("Give the version the alias should point at, or --delete") }
        }

        func run() async throws {
            let api = try client.client()
            if delete {
                _ = try await api.call("DELETE", "api/2.0/mlflow/registered-models/alias", body: ["name": name, "alias": alias])
                print("Removed alias \(alias) from \(name)")
            } else {
                _ = try await api.call("POST", "api/2.0/mlflow/registered-models/alias", body: ["name": name, "alias": alias, "version": version!])
                print("\(name)@\(alias) -> version \(version!)")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a version, or a whole registered model with no version given.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The model's name.") var name: String
        @Argument(help: "The version to delete.") var version: String?

        func run() async throws {
            let api = try client.client()
            if let version {
                _ = try await api.call("DELETE", "api/2.0/mlflow/model-versions/delete", body: ["name": name, "version": version])
                print("Deleted \(name) version \(version)")
            } else {
                _ = try await api.call("DELETE", "api/2.0/mlflow/registered-models/delete", body: ["name": name])
                print("Deleted registered model \(name) and all its versions")
            }
        }
    }

    struct Compare: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "compare", abstract: "Score one table with two models and test whether one is significantly better.",
            discussion: """
                Classifiers: McNemar's test on the rows only one of them gets right. Regressors: a paired bootstrap 95% \
                interval of RMSE(A) − RMSE(B). Example:
                  kiln models compare models:/churn@champion models:/churn/7 --table main.default.churn_holdout
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "Model A: models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/model.") var modelA: String
        @Argument(help: "Model B.") var modelB: String
        @Option(help: "Table to score both on.") var table: String
        @Option(name: .customLong("table-version"), help: "Table version (default: newest).") var tableVersion: Int64?
        @Option(help: "Seed for the bootstrap.") var seed: UInt64 = 0

        func run() async throws {
            var body: [String: Any] = ["model_a": modelA, "model_b": modelB, "table": table, "seed": seed]
            body["table_version"] = tableVersion
            let r = try await client.client().call("POST", "api/2.0/kiln/models/compare", body: body, timeout: 3600)
            if client.json { return try printJSON(r) }
            let a = r["metrics_a"] as? [String: Double] ?? [:], b = r["metrics_b"] as? [String: Double] ?? [:]
            printTable(["METRIC", "A", "B"], Set(a.keys).union(b.keys).sorted().map { [$0, a[$0].map(formatNumber) ?? "", b[$0].map(formatNumber) ?? ""] })
            let rows = r["rows"] as? Int ?? 0
            if r["test"] as? String == "mcnemar" {
                print("McNemar on \(rows) rows: only A right \(r["only_a_correct"] as? Int ?? 0), only B right \(r["only_b_correct"] as? Int ?? 0), p = \(formatNumber(r["p_value"] as? Double ?? 1))")
            } else {
                print("RMSE(A) − RMSE(B) on \(rows) rows: \(formatNumber(r["difference"] as? Double ?? 0)), 95% interval [\(formatNumber(r["ci_low"] as? Double ?? 0)), \(formatNumber(r["ci_high"] as? Double ?? 0))]")
            }
            switch r["better"] as? String {
            case "a": print("A is significantly better (5% level): \(r["model_a"] as? String ?? modelA)")
            case "b": print("B is significantly better (5% level): \(r["model_b"] as? String ?? modelB)")
            default: print("Neither model is significantly better at the 5% level")
            }
        }
    }
}
