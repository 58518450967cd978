import Foundation
import KilnAudit
#if canImport(Glibc)
import Glibc
#endif
import KilnBlob
import KilnCatalog
import KilnCore
import KilnDelegation
import KilnFeatures
import KilnFrame
import KilnIdentity
import KilnJobs
import KilnPermissions
import KilnRegistry
import KilnServing
import KilnSQL
import KilnStore
import KilnStoreSQLite
import KilnTracking
import KilnTraining
import Logging

/// The wired platform: every service built from one configuration, sharing one store and one blob store.
public struct Platform: Sendable {
    public let configuration: KilnConfiguration
    public let database: any KilnDatabase
    /// Where artifacts proxied through the server live.
    public let artifacts: any BlobStore
    public let tracking: TrackingService
    public let registry: RegistryService
    /// SQL statements run through the Statement Execution API, over the tables under `<home>/warehouse`.
    public let statements: StatementService
    /// The bearer token that grants admin access.
    public let adminToken: String
    /// The clock every service was built with.
    public let clock: any KilnClock
    /// Model serving endpoints.
    public let serving: ServingService
    /// Job definitions (Jobs API).
    public let jobs: JobsService
    /// Job runs: run-now, submit, the DAG executor, repair, cancel.
    public let runs: JobRunner
    /// Where job notifications go (webhooks, email).
    public let destinations: NotificationDestinations
    /// Training, batch scoring, feature transforms and model comparison, logged to tracking and the registry.
    public let training: TrainingService
    /// Users, groups, service principals and their personal access tokens.
    public let identity: IdentityService
    /// The bootstrap admin, whom the admin token acts as.
    public let adminCaller: Caller
    /// One hash-chained event per API call; exported to `system.access.audit`.
    public let audit: AuditLog
    /// Unity Catalog's catalogs, schemas and tables over the warehouse.
    public let catalog: UnityCatalog
    /// Access control lists on experiments, registered models, serving endpoints and jobs.
    public let permissions: WorkspacePermissions
    /// Feature tables and training sets (checked as SQL checks tables).
    public let features: FeatureStore

    /// Opens (creating if needed) the home folder and builds every service.
    /// - Throws: `INVALID_PARAMETER_VALUE` when the home cannot be used.
    public static func open(_ configuration: KilnConfiguration, clock: any KilnClock = SystemClock(), logger: Logger) async throws -> Platform {
        let home = configuration.home
        do {
            try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        } catch {
            throw KilnError.invalid("Cannot create the Kiln home folder \(home.path): \(error.localizedDescription). Pass --home with a writable folder.")
        }
        let database = try await SQLiteKilnDatabase.open(path: home.appendingPathComponent("kiln.db").path, logger: logger)
        let artifacts = try LocalBlobStore(root: home.appendingPathComponent("artifacts"))
        let tracking = try await TrackingService.make(database: database, clock: clock, logger: logger)
        let registry = try await RegistryService.make(
            database: database, artifacts: artifacts, sources: TrackingModelSources(tracking: tracking), clock: clock,
            transport: HTTPWebhookTransport(),
            policy: WebhookPolicy(maxAttempts: configuration.webhookMaxAttempts, retryBaseMillis: configuration.webhookRetryBaseMillis),
            logger: logger)
        let token = try resolveAdminToken(configuration, logger: logger)
        let tablePath: @Sendable (String) -> String = { KilnConfiguration.tablePath($0, home: home) }
        let audit = try await AuditLog.make(database: database, logger: logger)
        let warehouse = home.appendingPathComponent("warehouse").path
        let identity = try await IdentityService.make(database: database, clock: clock, logger: logger)
        guard let admin = try await identity.caller(named: IdentityService.adminUser) else {
            throw KilnError(.internalError, "The bootstrap admin user is missing from the identity store")
        }
        let catalog = try await UnityCatalog.make(warehouse: warehouse, database: database, clock: clock, logger: logger,
                                                  modelCreated: { try await registry.creationTime(ofModel: $0) }) {
            try await identity.exists(name: $0)
        }
        let permissions = try await WorkspacePermissions.make(database: database, logger: logger) { name in
            Set(try await identity.kinds(named: name).map { kind -> PrincipalType in
                switch kind {
                case .user: return .user
                case .group: return .group
                case .servicePrincipal: return .servicePrincipal
                }
            })
        }
        let rules = StatementRules(audit: audit, catalog: catalog, warehouse: warehouse, tablePath: tablePath)
        let statements = StatementService(warehouse: warehouse, authorize: rules.check, completed: rules.catalogRules.completed,
                                          grants: rules.catalogRules.grants, filter: rules.catalogRules.visibleRows) {
            caller, views in
            var frames: [String: Frame] = [:]
            for view in views {
                let parts = view.split(separator: ".").map(String.init)
                frames[view] = try await catalog.informationSchema(parts[2], in: parts[0], caller: caller)
            }
            return frames
        }
        let locator = RegistryModelLocator(registry: registry, tracking: tracking)
        let training = TrainingService(runs: TrackingRunLog(tracking: tracking, clock: clock), models: locator, artifacts: artifacts, clock: clock,
                                       tablePath: tablePath)
        let features = FeatureStore(warehouse: warehouse, statements: statements,
                                    online: try OnlineStore(folder: home.appendingPathComponent("online").path), clock: clock,
                                    python: PythonFunctions(log: home.appendingPathComponent("online/python-functions.log").path),
                                    authorize: rules.check)
        let servable = ServableModels(locator: locator, artifacts: artifacts, home: home, logger: logger, features: features)
        let serving = try await ServingService.make(database: database, clock: clock, logger: logger, tablePath: tablePath, load: servable.load)
        let jobs = try await JobsService.make(database: database, clock: clock, logger: logger)
        let destinations = try await NotificationDestinations.make(database: database, logger: logger)
        let runs = try await JobRunner.make(database: database, jobs: jobs, destinations: destinations, clock: clock, home: home, logger: logger)
        return Platform(configuration: configuration, database: database, artifacts: artifacts, tracking: tracking,
                        registry: registry, statements: statements, adminToken: token, clock: clock, serving: serving, jobs: jobs, runs: runs,
                        destinations: destinations, training: training, identity: identity, adminCaller: admin, audit: audit, catalog: catalog,
                        permissions: permissions,
                        features: features)
    }

    /// Work done on a caller's behalf (training, comparison, the native job actions), checked as that caller.
    public var rules: CallerRules {
        CallerRules(training: training, tracking: tracking, registry: registry, permissions: permissions, catalog: catalog)
    }

    /// Which models and endpoints use which feature tables.
    public var lineage: FeatureLineage {
        FeatureLineage(models: RegistryModelSpecs(registry: registry, locator: RegistryModelLocator(registry: registry, tracking: tracking),
                                                  artifacts: artifacts),
                       endpoints: EndpointEntities(serving: serving), online: features.online)
    }

    /// Who `token` belongs to: the admin token (the bootstrap admin), a job run's token (the run's run-as identity:
    /// `run_as`, else its job's owner, else whoever started it), or a personal access token; nil when it is none of these (unknown, revoked,
    /// expired, or its owner — or the run's run-as identity — disabled or gone).
    public func authenticate(token: String) async throws -> Caller? {
        if Self.constantTimeEqual(token, adminToken) { return adminCaller }
        if let run = await runs.identity(forToken: token) { return try await caller(actingFor: run) }
        return try await identity.authenticate(token: token)
    }

    /// Whom a job run acts as: `run_as`, else its job's owner, else whoever started it (a run with none of these: a
    /// signed-in identity of its own, with no grants); nil when that identity is disabled or gone.
    public func caller(actingFor run: RunIdentity) async throws -> Caller? {
        var name = run.runAs
        if name == nil, let job = run.jobID {
            name = try await permissions.entries(.jobs, String(job)).first { $0.level == "IS_OWNER" }?.principal
        }
        guard let name = name ?? run.creator else { return Caller(id: nil, name: "job-run-\(run.runID)", groups: []) }
        return try await identity.caller(named: name)
    }

    /// Compares two secrets in time that does not depend on where they differ.
    public static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0
    }


    /// The directory of a table argument: a three-level name under this home's warehouse, else a path.
    public func tablePath(_ table: String) -> String { KilnConfiguration.tablePath(table, home: configuration.home) }

    /// The audit table's folder under this home's warehouse.
    public var auditTablePath: String { tablePath(AuditTable.name) }

    /// Closes the store.
    public func close() async {
        await runs.shutdown()
        await features.online.stopStreams()
        await features.online.flush()
        serving.close()
        await audit.close()
        await database.close()
    }

    static func resolveAdminToken(_ configuration: KilnConfiguration, logger: Logger) throws -> String {
        if let token = configuration.adminToken, !token.isEmpty { return token }
        let file = configuration.home.appendingPathComponent("admin.token")
        if let existing = try? String(contentsOf: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !existing.isEmpty {
            return existing
        }
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        let token = "kiln_" + Hex.encode(bytes)
        // Created with mode 0600 from the first byte, then fsynced: the token is never readable by others.
        let fd = Glibc.open(file.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw KilnError.invalid("Cannot write \(file.path); check the home folder's permissions") }
        defer { Glibc.close(fd) }
        fchmod(fd, 0o600)
        let line = Array((token + "\n").utf8)
        let written = line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == line.count, fsync(fd) == 0 else { throw KilnError.invalid("Cannot write \(file.path); is the disk full?") }
        logger.info("Generated an admin token", metadata: ["kiln.token_file": "\(file.path)"])
        return token
    }
}

/// What a SQL statement may touch, decided before it runs: the `system` catalog is Kiln's own (read-only for
/// everyone, readable by admins; reading the audit table first brings its Delta export up to date); every table read
/// needs `SELECT`, every table written `MODIFY`, a new table `CREATE_TABLE`, a new schema `CREATE_SCHEMA`, a new
/// catalog `CREATE_CATALOG`, dropping or altering ownership (with the `USE_CATALOG`/`USE_SCHEMA` chain, as Unity
/// Catalog decides it); files read by path take an admin. Kiln itself (no caller: jobs, local mode) and admins pass.
struct StatementRules: Sendable {
    let audit: AuditLog
    let catalog: UnityCatalog
    let warehouse: String
    let tablePath: @Sendable (String) -> String

    func check(_ caller: Caller?, _ references: StatementReferences) async throws {
        let systemFolder = URL(fileURLWithPath: warehouse).appendingPathComponent("system").standardizedFileURL.path
        func isSystem(_ name: String) -> Bool { name == "system" || name.hasPrefix("system.") }
        if let name = references.written.first(where: isSystem) {
            throw KilnError(.permissionDenied, "\(name) is in the system catalog, which is read-only")
        }
        let systemPaths = references.pathsRead.filter { URL(fileURLWithPath: $0).standardizedFileURL.path.hasPrefix(systemFolder) }
        let systemTables = references.tablesRead.filter(isSystem)
        if let caller, !caller.isAdmin {
            if let name = (systemTables.sorted() + systemPaths.sorted()).first {
                throw KilnError(.permissionDenied, "\(caller.name) may not read \(name): the system catalog is for workspace admins")
            }
            if let path = references.pathsRead.sorted().first {
                throw KilnError(.permissionDenied, "\(caller.name) may not read files by path (\(path)): query the table by name, or ask an admin")
            }
            if let path = references.locationsWritten.sorted().first {
                throw KilnError(.permissionDenied, "\(caller.name) may not put a schema at a path (\(path)): that takes an admin; leave out LOCATION")
            }
            try await catalogRules.checkGrants(caller, references)
        }
        if systemTables.contains(AuditTable.name) || !systemPaths.isEmpty { try await audit.export(to: tablePath(AuditTable.name)) }
    }

    /// Owners, grants and listings: the catalog's own SQL rules.
    var catalogRules: CatalogStatementRules { CatalogStatementRules(catalog: catalog) }
}

extension JobRunner {
    /// Starts executing runs over `platform`'s services; task processes call back to `serverURL`.
    public func start(platform: Platform, serverURL: String) async throws {
        let environment = JobEnvironment(home: platform.configuration.home, statements: platform.statements, tablePath: { platform.tablePath($0) },
                                         webhooks: HTTPWebhookTransport(), native: KilnNativeActions(rules: platform.rules, serving: platform.serving, tablePath: { platform.tablePath($0) })) { run in
            guard let caller = try await platform.caller(actingFor: run) else {
                throw KilnError(.permissionDenied, "Run \(run.runID) acts as an identity that is disabled or gone; give the job an active owner or run_as")
            }
            return caller
        }
        try await start(environment: environment, serverURL: serverURL)
    }
}
