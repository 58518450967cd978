import Foundation
import KilnCore
import KilnParquet

/// A column's logical type. Integers of every width are held as `Int64`, floats as `Double`, dates as days since
/// 1970-01-01 and timestamps as microseconds since the epoch (UTC); decimals are held as `Double` for now. Arrays,
/// maps and structs are held as their canonical JSON text (`NestedText`): carried, compared and grouped whole.
/// (The whole enum is `indirect`: payload-free cases stay unboxed. Marking only the recursive cases crashed the test
/// process in an incremental build — probably stale objects of modules that inline `Value`/`Column` layouts, as a
/// later crash showed — so try it again only with a clean build and a full test run.)
public indirect enum FrameType: Sendable, Hashable, CustomStringConvertible {
    case bool, int8, int16, int32, int64, float32, float64, string, binary, date, timestamp
    case decimal(precision: Int, scale: Int)
    case array(FrameType)
    case map(FrameType, FrameType)
    case structure([FrameField])

    public var isInteger: Bool { [.int8, .int16, .int32, .int64].contains(self) }
    /// A DECIMAL of more than 15 digits: its values need `Column.unscaled` to be exact.
    public var isWideDecimal: Bool {
        if case .decimal(let p, _) = self { return p > 15 }
        return false
    }

    /// An array, map or struct.
    public var isNested: Bool {
        switch self {
        case .array, .map, .structure: true
        default: false
        }
    }
    public var isNumeric: Bool {
        switch self {
        case .int8, .int16, .int32, .int64, .float32, .float64, .decimal: true
        default: false
        }
    }

    /// SQL spelling: BIGINT, DOUBLE, DECIMAL(10,2)...
    public var description: String {
        switch self {
        case .bool: "BOOLEAN"
        case .int8: "TINYINT"
        case .int16: "SMALLINT"
        case .int32: "INT"
        case .int64: "BIGINT"
        case .float32: "FLOAT"
        case .float64: "DOUBLE"
        case .string: "STRING"
        case .binary: "BINARY"
        case .date: "DATE"
        case .timestamp: "TIMESTAMP"
        case .decimal(let p, let s): "DECIMAL(\(p),\(s))"
        case .array(let element): "ARRAY<\(element)>"
        case .map(let k, let v): "MAP<\(k), \(v)>"
        case .structure(let fields): "STRUCT<" + fields.map { "\($0.name): \($0.type)" }.joined(separator: ", ") + ">"
        }
    }

    /// How values of this type are stored.
    var storage: StorageKind {
        switch self {
        case .bool: .bool
        case .int8, .int16, .int32, .int64, .date, .timestamp: .int
        case .float32, .float64, .decimal: .double
        case .string, .binary, .array, .map, .structure: .bytes
        }
    }

    enum StorageKind { case bool, int, double, bytes }
}

/// A named field of a struct type.
public struct FrameField: Sendable, Hashable {
    public var name: String
    public var type: FrameType
    public init(name: String, type: FrameType) {
        self.name = name
        self.type = type
    }
}

/// Variable-length values (strings, binary): Arrow-style offsets into one byte buffer.
public struct ByteColumn: Sendable, Equatable {
    public var offsets: [Int] = [0]
    public var data: [UInt8] = []

    public init() {}

    public var count: Int { offsets.count - 1 }
    public subscript(i: Int) -> ArraySlice<UInt8> { data[offsets[i]..<offsets[i + 1]] }
    public func string(_ i: Int) -> String { String(decoding: self[i], as: UTF8.self) }

    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        data.append(contentsOf: bytes)
        offsets.append(data.count)
    }

    public mutating func append(_ string: String) { append(string.utf8) }

    /// `test` of each value's bytes, read in place (a pointer to the first byte, nil for an empty value, and the
    /// length): the loop of the string kernels (comparisons, IN, LIKE).
    func mask(_ test: (UnsafePointer<UInt8>?, Int) -> Bool) -> [Bool] {
        let n = count
        return [Bool](unsafeUninitializedCapacity: n) { out, initialized in
            offsets.withUnsafeBufferPointer { o in
                data.withUnsafeBufferPointer { d in
                    for i in 0..<n {
                        let start = o[i], length = o[i + 1] - start
                        out[i] = test(length == 0 ? nil : d.baseAddress! + start, length)
                    }
                }
            }
            initialized = n
        }
    }

    func gather(_ rows: [Int]) -> ByteColumn {
        var out = ByteColumn()
        offsets.withUnsafeBufferPointer { o in
            var total = 0
            for r in rows { total += o[r + 1] - o[r] }
            out.offsets = [Int](unsafeUninitializedCapacity: rows.count + 1) { dst, initialized in
                var end = 0
                dst[0] = 0
                for (k, r) in rows.enumerated() {
                    end += o[r + 1] - o[r]
                    dst[k + 1] = end
                }
                initialized = rows.count + 1
            }
            out.data = [UInt8](unsafeUninitializedCapacity: total) { dst, initialized in
                data.withUnsafeBufferPointer { src in
                    var end = 0
                    for r in rows {
                        let start = o[r], length = o[r + 1] - start
                        if length == 1 { dst[end] = src[start] } else if length > 0 {
                            (dst.baseAddress! + end).update(from: src.baseAddress! + start, count: length)
                        }
                        end += length
                    }
                }
                initialized = total
            }
        }
        return out
    }
}

/// The values of a column, by storage kind.
public enum FrameValues: Sendable, Equatable {
    case bool([Bool])
    case int([Int64])
    case double([Double])
    case bytes(ByteColumn)

    public var count: Int {
        switch self {
        case .bool(let v): v.count
        case .int(let v): v.count
        case .double(let v): v.count
        case .bytes(let v): v.count
        }
    }
}

/// One column of a frame: a type, a value per row (a placeholder where null) and validity (nil: no nulls).
public struct Column: Sendable, Equatable {
    public var type: FrameType {
        get { storedType }
        set {
            if newValue != storedType { unscaled = nil }
            storedType = newValue
        }
    }
    public var values: FrameValues {
        get { storedValues }
        set {
            storedValues = newValue
            unscaled = nil
        }
    }
    var storedType: FrameType
    var storedValues: FrameValues
    public var validity: [Bool]?
    /// For a DECIMAL wider than a double holds exactly (more than 15 digits), each row's exact unscaled integer, read
    /// from the file and carried wherever rows only move (take, concatenate, filter), so such values are written back
    /// and shown unchanged. Computed columns have none: their doubles are the values. Dropped whenever `values` is set
    /// or `type` changes, so a computed column never carries stale exact values.
    public var unscaled: [Int128]?

    public init(type: FrameType, values: FrameValues, validity: [Bool]? = nil, unscaled: [Int128]? = nil) {
        storedType = type
        storedValues = values
        self.validity = validity.flatMap { v in v.contains(false) ? v : nil }
        self.unscaled = type.isWideDecimal && unscaled?.count == values.count ? unscaled : nil
    }

    public var count: Int { values.count }
    public func isNull(_ i: Int) -> Bool { validity.map { !$0[i] } ?? false }

    /// A column of `count` nulls.
    public static func nulls(_ type: FrameType, count: Int) -> Column {
        var column = Column(type: type, values: .empty(type, count: count))
        column.validity = [Bool](repeating: false, count: count)
        if type.isWideDecimal { column.unscaled = [Int128](repeating: 0, count: count) }
        return column
    }

    /// Whether rows `a` and `b` hold the same value (two nulls are the same), without making values.
    public func sameValue(_ a: Int, _ b: Int) -> Bool {
        let na = isNull(a), nb = isNull(b)
        if na || nb { return na == nb }
        switch values {
        case .bool(let v): return v[a] == v[b]
        case .int(let v): return v[a] == v[b]
        case .double(let v): return v[a] == v[b] || (v[a].isNaN && v[b].isNaN)
        case .bytes(let v): return v[a].elementsEqual(v[b])
        }
    }

    /// The value at `i` as a scalar.
    public func value(_ i: Int) -> Value {
        if isNull(i) { return .null }
        switch values {
        case .bool(let v): return .bool(v[i])
        case .int(let v): return type == .date ? .date(v[i]) : type == .timestamp ? .timestamp(v[i]) : .int(v[i])
        case .double(let v):
            if let unscaled, case .decimal(_, let s) = type { return .decimal(unscaled[i], scale: s) }
            return .double(v[i])
        case .bytes(let v): return type == .binary ? .bytes(Array(v[i])) : type.isNested ? .nested(v.string(i), type) : .string(v.string(i))
        }
    }

    /// The value at `i` for output: like `value(i)`, but every DECIMAL as `.decimal` with its scale (a narrow one's
    /// double is exact to its 15 digits), so it is shown as the table holds it (`1.50`, not `1.5`).
    public func exactValue(_ i: Int) -> Value {
        guard case .decimal(_, let s) = type, unscaled == nil, !isNull(i), case .double(let v) = values,
              let u = Int128(exactly: (v[i] * pow(10, Double(s))).rounded()) else { return value(i) }
        return .decimal(u, scale: s)
    }

    /// Rows `rows`, in order.
    public func take(_ rows: [Int]) -> Column {
        let taken: FrameValues
        switch values {
        case .bool(let v): taken = .bool(v.withUnsafeBufferPointer { b in convert(rows) { b[$0] } })
        case .int(let v): taken = .int(v.withUnsafeBufferPointer { b in convert(rows) { b[$0] } })
        case .double(let v): taken = .double(v.withUnsafeBufferPointer { b in convert(rows) { b[$0] } })
        case .bytes(let v): taken = .bytes(v.gather(rows))
        }
        return Column(type: type, values: taken, validity: validity.map { v in v.withUnsafeBufferPointer { b in convert(rows) { b[$0] } } },
                      unscaled: unscaled.map { u in u.withUnsafeBufferPointer { b in convert(rows) { b[$0] } } })
    }

    /// `take` where -1 means a null row (outer joins).
    public func take(optional rows: [Int]) -> Column {
        guard rows.contains(-1) else { return take(rows) }
        let safe = rows.map { max($0, 0) }
        var column = count == 0 ? Column.nulls(type, count: rows.count) : take(safe)
        var valid = column.validity ?? [Bool](repeating: true, count: rows.count)
        for (i, r) in rows.enumerated() where r < 0 { valid[i] = false }
        column.validity = valid.contains(false) ? valid : nil
        if column.unscaled == nil, type.isWideDecimal, unscaled != nil { column.unscaled = [Int128](repeating: 0, count: rows.count) }
        return column
    }

    /// Columns of the same type one after another.
    public static func concatenate(_ parts: [Column]) -> Column {
        guard let first = parts.first else { return Column(type: .int64, values: .int([])) }
        if parts.count == 1 { return first }
        // One allocation of the final size per buffer, filled by copies (a growing array copies and faults in its
        // pages again at every doubling).
        let total = parts.reduce(0) { $0 + $1.count }
        func joined<T>(_ pick: (FrameValues) -> [T]?) -> [T] {
            var out: [T] = []
            out.reserveCapacity(total)
            for part in parts { if let v = pick(part.values) { out.append(contentsOf: v) } }
            return out
        }
        let values: FrameValues
        switch first.values {
        case .bool: values = .bool(joined { if case .bool(let v) = $0 { return v }; return nil })
        case .int: values = .int(joined { if case .int(let v) = $0 { return v }; return nil })
        case .double: values = .double(joined { if case .double(let v) = $0 { return v }; return nil })
        case .bytes:
            var out = ByteColumn()
            out.data.reserveCapacity(parts.reduce(0) { if case .bytes(let v) = $1.values { return $0 + v.data.count }; return $0 })
            out.offsets.reserveCapacity(total + 1)
            for part in parts {
                guard case .bytes(let v) = part.values else { continue }
                let base = out.data.count
                out.data.append(contentsOf: v.data)
                for o in v.offsets.dropFirst() { out.offsets.append(o + base) }
            }
            values = .bytes(out)
        }
        var validity: [Bool]?
        if parts.contains(where: { $0.validity != nil }) {
            var out: [Bool] = []
            out.reserveCapacity(total)
            for part in parts {
                if let v = part.validity { out.append(contentsOf: v) } else { out.append(contentsOf: repeatElement(true, count: part.count)) }
            }
            validity = out
        }
        // Exact decimals survive only when every part has them (a computed part's doubles are its values).
        var unscaled: [Int128]?
        if first.type.isWideDecimal, parts.allSatisfy({ $0.unscaled != nil || $0.count == 0 }) { unscaled = parts.flatMap { $0.unscaled ?? [] } }
        return Column(type: first.type, values: values, validity: validity, unscaled: unscaled)
    }

    /// A column built from scalars (nulls allowed), stored as `type`.
    public static func from(_ scalars: [Value], type: FrameType) -> Column {
        var valid = [Bool](repeating: true, count: scalars.count)
        let values: FrameValues
        switch type.storage {
        case .bool: values = .bool(scalars.enumerated().map { i, v in if case .bool(let b) = v { return b }; valid[i] = false; return false })
        case .int: values = .int(scalars.enumerated().map { i, v in if let n = v.int { return n }; valid[i] = false; return 0 })
        case .double:
            values = .double(scalars.enumerated().map { i, v in if let d = v.double { return d }; valid[i] = false; return 0 })
            if type.isWideDecimal, case .decimal(_, let scale) = type {
                let exact = scalars.map { v -> Int128? in
                    switch v {
                    case .null: 0
                    case .decimal(let u, let s): DecimalText.rescale(u, from: s, to: scale)
                    default: nil
                    }
                }
                if !exact.contains(nil) { return Column(type: type, values: values, validity: valid, unscaled: exact.map { $0! }) }
            }
        case .bytes:
            var out = ByteColumn()
            for (i, v) in scalars.enumerated() {
                switch v {
                case .string(let s), .nested(let s, _): out.append(s)
                case .bytes(let b): out.append(b)
                case .null: out.append([UInt8]()); valid[i] = false
                default: out.append(v.text)
                }
            }
            values = .bytes(out)
        }
        return Column(type: type, values: values, validity: valid)
    }
}

extension FrameValues {
    static func empty(_ type: FrameType, count: Int) -> FrameValues {
        switch type.storage {
        case .bool: .bool([Bool](repeating: false, count: count))
        case .int: .int([Int64](repeating: 0, count: count))
        case .double: .double([Double](repeating: 0, count: count))
        case .bytes:
            { var b = ByteColumn(); b.offsets = [Int](repeating: 0, count: count + 1); return .bytes(b) }()
        }
    }
}

/// A scalar: literals, aggregate results, rendered cells.
public enum Value: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    /// Days since 1970-01-01.
    case date(Int64)
    /// Microseconds since the epoch, UTC.
    case timestamp(Int64)
    /// An array, map or struct as its canonical JSON text (`NestedText`), and its type.
    case nested(String, FrameType)
    /// A wide DECIMAL exactly: its unscaled integer and scale (`Column.unscaled`); narrower ones are `.double`s.
    case decimal(Int128, scale: Int)

    public var int: Int64? {
        switch self {
        case .int(let n), .date(let n), .timestamp(let n): n
        case .double(let d): d.isFinite ? Int64(exactly: d.rounded(.towardZero)) : nil
        case .decimal: double.flatMap { Int64(exactly: $0.rounded(.towardZero)) }
        case .bool(let b): b ? 1 : 0
        default: nil
        }
    }

    public var double: Double? {
        switch self {
        case .int(let n): Double(n)
        case .double(let d): d
        case .decimal(let u, let s): Double(u) / pow(10, Double(s))
        default: nil
        }
    }

    /// Text as SQL's CAST(... AS STRING) gives it.
    public var text: String {
        switch self {
        case .null: "NULL"
        case .bool(let b): b ? "true" : "false"
        case .int(let n): String(n)
        case .double(let d): Value.format(d)
        case .string(let s), .nested(let s, _): s
        case .decimal(let u, let s): DecimalText.text(unscaled: u, scale: s)
        case .bytes(let b): Hex.encode(b)
        case .date(let d): Dates.text(days: d)
        case .timestamp(let t): Dates.text(micros: t)
        }
    }

    static func format(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
        if d == d.rounded(), abs(d) < 1e15 { return String(format: "%.1f", d) }
        return "\(d)"
    }
}

/// Civil dates and timestamps from and to text.
public enum Dates {
    public static func days(year: Int64, month: Int64, day: Int64) -> Int64 { TextValues.days(year: year, month: month, day: day) }

    public static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) { TextValues.civil(days: days) }

    public static func text(days: Int64) -> String {
        let c = civil(days: days)
        return String(format: "%04lld-%02lld-%02lld", c.year, c.month, c.day)
    }

    public static func text(micros: Int64) -> String {
        let perDay: Int64 = 86_400_000_000
        let day = micros >= 0 ? micros / perDay : -((-micros + perDay - 1) / perDay)
        let rest = micros - day * perDay
        let seconds = rest / 1_000_000, fraction = rest % 1_000_000
        var out = text(days: day) + String(format: " %02lld:%02lld:%02lld", seconds / 3600, seconds / 60 % 60, seconds % 60)
        if fraction != 0 { out += String(format: ".%06lld", fraction) }
        return out
    }

    /// `YYYY-M[M]-D[D]` (anything after a space or `T` ignored, as CAST(... AS DATE) does) → days; nil when it is not
    /// a real date. Parsing is KilnParquet's (`TextValues.date`); only the one-digit month/day leniency is added.
    public static func parseDate(_ text: String) -> Int64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let end = trimmed.firstIndex { $0 == " " || $0 == "T" } ?? trimmed.endIndex
        return TextValues.date(padded(String(trimmed[..<end])))
    }

    /// `YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]][Z|±HH:MM]` → microseconds (UTC), by `TextValues.timestampMicros`.
    public static func parseTimestamp(_ text: String) -> Int64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let end = trimmed.firstIndex { $0 == " " || $0 == "T" } ?? trimmed.endIndex
        return TextValues.timestampMicros(padded(String(trimmed[..<end])) + trimmed[end...])
    }

    /// `2024-1-5` → `2024-01-05`.
    static func padded(_ date: String) -> String {
        let parts = date.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return date }
        return [String(parts[0]), parts[1].count == 1 ? "0" + parts[1] : String(parts[1]),
                parts[2].count == 1 ? "0" + parts[2] : String(parts[2])].joined(separator: "-")
    }
}
