import ArgumentParser
import Foundation
import KilnBlob
import KilnBlobConformance
import KilnCore

/// `kiln storage check`: runs the object-storage conformance checks (atomic writes, put-if-absent under racing
/// threads and processes, listing order, ranged reads, missing and hostile keys) against a store, so an operator
/// can tell whether a volume or bucket can hold Kiln's tables before pointing Kiln at it.
struct Storage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storage", abstract: "Check that an object store (a folder or an S3 bucket) meets Kiln's storage contract.",
        subcommands: [Check.self, RaceWorker.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check", abstract: "Run the storage conformance checks in a scratch folder of a store (nothing else is touched).")
        @Argument(help: "The store: a folder, or s3://bucket/prefix (credentials and endpoint from AWS_* variables); default: a temporary folder.") var root: String?
        @Option(help: "Racing processes for the put-if-absent check.") var processes = 8
        @Option(help: "Keys each racing process tries.") var attempts = 50
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            guard (1...64).contains(processes) else { throw ValidationError("--processes must be between 1 and 64") }
            guard (1...10_000).contains(attempts) else { throw ValidationError("--attempts must be between 1 and 10,000") }
        }

        func run() throws {
            let location = root ?? FileManager.default.temporaryDirectory.appendingPathComponent("kiln-storage-check-\(Identifiers.hex32().prefix(8))").path
            let store = try Storage.store(location)
            let suite = BlobStoreConformance(store: store)
            defer {
                try? suite.cleanUp()
                if root == nil { try? FileManager.default.removeItem(atPath: location) }
            }
            var results: [(name: String, error: String?, seconds: Double)] = []
            func run(_ name: String, _ body: () throws -> Void) {
                let started = Date()
                do { try body(); results.append((name, nil, Date().timeIntervalSince(started))) } catch {
                    results.append((name, "\(error)", Date().timeIntervalSince(started)))
                }
            }
            for check in BlobStoreConformance.checks { run(check.name) { try check.run(suite) } }
            let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
            run("put-if-absent across \(processes) processes × \(attempts) keys") {
                try suite.putIfAbsentProcesses(worker: [me, "storage", "race-worker", location, suite.base, String(attempts)],
                                               processes: processes, keys: attempts)
            }
            if json {
                var w = JSONWriter()
                w.object { w in
                    w.field("root", location)
                    w.field("passed", results.allSatisfy { $0.error == nil })
                    w.key("checks")
                    w.array { w in
                        for r in results {
                            w.object { w in
                                w.field("name", r.name)
                                w.field("passed", r.error == nil)
                                if let e = r.error { w.field("error", e) }
                                w.field("seconds", r.seconds)
                            }
                        }
                    }
                }
                print(String(decoding: w.bytes, as: UTF8.self))
            } else {
                printTable(["CHECK", "RESULT", "SECONDS"], results.map { [$0.name, $0.error.map { "FAILED: \($0)" } ?? "ok", String(format: "%.2f", $0.seconds)] })
            }
            if results.contains(where: { $0.error != nil }) { throw ExitCode.failure }
        }
    }

    /// One racing process of `check` (not for direct use): prints the indexes of the keys it won as a JSON array.
    struct RaceWorker: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "race-worker", abstract: "One process of the put-if-absent race.",
                                                        shouldDisplay: false)
        @Argument var root: String
        @Argument var base: String
        @Argument var keys: Int
        @Argument var id: Int

        func run() throws {
            let suite = BlobStoreConformance(store: try Storage.store(root), base: base)
            let won = try suite.raceWorker(id: id, keys: keys)
            print("[" + won.map(String.init).joined(separator: ",") + "]")
        }
    }

    /// The store at a folder path or an `s3://bucket/prefix` URL.
    static func store(_ location: String) throws -> any BlobStore {
        if location.hasPrefix("s3://") {
            do { return try S3BlobStore(url: location, configuration: try S3Configuration.fromEnvironment()) } catch let error as KilnError {
                throw ValidationError(error.message)
            }
        }
        do { return try LocalBlobStore(root: URL(fileURLWithPath: location)) } catch {
            throw ValidationError("Cannot use \(location) as a store root: \(error.localizedDescription)")
        }
    }
}
