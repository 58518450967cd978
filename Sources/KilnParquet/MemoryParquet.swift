/// A Parquet file held in memory (an upload, a response body).
public struct ParquetBytes: ParquetSource {
    public let bytes: [UInt8]
    public let name: String
    public var size: Int { bytes.count }

    public init(_ bytes: [UInt8], name: String = "the uploaded Parquet file") {
        self.bytes = bytes
        self.name = name
    }

    public func read(offset: Int, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= bytes.count, count <= bytes.count - offset else {
            throw ParquetError("\(name) is not a whole Parquet file: a read of \(count) bytes at \(offset) lies outside its \(bytes.count) bytes")
        }
        return Array(bytes[offset..<offset + count])
    }
}

/// Collects a Parquet file in memory; `bytes` holds it once the writer has closed.
public final class ParquetMemorySink: ParquetSink {
    public let name = "memory"
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public func write(_ raw: UnsafeRawBufferPointer) throws { bytes.append(contentsOf: raw) }

    public func finish() throws {}
}
