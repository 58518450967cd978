/// Variable-length values packed into one buffer: value `i` is `data[offsets[i]..<offsets[i + 1]]`.
/// `offsets` always holds `count + 1` entries (Arrow's layout, with 32-bit offsets).
public struct ByteArrays: Sendable, Equatable {
    public var offsets: [Int32] = [0]
    public var data: [UInt8] = []

    public init() {}

    public init<S: Sequence>(_ values: S) where S.Element: Collection, S.Element.Element == UInt8 {
        for value in values { append(value) }
    }

    public var count: Int { offsets.count - 1 }

    public subscript(index: Int) -> ArraySlice<UInt8> { data[Int(offsets[index])..<Int(offsets[index + 1])] }

    public mutating func append<C: Collection>(_ value: C) where C.Element == UInt8 {
        data.append(contentsOf: value)
        offsets.append(Int32(truncatingIfNeeded: data.count))
    }

    public mutating func reserve(values: Int, bytes: Int) {
        offsets.reserveCapacity(offsets.count + values)
        data.reserveCapacity(data.count + bytes)
    }

    /// The bytes these values take in memory (data and offsets).
    public var memoryBytes: Int { data.count + offsets.count * 4 }
}

/// Fixed-width binary values packed back to back (`FIXED_LEN_BYTE_ARRAY`, and INT96 with width 12).
public struct FixedBytes: Sendable, Equatable {
    public var width: Int
    public var data: [UInt8] = []

    public init(width: Int, data: [UInt8] = []) {
        self.width = width
        self.data = data
    }

    public var count: Int { width == 0 ? 0 : data.count / width }
    public subscript(index: Int) -> ArraySlice<UInt8> { data[index * width..<(index + 1) * width] }
}

/// The non-null values of one leaf column, in one typed buffer per physical type (STYLE.md §4: no enum per value).
public enum ColumnValues: Sendable, Equatable {
    case boolean([Bool])
    case int32([Int32])
    case int64([Int64])
    case int96(FixedBytes)
    case float([Float])
    case double([Double])
    case byteArray(ByteArrays)
    case fixedLenByteArray(FixedBytes)

    /// An empty buffer for a physical type.
    public static func empty(_ type: PhysicalType, typeLength: Int = 0) -> ColumnValues {
        switch type {
        case .boolean: .boolean([])
        case .int32: .int32([])
        case .int64: .int64([])
        case .int96: .int96(FixedBytes(width: 12))
        case .float: .float([])
        case .double: .double([])
        case .byteArray: .byteArray(ByteArrays())
        case .fixedLenByteArray: .fixedLenByteArray(FixedBytes(width: typeLength))
        }
    }

    public var count: Int {
        switch self {
        case .boolean(let v): v.count
        case .int32(let v): v.count
        case .int64(let v): v.count
        case .int96(let v), .fixedLenByteArray(let v): v.count
        case .float(let v): v.count
        case .double(let v): v.count
        case .byteArray(let v): v.count
        }
    }

    public var physicalType: PhysicalType {
        switch self {
        case .boolean: .boolean
        case .int32: .int32
        case .int64: .int64
        case .int96: .int96
        case .float: .float
        case .double: .double
        case .byteArray: .byteArray
        case .fixedLenByteArray: .fixedLenByteArray
        }
    }

    /// Bytes the decoded values occupy in memory.
    public var memoryBytes: Int {
        switch self {
        case .boolean(let v): v.count
        case .int32(let v): v.count * 4
        case .int64(let v): v.count * 8
        case .int96(let v), .fixedLenByteArray(let v): v.data.count
        case .float(let v): v.count * 4
        case .double(let v): v.count * 8
        case .byteArray(let v): v.memoryBytes
        }
    }
}

/// One leaf column of one row group, decoded: its non-null values plus Dremel levels.
///
/// `count` is the number of level entries ("slots"); for a flat column that is the row count. A slot holds a value
/// when its definition level equals the column's maximum. `definitionLevels == nil` means every slot holds a value;
/// `repetitionLevels == nil` means every slot starts a new row.
public struct ColumnData: Sendable, Equatable {
    public var values: ColumnValues
    public var definitionLevels: [UInt8]?
    public var repetitionLevels: [UInt8]?
    public var count: Int

    public init(values: ColumnValues, definitionLevels: [UInt8]? = nil, repetitionLevels: [UInt8]? = nil, count: Int? = nil) {
        self.values = values
        self.definitionLevels = definitionLevels
        self.repetitionLevels = repetitionLevels
        self.count = count ?? definitionLevels?.count ?? values.count
    }

    /// Number of rows: slots that start a row.
    public var rowCount: Int {
        guard let repetitionLevels else { return count }
        var rows = 0
        for level in repetitionLevels where level == 0 { rows += 1 }
        return rows
    }

    public var memoryBytes: Int { values.memoryBytes + (definitionLevels?.count ?? 0) + (repetitionLevels?.count ?? 0) }
}

/// Fixed-width numeric types that PLAIN stores as little-endian bytes.
public protocol ParquetFixedWidth: Sendable, Equatable, Hashable {
    static var byteWidth: Int { get }
}
extension Int32: ParquetFixedWidth { public static var byteWidth: Int { 4 } }
extension Int64: ParquetFixedWidth { public static var byteWidth: Int { 8 } }
extension Float: ParquetFixedWidth { public static var byteWidth: Int { 4 } }
extension Double: ParquetFixedWidth { public static var byteWidth: Int { 8 } }
