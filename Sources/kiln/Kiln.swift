import ArgumentParser
import Foundation
import KilnCore
import KilnPlatform
import KilnPython
import KilnServer
import Logging
import Metrics
import Prometheus

@main
struct Kiln: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Kiln: a self-hosted lakehouse machine-learning platform.",
        discussion: """
            Remote commands talk to a running server (--url, env KILN_URL, default http://127.0.0.1:5000; --token, env \
            KILN_TOKEN, else the home's admin.token): experiments, runs, models, endpoints, jobs, bundle, users, groups, \
            service-principals, tokens, features (feature tables, training sets, the online store).
            Local commands work on this machine's files and need no server: table, profile, parquet, ingest, storage, \
            predict, features transform (the default of features), audit.
            Both: sql and train run locally on --home, or on the server with --url (or KILN_URL).
            """,
        version: "kiln \(kilnVersion)",
        subcommands: [Server.self, Version.self, Experiments.self, Runs.self, Models.self, Parquet.self, Table.self, SQL.self, Ingest.self, Profile.self, Train.self, Predict.self, Features.self, Endpoints.self, Jobs.self, Bundles.self, Storage.self, Users.self, Groups.self, ServicePrincipals.self, Tokens.self, Audit.self]
    )

    static func main() async {
        let arguments = CommandLine.arguments
        // The supervisor of scorers and pip installs: started by the server, not by people; kept off the help.
        if arguments.count > 1, arguments[1] == "supervise" {
            let command = Array(arguments.dropFirst(arguments.count > 2 && arguments[2] == "--" ? 3 : 2))
            Supervised.superviseMain(command)
        }
        Supervised.configure(supervisor: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? arguments[0])
        Allocator.tuneForColumns()
        await main(nil)
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print Kiln's version.")
    @Flag(help: "Print JSON.") var json = false

    func run() {
        if json { print("{\"version\": \"\(kilnVersion)\"}") } else { print("kiln \(kilnVersion)") }
    }
}

struct Server: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "server", abstract: "Run the Kiln server: the MLflow and Databricks APIs, model serving and job workers in one process.")

    @Option(help: "Address to bind (env KILN_HOST).") var host: String?
    @Option(help: "Port to bind; 0 picks a free one (env KILN_PORT).") var port: Int?
    @Option(help: "Home folder for the database, artifacts and admin token (env KILN_HOME, default ~/.kiln).") var home: String?
    @Flag(help: "Serve without authentication; refused unless --host is a loopback address.") var noAuth = false
    @Flag(help: "Seed a 'demo' experiment with a few runs and the table main.demo.sales when they do not exist.") var demo = false
    @Option(help: "Log level: trace, debug, info, notice, warning, error (env KILN_LOG_LEVEL).") var logLevel: String?

    func validate() throws {
        if let port, !(0...65535).contains(port) { throw ValidationError("--port must be between 0 and 65535") }
    }

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let level = Logger.Level(rawValue: logLevel ?? env["KILN_LOG_LEVEL"] ?? "info") ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = Logger(label: "kiln")

        var settings = KilnConfiguration(
            home: home.map { URL(fileURLWithPath: $0) } ?? KilnConfiguration.defaultHome(environment: env),
            host: host ?? env["KILN_HOST"] ?? "127.0.0.1",
            port: port ?? env["KILN_PORT"].flatMap(Int.init) ?? 5000,
            noAuth: noAuth,
            adminToken: env["KILN_ADMIN_TOKEN"],
            demo: demo
        )
        if let base = env["KILN_WEBHOOK_RETRY_BASE_MS"].flatMap(Int64.init), base > 0 { settings.webhookRetryBaseMillis = base }
        let configuration = settings
        if configuration.noAuth, !KilnConfiguration.isLoopback(configuration.host) {
            throw ValidationError("--no-auth is only allowed when the server binds a loopback address; drop --no-auth or use --host 127.0.0.1")
        }
        let platform: Platform
        do {
            let clock: any KilnClock = env["KILN_TEST_CLOCK"] == "1" ? AdjustableClock() : SystemClock()
            platform = try await Platform.open(configuration, clock: clock, logger: logger)
        } catch let error as KilnError {
            throw ValidationError(error.message)
        }
        // Whatever fails once the store is open (seeding the demo, binding the port) closes it before the error is
        // printed: an open store must not be dropped (SQLite traps on an unclosed connection).
        do {
            if configuration.demo { try await platform.seedDemo() }
            let app = try buildApplication(platform: platform, registry: registry, logger: logger) { port in
                let tokenHint = configuration.adminToken != nil ? "from KILN_ADMIN_TOKEN" : "in \(configuration.home.appendingPathComponent("admin.token").path)"
                let line = "Kiln \(kilnVersion) listening on http://\(configuration.host):\(port) (home \(configuration.home.path); admin token \(configuration.noAuth ? "not required" : tokenHint))\n"
                let ui = "Web UI: http://\(configuration.host):\(port)/\(configuration.noAuth ? "" : " (sign in with the admin token)")\n"
                FileHandle.standardOutput.write(Data((line + ui).utf8))
            }
            try await app.runService()
        } catch {
            await platform.close()
            if let error = error as? KilnError { throw CLIError("\(error.code.rawValue): \(error.message)") }
            throw CLIError("Kiln could not start: \(error)")
        }
        await platform.close()
    }
}
