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
    /// The logical type, as Parquet names it: `STRING`, `TIMESTAMP(MICROS, UTC)`, `DECIMAL(10, 2)`, `INT(8, signed)`...
    public var logicalType: String?

    static let convertedNames = [
        "UTF8", "MAP", "MAP_KEY_VALUE", "LIST", "ENUM", "DECIMAL", "DATE", "TIME_MILLIS", "TIME_MICROS", "TIMESTAMP_MILLIS",
        "TIMESTAMP_MICROS", "UINT_8", "UINT_16", "UINT_32", "UINT_64", "INT_8", "INT_16", "INT_32", "INT_64", "JSON", "BSON", "INTERVAL",
    ]

    /// The converted (legacy) type's name.
    public var convertedTypeName: String? {
        convertedType.flatMap { Int($0) < Self.convertedNames.count && $0 >= 0 ? Self.convertedNames[Int($0)] : nil }
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
        convertedType = s.i32(6)
        scale = s.i32(7)
        precision = s.i32(8)
        logicalType = s.structure(10).flatMap(Self.logicalName)
    }

    static func unit(_ s: ThriftStruct?) -> String {
        guard let s else { return "?" }
        if s[1] != nil { return "MILLIS" }
        if s[2] != nil { return "MICROS" }
        if s[3] != nil { return "NANOS" }
        return "?"
    }

    static func logicalName(_ u: ThriftStruct) -> String? {
        guard let (id, value) = u.fields.first else { return nil }
        let inner: ThriftStruct? = { if case .structure(let s) = value { return s }; return nil }()
        switch id {
        case 1: return "STRING"
        case 2: return "MAP"
        case 3: return "LIST"
        case 4: return "ENUM"
        case 5: return "DECIMAL(\(inner?.i32(2) ?? 0), \(inner?.i32(1) ?? 0))"
        case 6: return "DATE"
        case 7: return "TIME(\(unit(inner?.structure(2))), \(inner?.bool(1) == true ? "UTC" : "local"))"
        case 8: return "TIMESTAMP(\(unit(inner?.structure(2))), \(inner?.bool(1) == true ? "UTC" : "local"))"
        case 10:
            var width = 0
            if case .byte(let w)? = inner?[1] { width = Int(w) }
            return "INT(\(width), \(inner?.bool(2) == true ? "signed" : "unsigned"))"
        case 11: return "UNKNOWN"
        case 12: return "JSON"
        case 13: return "BSON"
        case 14: return "UUID"
        case 15: return "FLOAT16"
        default: return "LOGICAL(\(id))"
        }
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
    public var nullCount: Int64?

    init(_ chunk: ThriftStruct) throws {
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
        nullCount = meta.structure(12)?.i64(3)
        guard numValues >= 0, totalCompressedSize >= 0, totalUncompressedSize >= 0, dataPageOffset >= 0 else {
            throw ParquetError("Column chunk '\(path.joined(separator: "."))' has negative sizes or offsets")
        }
    }
}

/// One row group: its row count and column chunks.
public struct RowGroupMetaData: Sendable, Equatable {
    public var numRows: Int64
    public var totalByteSize: Int64
    public var columns: [ColumnChunkMetaData]
}

/// A Parquet file's footer.
public struct FileMetaData: Sendable, Equatable {
    public var version: Int32
    /// The flattened schema; element 0 is the root.
    public var schema: [SchemaElement]
    public var numRows: Int64
    public var rowGroups: [RowGroupMetaData]
    public var createdBy: String?
    public var keyValueMetadata: [String: String]

    /// Decodes a footer.
    /// - Throws: `ParquetError` for malformed Thrift or a footer that breaks Parquet's rules.
    public init(footer: [UInt8]) throws {
        var reader = ThriftCompactReader(footer)
        let s = try reader.readStruct()
        version = s.i32(1) ?? 0
        schema = try (s.list(2) ?? []).map { value in
            guard case .structure(let element) = value else { throw ParquetError("Schema list holds a non-struct") }
            return try SchemaElement(element)
        }
        guard !schema.isEmpty else { throw ParquetError("Footer has an empty schema") }
        numRows = s.i64(3) ?? 0
        guard numRows >= 0 else { throw ParquetError("Footer has a negative row count") }
        rowGroups = try (s.list(4) ?? []).map { value in
            guard case .structure(let group) = value else { throw ParquetError("Row group list holds a non-struct") }
            let columns = try (group.list(1) ?? []).map { chunk -> ColumnChunkMetaData in
                guard case .structure(let c) = chunk else { throw ParquetError("Column chunk list holds a non-struct") }
                return try ColumnChunkMetaData(c)
            }
            return RowGroupMetaData(numRows: group.i64(3) ?? 0, totalByteSize: group.i64(2) ?? 0, columns: columns)
        }
        createdBy = s.string(6)
        var kv: [String: String] = [:]
        for entry in s.list(5) ?? [] {
            if case .structure(let pair) = entry, let key = pair.string(1) { kv[key] = pair.string(2) ?? "" }
        }
        keyValueMetadata = kv
    }

    /// Reads the footer of the file at `path`: checks both `PAR1` magics and that the footer length fits.
    public static func read(path: String) throws -> FileMetaData {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ParquetError("Cannot open '\(path)'") }
        defer { try? handle.close() }
        let size = try handle.seekToEnd()
        guard size >= 12 else { throw ParquetError("'\(path)' is \(size) bytes: too small to be a Parquet file") }
        try handle.seek(toOffset: 0)
        let head = [UInt8](try handle.read(upToCount: 4) ?? Data())
        try handle.seek(toOffset: size - 8)
        let tail = [UInt8](try handle.read(upToCount: 8) ?? Data())
        let magic = Array("PAR1".utf8)
        guard head == magic, tail.count == 8, Array(tail[4...]) == magic else {
            throw ParquetError("'\(path)' is not a Parquet file (bad magic bytes)")
        }
        let length = UInt64(tail[0]) | UInt64(tail[1]) << 8 | UInt64(tail[2]) << 16 | UInt64(tail[3]) << 24
        guard length > 0, length <= size - 12 else {
            throw ParquetError("'\(path)' declares a footer of \(length) bytes in a file of \(size) bytes")
        }
        try handle.seek(toOffset: size - 8 - length)
        let footer = [UInt8](try handle.read(upToCount: Int(length)) ?? Data())
        guard footer.count == Int(length) else { throw ParquetError("'\(path)' is truncated: the footer could not be read whole") }
        return try FileMetaData(footer: footer)
    }

    /// The leaf columns with their dotted paths and the repetition of each ancestor, in file order.
    public func leaves() throws -> [(path: [String], element: SchemaElement)] {
        var result: [(path: [String], element: SchemaElement)] = []
        var index = 1
        func walk(_ prefix: [String], remaining: Int32) throws {
            guard prefix.count <= 64 else { throw ParquetError("Schema nests deeper than 64 levels") }
            for _ in 0..<remaining {
                guard index < schema.count else { throw ParquetError("Schema declares more children than it lists") }
                let element = schema[index]
                index += 1
                if let children = element.numChildren, children > 0 {
                    try walk(prefix + [element.name], remaining: children)
                } else {
                    result.append((prefix + [element.name], element))
                }
            }
        }
        try walk([], remaining: schema[0].numChildren ?? Int32(schema.count - 1))
        return result
    }
}
