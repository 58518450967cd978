import Foundation

/// One decoded value. A first, simple representation for flat columns and the `cat` tool; the scan path will move
/// to typed column buffers (STYLE.md §4).
public enum ParquetValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int32(Int32)
    case int64(Int64)
    case int96([UInt8])
    case float(Float)
    case double(Double)
    case bytes([UInt8])
}

/// Reads the column chunks of one Parquet file.
///
/// Supported so far: flat (non-nested) columns; data pages v1 and v2; dictionary pages; PLAIN, PLAIN_DICTIONARY and
/// RLE_DICTIONARY values; RLE definition levels; UNCOMPRESSED chunks. Anything else is a `ParquetError` saying so.
public struct ParquetFileReader {
    public let path: String
    public let metadata: FileMetaData
    public let leaves: [(path: [String], element: SchemaElement)]
    let fileSize: UInt64

    /// Opens `path` and reads its footer.
    public init(path: String) throws {
        self.path = path
        metadata = try FileMetaData.read(path: path)
        leaves = try metadata.leaves()
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        fileSize = (attributes?[.size] as? NSNumber)?.uint64Value ?? 0
    }

    /// Decodes every value of leaf column `leaf` in row group `rowGroup`, nulls included.
    public func readColumn(rowGroup: Int, leaf: Int) throws -> [ParquetValue] {
        guard metadata.rowGroups.indices.contains(rowGroup) else { throw ParquetError("No row group \(rowGroup)") }
        let group = metadata.rowGroups[rowGroup]
        guard group.columns.indices.contains(leaf), leaves.indices.contains(leaf) else { throw ParquetError("No column \(leaf)") }
        let chunk = group.columns[leaf]
        let (path, element) = leaves[leaf]
        guard path.count == 1, element.repetition != .repeated else {
            throw ParquetError("Column '\(path.joined(separator: "."))' is nested; nested columns are not supported yet")
        }
        guard [.uncompressed, .snappy, .gzip, .zstd].contains(chunk.codec) else {
            throw ParquetError("Column '\(path.joined(separator: "."))' uses \(chunk.codec.name), which is not supported yet")
        }
        let maxDefinition = element.repetition == .optional ? 1 : 0
        var start = chunk.dataPageOffset
        if let dictionary = chunk.dictionaryPageOffset, dictionary > 0, dictionary < start { start = dictionary }
        let length = chunk.totalCompressedSize
        guard start >= 4, length >= 0, UInt64(start) + UInt64(length) <= fileSize else {
            throw ParquetError("Column chunk '\(path[0])' lies outside the file")
        }
        guard let handle = FileHandle(forReadingAtPath: self.path) else { throw ParquetError("Cannot open '\(self.path)'") }
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(start))
        let bytes = [UInt8](try handle.read(upToCount: Int(length)) ?? Data())
        guard bytes.count == Int(length) else { throw ParquetError("Column chunk '\(path[0])' is truncated") }

        var dictionary: [ParquetValue]?
        var values: [ParquetValue] = []
        values.reserveCapacity(Int(min(chunk.numValues, 1 << 20)))
        var position = 0
        while position < bytes.count, values.count < chunk.numValues {
            var reader = ThriftCompactReader(bytes, position: position)
            let header = try reader.readStruct()
            let bodyStart = reader.position
            guard let size = header.i32(3), size >= 0, bodyStart + Int(size) <= bytes.count else {
                throw ParquetError("Page header in '\(path[0])' declares a size beyond the chunk")
            }
            let stored = bytes[bodyStart..<bodyStart + Int(size)]
            position = bodyStart + Int(size)
            let uncompressedSize = Int(header.i32(2) ?? -1)
            switch header.i32(1) {
            case 2:  // dictionary page
                guard let dict = header.structure(7), let count = dict.i32(1), count >= 0, count <= Self.maxValuesPerPage else {
                    throw ParquetError("Bad dictionary page header")
                }
                let body = try Codecs.decompress(stored, codec: chunk.codec, uncompressedSize: uncompressedSize)
                var cursor = ByteCursor(body[...])
                dictionary = try Self.plain(&cursor, type: element, count: Int(count))
            case 0, 3:  // data page v1 / v2
                let v2 = header.i32(1) == 3
                guard let page = header.structure(v2 ? 8 : 5), let count = page.i32(1), count >= 0 else { throw ParquetError("Bad data page header") }
                guard count <= Self.maxValuesPerPage else {
                    throw ParquetError("Data page in '\(path[0])' declares \(count) values; the limit is \(Self.maxValuesPerPage)")
                }
                let encoding = page.i32(v2 ? 4 : 2) ?? 0
                let body: [UInt8]
                if v2 {
                    // v2 pages keep their levels uncompressed ahead of the (maybe compressed) values.
                    let levelBytes = Int(page.i32(5) ?? 0) + Int(page.i32(6) ?? 0)
                    guard levelBytes >= 0, levelBytes <= stored.count else { throw ParquetError("Level lengths exceed the page") }
                    let levels = stored.prefix(levelBytes)
                    let values = stored.dropFirst(levelBytes)
                    let compressed = page.bool(7) ?? true
                    body = Array(levels) + (compressed && chunk.codec != .uncompressed
                        ? try Codecs.decompress(values, codec: chunk.codec, uncompressedSize: uncompressedSize - levelBytes)
                        : Array(values))
                } else {
                    body = try Codecs.decompress(stored, codec: chunk.codec, uncompressedSize: uncompressedSize)
                }
                var cursor = ByteCursor(body[...])
                var levels: [UInt32]
                if v2 {
                    let repLength = Int(page.i32(6) ?? 0), defLength = Int(page.i32(5) ?? 0)
                    guard repLength == 0 else { throw ParquetError("Repetition levels in a flat column") }
                    let defBytes = try cursor.take(defLength)
                    levels = maxDefinition == 0 ? [] : try RLEHybrid.decode(defBytes, bitWidth: 1, count: Int(count))
                } else if maxDefinition > 0 {
                    let defLength = Int(try cursor.uint32())
                    levels = try RLEHybrid.decode(try cursor.take(defLength), bitWidth: 1, count: Int(count))
                } else {
                    levels = []
                }
                let present = maxDefinition == 0 ? Int(count) : levels.reduce(0) { $0 + ($1 == 1 ? 1 : 0) }
                let decoded: [ParquetValue]
                switch encoding {
                case 0:
                    decoded = try Self.plain(&cursor, type: element, count: present)
                case 2, 8:
                    guard let dictionary else { throw ParquetError("Dictionary-encoded page without a dictionary page") }
                    let width = Int(try cursor.take(1).first!)
                    let indices = try RLEHybrid.decode(cursor.bytes[cursor.position...], bitWidth: width, count: present)
                    decoded = try indices.map { index in
                        guard Int(index) < dictionary.count else { throw ParquetError("Dictionary index \(index) out of range") }
                        return dictionary[Int(index)]
                    }
                case 3 where element.physicalType == .boolean:  // RLE booleans: a length, then the hybrid encoding
                    let length = Int(try cursor.uint32())
                    decoded = try RLEHybrid.decode(try cursor.take(length), bitWidth: 1, count: present).map { .bool($0 == 1) }
                default:
                    throw ParquetError("Encoding \(encoding) in '\(path[0])' is not supported yet")
                }
                if maxDefinition == 0 {
                    values.append(contentsOf: decoded)
                } else {
                    var next = 0
                    for level in levels {
                        if level == 1 { values.append(decoded[next]); next += 1 } else { values.append(.null) }
                    }
                }
            default:
                continue  // index pages and unknown page types are skipped
            }
        }
        guard values.count == Int(chunk.numValues) else {
            throw ParquetError("Column '\(path[0])' decoded \(values.count) values, the footer says \(chunk.numValues)")
        }
        return values
    }

    /// Pages declaring more values than this are refused, which bounds what a hostile page can make us allocate.
    public static let maxValuesPerPage: Int32 = 1 << 24

    static func plain(_ cursor: inout ByteCursor, type element: SchemaElement, count: Int) throws -> [ParquetValue] {
        guard let type = element.physicalType else { throw ParquetError("Group column has no values") }
        var out: [ParquetValue] = []
        out.reserveCapacity(min(count, cursor.remaining * 8 + 1))
        switch type {
        case .boolean:
            let bytes = try cursor.take((count + 7) / 8)
            for i in 0..<count { out.append(.bool(bytes[bytes.startIndex + i / 8] >> UInt8(i % 8) & 1 == 1)) }
        case .int32:
            for _ in 0..<count { out.append(.int32(Int32(bitPattern: try cursor.uint32()))) }
        case .int64:
            for _ in 0..<count { out.append(.int64(Int64(bitPattern: try cursor.uint64()))) }
        case .int96:
            for _ in 0..<count { out.append(.int96(Array(try cursor.take(12)))) }
        case .float:
            for _ in 0..<count { out.append(.float(Float(bitPattern: try cursor.uint32()))) }
        case .double:
            for _ in 0..<count { out.append(.double(Double(bitPattern: try cursor.uint64()))) }
        case .byteArray:
            for _ in 0..<count {
                let length = Int(try cursor.uint32())
                out.append(.bytes(Array(try cursor.take(length))))
            }
        case .fixedLenByteArray:
            guard let width = element.typeLength, width >= 0 else { throw ParquetError("FIXED_LEN_BYTE_ARRAY without a length") }
            for _ in 0..<count { out.append(.bytes(Array(try cursor.take(Int(width))))) }
        }
        return out
    }
}
