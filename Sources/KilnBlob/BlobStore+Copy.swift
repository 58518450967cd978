import KilnCore

extension BlobKey {
    /// The key of an artifact URI that the server proxies: `mlflow-artifacts:/1/<run>/artifacts` or
    /// `mlflow-artifacts://host:port/1/…`; nil for any other scheme.
    /// - Throws: `INVALID_PARAMETER_VALUE` for a proxied URI whose path is unsafe.
    public init?(proxiedURI uri: String) throws {
        let scheme = "mlflow-artifacts:"
        guard uri.hasPrefix(scheme) else { return nil }
        var rest = Substring(uri.dropFirst(scheme.count))
        if rest.hasPrefix("//") {
            rest = rest.dropFirst(2)
            rest = rest.firstIndex(of: "/").map { rest[$0...] } ?? ""
        }
        while rest.hasPrefix("/") { rest = rest.dropFirst() }
        try self.init(String(rest))
    }
}

extension BlobStore {
    /// Copies the file or folder at `source` to `destination`, streaming each file.
    /// - Returns: the number of files copied.
    @discardableResult
    public func copyTree(from source: BlobKey, to destination: BlobKey) throws -> Int {
        switch try kind(of: source) {
        case nil:
            throw KilnError.notFound("No artifacts at '\(source.path)'")
        case false?:
            try copyObject(from: source, to: destination)
            return 1
        case true?:
            var copied = 0
            for entry in try list(source) {
                copied += try copyTree(from: try source.appending(entry.name), to: try destination.appending(entry.name))
            }
            return copied
        }
    }
}

extension BlobStore {
    public func copyObject(from source: BlobKey, to destination: BlobKey) throws {
        try streamCopy(from: source, to: destination)
    }

    /// Copies an object by reading it and writing a new one, 1 MiB at a time.
    func streamCopy(from source: BlobKey, to destination: BlobKey) throws {
        let reader = try openReader(for: source)
        defer { reader.close() }
        let writer = try makeWriter(for: destination)
        do {
            while true {
                let chunk = try reader.read(maxLength: 1 << 20)
                if chunk.isEmpty { break }
                try chunk.withUnsafeBytes { try writer.write($0) }
            }
            try writer.commit()
        } catch {
            writer.abort()
            throw error
        }
    }
}

/// A store that cannot be used (its configuration failed): every call throws the error that says why.
public struct UnavailableBlobStore: BlobStore {
    public let error: any Error

    public init(error: any Error) { self.error = error }

    public func makeWriter(for key: BlobKey) throws -> any BlobWriter { throw error }
    public func openReader(for key: BlobKey) throws -> any BlobReader { throw error }
    public func list(_ key: BlobKey) throws -> [BlobEntry] { throw error }
    public func kind(of key: BlobKey) throws -> Bool? { throw error }
    public func delete(_ key: BlobKey) throws { throw error }
    public func read(_ key: BlobKey, range: Range<Int64>?) throws -> [UInt8] { throw error }
    public func putIfAbsent(_ key: BlobKey, bytes: [UInt8]) throws -> Bool { throw error }
    public func head(_ key: BlobKey) throws -> BlobObjectInfo? { throw error }
    public func listObjects(prefix: String, startAfter: String?, limit: Int) throws -> BlobListing { throw error }
    public func copyObject(from source: BlobKey, to destination: BlobKey) throws { throw error }
}
