import Foundation

/// Where a Parquet file's bytes come from: the reader asks its caller for byte ranges and keeps no I/O policy of its
/// own (a local file, an object store's ranged reads, memory). Implementations are shared between threads.
public protocol ParquetSource: Sendable {
    /// A name for messages (a path or key).
    var name: String { get }
    /// The file's size in bytes.
    var size: Int { get }
    /// Exactly `count` bytes at `offset`; throws when the file is shorter.
    func read(offset: Int, count: Int) throws -> [UInt8]
}

/// A local file opened for positional reads (`pread`), safe to share between threads.
public final class ParquetInputFile: ParquetSource, @unchecked Sendable {
    let path: String
    public let size: Int
    public var name: String { path }
    private let descriptor: Int32

    public init(path: String) throws {
        self.path = path
        descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw ParquetError("Cannot open '\(path)': \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            close(descriptor)
            throw ParquetError("Cannot stat '\(path)'")
        }
        size = Int(info.st_size)
    }

    deinit { close(descriptor) }

    /// Reads exactly `count` bytes at `offset`, or throws.
    public func read(offset: Int, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= size, count <= size - offset else {
            throw ParquetError("Read of \(count) bytes at \(offset) lies outside '\(path)' (\(size) bytes)")
        }
        return try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var done = 0
            while done < count {
                let n = pread(descriptor, buffer.baseAddress! + done, count - done, off_t(offset + done))
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { throw ParquetError("'\(path)' is truncated: read \(done) of \(count) bytes at \(offset)") }
                done += n
            }
            initialized = count
        }
    }
}

/// Reads a Parquet file: footer first, then column chunks on demand, one row group at a time, so memory stays
/// bounded by the row groups and columns asked for.
public final class ParquetFileReader: Sendable {
    /// The source's name (a path or key), for messages.
    public let path: String
    public let metadata: FileMetaData
    let file: any ParquetSource

    /// Opens the local file at `path` and reads its footer.
    public convenience init(path: String) throws {
        try self.init(source: try ParquetInputFile(path: path))
    }

    /// Reads the footer of the file `source` serves.
    public init(source: any ParquetSource) throws {
        path = source.name
        file = source
        metadata = try FileMetaData.read(source)
    }

    public var schema: ParquetSchema { metadata.schema }
    public var columns: [ColumnDescriptor] { metadata.schema.columns }

    /// Resolves dotted column paths (or top-level field names, which select every leaf under them) to leaf indices.
    public func columnIndices(_ names: [String]) throws -> [Int] {
        var out: [Int] = []
        for name in names {
            let matches = columns.indices.filter { columns[$0].dottedPath == name || columns[$0].dottedPath.hasPrefix(name + ".") }
            guard !matches.isEmpty else {
                throw ParquetError("No column '\(name)'; columns are \(columns.map(\.dottedPath).joined(separator: ", "))")
            }
            out += matches.filter { !out.contains($0) }
        }
        return out
    }

    /// Decodes leaf column `column` of row group `rowGroup`.
    /// With `keepingCodes`, a dictionary-encoded BYTE_ARRAY chunk comes back as codes (`ColumnData.dictionaryCodes`).
    public func readColumn(rowGroup: Int, column: Int, keepingCodes: Bool = false) throws -> ColumnData {
        guard metadata.rowGroups.indices.contains(rowGroup) else { throw ParquetError("No row group \(rowGroup)") }
        let group = metadata.rowGroups[rowGroup]
        guard group.columns.indices.contains(column) else { throw ParquetError("No column \(column)") }
        let chunk = group.columns[column]
        let descriptor = columns[column]
        let start = Int(chunk.startOffset)
        guard start >= 4, chunk.totalCompressedSize <= Int64(file.size), start <= file.size - Int(chunk.totalCompressedSize) else {
            throw ParquetError("Column chunk '\(descriptor.dottedPath)' lies outside the file")
        }
        guard chunk.dataPageOffset >= chunk.startOffset, chunk.dataPageOffset - chunk.startOffset <= chunk.totalCompressedSize else {
            throw ParquetError("Column chunk '\(descriptor.dottedPath)' has its data pages outside the chunk")
        }
        let bytes = try file.read(offset: start, count: Int(chunk.totalCompressedSize))
        let data = try ColumnChunkDecoder.decode(chunk: bytes, meta: chunk, column: descriptor, keepingCodes: keepingCodes)
        if descriptor.maxRepetitionLevel == 0, data.count != group.numRows {
            throw ParquetError("Column '\(descriptor.dottedPath)' has \(data.count) values in a row group of \(group.numRows) rows")
        }
        return data
    }

    /// Decodes the chosen columns (all by default) of one row group, columns in parallel when `parallel` is set.
    /// Columns in `keepingCodes` that are dictionary-encoded BYTE_ARRAYs come back as codes.
    public func readRowGroup(_ rowGroup: Int, columns selected: [Int]? = nil, parallel: Bool = true,
                             keepingCodes: Set<Int> = []) throws -> [ColumnData] {
        let indices = selected ?? Array(columns.indices)
        if !parallel || indices.count < 2 {
            return try indices.map { try readColumn(rowGroup: rowGroup, column: $0, keepingCodes: keepingCodes.contains($0)) }
        }
        return try concurrentMap(indices.count) {
            try self.readColumn(rowGroup: rowGroup, column: indices[$0], keepingCodes: keepingCodes.contains(indices[$0]))
        }
    }

    /// Decodes the chosen columns of the chosen row groups, every (row group, column) pair in parallel.
    public func readAll(rowGroups groups: [Int], columns selected: [Int], parallel: Bool = true) throws -> [[ColumnData]] {
        let pairs = groups.flatMap { g in selected.map { (g, $0) } }
        let flat = parallel
            ? try concurrentMap(pairs.count) { try self.readColumn(rowGroup: pairs[$0].0, column: pairs[$0].1) }
            : try pairs.map { try readColumn(rowGroup: $0.0, column: $0.1) }
        return groups.indices.map { Array(flat[$0 * selected.count..<($0 + 1) * selected.count]) }
    }

    /// Row groups whose statistics say they may hold rows matching every predicate; the others can be skipped.
    public func rowGroups(matching predicates: [ColumnPredicate]) throws -> [Int] {
        let resolved = try predicates.map { predicate -> (Int, ColumnPredicate) in
            guard let index = schema.columnIndex(predicate.column) else {
                throw ParquetError("No column '\(predicate.column)' to filter on")
            }
            return (index, predicate)
        }
        return metadata.rowGroups.indices.filter { g in
            let group = metadata.rowGroups[g]
            return resolved.allSatisfy { index, predicate in
                predicate.mayMatch(group.columns[index], column: columns[index], rows: group.numRows)
            }
        }
    }
}

/// Runs `body` for every index in `0..<count` on all cores (`DispatchQueue.concurrentPerform`) and returns the
/// results in index order; rethrows the first failure by index.
public func concurrentMap<T>(_ count: Int, _ body: @Sendable (Int) throws -> T) throws -> [T] {
    let slots = ResultSlots<T>(count: count)
    DispatchQueue.concurrentPerform(iterations: count) { i in slots.set(i, Result { try body(i) }) }
    return try slots.values()
}

/// Per-index results written from concurrent work.
final class ResultSlots<T>: @unchecked Sendable {
    private var slots: [Result<T, any Error>?]
    private let lock = NSLock()

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ result: Result<T, any Error>) {
        lock.lock()
        slots[index] = result
        lock.unlock()
    }

    func values() throws -> [T] { try slots.map { try $0!.get() } }
}
