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

    func url(_ key: BlobKey) -> URL {
        key.path.isEmpty ? root : root.appendingPathComponent(key.path)
    }

    public func makeWriter(for key: BlobKey) throws -> any BlobWriter {
        guard !key.path.isEmpty else { throw KilnError.invalid("Cannot write to the artifact root itself") }
        let target = url(key)
        let folder = target.deletingLastPathComponent()
        if let existing = try kind(of: key), existing {
            throw KilnError.invalid("Cannot write file '\(key.path)': a folder with that name exists")
        }
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw KilnError.invalid("Cannot create folder for '\(key.path)': a file is in the way")
        }
        let temp = folder.appendingPathComponent(".\(target.lastPathComponent).\(Identifiers.hex32()).partial")
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

    func close() {
        guard !closed else { return }
        closed = true
        Foundation.close(fd)
    }

    deinit { close() }
}

func posixError() -> POSIXError { POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
