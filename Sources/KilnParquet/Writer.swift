import Foundation

/// How `ParquetFileWriter` lays out and encodes data.
public struct ParquetWriterOptions: Sendable {
    public var codec: Codec = .snappy
    /// Target size of a data page's encoded values, in bytes.
    public var pageSize = 1 << 20
    /// A column chunk whose dictionary would grow past this many bytes is written PLAIN instead.
    public var dictionaryPageLimit = 1 << 20
    public var dictionary = true
    public var statistics = true
    public var createdBy = "kiln parquet"

    public init(codec: Codec = .snappy) { self.codec = codec }
}

/// Where a Parquet file's bytes go, in order: a local file, or an object store's atomic writer.
public protocol ParquetSink: AnyObject {
    /// A name for messages (a path or key).
    var name: String { get }
    /// Appends bytes.
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Makes the whole file durable (and visible, for stores that publish on completion).
    func finish() throws
}

/// A local file written with `write(2)` and fsynced at the end.
final class LocalFileSink: ParquetSink {
    let name: String
    private var descriptor: Int32

    init(path: String) throws {
        name = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { throw ParquetError("Cannot create '\(path)': \(String(cString: strerror(errno)))") }
    }

    deinit { if descriptor >= 0 { Foundation.close(descriptor) } }

    func write(_ raw: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < raw.count {
            let n = Foundation.write(descriptor, raw.baseAddress! + done, raw.count - done)
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw ParquetError("Cannot write '\(name)': \(String(cString: strerror(errno)))") }
            done += n
        }
    }

    func finish() throws {
        guard fsync(descriptor) == 0 else { throw ParquetError("Cannot flush '\(name)' to disk") }
        Foundation.close(descriptor)
        descriptor = -1
    }
}

/// Writes a Parquet file one row group at a time: each `writeRowGroup` encodes its columns (in parallel), appends
/// them to the file and keeps only their metadata, so a file larger than memory can be written.
public final class ParquetFileWriter {
    public let path: String
    public let schema: ParquetSchema
    public let options: ParquetWriterOptions
    let keyValueMetadata: [(key: String, value: String)]
    private let sink: any ParquetSink
    private var open = true
    private var offset = 0
    private var rowGroups: [RowGroupMetaData] = []

    /// Writes a local file at `path`.
    public convenience init(path: String, schema: ParquetSchema, options: ParquetWriterOptions = ParquetWriterOptions(),
                            keyValueMetadata: [(key: String, value: String)] = []) throws {
        guard !schema.columns.isEmpty else { throw ParquetError("A Parquet schema needs at least one column") }
        try self.init(sink: try LocalFileSink(path: path), schema: schema, options: options, keyValueMetadata: keyValueMetadata)
    }

    /// Writes into `sink`; ``close()`` finishes it.
    public init(sink: any ParquetSink, schema: ParquetSchema, options: ParquetWriterOptions = ParquetWriterOptions(),
                keyValueMetadata: [(key: String, value: String)] = []) throws {
        guard !schema.columns.isEmpty else { throw ParquetError("A Parquet schema needs at least one column") }
        self.path = sink.name
        self.sink = sink
        self.schema = schema
        self.options = options
        self.keyValueMetadata = keyValueMetadata
        try write(Array("PAR1".utf8))
    }

    private func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try sink.write($0) }
        offset += bytes.count
    }

    /// Encodes and appends one row group: one `ColumnData` per leaf column, in schema order.
    public func writeRowGroup(_ columns: [ColumnData], parallel: Bool = true) throws {
        guard open else { throw ParquetError("The writer for '\(path)' is closed") }
        guard columns.count == schema.columns.count else {
            throw ParquetError("Row group has \(columns.count) columns; the schema has \(schema.columns.count)")
        }
        let rows = columns[0].rowCount
        for (i, column) in columns.enumerated() where column.rowCount != rows {
            throw ParquetError("Column '\(schema.columns[i].dottedPath)' has \(column.rowCount) rows; '\(schema.columns[0].dottedPath)' has \(rows)")
        }
        let encoded: [EncodedChunk]
        if parallel, columns.count > 1 {
            let descriptors = schema.columns, options = options
            encoded = try concurrentMap(columns.count) { try ColumnChunkEncoder.encode(columns[$0], column: descriptors[$0], options: options) }
        } else {
            encoded = try columns.indices.map { try ColumnChunkEncoder.encode(columns[$0], column: schema.columns[$0], options: options) }
        }
        var metas: [ColumnChunkMetaData] = []
        for chunk in encoded {
            var meta = chunk.meta
            meta.dataPageOffset += Int64(offset)
            if let dictionary = meta.dictionaryPageOffset { meta.dictionaryPageOffset = dictionary + Int64(offset) }
            try write(chunk.bytes)
            metas.append(meta)
        }
        rowGroups.append(RowGroupMetaData(numRows: Int64(rows), totalByteSize: metas.reduce(0) { $0 + $1.totalUncompressedSize }, columns: metas))
    }

    /// Writes the footer, flushes the file to disk and closes it.
    @discardableResult
    public func close() throws -> FileMetaData {
        guard open else { throw ParquetError("The writer for '\(path)' is already closed") }
        let meta = FileMetaData(schema: schema, rowGroups: rowGroups, createdBy: options.createdBy, keyValueMetadata: keyValueMetadata)
        let footer = meta.serialized
        let length = UInt32(footer.count)
        try write(footer + [UInt8(length & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length >> 16 & 0xFF), UInt8(length >> 24)] + Array("PAR1".utf8))
        open = false
        try sink.finish()
        return meta
    }
}

struct EncodedChunk: Sendable {
    var bytes: [UInt8]
    var meta: ColumnChunkMetaData
}

/// Encodes one column chunk: an optional dictionary page, then v1 data pages with RLE levels.
enum ColumnChunkEncoder {
    static func encode(_ data: ColumnData, column: ColumnDescriptor, options: ParquetWriterOptions) throws -> EncodedChunk {
        guard let type = column.element.physicalType, data.values.physicalType == type else {
            throw ParquetError("Column '\(column.dottedPath)' is \(column.element.physicalType?.name ?? "a group"); got \(data.values.physicalType.name) values")
        }
        let maxDef = UInt8(column.maxDefinitionLevel), maxRep = UInt8(column.maxRepetitionLevel)
        if let defs = data.definitionLevels {
            guard maxDef > 0, defs.count == data.count else { throw ParquetError("Definition levels of '\(column.dottedPath)' do not fit the column") }
            var present = 0
            for level in defs {
                guard level <= maxDef else { throw ParquetError("Definition level \(level) above \(maxDef) in '\(column.dottedPath)'") }
                if level == maxDef { present += 1 }
            }
            guard present == data.values.count else {
                throw ParquetError("Column '\(column.dottedPath)' has \(data.values.count) values for \(present) defined slots")
            }
        } else {
            guard data.values.count == data.count else { throw ParquetError("Column '\(column.dottedPath)' has \(data.values.count) values for \(data.count) slots") }
        }
        if maxRep > 0 {
            guard let reps = data.repetitionLevels, reps.count == data.count, reps.first.map({ $0 == 0 }) ?? true,
                  reps.allSatisfy({ $0 <= maxRep }) else {
                throw ParquetError("Column '\(column.dottedPath)' is repeated and needs valid repetition levels")
            }
        } else if data.repetitionLevels != nil {
            throw ParquetError("Column '\(column.dottedPath)' is not repeated but has repetition levels")
        }
        if case .fixedLenByteArray(let fixed) = data.values, fixed.width != Int(column.element.typeLength ?? 0) {
            throw ParquetError("Column '\(column.dottedPath)' holds \(column.element.typeLength ?? 0)-byte values; got \(fixed.width)")
        }

        var out: [UInt8] = []
        var uncompressedTotal = 0
        var encodings: [Encoding] = [.rle]
        let dictionary = options.dictionary ? Dictionaries.build(data.values, limit: options.dictionaryPageLimit) : nil
        var dictionaryOffset: Int64?
        if let dictionary {
            let body = plain(dictionary.values, range: 0..<dictionary.values.count)
            let page = ThriftStruct([7: .structure(ThriftStruct([1: .i32(Int32(dictionary.values.count)), 2: .i32(Encoding.plain.rawValue)]))])
            dictionaryOffset = 0
            uncompressedTotal += try appendPage(type: 2, header: page, body: body, codec: options.codec, to: &out)
            encodings += [.plain, .rleDictionary]
        } else {
            encodings.append(.plain)
        }
        let dataOffset = out.count

        // Split the slots into pages of about `pageSize` encoded bytes, each starting a row.
        let valueBytes: Int
        if let dictionary {
            valueBytes = data.values.count * max(1, dictionary.bitWidth) / 8 + 1
        } else {
            valueBytes = data.values.memoryBytes
        }
        let slotsPerPage = max(1, min(1 << 20, Int((Double(options.pageSize) * Double(data.count) / Double(max(1, valueBytes))).rounded(.down))))
        var slot = 0, value = 0
        var pages = 0
        let defBits = RLEHybrid.bitWidth(UInt64(maxDef)), repBits = RLEHybrid.bitWidth(UInt64(maxRep))
        while slot < data.count || (pages == 0 && data.count == 0) {
            var end = min(data.count, slot + slotsPerPage)
            if let reps = data.repetitionLevels { while end < data.count, reps[end] != 0 { end += 1 } }
            let defined: Int
            var body: [UInt8] = []
            if maxRep > 0 { levels(data.repetitionLevels![slot..<end], bitWidth: repBits, into: &body) }
            if maxDef > 0 {
                if let defs = data.definitionLevels {
                    levels(defs[slot..<end], bitWidth: defBits, into: &body)
                    defined = defs[slot..<end].reduce(0) { $0 + ($1 == maxDef ? 1 : 0) }
                } else {
                    levels(repeatElement(maxDef, count: end - slot), bitWidth: defBits, into: &body)
                    defined = end - slot
                }
            } else {
                defined = end - slot
            }
            let values = value..<value + defined
            if let dictionary {
                body.append(UInt8(dictionary.bitWidth))
                RLEHybrid.encode(dictionary.indices[values], bitWidth: dictionary.bitWidth, into: &body)
            } else {
                body += plain(data.values, range: values)
            }
            let header = ThriftStruct([5: .structure(ThriftStruct([
                1: .i32(Int32(end - slot)), 2: .i32((dictionary == nil ? Encoding.plain : .rleDictionary).rawValue),
                3: .i32(Encoding.rle.rawValue), 4: .i32(Encoding.rle.rawValue),
            ]))])
            uncompressedTotal += try appendPage(type: 0, header: header, body: body, codec: options.codec, to: &out)
            slot = end
            value += defined
            pages += 1
        }
        var statistics = Statistics(nullCount: Int64(data.count - data.values.count))
        if options.statistics, let (min, max) = Bounds.of(dictionary?.values ?? data.values, column: column) {
            statistics.min = min
            statistics.max = max
        }
        let meta = ColumnChunkMetaData(path: column.path, physicalType: type, codec: options.codec, encodings: encodings.map(\.rawValue),
                                       numValues: Int64(data.count), totalCompressedSize: Int64(out.count),
                                       totalUncompressedSize: Int64(uncompressedTotal), dataPageOffset: Int64(dataOffset),
                                       dictionaryPageOffset: dictionaryOffset, statistics: statistics)
        return EncodedChunk(bytes: out, meta: meta)
    }

    /// Appends a page (header + compressed body); returns its uncompressed size, header included.
    static func appendPage(type: Int32, header: ThriftStruct, body: [UInt8], codec: Codec, to out: inout [UInt8]) throws -> Int {
        let compressed = try Codecs.compress(body, codec: codec)
        var full = header
        full[1] = .i32(type)
        full[2] = .i32(Int32(body.count))
        full[3] = .i32(Int32(compressed.count))
        var writer = ThriftCompactWriter()
        writer.writeStruct(full)
        out += writer.bytes
        out += compressed
        return writer.bytes.count + body.count
    }

    /// v1 levels: a 4-byte length, then the RLE hybrid.
    static func levels<C: RandomAccessCollection>(_ levels: C, bitWidth: Int, into out: inout [UInt8]) where C.Element == UInt8, C.Index == Int {
        let start = out.count
        out += [0, 0, 0, 0]
        RLEHybrid.encode(levels, bitWidth: bitWidth, into: &out)
        let length = UInt32(out.count - start - 4)
        for i in 0..<4 { out[start + i] = UInt8(truncatingIfNeeded: length >> (8 * UInt32(i))) }
    }

    /// PLAIN encoding of `values[range]`.
    static func plain(_ values: ColumnValues, range: Range<Int>) -> [UInt8] {
        func raw<T>(_ array: [T]) -> [UInt8] {
            array.withUnsafeBytes { Array(UnsafeRawBufferPointer(rebasing: $0[range.lowerBound * MemoryLayout<T>.stride..<range.upperBound * MemoryLayout<T>.stride])) }
        }
        switch values {
        case .boolean(let v):
            var out = [UInt8](repeating: 0, count: (range.count + 7) / 8)
            for (i, bit) in v[range].enumerated() where bit { out[i >> 3] |= 1 << UInt8(i & 7) }
            return out
        case .int32(let v): return raw(v)
        case .int64(let v): return raw(v)
        case .float(let v): return raw(v)
        case .double(let v): return raw(v)
        case .int96(let v), .fixedLenByteArray(let v): return Array(v.data[range.lowerBound * v.width..<range.upperBound * v.width])
        case .byteArray(let v):
            guard !range.isEmpty else { return [] }
            let dataStart = Int(v.offsets[range.lowerBound]), dataEnd = Int(v.offsets[range.upperBound])
            var out = [UInt8](repeating: 0, count: range.count * 4 + dataEnd - dataStart)
            out.withUnsafeMutableBytes { dst in
                v.data.withUnsafeBytes { src in
                    var position = 0
                    for i in range {
                        let start = Int(v.offsets[i]), length = Int(v.offsets[i + 1]) - start
                        dst.storeBytes(of: UInt32(length), toByteOffset: position, as: UInt32.self)
                        position += 4
                        if length > 0 { (dst.baseAddress! + position).copyMemory(from: src.baseAddress! + start, byteCount: length) }
                        position += length
                    }
                }
            }
            return out
        }
    }
}

/// Min/max statistics, PLAIN-encoded, in the column's sort order.
enum Bounds {
    static func of(_ values: ColumnValues, column: ColumnDescriptor) -> ([UInt8], [UInt8])? {
        func bytes<T>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v) { Array($0) } }
        /// Min and max ignoring NaN, zero written as -0.0 (min) and +0.0 (max) as the spec asks.
        func floatRange<F: BinaryFloatingPoint>(_ values: [F]) -> ([UInt8], [UInt8])? {
            var lo = F.infinity, hi = -F.infinity, any = false
            for x in values where !x.isNaN {
                any = true
                if x < lo { lo = x }
                if x > hi { hi = x }
            }
            guard any else { return nil }
            return (bytes(lo == 0 ? -F.zero : lo), bytes(hi == 0 ? F.zero : hi))
        }
        /// Little-endian min and max of integers, in the order of their (signed or unsigned) type.
        func range<S: Sequence>(_ values: S) -> ([UInt8], [UInt8])? where S.Element: FixedWidthInteger {
            guard let lo = values.min(), let hi = values.max() else { return nil }
            return (bytes(lo), bytes(hi))
        }
        var unsigned = false
        if case .integer(_, false)? = column.element.logicalType { unsigned = true }
        switch values {
        case .boolean(let v):
            guard !v.isEmpty else { return nil }
            return ([v.contains(false) ? 0 : 1], [v.contains(true) ? 1 : 0])
        case .int32(let v):
            return unsigned ? range(v.lazy.map { UInt32(bitPattern: $0) }) : range(v)
        case .int64(let v):
            return unsigned ? range(v.lazy.map { UInt64(bitPattern: $0) }) : range(v)
        case .float(let v): return floatRange(v)
        case .double(let v): return floatRange(v)
        case .byteArray(let v):
            // Unsigned byte order is right for strings and plain binary; DECIMAL and other orders get none.
            if let logical = column.element.logicalType, ![.string, .enumeration, .json, .bson].contains(logical) { return nil }
            guard v.count > 0 else { return nil }
            var lo = v[0], hi = v[0]
            for i in 1..<v.count {
                let x = v[i]
                if x.lexicographicallyPrecedes(lo) { lo = x }
                if hi.lexicographicallyPrecedes(x) { hi = x }
            }
            return (Array(lo), Array(hi))
        case .int96, .fixedLenByteArray:
            return nil
        }
    }
}
