import ArgumentParser
import Foundation

/// `kiln endpoints`: serving endpoints on a running server (the same calls databricks-sdk makes).
struct Endpoints: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "endpoints", abstract: "Create, inspect, update, query and delete model serving endpoints.",
        discussion: """
            Examples:
              kiln endpoints create churn --model churn --version 3
              kiln endpoints traffic churn champion=churn/3:90 challenger=churn/4:10
              kiln endpoints query churn --json-body '{"dataframe_records": [{"age": 42, "plan": "pro"}]}'
            """,
        subcommands: [List.self, Get.self, Create.self, Update.self, Traffic.self, Query.self, Delete.self])

    /// A config serving one model version with all traffic.
    static func config(model: String, version: String, workloadSize: String) -> [String: Any] {
        ["served_entities": [["entity_name": model, "entity_version": version, "workload_size": workloadSize, "scale_to_zero_enabled": true]]]
    }

    /// Prints an endpoint as a short table.
    static func describe(_ e: [String: Any]) {
        let config = e["config"] as? [String: Any] ?? [:]
        let entities = config["served_entities"] as? [[String: Any]] ?? []
        let routes = config["traffic_config"].flatMap { ($0 as? [String: Any])?["routes"] as? [[String: Any]] } ?? []
        let share = Dictionary(routes.map { ($0["served_model_name"] as? String ?? "", $0["traffic_percentage"] as? Int ?? 0) }, uniquingKeysWith: { a, _ in a })
        let state = e["state"] as? [String: Any] ?? [:]
        print("\(e["name"] as? String ?? "") (\(state["ready"] as? String ?? "?"), config version \(config["config_version"] as? Int ?? 0))")
        printTable(["SERVED ENTITY", "MODEL", "VERSION", "TRAFFIC"], entities.map { entity in
            let name = entity["name"] as? String ?? ""
            return [name, entity["entity_name"] as? String ?? "", entity["entity_version"] as? String ?? "", "\(share[name] ?? 0)%"]
        })
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List serving endpoints.")
        @OptionGroup var client: ClientOptions

        func run() async throws {
            let response = try await client.client().call("GET", "api/2.0/serving-endpoints")
            let endpoints = response["endpoints"] as? [[String: Any]] ?? []
            if client.json { return try printJSON(endpoints) }
            printTable(["NAME", "STATE", "SERVED ENTITIES", "CONFIG VERSION"], endpoints.map { e in
                let config = e["config"] as? [String: Any] ?? [:]
                let entities = (config["served_entities"] as? [[String: Any]] ?? []).map { "\($0["entity_name"] ?? "")/\($0["entity_version"] ?? "")" }
                return [e["name"] as? String ?? "", (e["state"] as? [String: Any])?["ready"] as? String ?? "", entities.joined(separator: ", "),
                        "\(config["config_version"] as? Int ?? 0)"]
            })
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "get", abstract: "Show an endpoint.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Endpoint name.") var name: String

        func run() async throws {
            let e = try await client.client().call("GET", "api/2.0/serving-endpoints/\(name)")
            if client.json { return try printJSON(e) }
            Endpoints.describe(e)
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Serve a registered model version on a new endpoint.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Endpoint name.") var name: String
        @Option(help: "Registered model name.") var model: String
        @Option(help: "Model version.") var version: String
        @Option(name: .customLong("workload-size"), help: "Small, Medium or Large.") var workloadSize = "Small"

        func run() async throws {
            let body: [String: Any] = ["name": name, "config": Endpoints.config(model: model, version: version, workloadSize: workloadSize)]
            let e = try await client.client().call("POST", "api/2.0/serving-endpoints", body: body, timeout: 600)
            if client.json { return try printJSON(e) }
            Endpoints.describe(e)
            print("Query it: POST \(client.baseURL)/serving-endpoints/\(name)/invocations")
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "update", abstract: "Serve another model version on an endpoint (all traffic); the new version loads before traffic moves.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Endpoint name.") var name: String
        @Option(help: "Registered model name.") var model: String
        @Option(help: "Model version.") var version: String
        @Option(name: .customLong("workload-size"), help: "Small, Medium or Large.") var workloadSize = "Small"

        func run() async throws {
            let body = Endpoints.config(model: model, version: version, workloadSize: workloadSize)
            let e = try await client.client().call("PUT", "api/2.0/serving-endpoints/\(name)/config", body: body, timeout: 600)
            if client.json { return try printJSON(e) }
            Endpoints.describe(e)
        }
    }

    struct Traffic: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "traffic", abstract: "Replace an endpoint's served versions and traffic split.",
            discussion: "Each route is NAME=MODEL/VERSION:PERCENT; the percentages must sum to 100. The new versions load before traffic moves.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Endpoint name.") var name: String
        @Argument(help: "Routes, e.g. champion=churn/3:90 challenger=churn/4:10.") var routes: [String]

        func run() async throws {
            var entities: [[String: Any]] = [], traffic: [[String: Any]] = []
            for route in routes {
                guard let eq = route.firstIndex(of: "="), let slash = route.lastIndex(of: "/"), let colon = route.lastIndex(of: ":"),
                      eq < slash, slash < colon, let percent = Int(route[route.index(after: colon)...]) else {
                    throw ValidationError("Route '\(route)' is not NAME=MODEL/VERSION:PERCENT")
                }
                let served = String(route[..<eq])
                entities.append(["name": served, "entity_name": String(route[route.index(after: eq)..<slash]),
                                 "entity_version": String(route[route.index(after: slash)..<colon])])
                traffic.append(["served_model_name": served, "traffic_percentage": percent])
            }
            let e = try await client.client().call("PUT", "api/2.0/serving-endpoints/\(name)/config",
                                                   body: ["served_entities": entities, "traffic_config": ["routes": traffic]], timeout: 600)
            if client.json { return try printJSON(e) }
            Endpoints.describe(e)
        }
    }

    struct Query: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "query", abstract: "Score rows on an endpoint.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Endpoint name.") var name: String
        @Option(name: .customLong("json-body"), help: "The request: dataframe_split, dataframe_records, instances or inputs (JSON, or @file).")
        var jsonBody: String

        func run() async throws {
            let text = jsonBody.hasPrefix("@") ? try String(contentsOfFile: String(jsonBody.dropFirst()), encoding: .utf8) : jsonBody
            guard let body = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw ValidationError("--json-body must be a JSON object such as {\"dataframe_records\": [{...}]}")
            }
            let response = try await client.client().call("POST", "serving-endpoints/\(name)/invocations", body: body)
            try printJSON(response)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete an endpoint.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Endpoint name.") var name: String

        func run() async throws {
            _ = try await client.client().call("DELETE", "api/2.0/serving-endpoints/\(name)")
            print("Deleted endpoint \(name)")
        }
    }
}
