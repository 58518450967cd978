import Foundation
import KilnCore

/// A ``BlobStore`` on the local filesystem under one root folder.
///
/// Writes go to a hidden temporary file beside the target, are fsynced, then renamed into place, so a crash
/// never leaves a partial object under its key.
public struct LocalBlobStore: BlobStore {
    public let root: URL

    /// Creates the store, making `root` if needed.
    public init(root: URL) throws {
        self.root = root
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    /// A store over `root` that may not exist yet (its folders appear with the first write).
    public init(existingOrFutureRoot root: URL) {
        self.root = root
    }

    func url(_ key: BlobKey) -> URL {
        key.path.isEmpty ? root : root.appendingPathComponent(key.path)
    }

    public func makeWriter(for key: BlobKey) throws -> any BlobWriter {
        try requireNoFolder(at: key)
        return try temporaryWriter(for: key)
    }

    /// A hard link renamed over the destination: no bytes copied and nothing to fsync. Safe because this store never
    /// changes a file in place — every write is a new file renamed over the key — so the link keeps the bytes the
    /// source had. Falls back to copying the bytes (another file system, links not allowed).
    public func copyObject(from source: BlobKey, to destination: BlobKey) throws {
        guard try kind(of: source) == false else { throw KilnError.notFound("No object at '\(source.path)'") }
        try requireNoFolder(at: destination)
        let (temp, target) = try temporaryPath(for: destination)
        guard link(url(source).path, temp.path) == 0 else { return try streamCopy(from: source, to: destination) }
        guard rename(temp.path, target.path) == 0 else {
            let error = posixError()
            unlink(temp.path)
            throw KilnError.internalError(error)
        }
    }

    func requireNoFolder(at key: BlobKey) throws {
        if let existing = try kind(of: key), existing {
            throw KilnError.invalid("Cannot write file '\(key.path)': a folder with that name exists")
        }
    }

    /// The key's file and a fresh hidden temporary name beside it, its folders created.
    func temporaryPath(for key: BlobKey) throws -> (temp: URL, target: URL) {
        guard !key.path.isEmpty else { throw KilnError.invalid("Cannot write to the store root itself") }
        let target = url(key)
        let folder = target.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw KilnError.invalid("Cannot create folder for '\(key.path)': a file is in the way")
        }
        return (folder.appendingPathComponent(".\(target.lastPathComponent).\(Identifiers.hex32()).partial"), target)
    }

    /// A writer on a hidden temporary file beside the key's file (its folders created), not yet linked to the key.
    func temporaryWriter(for key: BlobKey) throws -> LocalBlobWriter {
        let (temp, target) = try temporaryPath(for: key)
        let fd = open(temp.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw KilnError.internalError(posixError()) }
        return LocalBlobWriter(fd: fd, temp: temp, target: target)
    }

    public func openReader(for key: BlobKey) throws -> any BlobReader {
        let path = url(key).path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw KilnError.notFound("No artifact at '\(key.path)'") }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            Foundation.close(fd)
            throw KilnError.notFound("No artifact file at '\(key.path)'")
        }
        return LocalBlobReader(fd: fd, size: Int64(info.st_size))
    }

    public func list(_ key: BlobKey) throws -> [BlobEntry] {
        let folder = url(key)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
        var entries: [BlobEntry] = []
        for name in names.sorted() where !(name.hasPrefix(".") && name.hasSuffix(".partial")) {
            var info = stat()
            guard stat(folder.appendingPathComponent(name).path, &info) == 0 else { continue }
            let isDirectory = (info.st_mode & S_IFMT) == S_IFDIR
            entries.append(BlobEntry(name: name, isDirectory: isDirectory, size: isDirectory ? nil : Int64(info.st_size)))
        }
        return entries
    }

    public func kind(of key: BlobKey) throws -> Bool? {
        var info = stat()
        guard stat(url(key).path, &info) == 0 else { return nil }
        return (info.st_mode & S_IFMT) == S_IFDIR
    }

    public func delete(_ key: BlobKey) throws {
        guard !key.path.isEmpty else { throw KilnError.invalid("Cannot delete the artifact root") }
        let target = url(key)
        guard FileManager.default.fileExists(atPath: target.path) else { return }
        do { try FileManager.default.removeItem(at: target) } catch { throw KilnError.internalError(error) }
    }
}

extension LocalBlobStore {
    public func read(_ key: BlobKey, range: Range<Int64>?) throws -> [UInt8] {
        let reader = try openReader(for: key)
        defer { reader.close() }
        let start = max(range?.lowerBound ?? 0, 0), end = min(range?.upperBound ?? reader.size, reader.size)
        return try reader.read(at: start, count: Int(max(end - start, 0)))
    }

    /// Writes a hidden temporary file beside the target, fsyncs it, then `link(2)`s it to the key: the link fails
    /// with `EEXIST` when any object is there, so of concurrent writers (threads or processes) exactly one wins, and
    /// readers never see a partial object. The folder is fsynced after a win so the new name survives a crash.
    public func putIfAbsent(_ key: BlobKey, bytes: [UInt8]) throws -> Bool {
        if try kind(of: key) != nil { return false }
        let writer = try temporaryWriter(for: key)
        defer { writer.abort() }
        try bytes.withUnsafeBytes { try writer.write($0) }
        guard fsync(writer.fd) == 0 else { throw KilnError.internalError(posixError()) }
        if link(writer.temp.path, writer.target.path) != 0 {
            if errno == EEXIST { return false }
            throw KilnError.internalError(posixError())
        }
        Self.syncFolder(writer.target.deletingLastPathComponent().path)
        return true
    }

    public func head(_ key: BlobKey) throws -> BlobObjectInfo? {
        guard !key.path.isEmpty else { return nil }
        var info = stat()
        guard stat(url(key).path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return BlobObjectInfo(size: Int64(info.st_size), modifiedMillis: Self.millis(info.st_mtim))
    }

    public func listObjects(prefix: String, startAfter: String?, limit: Int) throws -> BlobListing {
        guard limit > 0 else { throw KilnError.invalid("A listing page holds at least one object") }
        let folder = try BlobKey.folder(ofPrefix: prefix)
        var found: [BlobObject] = []
        walk(url(folder).path, keyPrefix: folder.path.isEmpty ? "" : folder.path + "/") { key, info in
            guard key.utf8.starts(with: prefix.utf8) else { return }
            if let startAfter, !startAfter.utf8.lexicographicallyPrecedes(key.utf8) { return }
            found.append(BlobObject(key: key, size: Int64(info.st_size), modifiedMillis: Self.millis(info.st_mtim)))
        }
        found.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        guard found.count > limit else { return BlobListing(objects: found, nextStartAfter: nil) }
        let page = Array(found.prefix(limit))
        return BlobListing(objects: page, nextStartAfter: page.last?.key)
    }

    /// Calls `visit` for every regular file under `path` (symbolic links to folders are not followed; temporary
    /// files of unfinished writes are skipped).
    private func walk(_ path: String, keyPrefix: String, _ visit: (String, stat) -> Void) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return }
        for name in names where !(name.hasPrefix(".") && name.hasSuffix(".partial")) {
            let child = path + "/" + name
            var info = stat()
            guard lstat(child, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFDIR: walk(child, keyPrefix: keyPrefix + name + "/", visit)
            case S_IFREG: visit(keyPrefix + name, info)
            case S_IFLNK:
                if stat(child, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG { visit(keyPrefix + name, info) }
            default: continue
            }
        }
    }

    /// Milliseconds since the epoch, rounded as Foundation's modification dates are.
    static func millis(_ t: timespec) -> Int64 { Int64((Double(t.tv_sec) * 1000 + Double(t.tv_nsec) / 1_000_000).rounded()) }

    /// fsyncs a folder so a new or renamed entry in it is durable.
    static func syncFolder(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        Foundation.close(fd)
    }
}

/// Owns one open file descriptor; calls are made by one task at a time (the request handler that opened it).
final class LocalBlobWriter: BlobWriter, @unchecked Sendable {
    let fd: Int32
    let temp: URL
    let target: URL
    var closed = false

    init(fd: Int32, temp: URL, target: URL) {
        self.fd = fd
        self.temp = temp
        self.target = target
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Foundation.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw KilnError.internalError(posixError())
            }
            offset += n
        }
    }

    func commit() throws {
        guard !closed else { return }
        closed = true
        guard fsync(fd) == 0 else {
            let error = posixError()
            Foundation.close(fd)
            unlink(temp.path)
            throw KilnError.internalError(error)
        }
        Foundation.close(fd)
        guard rename(temp.path, target.path) == 0 else {
            let error = posixError()
            unlink(temp.path)
            throw KilnError.internalError(error)
        }
    }

    func abort() {
        guard !closed else { return }
        closed = true
        Foundation.close(fd)
        unlink(temp.path)
    }

    deinit { abort() }
}

/// Owns one open file descriptor, read by one task at a time.
final class LocalBlobReader: BlobReader, @unchecked Sendable {
    let fd: Int32
    let size: Int64
    var closed = false

    init(fd: Int32, size: Int64) {
        self.fd = fd
        self.size = size
    }

    func read(maxLength: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: maxLength)
        while true {
            let n = buffer.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress!, maxLength) }
            if n < 0 {
                if errno == EINTR { continue }
                throw KilnError.internalError(posixError())
            }
            buffer.removeLast(maxLength - n)
            return buffer
        }
    }

    func read(at offset: Int64, count: Int) throws -> [UInt8] {
        let start = min(max(offset, 0), size)
        return try positionalRead(fd, at: start, count: max(0, min(count, Int(size - start))))
    }

    func close() {
        guard !closed else { return }
        closed = true
        Foundation.close(fd)
    }

    deinit { close() }
}

/// Up to `count` bytes at `offset` with `pread` (fewer when the file is shorter).
func positionalRead(_ fd: Int32, at offset: Int64, count: Int) throws -> [UInt8] {
    guard count > 0 else { return [] }
    return try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        var done = 0
        while done < count {
            let n = pread(fd, buffer.baseAddress! + done, count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw KilnError.internalError(posixError())
            }
            if n == 0 { break }  // the file is shorter (or shrank under us): return what is there
            done += n
        }
        initialized = done
    }
}

func posixError() -> POSIXError { POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
