import Foundation
import KilnBlob
import KilnCore
import KilnParquet

/// Where a table's files live: an object store and the key of the table's root folder in it. Every read and write
/// of the log, data files, change data, deletion vectors and checkpoints goes through the store, so a table works
/// on any `BlobStore` backend (the local file system, later S3) with the same code.
public struct TableStorage: Sendable {
    public let store: any BlobStore
    /// The table root's key path ("" = the store's root), without a trailing slash.
    public let root: String
    /// How messages name the table (its folder or URI).
    public let displayPath: String

    public init(store: any BlobStore, root: String, displayPath: String) {
        var trimmed = root
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.store = store
        self.root = trimmed
        self.displayPath = displayPath
    }

    /// A table in a local folder (which need not exist yet): a file-system store rooted there.
    public static func local(_ path: String) -> TableStorage {
        TableStorage(store: LocalBlobStore(existingOrFutureRoot: URL(fileURLWithPath: path)), root: "", displayPath: path)
    }

    /// A table at `location`: `s3://bucket/prefix` (S3, configured from the `AWS_*` variables) or a local folder.
    /// An S3 location without a usable configuration gives a store whose every call fails with what to set.
    public static func at(_ location: String) -> TableStorage {
        guard location.hasPrefix("s3://") else { return local(location) }
        do {
            return TableStorage(store: try S3BlobStore(url: location, configuration: try S3Configuration.fromEnvironment()), root: "",
                                displayPath: location)
        } catch {
            return TableStorage(store: UnavailableBlobStore(error: error), root: "", displayPath: location)
        }
    }

    /// The key of a path relative to the table root. - Throws: `INVALID_STATE` for paths that would leave the table.
    public func key(_ relative: String) throws -> BlobKey {
        do { return try BlobKey(root.isEmpty ? relative : root + "/" + relative) } catch {
            throw KilnError(.invalidState, "The table names a file outside itself: '\(relative)'")
        }
    }

    /// A path as the log stores it (URI-encoded, relative, or an absolute `file:` URI / path), decoded.
    /// - Returns: the key under the table root, or the absolute local path of a file outside the store.
    func resolve(_ logPath: String) throws -> (key: BlobKey?, local: String?) {
        if logPath.hasPrefix("file:") { return (nil, URL(string: logPath)?.path ?? logPath) }
        let decoded = logPath.utf8.contains(UInt8(ascii: "%")) ? logPath.removingPercentEncoding ?? logPath : logPath
        if decoded.hasPrefix("/") { return (nil, decoded) }
        return (try key(decoded), nil)
    }

    /// Opens a data, checkpoint or change-data file named as the log names it.
    public func parquet(_ logPath: String) throws -> ParquetFileReader {
        let (key, local) = try resolve(logPath)
        if let local { return try ParquetFileReader(path: local) }
        return try ParquetFileReader(source: try BlobParquetSource(store: store, key: key!))
    }

    /// Whether a file named as the log names it exists.
    func exists(_ logPath: String) -> Bool {
        guard let (key, local) = try? resolve(logPath) else { return false }
        if let local { return FileManager.default.fileExists(atPath: local) }
        return (try? store.head(key!)) != nil
    }

    /// Deletes a file the table wrote (missing files are fine); files outside the store are never deleted.
    func delete(_ logPath: String) {
        guard let (key, _) = try? resolve(logPath), let key else { return }
        try? store.delete(key)
    }

    /// Reads a whole small file (a commit, `_last_checkpoint`).
    func bytes(_ relative: String) throws -> [UInt8] { try store.get(try key(relative)) }

    /// Starts writing a Parquet file at `relative`; it becomes visible when the writer closes.
    func parquetSink(_ relative: String) throws -> BlobParquetSink {
        let key = try key(relative)
        return BlobParquetSink(writer: try store.makeWriter(for: key), name: key.path)
    }
}

/// A Parquet file read through a blob store's positional reads (one open reader per file).
final class BlobParquetSource: ParquetSource, @unchecked Sendable {
    let reader: any BlobReader
    let name: String
    let size: Int

    init(store: any BlobStore, key: BlobKey) throws {
        do { reader = try store.openReader(for: key) } catch let error as KilnError where error.code == .resourceDoesNotExist {
            throw ParquetError("Cannot open '\(key.path)': no such file")
        }
        name = key.path
        size = Int(reader.size)
    }

    deinit { reader.close() }

    func read(offset: Int, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= size, count <= size - offset else {
            throw ParquetError("Read of \(count) bytes at \(offset) lies outside '\(name)' (\(size) bytes)")
        }
        let bytes = try reader.read(at: Int64(offset), count: count)
        guard bytes.count == count else { throw ParquetError("'\(name)' is truncated: read \(bytes.count) of \(count) bytes at \(offset)") }
        return bytes
    }
}

/// A Parquet file written through a blob store's atomic writer: nothing is visible until `finish`.
final class BlobParquetSink: ParquetSink {
    let writer: any BlobWriter
    let name: String
    private var done = false

    init(writer: any BlobWriter, name: String) {
        self.writer = writer
        self.name = name
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws { try writer.write(bytes) }

    func finish() throws {
        done = true
        try writer.commit()
    }

    /// Drops an unfinished file.
    func abandon() { if !done { writer.abort() } }

    deinit { abandon() }
}
