import KilnBlob
import KilnCore
import KilnRegistry
import KilnTestSupport
import Synchronization
import Testing

@Suite("Model registry service")
struct RegistryServiceTests {
    static let sources = FixedModelSources(runs: ["run1": "mlflow-artifacts:/1/run1/artifacts"],
                                           loggedModels: ["m-1": "mlflow-artifacts:/1/models/m-1/artifacts"])

    static func seedFiles(_ blobs: LocalBlobStore) throws {
        try blobs.put(try BlobKey("1/run1/artifacts/model/MLmodel"), bytes: Array("flavors: {}".utf8))
        try blobs.put(try BlobKey("1/models/m-1/artifacts/MLmodel"), bytes: Array("flavors: {}".utf8))
        try blobs.put(try BlobKey("1/models/m-1/artifacts/data/model.pkl"), bytes: [1, 2, 3])
    }

    @Test("versions number from 1, copy their files into registry storage, and never reuse numbers")
    func versionsCopyFiles() async throws {
        try await TestStores.withRegistry(sources: Self.sources) { registry, blobs in
            try Self.seedFiles(blobs)
            _ = try await registry.createRegisteredModel(name: "iris")
            let v1 = try await registry.createModelVersion(name: "iris", source: "models:/m-1", modelID: "m-1")
            let v2 = try await registry.createModelVersion(name: "iris", source: "runs:/run1/model", runID: "run1")
            #expect((v1.version, v2.version) == (1, 2))
            let key = try #require(try BlobKey(proxiedURI: v1.storageLocation))
            #expect(key.segments.first == "registry")
            // The copy outlives the source.
            try blobs.delete(try BlobKey("1/models/m-1"))
            #expect(try blobs.get(try key.appending("data/model.pkl")) == [1, 2, 3])
            try await registry.deleteModelVersion(name: "iris", version: "2")
            #expect(try await registry.createModelVersion(name: "iris", source: "runs:/run1/model").version == 3)
            #expect(try blobs.kind(of: try #require(try BlobKey(proxiedURI: v2.storageLocation))) == nil)
        }
    }

    @Test("archive_existing_versions archives the other versions in the target stage")
    func transitions() async throws {
        try await TestStores.withRegistry(sources: Self.sources) { registry, blobs in
            try Self.seedFiles(blobs)
            _ = try await registry.createRegisteredModel(name: "m")
            for _ in 0..<3 { _ = try await registry.createModelVersion(name: "m", source: "runs:/run1/model") }
            _ = try await registry.transitionStage(name: "m", version: "1", stage: .production, archiveExisting: false)
            _ = try await registry.transitionStage(name: "m", version: "2", stage: .production, archiveExisting: false)
            _ = try await registry.transitionStage(name: "m", version: "3", stage: .production, archiveExisting: true)
            #expect(try await registry.getModelVersion(name: "m", version: "1").stage == .archived)
            #expect(try await registry.getModelVersion(name: "m", version: "2").stage == .archived)
            #expect(try await registry.latestVersions(name: "m", stages: ["production"]).map(\.version) == [3])
            let bad = await #expect(throws: KilnError.self) { try ModelStage.parse("Shipping") }
            #expect(bad?.code == .invalidParameterValue)
        }
    }

    @Test("aliases move, resolve and disappear with their version")
    func aliases() async throws {
        try await TestStores.withRegistry(sources: Self.sources) { registry, blobs in
            try Self.seedFiles(blobs)
            _ = try await registry.createRegisteredModel(name: "m")
            _ = try await registry.createModelVersion(name: "m", source: "runs:/run1/model")
            _ = try await registry.createModelVersion(name: "m", source: "runs:/run1/model")
            try await registry.setAlias(name: "m", alias: "champion", version: "1")
            try await registry.setAlias(name: "m", alias: "champion", version: "2")
            #expect(try await registry.version(name: "m", alias: "champion").version == 2)
            #expect(try await registry.getModelVersion(name: "m", version: "2").aliases == ["champion"])
            let reserved = await #expect(throws: KilnError.self) { try await registry.setAlias(name: "m", alias: "latest", version: "1") }
            #expect(reserved?.code == .invalidParameterValue)
            try await registry.deleteModelVersion(name: "m", version: "2")
            let gone = await #expect(throws: KilnError.self) { try await registry.version(name: "m", alias: "champion") }
            #expect(gone?.code == .invalidParameterValue)  // as mlflow server answers a missing alias
        }
    }

    @Test("rename moves versions, tags and aliases; duplicates and unknown names fail with MLflow codes")
    func renameAndErrors() async throws {
        try await TestStores.withRegistry(sources: Self.sources) { registry, blobs in
            try Self.seedFiles(blobs)
            _ = try await registry.createRegisteredModel(name: "a", tags: [KeyValue("team", "ml")])
            _ = try await registry.createRegisteredModel(name: "b")
            _ = try await registry.createModelVersion(name: "a", source: "runs:/run1/model", tags: [KeyValue("k", "v")])
            try await registry.setAlias(name: "a", alias: "prod", version: "1")
            let taken = await #expect(throws: KilnError.self) { try await registry.renameRegisteredModel(name: "a", newName: "b") }
            #expect(taken?.code == .resourceAlreadyExists)
            let renamed = try await registry.renameRegisteredModel(name: "a", newName: "c")
            #expect(renamed.tags == [KeyValue("team", "ml")])
            #expect(renamed.aliases.map(\.alias) == ["prod"])
            #expect(try await registry.getModelVersion(name: "c", version: "1").tags == [KeyValue("k", "v")])
            let missing = await #expect(throws: KilnError.self) { try await registry.getRegisteredModel(name: "a") }
            #expect(missing?.code == .resourceDoesNotExist)
            let duplicate = await #expect(throws: KilnError.self) { try await registry.createRegisteredModel(name: "b") }
            #expect(duplicate?.code == .resourceAlreadyExists)
            let noFiles = await #expect(throws: KilnError.self) {
                try await registry.createModelVersion(name: "b", source: "mlflow-artifacts:/9/nothing")
            }
            #expect(noFiles?.code == .invalidParameterValue)
            #expect(try await registry.searchModelVersions(filter: "name = 'b'").items.isEmpty)
        }
    }

    @Test("search filters by name and tags; != on a tag also matches models without it")
    func search() async throws {
        try await TestStores.withRegistry(sources: Self.sources) { registry, blobs in
            try Self.seedFiles(blobs)
            _ = try await registry.createRegisteredModel(name: "alpha", tags: [KeyValue("mlflow.prompt.is_prompt", "true")])
            _ = try await registry.createRegisteredModel(name: "beta", tags: [KeyValue("team", "ml")])
            _ = try await registry.createRegisteredModel(name: "gamma")
            let notPrompts = try await registry.searchRegisteredModels(filter: "tags.`mlflow.prompt.is_prompt` != 'true'")
            #expect(notPrompts.items.map(\.name) == ["beta", "gamma"])
            #expect(try await registry.searchRegisteredModels(filter: "name LIKE '%a' and tags.team = 'ml'").items.map(\.name) == ["beta"])
            let page = try await registry.searchRegisteredModels(orderBy: ["name DESC"], maxResults: 2)
            #expect(page.items.map(\.name) == ["gamma", "beta"])
            let rest = try await registry.searchRegisteredModels(orderBy: ["name DESC"], maxResults: 2, pageToken: page.nextPageToken)
            #expect(rest.items.map(\.name) == ["alpha"])
            let bad = await #expect(throws: KilnError.self) { try await registry.searchRegisteredModels(filter: "metrics.x > 1") }
            #expect(bad?.code == .invalidParameterValue)
        }
    }

    @Test("a transition request is approved into a transition, rejected or cancelled, and every step is history")
    func reviewWorkflow() async throws {
        try await TestStores.withRegistry(sources: Self.sources) { registry, blobs in
            try Self.seedFiles(blobs)
            _ = try await registry.createRegisteredModel(name: "m")
            _ = try await registry.createModelVersion(name: "m", source: "runs:/run1/model")
            _ = try await registry.createTransitionRequest(name: "m", version: "1", stage: .staging, comment: "please", userID: "ana")
            let twice = await #expect(throws: KilnError.self) {
                try await registry.createTransitionRequest(name: "m", version: "1", stage: .staging, comment: nil, userID: "ana")
            }
            #expect(twice?.code == .resourceAlreadyExists)
            _ = try await registry.rejectTransitionRequest(name: "m", version: "1", stage: .staging, comment: "no", userID: "bo")
            #expect(try await registry.getModelVersion(name: "m", version: "1").stage == ModelStage.none)
            _ = try await registry.createTransitionRequest(name: "m", version: "1", stage: .production, comment: nil, userID: "ana")
            let approved = try await registry.approveTransitionRequest(name: "m", version: "1", stage: .production, archiveExisting: true,
                                                                        comment: "ok", userID: "bo")
            #expect(approved.activityType == "APPROVED_REQUEST")
            #expect(try await registry.getModelVersion(name: "m", version: "1").stage == .production)
            let missing = await #expect(throws: KilnError.self) {
                try await registry.approveTransitionRequest(name: "m", version: "1", stage: .archived, archiveExisting: false, comment: nil, userID: "bo")
            }
            #expect(missing?.code == .resourceDoesNotExist)
            let comment = try await registry.createComment(name: "m", version: "1", comment: "shipped", userID: "ana")
            #expect(try await registry.activities(name: "m", version: "1").map(\.activityType) ==
                ["REQUESTED_TRANSITION", "REJECTED_REQUEST", "REQUESTED_TRANSITION", "APPROVED_REQUEST", "NEW_COMMENT"])
            try await registry.deleteComment(id: comment.id)
            #expect(try await registry.activities(name: "m", version: "1").count == 4)
            // Renaming carries the history along.
            _ = try await registry.renameRegisteredModel(name: "m", newName: "n")
            #expect(try await registry.activities(name: "n", version: "1").count == 4)
        }
    }

    /// Records posts; fails the first `failures` of them.
    final class RecordingTransport: WebhookTransport {
        let state = Mutex<(failures: Int, posts: [(url: String, headers: [(String, String)], body: [UInt8])])>((0, []))
        init(failures: Int) { state.withLock { $0.failures = failures } }
        func post(url: String, headers: [(String, String)], body: [UInt8]) async throws -> (status: Int, body: String) {
            state.withLock { state in
                state.posts.append((url, headers, body))
                if state.failures > 0 {
                    state.failures -= 1
                    return (503, "busy")
                }
                return (200, "ok")
            }
        }
        var count: Int { state.withLock { $0.posts.count } }
    }

    @Test("webhook deliveries are signed, retried with backoff, and given up after the last attempt")
    func webhookDelivery() async throws {
        let directory = try TemporaryDirectory()
        let database = try await TestStores.sqlite(in: directory)
        let clock = MockClock()
        let transport = RecordingTransport(failures: 1)
        let blobs = try LocalBlobStore(root: directory.url.appendingPathComponent("artifacts"))
        try Self.seedFiles(blobs)
        let registry = try await RegistryService.make(database: database, artifacts: blobs, sources: Self.sources, clock: clock,
                                                      transport: transport, policy: WebhookPolicy(maxAttempts: 2, retryBaseMillis: 1000),
                                                      logger: TestStores.logger)
        _ = try await registry.createRegisteredModel(name: "m")
        let hook = try await registry.createWebhook(modelName: "m", events: ["MODEL_VERSION_CREATED"], url: "http://127.0.0.1:9/hook",
                                                    secret: "s3cret", authorization: nil, description: nil, status: nil)
        _ = try await registry.createModelVersion(name: "m", source: "runs:/run1/model")
        #expect(try await registry.deliverDueWebhooks(logger: TestStores.logger) == 1)  // fails: 503
        #expect(try await registry.deliverDueWebhooks(logger: TestStores.logger) == 0)  // not due yet
        clock.advance(by: 1000)
        #expect(try await registry.deliverDueWebhooks(logger: TestStores.logger) == 1)  // retried: 200
        let log = try await registry.deliveries(webhookID: hook.id)
        #expect(log.map(\.state) == ["DELIVERED"])
        #expect(log.first?.attempts == 2)
        let signature = transport.state.withLock { $0.posts.last?.headers.first { $0.0 == "X-Databricks-Signature" }?.1 }
        #expect(signature?.count == 64)

        // A webhook that keeps failing is marked FAILED after maxAttempts.
        let broken = RecordingTransport(failures: 100)
        let failing = try await RegistryService.make(database: database, artifacts: blobs, sources: Self.sources, clock: clock,
                                                     transport: broken, policy: WebhookPolicy(maxAttempts: 2, retryBaseMillis: 10),
                                                     logger: TestStores.logger)
        _ = try await failing.createModelVersion(name: "m", source: "runs:/run1/model")
        try await failing.deliverDueWebhooks(logger: TestStores.logger)
        clock.advance(by: 10)
        try await failing.deliverDueWebhooks(logger: TestStores.logger)
        clock.advance(by: 1000)
        #expect(try await failing.deliverDueWebhooks(logger: TestStores.logger) == 0)
        #expect(try await failing.deliveries(webhookID: hook.id).first?.state == "FAILED")
        #expect(broken.count == 2)
        await database.close()
    }
}
