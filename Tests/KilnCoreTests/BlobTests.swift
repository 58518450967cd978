import Foundation
import KilnBlob
import KilnCore
import Testing

@Suite("Blob keys and the local blob store")
struct BlobTests {
    @Test("keys that could escape the root are rejected", arguments: [
        "/etc/passwd", "..", "../x", "a/../../x", "a/./b", "a//b", "a\\b", "a\0b",
    ])
    func rejectsEscapingKeys(path: String) {
        let error = #expect(throws: KilnError.self) { try BlobKey(path) }
        #expect(error?.code == .invalidParameterValue)
    }

    @Test("writes are atomic: nothing is visible before commit, an abort keeps the old object")
    func atomicWrites() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-blob-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let store = try LocalBlobStore(root: root)
        let key = try BlobKey("1/run/artifacts/model.bin")
        try store.put(key, bytes: Array("old".utf8))

        let writer = try store.makeWriter(for: key)
        try Array("new content".utf8).withUnsafeBytes { try writer.write($0) }
        #expect(try store.get(key) == Array("old".utf8))
        writer.abort()
        #expect(try store.get(key) == Array("old".utf8))
        #expect(try store.list(try BlobKey("1/run/artifacts")).map(\.name) == ["model.bin"])

        try store.put(key, bytes: Array("new".utf8))
        #expect(try store.get(key) == Array("new".utf8))
    }

    @Test("lists sorted, with folders and sizes, and deletes recursively")
    func listAndDelete() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-blob-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let store = try LocalBlobStore(root: root)
        try store.put(try BlobKey("a/z.txt"), bytes: [1, 2, 3])
        try store.put(try BlobKey("a/b/c.txt"), bytes: [1])
        #expect(try store.list(try BlobKey("a")) == [
            BlobEntry(name: "b", isDirectory: true, size: nil), BlobEntry(name: "z.txt", isDirectory: false, size: 3),
        ])
        #expect(try store.kind(of: try BlobKey("a/b")) == true)
        #expect(try store.kind(of: try BlobKey("a/z.txt")) == false)
        #expect(try store.kind(of: try BlobKey("nope")) == nil)
        try store.delete(try BlobKey("a/b"))
        #expect(try store.list(try BlobKey("a")).map(\.name) == ["z.txt"])
        let error = #expect(throws: KilnError.self) { try store.openReader(for: try BlobKey("a/b/c.txt")) }
        #expect(error?.code == .resourceDoesNotExist)
    }
}
