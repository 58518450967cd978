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
    /// Set only when the reader was asked to keep a dictionary-encoded BYTE_ARRAY chunk as codes
    /// (`readColumn(..., keepingCodes: true)`): then `values` is empty and the values are these codes' entries.
    public var dictionaryCodes: DictionaryCodes?

    public init(values: ColumnValues, definitionLevels: [UInt8]? = nil, repetitionLevels: [UInt8]? = nil, count: Int? = nil,
                dictionaryCodes: DictionaryCodes? = nil) {
        self.values = values
        self.definitionLevels = definitionLevels
        self.repetitionLevels = repetitionLevels
        self.dictionaryCodes = dictionaryCodes
        self.count = count ?? definitionLevels?.count ?? dictionaryCodes?.codes.count ?? values.count
    }

    /// The same column with its values written out (itself when it holds no codes).
    public func materialized() throws -> ColumnData {
        guard let dictionaryCodes else { return self }
        var out = ByteArrays()
        try DictionaryCodes.gather(dictionaryCodes.dictionary, dictionaryCodes.codes, into: &out)
        return ColumnData(values: .byteArray(out), definitionLevels: definitionLevels, repetitionLevels: repetitionLevels, count: count)
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

/// A dictionary-encoded BYTE_ARRAY chunk as it is stored: the dictionary and one code per non-null value (value `i`
/// is `dictionary[codes[i]]`), so a filter can be decided once per distinct value instead of once per row.
public struct DictionaryCodes: Sendable, Equatable {
    public var dictionary: ByteArrays
    public var codes: [UInt32]

    public init(dictionary: ByteArrays, codes: [UInt32]) {
        self.dictionary = dictionary
        self.codes = codes
    }

    /// Appends `dictionary[codes[k]]` for every code (each already checked against the dictionary's size).
    static func gather(_ dictionary: ByteArrays, _ codes: [UInt32], into out: inout ByteArrays) throws {
        var total = 0
        dictionary.offsets.withUnsafeBufferPointer { o in
            for index in codes { total += Int(o[Int(index) + 1] - o[Int(index)]) }
        }
        guard out.data.count + total <= Int(Int32.max) else { throw ParquetError("Column chunk holds more than 2 GiB of BYTE_ARRAY data") }
        var end = out.data.count
        out.data.append(contentsOf: repeatElement(0, count: total))
        let base = out.offsets.count
        out.offsets.append(contentsOf: repeatElement(0, count: codes.count))
        dictionary.offsets.withUnsafeBufferPointer { o in
            dictionary.data.withUnsafeBufferPointer { src in
                out.data.withUnsafeMutableBufferPointer { dst in
                    out.offsets.withUnsafeMutableBufferPointer { offsets in
                        codes.withUnsafeBufferPointer { indices in
                            for (k, index) in indices.enumerated() {
                                let start = Int(o[Int(index)]), length = Int(o[Int(index) + 1]) - start
                                if length == 1 { dst[end] = src[start] } else if length > 0 {
                                    (dst.baseAddress! + end).update(from: src.baseAddress! + start, count: length)
                                }
                                end += length
                                offsets[base + k] = Int32(end)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Fixed-width numeric types that PLAIN stores as little-endian bytes.
public protocol ParquetFixedWidth: Sendable, Equatable, Hashable {
    static var byteWidth: Int { get }
}
extension Int32: ParquetFixedWidth { public static var byteWidth: Int { 4 } }
extension Int64: ParquetFixedWidth { public static var byteWidth: Int { 8 } }
extension Float: ParquetFixedWidth { public static var byteWidth: Int { 4 } }
extension Double: ParquetFixedWidth { public static var byteWidth: Int { 8 } }

extension ColumnValues {
    /// Values `range` (indices into the non-null values).
    public func slice(_ range: Range<Int>) -> ColumnValues {
        switch self {
        case .boolean(let v): .boolean(Array(v[range]))
        case .int32(let v): .int32(Array(v[range]))
        case .int64(let v): .int64(Array(v[range]))
        case .float(let v): .float(Array(v[range]))
        case .double(let v): .double(Array(v[range]))
        case .int96(let v): .int96(FixedBytes(width: v.width, data: Array(v.data[range.lowerBound * v.width..<range.upperBound * v.width])))
        case .fixedLenByteArray(let v):
            .fixedLenByteArray(FixedBytes(width: v.width, data: Array(v.data[range.lowerBound * v.width..<range.upperBound * v.width])))
        case .byteArray(let v):
            .byteArray({
                var out = ByteArrays()
                let base = v.offsets[range.lowerBound]
                out.data = Array(v.data[Int(base)..<Int(v.offsets[range.upperBound])])
                out.offsets = v.offsets[range.lowerBound...range.upperBound].map { $0 - base }
                return out
            }())
        }
    }
}

extension ColumnData {
    /// Rows `rows` of this column (levels and values), for splitting a row group.
    public func slice(rows: Range<Int>, maxDefinitionLevel: Int) -> ColumnData {
        var slots = rows
        if let reps = repetitionLevels {
            var starts: [Int] = []
            for (slot, level) in reps.enumerated() where level == 0 { starts.append(slot) }
            starts.append(count)
            slots = starts[rows.lowerBound]..<starts[rows.upperBound]
        }
        var values = slots
        if let defs = definitionLevels {
            let max = UInt8(maxDefinitionLevel)
            let before = defs[..<slots.lowerBound].reduce(0) { $0 + ($1 == max ? 1 : 0) }
            let inside = defs[slots].reduce(0) { $0 + ($1 == max ? 1 : 0) }
            values = before..<before + inside
        }
        return ColumnData(values: self.values.slice(values),
                          definitionLevels: definitionLevels.map { Array($0[slots]) },
                          repetitionLevels: repetitionLevels.map { Array($0[slots]) },
                          count: slots.count)
    }
}

extension ValueBuilder {
    /// Appends values `range` of `values` (same physical type).
    public mutating func append(_ values: ColumnValues, range: Range<Int>) {
        guard !range.isEmpty else { return }
        switch values {
        case .boolean(let v): bools.append(contentsOf: v[range])
        case .int32(let v): ints32.append(contentsOf: v[range])
        case .int64(let v): ints64.append(contentsOf: v[range])
        case .float(let v): floats.append(contentsOf: v[range])
        case .double(let v): doubles.append(contentsOf: v[range])
        case .int96(let v), .fixedLenByteArray(let v): fixed.data.append(contentsOf: v.data[range.lowerBound * v.width..<range.upperBound * v.width])
        case .byteArray(let v):
            let base = Int32(byteArrays.data.count) - v.offsets[range.lowerBound]
            byteArrays.data.append(contentsOf: v.data[Int(v.offsets[range.lowerBound])..<Int(v.offsets[range.upperBound])])
            byteArrays.offsets.append(contentsOf: v.offsets[(range.lowerBound + 1)...range.upperBound].lazy.map { $0 + base })
        }
    }
}

extension ColumnData {
    /// The given rows, in the given order (partitioning a batch, filtering rows).
    public func take(rows: [Int], maxDefinitionLevel: Int) -> ColumnData {
        if repetitionLevels == nil { return takeFlat(rows: rows, maxDefinitionLevel: maxDefinitionLevel) }
        let maxDef = UInt8(maxDefinitionLevel)
        // Slot range and first value index of every row.
        var slotStart: [Int] = []
        if let reps = repetitionLevels {
            slotStart.reserveCapacity(reps.count + 1)
            for (slot, level) in reps.enumerated() where level == 0 { slotStart.append(slot) }
            slotStart.append(count)
        }
        var valueAt: [Int]?
        if let defs = definitionLevels {
            var index: [Int] = []
            index.reserveCapacity(defs.count + 1)
            var next = 0
            for level in defs {
                index.append(next)
                if level == maxDef { next += 1 }
            }
            index.append(next)
            valueAt = index
        }
        var out = ValueBuilder(values.physicalType, width: { if case .fixedLenByteArray(let f) = values { return f.width }; return 0 }())
        var defs: [UInt8]? = definitionLevels == nil ? nil : []
        var reps: [UInt8]? = repetitionLevels == nil ? nil : []
        var slots = 0
        for row in rows {
            let range = repetitionLevels == nil ? row..<row + 1 : slotStart[row]..<slotStart[row + 1]
            slots += range.count
            if let valueAt {
                out.append(values, range: valueAt[range.lowerBound]..<valueAt[range.upperBound])
                defs!.append(contentsOf: definitionLevels![range])
            } else {
                out.append(values, range: range)
            }
            if reps != nil { reps!.append(contentsOf: repetitionLevels![range]) }
        }
        return ColumnData(values: out.build(), definitionLevels: defs, repetitionLevels: reps, count: slots)
    }
}

extension ColumnValues {
    /// Values at `indices`, in order.
    public func gather(_ indices: [Int]) -> ColumnValues {
        switch self {
        case .boolean(let v): return .boolean(v.withUnsafeBufferPointer { b in indices.map { b[$0] } })
        case .int32(let v): return .int32(v.withUnsafeBufferPointer { b in indices.map { b[$0] } })
        case .int64(let v): return .int64(v.withUnsafeBufferPointer { b in indices.map { b[$0] } })
        case .float(let v): return .float(v.withUnsafeBufferPointer { b in indices.map { b[$0] } })
        case .double(let v): return .double(v.withUnsafeBufferPointer { b in indices.map { b[$0] } })
        case .int96(let f), .fixedLenByteArray(let f):
            var data = [UInt8]()
            data.reserveCapacity(indices.count * f.width)
            for i in indices { data.append(contentsOf: f.data[i * f.width..<(i + 1) * f.width]) }
            let out = FixedBytes(width: f.width, data: data)
            if case .int96 = self { return .int96(out) }
            return .fixedLenByteArray(out)
        case .byteArray(let v):
            var out = ByteArrays()
            var total = 0
            v.offsets.withUnsafeBufferPointer { o in for i in indices { total += Int(o[i + 1] - o[i]) } }
            out.data = [UInt8](unsafeUninitializedCapacity: total) { buffer, count in
                v.offsets.withUnsafeBufferPointer { o in
                    v.data.withUnsafeBufferPointer { src in
                        var at = 0
                        for i in indices {
                            let start = Int(o[i]), length = Int(o[i + 1]) - start
                            if length > 0 { (buffer.baseAddress! + at).update(from: src.baseAddress! + start, count: length) }
                            at += length
                        }
                    }
                }
                count = total
            }
            var offsets = [Int32]()
            offsets.reserveCapacity(indices.count + 1)
            offsets.append(0)
            var at: Int32 = 0
            v.offsets.withUnsafeBufferPointer { o in
                for i in indices {
                    at += o[i + 1] - o[i]
                    offsets.append(at)
                }
            }
            out.offsets = offsets
            return .byteArray(out)
        }
    }
}

extension ColumnData {
    /// `take(rows:)` for columns without repetition: one typed gather.
    func takeFlat(rows: [Int], maxDefinitionLevel: Int) -> ColumnData {
        guard let defs = definitionLevels else { return ColumnData(values: values.gather(rows), count: rows.count) }
        let maxDef = UInt8(maxDefinitionLevel)
        if values.count == defs.count {
            // An optional column without nulls (the common case): slot i holds value i.
            return ColumnData(values: values.gather(rows), definitionLevels: [UInt8](repeating: maxDef, count: rows.count), count: rows.count)
        }
        var valueIndex = [Int](repeating: -1, count: defs.count)
        var next = 0
        for (slot, level) in defs.enumerated() where level == maxDef {
            valueIndex[slot] = next
            next += 1
        }
        var present: [Int] = []
        present.reserveCapacity(rows.count)
        var levels: [UInt8] = []
        levels.reserveCapacity(rows.count)
        for row in rows {
            levels.append(defs[row])
            if valueIndex[row] >= 0 { present.append(valueIndex[row]) }
        }
        return ColumnData(values: values.gather(present), definitionLevels: levels, count: rows.count)
    }
}

extension ColumnData {
    /// Joins the columns of consecutive row groups (or batches) of one leaf into one.
    public static func concatenate(_ parts: [ColumnData], maxDefinitionLevel: Int) -> ColumnData {
        guard parts.count > 1 else { return parts[0] }
        var out = ValueBuilder(parts[0].values.physicalType, width: { if case .fixedLenByteArray(let f) = parts[0].values { return f.width }; return 0 }())
        var defs: [UInt8]? = parts.contains { $0.definitionLevels != nil } ? [] : nil
        var reps: [UInt8]? = parts[0].repetitionLevels == nil ? nil : []
        var count = 0
        for part in parts {
            out.append(part.values, range: 0..<part.values.count)
            // A part without levels has every value present: its levels are all at the maximum.
            if defs != nil { defs! += part.definitionLevels ?? [UInt8](repeating: UInt8(maxDefinitionLevel), count: part.count) }
            if reps != nil { reps! += part.repetitionLevels ?? [] }
            count += part.count
        }
        return ColumnData(values: out.build(), definitionLevels: defs, repetitionLevels: reps, count: count)
    }
}
