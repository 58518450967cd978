import Hummingbird
import KilnCore
import KilnDelegation
import KilnFeatures
import KilnPlatform
import Logging
import Prometheus
import ServiceLifecycle
import KilnRegistry
import KilnWeb

/// Kiln's version, reported by `kiln version` and `/version`.


/// Builds the router with every middleware and route family; the server binary and the tests share it.
public func buildRouter(platform: Platform, registry: PrometheusCollectorRegistry, authEnabled: Bool = true) -> Router<KilnRequestContext> {
    let router = Router(context: KilnRequestContext.self)
    // Middleware first: routes capture the middleware present when they are added.
    router.add(middleware: KilnMetricsMiddleware())
    router.add(middleware: ErrorMiddleware())
    var configured = WebUI(tracking: platform.tracking, registry: platform.registry, artifacts: platform.artifacts, jobs: platform.jobs, runner: platform.runs,
                    statements: platform.statements, serving: platform.serving, preferences: WebPreferences(database: platform.database),
                    sessions: WebSessions(database: platform.database), authEnabled: authEnabled, permissions: platform.permissions,
                    ucModels: UCModelRoutes.webAccess(registry: platform.registry, catalog: platform.catalog, permissions: platform.permissions), refresh: { caller in
                        // A job run's caller has no store id: nothing to look up again.
                        guard caller.id != nil else { return caller }
                        return try? await platform.identity.caller(named: caller.name)
                    }) { token in
        try? await platform.authenticate(token: token)
    }
    // A table's page lists the models and endpoints that read its features.
    let lineage = platform.lineage
    configured.tableUsers = { table in
        try await lineage.users(of: table).map {
            TableUse(model: $0.model, version: $0.version, endpoint: $0.endpoint, featureSpec: $0.featureSpec, features: $0.features)
        }
    }
    let web = configured
    let auditor = Auditor(log: platform.audit, clock: platform.clock) { await web.caller(of: $0) }
    let authorizer = Authorizer(permissions: platform.permissions, catalog: platform.catalog, tracking: platform.tracking, registry: platform.registry,
                                jobs: platform.jobs, runs: platform.runs, serving: platform.serving)
    router.add(middleware: AuthMiddleware(enabled: authEnabled, authenticate: { try await platform.authenticate(token: $0) },
                                          anonymous: platform.adminCaller, authorizer: authorizer, auditor: auditor))
    router.add(middleware: AuditMiddleware(auditor: auditor))
    SystemRoutes(registry: registry, version: kilnVersion).register(on: router)
    web.register(on: router)
    MLflowRoutes(tracking: platform.tracking, artifacts: platform.artifacts, permissions: platform.permissions).register(on: router)
    RegistryRoutes(registry: platform.registry, permissions: platform.permissions) {
        try await UCModelRoutes.visibleModelIDs($0, permissions: platform.permissions, registry: platform.registry, catalog: platform.catalog)
    }.register(on: router)
    RegistryReviewRoutes(registry: platform.registry).register(on: router)
    WebhookRoutes(registry: platform.registry, permissions: platform.permissions).register(on: router)
    ArtifactRoutes(artifacts: platform.artifacts).register(on: router)
    StatementRoutes(statements: platform.statements).register(on: router)
    FeatureRoutes(features: platform.features, lineage: platform.lineage).register(on: router)
    TrainingRoutes(platform: platform).register(on: router)
    ServingRoutes(serving: platform.serving, permissions: platform.permissions) { try await platform.rules.requireModelRead($0, $1) }.register(on: router)
    JobRoutes(jobs: platform.jobs, runs: platform.runs, permissions: platform.permissions).register(on: router)
    JobRunRoutes(runs: platform.runs, permissions: platform.permissions).register(on: router)
    NotificationDestinationRoutes(destinations: platform.destinations).register(on: router)
    IdentityRoutes(identity: platform.identity).register(on: router)
    UnityCatalogRoutes(catalog: platform.catalog).register(on: router)
    let modelFiles = UCModelFiles(artifacts: platform.artifacts, registry: platform.registry, catalog: platform.catalog, secret: (0..<32).map { _ in UInt8.random(in: 0...255) })
    FilesRoutes(catalog: platform.catalog, models: modelFiles).register(on: router)
    UCModelRoutes(registry: platform.registry, catalog: platform.catalog, permissions: platform.permissions, files: modelFiles).register(on: router)
    PermissionsRoutes(permissions: platform.permissions) { kind, given in
        switch kind {
        case .experiments: return (try? await platform.tracking.getExperiment(id: given)).map { _ in given }
        case .registeredModels: return (try? await platform.registry.getRegisteredModel(name: given))?.name
        case .servingEndpoints:
            if let endpoint = try? await platform.serving.get(name: given) { return endpoint.name }
            return try await platform.serving.list().first { $0.id == given }?.name
        case .jobs:
            guard let id = Int64(given), (try? await platform.jobs.get(id: id)) != nil else { return nil }
            return given
        }
    }.register(on: router)
    if let clock = platform.clock as? AdjustableClock { JobRunRoutes.registerTestClock(clock, runs: platform.runs, on: router) }
    return router
}

/// Builds the HTTP application for `platform`.
/// - Throws: `INVALID_PARAMETER_VALUE` when `--no-auth` is asked for on a non-loopback address.
public func buildApplication(
    platform: Platform,
    registry: PrometheusCollectorRegistry,
    logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) throws -> some ApplicationProtocol {
    let configuration = platform.configuration
    if configuration.noAuth, !KilnConfiguration.isLoopback(configuration.host) {
        throw KilnError.invalid("--no-auth is only allowed when the server binds a loopback address (127.0.0.1, ::1); drop --no-auth or bind --host 127.0.0.1")
    }
    let router = buildRouter(platform: platform, registry: registry, authEnabled: !configuration.noAuth)
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "kiln"),
        services: [WebhookDeliveryService(registry: platform.registry, logger: logger), AuditExportService(platform: platform, logger: logger)],
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? configuration.port
            let host = configuration.host == "0.0.0.0" || configuration.host == "::" ? "127.0.0.1" : configuration.host
            do {
                try await platform.runs.start(platform: platform, serverURL: "http://\(host):\(port)")
            } catch {
                logger.error("Could not start the job runner", metadata: ["error": "\(error)"])
            }
            // Online tables published CONTINUOUS keep following their tables (the server's, never a CLI's).
            await platform.features.online.resumeStreams()
            await onServerRunning(port)
        },
        logger: logger
    )
}

/// Delivers queued registry webhooks in the background until the server shuts down.
struct WebhookDeliveryService: Service {
    let registry: RegistryService
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await registry.runWebhookDelivery(logger: logger)
        }
    }
}

/// Keeps `system.access.audit` (the Delta export of the audit log) within `interval` of the log for outside
/// readers; SQL through Kiln brings it up to date before each read of it anyway.
struct AuditExportService: Service {
    let platform: Platform
    let logger: Logger
    var interval: Duration = .seconds(30)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { return }  // the last events are flushed on close; outside readers catch up at next start
                do { try await platform.audit.export(to: platform.auditTablePath) } catch {
                    logger.error("Could not export the audit log to Delta", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
