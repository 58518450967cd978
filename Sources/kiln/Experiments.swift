import ArgumentParser
import Foundation

struct Experiments: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiments", abstract: "List and create experiments on a running server.",
        subcommands: [List.self, Create.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List experiments.")
        @OptionGroup var client: ClientOptions
        @Option(help: "Filter, e.g. \"name LIKE 'churn%'\".") var filter: String?
        @Flag(help: "Include deleted experiments.") var all = false

        func run() async throws {
            var body: [String: Any] = ["max_results": 1000, "view_type": all ? "ALL" : "ACTIVE_ONLY"]
            if let filter { body["filter"] = filter }
            let response = try await client.client().call("POST", "api/2.0/mlflow/experiments/search", body: body)
            let experiments = response["experiments"] as? [[String: Any]] ?? []
            if client.json { return try printJSON(experiments) }
            printTable(["ID", "NAME", "STAGE", "CREATED", "ARTIFACT LOCATION"], experiments.map { e in
                [e["experiment_id"] as? String ?? "", e["name"] as? String ?? "", e["lifecycle_stage"] as? String ?? "",
                 formatTime(e["creation_time"]), e["artifact_location"] as? String ?? ""]
            })
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create an experiment.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The experiment's name.") var name: String
        @Option(help: "Artifact location; default: served by Kiln.") var artifactLocation: String?

        func run() async throws {
            var body: [String: Any] = ["name": name]
            if let artifactLocation { body["artifact_location"] = artifactLocation }
            let response = try await client.client().call("POST", "api/2.0/mlflow/experiments/create", body: body)
            if client.json { return try printJSON(response) }
            print("Created experiment '\(name)' with id \(response["experiment_id"] as? String ?? "?")")
        }
    }
}
