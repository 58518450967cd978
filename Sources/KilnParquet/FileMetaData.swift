import Foundation

/// Parquet physical types.
public enum PhysicalType: Int32, Sendable, CaseIterable {
    case boolean = 0, int32, int64, int96, float, double, byteArray, fixedLenByteArray

    public var name: String {
        ["BOOLEAN", "INT32", "INT64", "INT96", "FLOAT", "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"][Int(rawValue)]
    }
}

/// Whether a field is required, optional or repeated.
public enum Repetition: Int32, Sendable {
    case required = 0, optional, repeated
    public var name: String { ["REQUIRED", "OPTIONAL", "REPEATED"][Int(rawValue)] }
}

/// Compression codecs.
public enum Codec: Int32, Sendable {
    case uncompressed = 0, snappy, gzip, lzo, brotli, lz4, zstd, lz4Raw
    public var name: String { ["UNCOMPRESSED", "SNAPPY", "GZIP", "LZO", "BROTLI", "LZ4", "ZSTD", "LZ4_RAW"][Int(rawValue)] }
}

/// One node of the flattened schema, as the footer lists it (depth-first, groups with `numChildren`).
public struct SchemaElement: Sendable, Equatable {
    public var name: String
    /// Nil for groups.
    public var physicalType: PhysicalType?
    public var typeLength: Int32?
    public var repetition: Repetition?
    public var numChildren: Int32?
    public var convertedType: Int32?
    public var scale: Int32?
    public var precision: Int32?
    public var fieldID: Int32?
    public var logicalType: LogicalType?

    public init(name: String, physicalType: PhysicalType?, repetition: Repetition?) {
        self.name = name
        self.physicalType = physicalType
        self.repetition = repetition
    }

    /// The converted (legacy) type's name.
    public var convertedTypeName: String? { convertedType.flatMap { ConvertedType(rawValue: $0)?.name } }

    /// Sets the logical type and the matching legacy converted type, scale and precision.
    public mutating func setLogicalType(_ logical: LogicalType?) {
        logicalType = logical
        convertedType = logical?.convertedType?.rawValue
        if case .decimal(let p, let s)? = logical {
            precision = p
            scale = s
        }
    }

    init(_ s: ThriftStruct) throws {
        guard let name = s.string(4) else { throw ParquetError("Schema element without a name") }
        self.name = name
        if let raw = s.i32(1) {
            guard let type = PhysicalType(rawValue: raw) else { throw ParquetError("Unknown physical type \(raw) for '\(name)'") }
            physicalType = type
        }
        typeLength = s.i32(2)
        if let raw = s.i32(3) {
            guard let rep = Repetition(rawValue: raw) else { throw ParquetError("Unknown repetition \(raw) for '\(name)'") }
            repetition = rep
        }
        numChildren = s.i32(5)
        if let n = numChildren, n < 0 { throw ParquetError("Negative child count for '\(name)'") }
        if physicalType == .fixedLenByteArray {
            guard let width = typeLength, width > 0, width <= 1 << 20 else { throw ParquetError("FIXED_LEN_BYTE_ARRAY '\(name)' has a bad length") }
        }
        convertedType = s.i32(6)
        scale = s.i32(7)
        precision = s.i32(8)
        fieldID = s.i32(9)
        logicalType = s.structure(10).flatMap(LogicalType.init)
        if logicalType == nil, let converted = convertedType.flatMap(ConvertedType.init(rawValue:)) {
            logicalType = Self.logical(converted, scale: scale ?? 0, precision: precision ?? 0)
        }
    }

    /// The logical type a legacy converted type implies (what readers do with files that carry only the latter).
    static func logical(_ converted: ConvertedType, scale: Int32, precision: Int32) -> LogicalType? {
        switch converted {
        case .utf8: .string
        case .map, .mapKeyValue: .map
        case .list: .list
        case .enumeration: .enumeration
        case .decimal: .decimal(precision: precision, scale: scale)
        case .date: .date
        case .timeMillis: .time(.millis, utc: true)
        case .timeMicros: .time(.micros, utc: true)
        case .timestampMillis: .timestamp(.millis, utc: true)
        case .timestampMicros: .timestamp(.micros, utc: true)
        case .uint8: .integer(bits: 8, signed: false)
        case .uint16: .integer(bits: 16, signed: false)
        case .uint32: .integer(bits: 32, signed: false)
        case .uint64: .integer(bits: 64, signed: false)
        case .int8: .integer(bits: 8, signed: true)
        case .int16: .integer(bits: 16, signed: true)
        case .int32: .integer(bits: 32, signed: true)
        case .int64: .integer(bits: 64, signed: true)
        case .json: .json
        case .bson: .bson
        case .interval: nil
        }
    }

    var thrift: ThriftStruct {
        var s = ThriftStruct([4: .binary(Array(name.utf8))])
        if let physicalType { s[1] = .i32(physicalType.rawValue) }
        if let typeLength { s[2] = .i32(typeLength) }
        if let repetition { s[3] = .i32(repetition.rawValue) }
        if let numChildren, physicalType == nil { s[5] = .i32(numChildren) }
        if let convertedType { s[6] = .i32(convertedType) }
        if let scale { s[7] = .i32(scale) }
        if let precision { s[8] = .i32(precision) }
        if let fieldID { s[9] = .i32(fieldID) }
        if let logicalType { s[10] = .structure(logicalType.thrift) }
        return s
    }
}

/// Column chunk statistics: min and max as PLAIN-encoded bytes (no length prefix for byte arrays), null count.
public struct Statistics: Sendable, Equatable {
    public var min: [UInt8]?
    public var max: [UInt8]?
    public var nullCount: Int64?
    public var distinctCount: Int64?

    public init(min: [UInt8]? = nil, max: [UInt8]? = nil, nullCount: Int64? = nil, distinctCount: Int64? = nil) {
        self.min = min
        self.max = max
        self.nullCount = nullCount
        self.distinctCount = distinctCount
    }

    /// Reads `min_value`/`max_value`; the legacy `min`/`max` only where their signed order is the right one.
    init(_ s: ThriftStruct, type: PhysicalType, trustLegacy: Bool) {
        nullCount = s.i64(3)
        distinctCount = s.i64(4)
        if let max = s.binary(5), let min = s.binary(6) {
            self.min = min
            self.max = max
        } else if trustLegacy, let max = s.binary(1), let min = s.binary(2) {
            self.min = min
            self.max = max
        }
    }

    var thrift: ThriftStruct {
        var s = ThriftStruct()
        if let nullCount { s[3] = .i64(nullCount) }
        if let distinctCount { s[4] = .i64(distinctCount) }
        if let max { s[5] = .binary(max) }
        if let min { s[6] = .binary(min) }
        return s
    }
}

/// A column chunk's metadata within a row group.
public struct ColumnChunkMetaData: Sendable, Equatable {
    public var path: [String]
    public var physicalType: PhysicalType
    public var codec: Codec
    public var encodings: [Int32]
    public var numValues: Int64
    public var totalCompressedSize: Int64
    public var totalUncompressedSize: Int64
    public var dataPageOffset: Int64
    public var dictionaryPageOffset: Int64?
    public var statistics: Statistics?
    public var nullCount: Int64? { statistics?.nullCount }

    /// Where the chunk's first page starts.
    public var startOffset: Int64 {
        if let dictionary = dictionaryPageOffset, dictionary > 0, dictionary < dataPageOffset { return dictionary }
        return dataPageOffset
    }

    public init(path: [String], physicalType: PhysicalType, codec: Codec, encodings: [Int32], numValues: Int64,
                totalCompressedSize: Int64, totalUncompressedSize: Int64, dataPageOffset: Int64, dictionaryPageOffset: Int64?,
                statistics: Statistics?) {
        self.path = path
        self.physicalType = physicalType
        self.codec = codec
        self.encodings = encodings
        self.numValues = numValues
        self.totalCompressedSize = totalCompressedSize
        self.totalUncompressedSize = totalUncompressedSize
        self.dataPageOffset = dataPageOffset
        self.dictionaryPageOffset = dictionaryPageOffset
        self.statistics = statistics
    }

    init(_ chunk: ThriftStruct, element: SchemaElement?) throws {
        guard let meta = chunk.structure(3) else { throw ParquetError("Column chunk without metadata (external column files are not supported)") }
        guard let rawType = meta.i32(1), let type = PhysicalType(rawValue: rawType) else { throw ParquetError("Column chunk with an unknown type") }
        guard let rawCodec = meta.i32(4), let codec = Codec(rawValue: rawCodec) else { throw ParquetError("Column chunk with an unknown codec") }
        path = (meta.list(3) ?? []).compactMap { if case .binary(let b) = $0 { return String(decoding: b, as: UTF8.self) }; return nil }
        physicalType = type
        self.codec = codec
        encodings = (meta.list(2) ?? []).compactMap { if case .i32(let v) = $0 { return v }; return nil }
        numValues = meta.i64(5) ?? 0
        totalUncompressedSize = meta.i64(6) ?? 0
        totalCompressedSize = meta.i64(7) ?? 0
        dataPageOffset = meta.i64(9) ?? 0
        dictionaryPageOffset = meta.i64(11)
        if let stats = meta.structure(12) {
            // Legacy min/max were written with signed comparisons: right for numbers, wrong for unsigned and binary.
            var unsigned = false
            if case .integer(_, false)? = element?.logicalType { unsigned = true }
            let legacyOK = [.boolean, .int32, .int64, .float, .double].contains(type) && !unsigned
            statistics = Statistics(stats, type: type, trustLegacy: legacyOK)
        }
        guard numValues >= 0, totalCompressedSize >= 0, totalUncompressedSize >= 0, dataPageOffset >= 0 else {
            throw ParquetError("Column chunk '\(path.joined(separator: "."))' has negative sizes or offsets")
        }
    }

    var thrift: ThriftStruct {
        var meta = ThriftStruct([
            1: .i32(physicalType.rawValue),
            2: .list(.i32, encodings.map { .i32($0) }),
            3: .list(.binary, path.map { .binary(Array($0.utf8)) }),
            4: .i32(codec.rawValue),
            5: .i64(numValues),
            6: .i64(totalUncompressedSize),
            7: .i64(totalCompressedSize),
            9: .i64(dataPageOffset),
        ])
        if let dictionaryPageOffset { meta[11] = .i64(dictionaryPageOffset) }
        if let statistics { meta[12] = .structure(statistics.thrift) }
        return ThriftStruct([2: .i64(startOffset), 3: .structure(meta)])
    }
}

/// One row group: its row count and column chunks.
public struct RowGroupMetaData: Sendable, Equatable {
    public var numRows: Int64
    public var totalByteSize: Int64
    public var columns: [ColumnChunkMetaData]

    var thrift: ThriftStruct {
        ThriftStruct([
            1: .list(.structure, columns.map { .structure($0.thrift) }),
            2: .i64(totalByteSize),
            3: .i64(numRows),
            5: .i64(columns.first?.startOffset ?? 0),
            6: .i64(columns.reduce(0) { $0 + $1.totalCompressedSize }),
        ])
    }
}

/// A Parquet file's footer.
public struct FileMetaData: Sendable, Equatable {
    public var version: Int32
    public var schema: ParquetSchema
    public var numRows: Int64
    public var rowGroups: [RowGroupMetaData]
    public var createdBy: String?
    public var keyValueMetadata: [(key: String, value: String)]

    public static func == (a: FileMetaData, b: FileMetaData) -> Bool {
        a.version == b.version && a.schema == b.schema && a.numRows == b.numRows && a.rowGroups == b.rowGroups
            && a.createdBy == b.createdBy && a.keyValueMetadata.elementsEqual(b.keyValueMetadata) { $0 == $1 }
    }

    public init(schema: ParquetSchema, rowGroups: [RowGroupMetaData], createdBy: String?, keyValueMetadata: [(key: String, value: String)]) {
        version = 2
        self.schema = schema
        self.rowGroups = rowGroups
        numRows = rowGroups.reduce(0) { $0 + $1.numRows }
        self.createdBy = createdBy
        self.keyValueMetadata = keyValueMetadata
    }

    /// Decodes a footer.
    /// - Throws: `ParquetError` for malformed Thrift or a footer that breaks Parquet's rules.
    public init(footer: [UInt8]) throws {
        var reader = ThriftCompactReader(footer)
        let s = try reader.readStruct()
        version = s.i32(1) ?? 0
        let elements = try (s.list(2) ?? []).map { value in
            guard case .structure(let element) = value else { throw ParquetError("Schema list holds a non-struct") }
            return try SchemaElement(element)
        }
        schema = try ParquetSchema(elements: elements)
        numRows = s.i64(3) ?? 0
        guard numRows >= 0 else { throw ParquetError("Footer has a negative row count") }
        let columns = schema.columns
        rowGroups = try (s.list(4) ?? []).map { value in
            guard case .structure(let group) = value else { throw ParquetError("Row group list holds a non-struct") }
            let chunks = group.list(1) ?? []
            guard chunks.count == columns.count else {
                throw ParquetError("Row group has \(chunks.count) column chunks; the schema has \(columns.count) columns")
            }
            let parsed = try chunks.enumerated().map { index, chunk -> ColumnChunkMetaData in
                guard case .structure(let c) = chunk else { throw ParquetError("Column chunk list holds a non-struct") }
                let meta = try ColumnChunkMetaData(c, element: columns[index].element)
                guard meta.physicalType == columns[index].element.physicalType else {
                    throw ParquetError("Column chunk '\(columns[index].dottedPath)' has type \(meta.physicalType.name); the schema says otherwise")
                }
                return meta
            }
            let rows = group.i64(3) ?? 0
            guard rows >= 0 else { throw ParquetError("Row group has a negative row count") }
            return RowGroupMetaData(numRows: rows, totalByteSize: group.i64(2) ?? 0, columns: parsed)
        }
        createdBy = s.string(6)
        keyValueMetadata = (s.list(5) ?? []).compactMap { entry in
            if case .structure(let pair) = entry, let key = pair.string(1) { return (key, pair.string(2) ?? "") }
            return nil
        }
    }

    /// The footer bytes (Thrift compact).
    public var serialized: [UInt8] {
        var s = ThriftStruct([
            1: .i32(version),
            2: .list(.structure, schema.elements.map { .structure($0.thrift) }),
            3: .i64(numRows),
            4: .list(.structure, rowGroups.map { .structure($0.thrift) }),
            7: .list(.structure, schema.columns.map { _ in .structure(ThriftStruct([1: .structure(ThriftStruct())])) }),
        ])
        if !keyValueMetadata.isEmpty {
            s[5] = .list(.structure, keyValueMetadata.map { .structure(ThriftStruct([1: .binary(Array($0.key.utf8)), 2: .binary(Array($0.value.utf8))])) })
        }
        if let createdBy { s[6] = .binary(Array(createdBy.utf8)) }
        var writer = ThriftCompactWriter()
        writer.writeStruct(s)
        return writer.bytes
    }

    /// Reads the footer of the file at `path`: checks both `PAR1` magics and that the footer length fits.
    public static func read(path: String) throws -> FileMetaData {
        let file = try ParquetInputFile(path: path)
        return try read(file)
    }

    static func read(_ file: any ParquetSource) throws -> FileMetaData {
        let size = file.size
        let path = file.name
        guard size >= 12 else { throw ParquetError("'\(path)' is \(size) bytes: too small to be a Parquet file") }
        let head = try file.read(offset: 0, count: 4)
        let tail = try file.read(offset: size - 8, count: 8)
        let magic = Array("PAR1".utf8)
        guard head == magic, Array(tail[4...]) == magic else {
            throw ParquetError("'\(path)' is not a Parquet file (bad magic bytes)")
        }
        let length = Int(UInt32(tail[0]) | UInt32(tail[1]) << 8 | UInt32(tail[2]) << 16 | UInt32(tail[3]) << 24)
        guard length > 0, length <= size - 12 else {
            throw ParquetError("'\(path)' declares a footer of \(length) bytes in a file of \(size) bytes")
        }
        return try FileMetaData(footer: try file.read(offset: size - 8 - length, count: length))
    }
}
