import Foundation
import KilnCore
import KilnParquet

/// A typed value for comparisons: predicates, partition values, statistics.
public enum LakeValue: Sendable, Hashable, Comparable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case bytes([UInt8])

    /// Orders values of compatible kinds; nil when they cannot be compared (or either is null).
    public func compare(_ other: LakeValue) -> Int? {
        func sign<T: Comparable>(_ a: T, _ b: T) -> Int { a < b ? -1 : a > b ? 1 : 0 }
        switch (self, other) {
        case (.bool(let a), .bool(let b)): return sign(a ? 1 : 0, b ? 1 : 0)
        case (.int(let a), .int(let b)): return sign(a, b)
        case (.int(let a), .double(let b)): return b.isNaN ? nil : sign(Double(a), b)
        case (.double(let a), .int(let b)): return a.isNaN ? nil : sign(a, Double(b))
        case (.double(let a), .double(let b)): return a.isNaN || b.isNaN ? nil : sign(a, b)
        case (.string(let a), .string(let b)): return a == b ? 0 : Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8)) ? -1 : 1
        case (.bytes(let a), .bytes(let b)): return a == b ? 0 : a.lexicographicallyPrecedes(b) ? -1 : 1
        default: return nil
        }
    }

    public static func < (a: LakeValue, b: LakeValue) -> Bool { (a.compare(b) ?? 0) < 0 }

    /// The value of a cell of a Delta primitive type (dates as days, timestamps as µs, decimals as doubles).
    static func from(_ cell: ParquetCell, type: DeltaType) -> LakeValue {
        switch (cell, type) {
        case (.null, _): return .null
        case (.bool(let b), _): return .bool(b)
        case (.int32(let v), .decimal(_, let s)): return .double(Double(v) / pow(10, Double(s)))
        case (.int64(let v), .decimal(_, let s)): return .double(Double(v) / pow(10, Double(s)))
        case (.bytes(let b), .decimal(_, let s)): return .double(Double(decimalText(b)).map { $0 / pow(10, Double(s)) } ?? .nan)
        case (.int32(let v), _): return .int(Int64(v))
        case (.int64(let v), _): return .int(v)
        case (.float(let v), _): return .double(Double(v))
        case (.double(let v), _): return .double(v)
        case (.bytes(let b), .primitive("string")): return .string(String(decoding: b, as: UTF8.self))
        case (.bytes(let b), _): return .bytes(b)
        default: return .null
        }
    }

    static func decimalText(_ bytes: [UInt8]) -> String {
        guard let first = bytes.first else { return "0" }
        var value: Double = first & 0x80 != 0 ? -1 : 0
        for b in bytes { value = value * 256 + Double(b) }
        if first & 0x80 != 0 { value += 1 }
        return String(value)
    }

    /// A partition value (always text in the log) as a value of `type`.
    static func partition(_ text: String?, type: DeltaType) -> LakeValue {
        guard let text, !text.isEmpty, text != "__HIVE_DEFAULT_PARTITION__" else { return .null }
        return literal(text, type: type) ?? .string(text)
    }

    /// Text (a partition value, a statistic, a quoted literal) read as `type`.
    static func literal(_ text: String, type: DeltaType) -> LakeValue? {
        switch type {
        case .primitive("string"): return .string(text)
        case .primitive("boolean"): return text == "true" ? .bool(true) : text == "false" ? .bool(false) : nil
        case .primitive("long"), .primitive("integer"), .primitive("short"), .primitive("byte"): return Int64(text).map(LakeValue.int)
        case .primitive("float"), .primitive("double"), .decimal: return Double(text).map(LakeValue.double)
        case .primitive("date"): return TextValues.date(text).map(LakeValue.int)
        case .primitive("timestamp"), .primitive("timestamp_ntz"): return TextValues.timestampMicros(text).map(LakeValue.int)
        case .primitive("binary"): return .bytes(Array(text.utf8))
        default: return nil
        }
    }

    /// How the value is written into stats JSON and partition values.
    func text(type: DeltaType) -> String? {
        switch (self, type) {
        case (.null, _): return nil
        case (.bool(let b), _): return b ? "true" : "false"
        case (.int(let v), .primitive("date")): return StatsText.date(v)
        case (.int(let v), .primitive("timestamp")): return StatsText.timestamp(v, utc: true)
        case (.int(let v), .primitive("timestamp_ntz")): return StatsText.timestamp(v, utc: false)
        case (.int(let v), _): return String(v)
        case (.double(let v), _): return v.isFinite ? (v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) + ".0" : String(v)) : nil
        case (.string(let s), _): return s
        case (.bytes(let b), _): return String(decoding: b, as: UTF8.self)
        }
    }
}

enum StatsText {
    static func date(_ days: Int64) -> String {
        let (y, m, d) = TextValues.civil(days: days)
        return String(format: "%04lld-%02lld-%02lld", y, m, d)
    }

    static func timestamp(_ micros: Int64, utc: Bool) -> String {
        var seconds = micros / 1_000_000, fraction = micros % 1_000_000
        if fraction < 0 { fraction += 1_000_000; seconds -= 1 }
        var days = seconds / 86_400, second = seconds % 86_400
        if second < 0 { second += 86_400; days -= 1 }
        let clock = String(format: "%02lld:%02lld:%02lld.%06lld", second / 3600, second / 60 % 60, second % 60, fraction)
        return date(days) + (utc ? "T" + clock + "Z" : " " + clock)
    }
}

/// Per-file statistics (`add.stats`): record count, and min, max and null count of the leading columns.
public struct FileStats: Sendable, Equatable {
    public var numRecords: Int64
    public var minValues: [String: JSONValue]
    public var maxValues: [String: JSONValue]
    public var nullCount: [String: JSONValue]

    public static func parse(_ text: String?) -> FileStats? {
        guard let text, case .object(let o)? = try? JSONValue.parse(Array(text.utf8)), case .number(let n)? = o["numRecords"],
              let records = Int64(n) else { return nil }
        func object(_ k: String) -> [String: JSONValue] { if case .object(let m)? = o[k] { return m }; return [:] }
        return FileStats(numRecords: records, minValues: object("minValues"), maxValues: object("maxValues"), nullCount: object("nullCount"))
    }

    var json: String {
        var w = JSONWriter()
        w.object { w in
            w.key("numRecords"); w.value(numRecords)
            w.key("minValues"); JSONText.write(.object(minValues), into: &w)
            w.key("maxValues"); JSONText.write(.object(maxValues), into: &w)
            w.key("nullCount"); JSONText.write(.object(nullCount), into: &w)
        }
        return String(decoding: w.bytes, as: UTF8.self)
    }

    /// Statistics of a data file from its decoded columns: the first `indexedColumns` top-level primitive fields.
    static func compute(rows: Int, columns: [ColumnData], parquet: ParquetSchema, schema: DeltaSchema, indexedColumns: Int = 32) -> FileStats {
        var stats = FileStats(numRecords: Int64(rows), minValues: [:], maxValues: [:], nullCount: [:])
        for (index, node) in parquet.root.children.prefix(indexedColumns).enumerated() {
            _ = index
            guard let leaf = node.leafIndex, let field = schema.field(node.name) else { continue }
            let data = columns[leaf]
            stats.nullCount[node.name] = .number(String(data.count - data.values.count))
            guard let (lo, hi) = data.values.minMax(column: parquet.columns[leaf]) else { continue }
            let low = LakeValue.from(lo, type: field.type), high = LakeValue.from(hi, type: field.type)
            if let value = statJSON(low, type: field.type), let upper = statJSON(high, type: field.type) {
                stats.minValues[node.name] = value
                stats.maxValues[node.name] = upper
            }
        }
        return stats
    }

    static func statJSON(_ value: LakeValue, type: DeltaType) -> JSONValue? {
        switch (value, type) {
        case (.int, .primitive("date")), (.int, .primitive("timestamp")), (.int, .primitive("timestamp_ntz")): return value.text(type: type).map(JSONValue.string)
        case (.int(let v), _): return .number(String(v))
        case (.double(let v), _): return v.isFinite ? .number(String(v)) : nil
        case (.string(let s), _): return s.utf8.count <= 32 ? .string(s) : nil
        default: return nil
        }
    }

    /// The statistic of `column` as a value of `type`.
    func bound(_ values: [String: JSONValue], _ column: String, type: DeltaType) -> LakeValue? {
        switch values[column] {
        case .number(let n)?: return LakeValue.literal(n, type: type) ?? Double(n).map(LakeValue.double)
        case .string(let s)?: return LakeValue.literal(s, type: type)
        case .bool(let b)?: return .bool(b)
        default: return nil
        }
    }
}
