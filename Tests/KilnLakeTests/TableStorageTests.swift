import Foundation
import KilnBlob
import KilnCore
@testable import KilnLake
import KilnParquet
import Testing

/// A store that forwards to another and counts the calls: proves that a table's IO goes through the seam.
final class CountingStore: BlobStore, @unchecked Sendable {
    let base: any BlobStore
    private let lock = NSLock()
    private var counts: [String: Int] = [:]

    init(_ base: any BlobStore) { self.base = base }

    func count(_ name: String) -> Int { lock.withLock { counts[name, default: 0] } }
    private func note(_ name: String) { lock.withLock { counts[name, default: 0] += 1 } }

    func makeWriter(for key: BlobKey) throws -> any BlobWriter { note("makeWriter"); return try base.makeWriter(for: key) }
    func openReader(for key: BlobKey) throws -> any BlobReader { note("openReader"); return try base.openReader(for: key) }
    func list(_ key: BlobKey) throws -> [BlobEntry] { note("list"); return try base.list(key) }
    func kind(of key: BlobKey) throws -> Bool? { note("kind"); return try base.kind(of: key) }
    func delete(_ key: BlobKey) throws { note("delete"); try base.delete(key) }
    func read(_ key: BlobKey, range: Range<Int64>?) throws -> [UInt8] { note("read"); return try base.read(key, range: range) }
    func putIfAbsent(_ key: BlobKey, bytes: [UInt8]) throws -> Bool { note("putIfAbsent"); return try base.putIfAbsent(key, bytes: bytes) }
    func head(_ key: BlobKey) throws -> BlobObjectInfo? { note("head"); return try base.head(key) }
    func listObjects(prefix: String, startAfter: String?, limit: Int) throws -> BlobListing {
        note("listObjects")
        return try base.listObjects(prefix: prefix, startAfter: startAfter, limit: limit)
    }
}

@Suite("Delta tables on a blob store, under a key prefix")
struct TableStorageTests {
    @Test("a partitioned table under warehouse/… lives entirely under its prefix, and all its IO goes through the store")
    func prefixedTable() throws {
        let dir = TableDirectory()
        let local = try LocalBlobStore(root: URL(fileURLWithPath: dir.path))
        let store = CountingStore(local)
        let storage = TableStorage(store: store, root: "warehouse/main/sales/orders", displayPath: "main.sales.orders")
        let table = try DeltaTable.create(storage: storage, schema: Rows.schema, partitionColumns: ["region"],
                                          properties: ["delta.checkpointInterval": "3"])
        for k in 0..<4 { try table.write(try Rows.batch(k * 100, 100)) }
        #expect(try Rows.ids(table) == (0..<400).map(Int64.init))
        #expect(try Rows.ids(table, version: 2) == (0..<200).map(Int64.init))
        _ = try table.delete(where: "id < 50")
        #expect(try Rows.ids(DeltaTable.open(storage: storage)) == (50..<400).map(Int64.init))
        #expect(try table.vacuum(retentionHours: 0, force: true).count > 0)
        #expect(try Rows.ids(table) == (50..<400).map(Int64.init))

        // Every object sits under the table's prefix, and the checkpoint at version 3 is there.
        let everything = try local.listAllObjects(prefix: "")
        #expect(!everything.isEmpty && everything.allSatisfy { $0.key.hasPrefix("warehouse/main/sales/orders/") })
        #expect(everything.contains { $0.key == "warehouse/main/sales/orders/_delta_log/00000000000000000003.checkpoint.parquet" })
        #expect(everything.contains { $0.key.hasPrefix("warehouse/main/sales/orders/region=eu/part-") })
        // Commits were put-if-absent, the log was listed by prefix, data files were written and read through the store.
        #expect(store.count("putIfAbsent") == 6)
        #expect(store.count("listObjects") > 0 && store.count("makeWriter") > 0 && store.count("openReader") > 0)
    }

    @Test("concurrent blind appends through one store all land, each at its own version")
    func concurrentAppends() async throws {
        let dir = TableDirectory()
        let storage = TableStorage(store: try LocalBlobStore(root: URL(fileURLWithPath: dir.path)), root: "t", displayPath: "t")
        _ = try DeltaTable.create(storage: storage, schema: Rows.schema)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for k in 0..<6 {
                group.addTask { _ = try DeltaTable(storage: storage).write(try Rows.batch(k * 10, 10)) }
            }
            try await group.waitForAll()
        }
        let table = try DeltaTable.open(storage: storage)
        #expect(try Rows.ids(table) == (0..<60).map(Int64.init))
        #expect(try table.snapshot().version == 6)
    }

    @Test("a store without the table says so; a log path that would leave the table is refused")
    func missingAndHostile() throws {
        let dir = TableDirectory()
        let storage = TableStorage(store: try LocalBlobStore(root: URL(fileURLWithPath: dir.path)), root: "nothing/here", displayPath: "x")
        let error = #expect(throws: KilnError.self) { try DeltaTable.open(storage: storage) }
        #expect(error?.code == .resourceDoesNotExist)
        #expect(throws: KilnError.self) { try storage.key("../escape.parquet") }
    }
}
