import Foundation
import KilnCore
import KilnStore
import KilnStoreSQLite
import KilnTracking
import KilnRegistry
import KilnBlob
import KilnPlatform
import Logging
import Synchronization

/// A clock that only moves when told to.
public final class MockClock: KilnClock {
    private let now: Mutex<Int64>
    public init(_ start: Int64 = 1_700_000_000_000) { now = Mutex(start) }
    public func nowMillis() -> Int64 { now.withLock { $0 } }
    public func advance(by millis: Int64) { now.withLock { $0 += millis } }
}

/// A temporary folder, removed when the value is released.
public final class TemporaryDirectory: Sendable {
    public let url: URL
    public init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// The stores the machine can run the conformance suites on. SQLite always; PostgreSQL joins when it lands.
public enum TestStores {
    public static let logger: Logger = {
        var logger = Logger(label: "kiln-test")
        logger.logLevel = .warning
        return logger
    }()

    /// Opens a fresh SQLite database in `directory`.
    public static func sqlite(in directory: TemporaryDirectory) async throws -> any KilnDatabase {
        try await SQLiteKilnDatabase.open(path: directory.url.appendingPathComponent("kiln.db").path, logger: logger)
    }

    /// Runs `body` with a tracking service on a fresh store, closing the store afterwards.
    public static func withTracking(clock: MockClock = MockClock(), _ body: (TrackingService) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        let database = try await sqlite(in: directory)
        do {
            try await body(try await TrackingService.make(database: database, clock: clock, logger: logger))
        } catch {
            await database.close()
            throw error
        }
        await database.close()
    }
}

/// Resolves registry sources to fixed locations, for registry tests without a tracking service.
public struct FixedModelSources: ModelSourceResolver {
    public var runs: [String: String]
    public var loggedModels: [String: String]
    public init(runs: [String: String] = [:], loggedModels: [String: String] = [:]) {
        self.runs = runs
        self.loggedModels = loggedModels
    }
    public func artifactURI(ofRun runID: String) async throws -> String {
        guard let uri = runs[runID] else { throw KilnError.notFound("Run with id=\(runID) not found") }
        return uri
    }
    public func artifactLocation(ofLoggedModel modelID: String) async throws -> String {
        guard let uri = loggedModels[modelID] else { throw KilnError.notFound("Logged model with ID '\(modelID)' not found.") }
        return uri
    }
    public func sourceRunID(ofLoggedModel modelID: String) async throws -> String? {
        loggedModels[modelID] == nil ? nil : runs.keys.first
    }
    public func lineage(ofRun runID: String) async throws -> RunLineage {
        guard runs[runID] != nil else { throw KilnError.notFound("Run with id=\(runID) not found") }
        return RunLineage(runID: runID, runName: "run", experimentID: "1", userID: "ana", params: [KeyValue("lr", "0.1")],
                          metrics: ["auc": 0.9], datasets: [])
    }
}

extension TestStores {
    /// Runs `body` with a registry on a fresh store and blob root, closing the store afterwards.
    public static func withRegistry(
        sources: FixedModelSources, _ body: (RegistryService, LocalBlobStore) async throws -> Void
    ) async throws {
        let directory = try TemporaryDirectory()
        let database = try await sqlite(in: directory)
        do {
            let blobs = try LocalBlobStore(root: directory.url.appendingPathComponent("artifacts"))
            let registry = try await RegistryService.make(database: database, artifacts: blobs, sources: sources, clock: MockClock(), logger: logger)
            try await body(registry, blobs)
        } catch {
            await database.close()
            throw error
        }
        await database.close()
    }
}

extension Platform {
    /// A test user `<role>@example.com` (in `groups`, made for it) with a personal access token.
    public func testUser(_ role: String, groups: [String] = []) async throws -> (name: String, token: String) {
        let name = "\(role)@example.com"
        let created = try await identity.create(.user, ["userName": .string(name)])
        for group in groups {
            _ = try await identity.create(.group, ["displayName": .string(group), "members": .array([.object(["value": .string(created.principal.id)])])])
        }
        let (token, _) = try await identity.createToken(owner: created.principal.id, createdBy: created.principal.id, lifetimeSeconds: nil, comment: nil)
        return (name, token)
    }
}
