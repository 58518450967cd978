import KilnCore

/// A validated relative object key such as `1/abc/artifacts/model/MLmodel`.
///
/// Keys never hold `..`, `.` or empty segments, never start with `/`, and never hold NUL or backslashes, so a key
/// can never name something outside the store's root.
public struct BlobKey: Hashable, Sendable, CustomStringConvertible {
    public let path: String
    public let segments: [Substring]

    /// Validates `path`; an empty path names the root.
    /// - Throws: `INVALID_PARAMETER_VALUE` for absolute paths, `..` segments and other unsafe paths.
    public init(_ path: String) throws {
        if path.hasPrefix("/") || path.contains("\\") || path.contains("\0") {
            throw KilnError.invalid("Invalid artifact path: '\(path)'. Paths must be relative and may not contain '..'.")
        }
        var cleaned = path
        while cleaned.hasSuffix("/") { cleaned.removeLast() }
        let parts = cleaned.isEmpty ? [] : cleaned.split(separator: "/", omittingEmptySubsequences: false)
        for part in parts where part.isEmpty || part == "." || part == ".." {
            throw KilnError.invalid("Invalid artifact path: '\(path)'. Paths must be relative and may not contain '..'.")
        }
        self.path = cleaned
        self.segments = parts
    }

    /// The root of the store.
    public static let root = try! BlobKey("")

    /// The deepest folder a listing prefix (a string prefix of keys) names; every match lies under it.
    /// - Throws: `INVALID_PARAMETER_VALUE` when that folder is not a valid key or the prefix holds NUL or `\`.
    public static func folder(ofPrefix prefix: String) throws -> BlobKey {
        if prefix.contains("\0") || prefix.contains("\\") { throw KilnError.invalid("Invalid object prefix '\(prefix)'") }
        return try BlobKey(prefix.lastIndex(of: "/").map { String(prefix[..<$0]) } ?? "")
    }

    /// This key with `child` (itself validated) appended.
    public func appending(_ child: String) throws -> BlobKey {
        try BlobKey(path.isEmpty ? child : child.isEmpty ? path : "\(path)/\(child)")
    }

    public var description: String { path }
}

/// One entry of a listing: a file with its size, or a folder.
public struct BlobEntry: Sendable, Equatable {
    /// The entry's name relative to the listed folder.
    public var name: String
    public var isDirectory: Bool
    /// Size in bytes; nil for folders.
    public var size: Int64?

    public init(name: String, isDirectory: Bool, size: Int64?) {
        self.name = name
        self.isDirectory = isDirectory
        self.size = size
    }
}

/// Receives the bytes of one object. Nothing is visible under the key until ``commit()`` returns.
public protocol BlobWriter: Sendable {
    /// Appends bytes.
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Makes the object durable and visible under its key, replacing any older object.
    func commit() throws
    /// Drops what was written; the key keeps its old object, if any.
    func abort()
}

/// Reads one object, sequentially or at positions (what a Parquet reader needs: a footer, then column chunks).
public protocol BlobReader: Sendable {
    /// Total size in bytes.
    var size: Int64 { get }
    /// Reads up to `maxLength` bytes from the current position; an empty array means end of object.
    func read(maxLength: Int) throws -> [UInt8]
    /// Reads the bytes at `offset..<offset + count`, cut at the object's end; safe to call from several threads.
    func read(at offset: Int64, count: Int) throws -> [UInt8]
    func close()
}

/// What `head` knows of an object.
public struct BlobObjectInfo: Sendable, Equatable {
    public var size: Int64
    /// Last modification, milliseconds since the epoch.
    public var modifiedMillis: Int64

    public init(size: Int64, modifiedMillis: Int64) {
        self.size = size
        self.modifiedMillis = modifiedMillis
    }
}

/// One object of a prefix listing.
public struct BlobObject: Sendable, Equatable {
    /// The object's full key path.
    public var key: String
    public var size: Int64
    public var modifiedMillis: Int64

    public init(key: String, size: Int64, modifiedMillis: Int64) {
        self.key = key
        self.size = size
        self.modifiedMillis = modifiedMillis
    }
}

/// One page of a prefix listing; pass `nextStartAfter` back as `startAfter` for the next page.
public struct BlobListing: Sendable, Equatable {
    public var objects: [BlobObject]
    /// The last key of this page when more may follow, nil on the last page.
    public var nextStartAfter: String?

    public init(objects: [BlobObject], nextStartAfter: String?) {
        self.objects = objects
        self.nextStartAfter = nextStartAfter
    }
}

/// Object storage: the seam between services and the local filesystem or an S3 bucket.
///
/// Contract (pinned by `KilnBlobConformance`, which every backend must pass):
/// - writes are atomic per object: readers see the old object or the whole new one, never a part;
/// - `putIfAbsent` creates an object only when none exists under its key; of concurrent callers (threads or
///   processes) exactly one wins, and the winner's bytes are what everyone reads afterwards;
/// - `read(range:)` returns the bytes of the range that exist: a range past the end is cut at the end (empty when it
///   starts there or beyond); a missing object is `RESOURCE_DOES_NOT_EXIST`;
/// - `list` returns direct children sorted by name; `listObjects` returns every object whose key starts with a
///   prefix, sorted by key (byte order), in pages;
/// - `delete` of a missing key is not an error; `head` of one is nil.
public protocol BlobStore: Sendable {
    /// Starts writing an object at `key`.
    func makeWriter(for key: BlobKey) throws -> any BlobWriter
    /// Opens the object at `key`.
    /// - Throws: `RESOURCE_DOES_NOT_EXIST` when there is no object there.
    func openReader(for key: BlobKey) throws -> any BlobReader
    /// Lists the direct children of the folder `key`, sorted by name; empty when the folder does not exist.
    func list(_ key: BlobKey) throws -> [BlobEntry]
    /// Whether `key` names a file (`false`), a folder (`true`), or nothing (`nil`).
    func kind(of key: BlobKey) throws -> Bool?
    /// Deletes the object or folder (recursively) at `key`.
    func delete(_ key: BlobKey) throws
    /// Reads the object at `key`, or the bytes of `range` in it (cut at the object's end).
    /// - Throws: `RESOURCE_DOES_NOT_EXIST` when there is no object there.
    func read(_ key: BlobKey, range: Range<Int64>?) throws -> [UInt8]
    /// Creates the object at `key` with `bytes` unless one exists: the commit primitive of Delta tables.
    /// - Returns: true when this call created it, false when an object was already there (nothing is changed).
    func putIfAbsent(_ key: BlobKey, bytes: [UInt8]) throws -> Bool
    /// Size and modification time of the object at `key`; nil when there is none (or it is a folder).
    func head(_ key: BlobKey) throws -> BlobObjectInfo?
    /// Objects whose key path starts with `prefix` (a string prefix, not necessarily a folder), sorted by key,
    /// after `startAfter` (exclusive), at most `limit` per page.
    func listObjects(prefix: String, startAfter: String?, limit: Int) throws -> BlobListing
    /// Copies the object at `source` to `destination`, replacing it atomically; later writes to either never show
    /// in the other. The default streams the bytes; a store can do better (a hard link, a server-side copy).
    /// - Throws: `RESOURCE_DOES_NOT_EXIST` when there is no object at `source`.
    func copyObject(from source: BlobKey, to destination: BlobKey) throws
}

extension BlobStore {
    /// Writes `bytes` as one object.
    public func put(_ key: BlobKey, bytes: [UInt8]) throws {
        let writer = try makeWriter(for: key)
        do {
            try bytes.withUnsafeBytes { try writer.write($0) }
            try writer.commit()
        } catch {
            writer.abort()
            throw error
        }
    }

    /// Reads a whole object into memory; for small objects only.
    public func get(_ key: BlobKey) throws -> [UInt8] { try read(key, range: nil) }

    /// Every object under `prefix`, all pages.
    public func listAllObjects(prefix: String, pageSize: Int = 1000) throws -> [BlobObject] {
        var out: [BlobObject] = [], after: String?
        repeat {
            let page = try listObjects(prefix: prefix, startAfter: after, limit: pageSize)
            out += page.objects
            after = page.nextStartAfter
        } while after != nil
        return out
    }
}
