import Foundation
import KilnBlob
import KilnCore

/// The semantics every `BlobStore` backend must meet, as runnable checks: the local file system passes them in
/// `swift test`, `kiln storage check` runs them against a configured store, and the S3 backend must pass the same.
///
/// Each check works under its own fresh prefix of the store and throws a `ConformanceFailure` that says what broke.
public struct BlobStoreConformance: Sendable {
    public let store: any BlobStore
    /// Where the checks write (each check under a folder of its own); nothing outside it is touched.
    public let base: String

    public init(store: any BlobStore, base: String = "kiln-conformance-\(Identifiers.hex32().prefix(8))") {
        self.store = store
        self.base = base
    }

    /// A failed expectation, with what was expected and what came back.
    public struct ConformanceFailure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The checks that run in one process, by name.
    public static let checks: [(name: String, run: @Sendable (BlobStoreConformance) throws -> Void)] = [
        ("round trip and overwrite", { try $0.roundTrip() }),
        ("missing keys", { try $0.missingKeys() }),
        ("hostile keys", { try $0.hostileKeys() }),
        ("ranged reads at the edges", { try $0.rangedReads() }),
        ("listing order and paging", { try $0.listingOrder() }),
        ("atomic visibility under a concurrent reader", { try $0.atomicVisibility() }),
        ("put-if-absent under concurrent threads", { try $0.putIfAbsentThreads() }),
        ("copies are independent of their source", { try $0.independentCopies() }),
        ("a large object written in pieces", { try $0.largeObject() }),
    ]

    func key(_ check: String, _ path: String) throws -> BlobKey { try BlobKey("\(base)/\(check)/\(path)") }

    func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw ConformanceFailure(description: message()) }
    }

    func expectError(_ code: KilnError.Code, _ what: String, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as KilnError {
            try expect(error.code == code, "\(what): expected \(code.rawValue), got \(error.code.rawValue) (\(error.message))")
            return
        }
        throw ConformanceFailure(description: "\(what): expected \(code.rawValue), but it succeeded")
    }

    public func roundTrip() throws {
        let k = try key("roundtrip", "a/b/object.bin")
        let bytes = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try store.put(k, bytes: bytes)
        try expect(try store.get(k) == bytes, "get returned other bytes than put wrote")
        let headSize = try store.head(k)?.size
        try expect(headSize == Int64(bytes.count), "head size \(String(describing: headSize)) != \(bytes.count)")
        try store.put(k, bytes: [1, 2, 3])
        try expect(try store.get(k) == [1, 2, 3], "an overwrite did not replace the object")
        try expect(try store.putIfAbsent(k, bytes: [9]) == false, "putIfAbsent over an existing object claimed a win")
        try expect(try store.get(k) == [1, 2, 3], "a losing putIfAbsent changed the object")
        try store.delete(k)
        try expect(try store.head(k) == nil, "head still sees a deleted object")
        let empty = try key("roundtrip", "empty")
        try expect(try store.putIfAbsent(empty, bytes: []), "putIfAbsent of an empty object lost on a fresh key")
        try expect(try store.get(empty) == [] && (try store.head(empty)?.size) == 0, "an empty object did not read back empty")
    }

    public func independentCopies() throws {
        let source = try key("copy", "source/model.bin"), copy = try key("copy", "copies/1/model.bin")
        try store.put(source, bytes: [1, 2, 3])
        try store.put(copy, bytes: [7])
        try store.copyObject(from: source, to: copy)
        try expect(try store.get(copy) == [1, 2, 3], "a copy did not replace its destination with the source's bytes")
        try store.put(source, bytes: [4, 5])
        try expect(try store.get(copy) == [1, 2, 3], "overwriting the source changed its copy")
        try store.put(copy, bytes: [6])
        try expect(try store.get(source) == [4, 5], "overwriting a copy changed its source")
        try store.delete(source)
        try expect(try store.get(copy) == [6], "deleting the source removed its copy")
        try expectError(.resourceDoesNotExist, "copying a missing object") { try store.copyObject(from: source, to: copy) }
        try expect(try store.copyTree(from: try key("copy", "copies"), to: try key("copy", "again")) == 1, "copyTree copied another count")
        try expect(try store.get(try key("copy", "again/1/model.bin")) == [6], "copyTree lost bytes")
    }

    public func missingKeys() throws {
        let k = try key("missing", "nothing/here.json")
        try expectError(.resourceDoesNotExist, "get of a missing key") { _ = try store.get(k) }
        try expectError(.resourceDoesNotExist, "ranged read of a missing key") { _ = try store.read(k, range: 0..<10) }
        try expect(try store.head(k) == nil, "head of a missing key is not nil")
        try store.delete(k)
        try expect(try store.listObjects(prefix: "\(base)/missing/", startAfter: nil, limit: 10).objects.isEmpty,
                   "listing an empty prefix returned objects")
    }

    public func hostileKeys() throws {
        for path in ["..", "../escape", "a/../../escape", "/etc/passwd", "a/./b", "a//b", "a\\b", "a\0b", "\(base)/../x"] {
            try expectError(.invalidParameterValue, "the key '\(path.replacingOccurrences(of: "\0", with: "\\0"))'") { _ = try BlobKey(path) }
        }
        for prefix in ["../", "a/../../", "/etc/"] {
            try expectError(.invalidParameterValue, "listing the prefix '\(prefix)'") {
                _ = try store.listObjects(prefix: prefix, startAfter: nil, limit: 10)
            }
        }
    }

    /// 12 MiB written 1 MiB at a time (an S3 store uploads it in parts when its part size is small enough), read
    /// back whole, by ranges across the piece boundaries, and through a reader; an aborted writer leaves the old object.
    public func largeObject() throws {
        let k = try key("large", "object.bin")
        let piece = 1 << 20
        let bytes = (0..<(12 * piece)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 20) }
        let writer = try store.makeWriter(for: k)
        for start in stride(from: 0, to: bytes.count, by: piece) {
            try bytes[start..<start + piece].withUnsafeBytes { try writer.write($0) }
        }
        try writer.commit()
        try expect(try store.head(k)?.size == Int64(bytes.count), "a large object has the wrong size")
        try expect(try store.get(k) == bytes, "a large object read back other bytes")
        for lower in [0, 5 * piece - 3, 6 * piece, 12 * piece - 10] {
            let range = Int64(lower)..<Int64(min(bytes.count, lower + 4096))
            try expect(try store.read(k, range: range) == Array(bytes[lower..<Int(range.upperBound)]), "range \(range) of a large object differs")
        }
        let reader = try store.openReader(for: k)
        defer { reader.close() }
        try expect(try reader.read(at: Int64(10 * piece - 1), count: 2) == Array(bytes[(10 * piece - 1)..<(10 * piece + 1)]), "a reader's read differs")
        let aborted = try store.makeWriter(for: k)
        for _ in 0..<11 { try bytes[0..<piece].withUnsafeBytes { try aborted.write($0) } }
        aborted.abort()
        try expect(try store.head(k)?.size == Int64(bytes.count), "an aborted writer changed the object")
    }

    public func rangedReads() throws {
        let k = try key("ranges", "thousand.bin")
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0) }
        try store.put(k, bytes: bytes)
        let cases: [(Range<Int64>, ArraySlice<UInt8>)] = [
            (0..<0, []), (0..<1, bytes[0..<1]), (999..<1000, bytes[999..<1000]), (990..<2000, bytes[990..<1000]),
            (1000..<1010, []), (5000..<6000, []), (0..<1000, bytes[0..<1000]), (100..<400, bytes[100..<400]),
        ]
        for (range, expected) in cases {
            let got = try store.read(k, range: range)
            try expect(got == Array(expected), "read \(range) returned \(got.count) bytes, expected \(expected.count)")
        }
        try expect(try store.read(k, range: nil) == bytes, "a read without a range is not the whole object")
    }

    public func listingOrder() throws {
        let root = "\(base)/listing/"
        let names = ["log/00000000000000000010.checkpoint.parquet", "log/00000000000000000001.json", "log/00000000000000000000.json",
                     "log/_last_checkpoint", "data/part-1.parquet", "data-2/x", "lo", "log2/y", "Log/upper"]
        for name in names { try store.put(try BlobKey(root + name), bytes: Array(name.utf8)) }
        let all = try store.listAllObjects(prefix: root, pageSize: 1000).map { String($0.key.dropFirst(root.count)) }
        let sorted = names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        try expect(all == sorted, "listing order \(all) is not byte order \(sorted)")
        let log = try store.listAllObjects(prefix: root + "log/").map { String($0.key.dropFirst(root.count)) }
        try expect(log == ["log/00000000000000000000.json", "log/00000000000000000001.json", "log/00000000000000000010.checkpoint.parquet",
                           "log/_last_checkpoint"], "prefix log/ listed \(log)")
        let partial = try store.listAllObjects(prefix: root + "log/0000000000000000000").map { String($0.key.dropFirst(root.count)) }
        try expect(partial == ["log/00000000000000000000.json", "log/00000000000000000001.json"], "a mid-name prefix listed \(partial)")
        let lo = try store.listAllObjects(prefix: root + "lo").map { String($0.key.dropFirst(root.count)) }
        try expect(lo == ["lo", "log/00000000000000000000.json", "log/00000000000000000001.json", "log/00000000000000000010.checkpoint.parquet",
                          "log/_last_checkpoint", "log2/y"], "prefix lo listed \(lo)")
        // Pages of two join up to the whole listing, and startAfter is exclusive.
        var paged: [String] = [], after: String?
        repeat {
            let page = try store.listObjects(prefix: root, startAfter: after, limit: 2)
            try expect(page.objects.count <= 2, "a page of limit 2 held \(page.objects.count) objects")
            paged += page.objects.map { String($0.key.dropFirst(root.count)) }
            after = page.nextStartAfter
        } while after != nil
        try expect(paged == sorted, "paging by 2 gave \(paged)")
        let rest = try store.listObjects(prefix: root + "log/", startAfter: root + "log/00000000000000000000.json", limit: 100).objects
        try expect(rest.first?.key == root + "log/00000000000000000001.json", "startAfter is not exclusive: \(rest.map(\.key))")
        let sizes = try store.listAllObjects(prefix: root + "data/")
        try expect(sizes.map(\.size) == [Int64("data/part-1.parquet".utf8.count)], "listed sizes are wrong: \(sizes)")
    }

    public func atomicVisibility() throws {
        let k = try key("atomic", "object.bin")
        let size = 1 << 20
        try store.put(k, bytes: [UInt8](repeating: 0, count: size))
        let store = self.store
        let torn = Locked<[String]>([])
        let done = Locked(false)
        let reader = Thread {
            while !done.value {
                do {
                    let bytes = try store.get(k)
                    if bytes.count != size || bytes.contains(where: { $0 != bytes[0] }) {
                        torn.mutate { $0.append("a read saw \(bytes.count) bytes of mixed versions") }
                    }
                } catch {
                    torn.mutate { $0.append("a read during a replace failed: \(error)") }
                }
            }
            done.mutate { $0 = false }
        }
        reader.start()
        for round in 1...40 { try store.put(k, bytes: [UInt8](repeating: UInt8(round), count: size)) }
        done.mutate { $0 = true }
        while done.value { usleep(1000) }
        try expect(torn.value.isEmpty, torn.value.first ?? "")
        try expect(try store.get(k) == [UInt8](repeating: 40, count: size), "the last write is not what reads see")
    }

    public func putIfAbsentThreads(threads: Int = 8, keys: Int = 50) throws {
        let store = self.store
        let targets = try (0..<keys).map { try key("race-threads", String(format: "%020d.json", $0)) }
        let wins = Locked<[Int: [Int]]>([:])
        let failures = Locked<[String]>([])
        let group = DispatchGroup()
        let gate = DispatchSemaphore(value: 0)
        for t in 0..<threads {
            group.enter()
            let thread = Thread {
                gate.wait()
                for (i, target) in targets.enumerated() {
                    do {
                        if try store.putIfAbsent(target, bytes: Array("writer-\(t)".utf8)) { wins.mutate { $0[i, default: []].append(t) } }
                    } catch {
                        failures.mutate { $0.append("writer \(t) key \(i): \(error)") }
                    }
                }
                group.leave()
            }
            thread.start()
        }
        for _ in 0..<threads { gate.signal() }
        group.wait()
        try expect(failures.value.isEmpty, failures.value.first ?? "")
        for (i, target) in targets.enumerated() {
            let winners = wins.value[i] ?? []
            try expect(winners.count == 1, "key \(i) had \(winners.count) winners: \(winners)")
            try expect(try store.get(target) == Array("writer-\(winners[0])".utf8), "key \(i) does not hold its winner's bytes")
        }
    }

    // MARK: Across processes

    /// One racing process: waits for `go` (a key this process polls), then tries `putIfAbsent` on each key with its
    /// own bytes. - Returns: the indexes of the keys it won.
    public func raceWorker(id: Int, keys: Int) throws -> [Int] {
        let go = try key("race-processes", "go")
        let deadline = Date().addingTimeInterval(60)
        while try store.head(go) == nil {
            guard Date() < deadline else { throw ConformanceFailure(description: "race worker \(id): no start signal after 60 s") }
            usleep(500)
        }
        var won: [Int] = []
        for i in 0..<keys where try store.putIfAbsent(try key("race-processes", String(format: "%020d.json", i)), bytes: Array("process-\(id)".utf8)) {
            won.append(i)
        }
        return won
    }

    /// Runs `processes` copies of a worker command (given the worker id as its last argument; it runs
    /// ``raceWorker(id:keys:)`` on this store and base and prints the won key indexes as one JSON array), releases
    /// them at once, and checks that every key has exactly one winner whose bytes it holds.
    public func putIfAbsentProcesses(worker: [String], processes: Int = 8, keys: Int = 50) throws {
        var children: [(Process, Pipe)] = []
        for id in 0..<processes {
            let process = Process(), pipe = Pipe()
            process.executableURL = URL(fileURLWithPath: worker[0])
            process.arguments = Array(worker.dropFirst()) + [String(id)]
            process.standardOutput = pipe
            try process.run()
            children.append((process, pipe))
        }
        usleep(300_000)  // let every process start and poll
        do { try store.put(try key("race-processes", "go"), bytes: [1]) } catch {
            for (process, _) in children { process.terminate() }
            throw error
        }
        var winners: [Int: [Int]] = [:]
        for (id, (process, pipe)) in children.enumerated() {
            let output = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            try expect(process.terminationStatus == 0, "worker \(id) exited with \(process.terminationStatus)")
            guard let won = try JSONSerialization.jsonObject(with: output) as? [Int] else {
                throw ConformanceFailure(description: "worker \(id) printed \(String(decoding: output, as: UTF8.self))")
            }
            for i in won { winners[i, default: []].append(id) }
        }
        for i in 0..<keys {
            let ids = winners[i] ?? []
            try expect(ids.count == 1, "key \(i) had \(ids.count) winning processes: \(ids)")
            let stored = try store.get(try key("race-processes", String(format: "%020d.json", i)))
            try expect(stored == Array("process-\(ids[0])".utf8), "key \(i) does not hold its winning process's bytes")
        }
    }

    /// Removes everything the checks wrote.
    public func cleanUp() throws { try store.delete(try BlobKey(base)) }
}

/// A value shared between threads behind a lock.
final class Locked<Value>: @unchecked Sendable {
    private var stored: Value
    private let lock = NSLock()
    init(_ value: Value) { stored = value }
    var value: Value { lock.withLock { stored } }
    func mutate(_ body: (inout Value) -> Void) { lock.withLock { body(&stored) } }
}
