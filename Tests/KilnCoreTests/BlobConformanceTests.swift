import Foundation
import KilnBlob
import KilnBlobConformance
import KilnCore
import Testing

/// The storage conformance suite on the local file-system backend. Every backend runs the same checks
/// (`BlobStoreConformance`); `kiln storage check` runs them against a configured store.
@Suite("Storage conformance: the local file-system backend")
struct BlobConformanceTests {
    static func withSuite(_ body: (BlobStoreConformance, URL) throws -> Void) throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-conformance-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try body(BlobStoreConformance(store: try LocalBlobStore(root: root)), root)
    }

    @Test("in-process checks", arguments: BlobStoreConformance.checks.map(\.name))
    func check(name: String) throws {
        let check = try #require(BlobStoreConformance.checks.first { $0.name == name })
        try Self.withSuite { suite, _ in try check.run(suite) }
    }

    @Test("put-if-absent across 8 processes × 50 attempts on the same keys: exactly one winner per key")
    func processes() throws {
        // The racing processes are the `kiln` binary built beside this test bundle (`swift build --build-tests`).
        let kiln = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kiln").path
        try #require(FileManager.default.isExecutableFile(atPath: kiln), "build the kiln product first (swift build): no \(kiln)")
        try Self.withSuite { suite, root in
            try suite.putIfAbsentProcesses(worker: [kiln, "storage", "race-worker", root.path, suite.base, "50"], processes: 8, keys: 50)
        }
    }
}
