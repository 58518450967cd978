import Foundation

/// A literal to compare column statistics with.
public enum ParquetScalar: Sendable, Equatable {
    case int(Int64)
    case double(Double)
    case bytes([UInt8])
    case bool(Bool)

    public static func string(_ s: String) -> ParquetScalar { .bytes(Array(s.utf8)) }
}

/// `column <op> value`, used to skip row groups whose min/max rule it out.
public struct ColumnPredicate: Sendable, Equatable {
    public enum Operator: String, Sendable, CaseIterable { case lt = "<", le = "<=", eq = "=", ge = ">=", gt = ">" }

    public var column: String
    public var op: Operator
    public var value: ParquetScalar

    public init(_ column: String, _ op: Operator, _ value: ParquetScalar) {
        self.column = column
        self.op = op
        self.value = value
    }

    /// Parses `name <op> literal` (`x >= 5`, `name = 'abc'`, `score < 0.5`).
    public static func parse(_ text: String) throws -> ColumnPredicate {
        for op in [Operator.le, .ge, .lt, .gt, .eq] {
            guard let range = text.range(of: op.rawValue) else { continue }
            let name = text[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
            var literal = text[range.upperBound...].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, !literal.isEmpty else { break }
            if literal.count >= 2, literal.hasPrefix("'"), literal.hasSuffix("'") {
                literal = String(literal.dropFirst().dropLast())
                return ColumnPredicate(name, op, .string(literal))
            }
            if let int = Int64(literal) { return ColumnPredicate(name, op, .int(int)) }
            if let double = Double(literal) { return ColumnPredicate(name, op, .double(double)) }
            if literal == "true" || literal == "false" { return ColumnPredicate(name, op, .bool(literal == "true")) }
            throw ParquetError("Cannot read the literal in '\(text)': quote strings ('abc'); numbers and true/false as they are")
        }
        throw ParquetError("Cannot read the filter '\(text)'; write it as column <op> value with <, <=, =, >=, >")
    }

    /// Whether one value satisfies the predicate (null never does).
    public func matches(_ cell: ParquetCell) -> Bool {
        func test(_ c: Int) -> Bool {
            switch op {
            case .lt: c < 0
            case .le: c <= 0
            case .eq: c == 0
            case .ge: c >= 0
            case .gt: c > 0
            }
        }
        func sign<T: Comparable>(_ a: T, _ b: T) -> Int { a < b ? -1 : a > b ? 1 : 0 }
        switch (cell, value) {
        case (.int32(let a), .int(let b)): return test(sign(Int64(a), b))
        case (.int64(let a), .int(let b)): return test(sign(a, b))
        case (.int32(let a), .double(let b)): return test(sign(Double(a), b))
        case (.int64(let a), .double(let b)): return test(sign(Double(a), b))
        case (.float(let a), .double(let b)): return !a.isNaN && test(sign(Double(a), b))
        case (.float(let a), .int(let b)): return !a.isNaN && test(sign(Double(a), Double(b)))
        case (.double(let a), .double(let b)): return !a.isNaN && test(sign(a, b))
        case (.double(let a), .int(let b)): return !a.isNaN && test(sign(a, Double(b)))
        case (.bytes(let a), .bytes(let b)): return test(a.lexicographicallyPrecedes(b) ? -1 : b.lexicographicallyPrecedes(a) ? 1 : 0)
        case (.bool(let a), .bool(let b)): return test(sign(a ? 1 : 0, b ? 1 : 0))
        default: return false
        }
    }

    /// False only when the chunk's statistics prove no row can match.
    func mayMatch(_ chunk: ColumnChunkMetaData, column: ColumnDescriptor, rows: Int64) -> Bool {
        guard let stats = chunk.statistics else { return true }
        if let nulls = stats.nullCount, nulls >= chunk.numValues, chunk.numValues > 0, column.maxRepetitionLevel == 0 { return false }
        guard let min = stats.min, let max = stats.max,
              let lower = compare(min, column: column), let upper = compare(max, column: column) else { return true }
        // lower = sign(min - value), upper = sign(max - value)
        switch op {
        case .lt: return lower < 0
        case .le: return lower <= 0
        case .eq: return lower <= 0 && upper >= 0
        case .ge: return upper >= 0
        case .gt: return upper > 0
        }
    }

    /// Compares a PLAIN-encoded statistic with the literal: negative, zero or positive; nil when not comparable.
    func compare(_ stat: [UInt8], column: ColumnDescriptor) -> Int? {
        func sign<T: Comparable>(_ a: T, _ b: T) -> Int { a < b ? -1 : a > b ? 1 : 0 }
        var unsigned = false
        if case .integer(_, false)? = column.element.logicalType { unsigned = true }
        switch (column.element.physicalType, value) {
        case (.int32?, .int(let v)) where stat.count == 4:
            let raw = UInt32(littleEndianBytes: stat)
            return unsigned ? sign(Int64(raw), v) : sign(Int64(Int32(bitPattern: raw)), v)
        case (.int64?, .int(let v)) where stat.count == 8:
            let raw = UInt64(littleEndianBytes: stat)
            if unsigned { return v < 0 ? 1 : sign(raw, UInt64(v)) }
            return sign(Int64(bitPattern: raw), v)
        case (.int32?, .double(let v)) where stat.count == 4 && !unsigned:
            return sign(Double(Int32(bitPattern: UInt32(littleEndianBytes: stat))), v)
        case (.int64?, .double(let v)) where stat.count == 8 && !unsigned:
            return sign(Double(Int64(bitPattern: UInt64(littleEndianBytes: stat))), v)
        case (.float?, .double(let v)) where stat.count == 4:
            let f = Float(bitPattern: UInt32(littleEndianBytes: stat))
            return f.isNaN ? nil : sign(Double(f), v)
        case (.float?, .int(let v)) where stat.count == 4:
            let f = Float(bitPattern: UInt32(littleEndianBytes: stat))
            return f.isNaN ? nil : sign(Double(f), Double(v))
        case (.double?, .double(let v)) where stat.count == 8:
            let d = Double(bitPattern: UInt64(littleEndianBytes: stat))
            return d.isNaN ? nil : sign(d, v)
        case (.double?, .int(let v)) where stat.count == 8:
            let d = Double(bitPattern: UInt64(littleEndianBytes: stat))
            return d.isNaN ? nil : sign(d, Double(v))
        case (.byteArray?, .bytes(let v)), (.fixedLenByteArray?, .bytes(let v)):
            guard column.element.logicalType == .string || column.element.logicalType == nil || column.element.logicalType == .enumeration else { return nil }
            return stat.lexicographicallyPrecedes(v) ? -1 : v.lexicographicallyPrecedes(stat) ? 1 : 0
        case (.boolean?, .bool(let v)) where stat.count == 1:
            return sign(stat[0] == 1 ? 1 : 0, v ? 1 : 0)
        default:
            return nil
        }
    }
}

extension FixedWidthInteger {
    init(littleEndianBytes bytes: [UInt8]) {
        var value: Self = 0
        for (i, byte) in bytes.prefix(MemoryLayout<Self>.size).enumerated() { value |= Self(byte) << (8 * i) }
        self = value
    }
}

extension ColumnValues {
    /// The smallest and largest value in the column's sort order (NaN ignored), as cells; nil when there are none
    /// or the type has no defined order here (INT96, FIXED_LEN_BYTE_ARRAY, DECIMAL byte arrays).
    public func minMax(column: ColumnDescriptor) -> (ParquetCell, ParquetCell)? {
        guard let (lo, hi) = Bounds.of(self, column: column) else { return nil }
        func cell(_ bytes: [UInt8]) -> ParquetCell {
            switch self {
            case .boolean: .bool(bytes.first == 1)
            case .int32: .int32(Int32(bitPattern: UInt32(littleEndianBytes: bytes)))
            case .int64: .int64(Int64(bitPattern: UInt64(littleEndianBytes: bytes)))
            case .float: .float(Float(bitPattern: UInt32(littleEndianBytes: bytes)))
            case .double: .double(Double(bitPattern: UInt64(littleEndianBytes: bytes)))
            case .byteArray, .fixedLenByteArray, .int96: .bytes(bytes)
            }
        }
        return (cell(lo), cell(hi))
    }
}
