import Foundation
import KilnCore
import KilnParquet

/// A column as a predicate sees it: decoded typed values, or one value for every row (a partition column, or a
/// column missing from an older file).
enum PredicateInput {
    case data(ColumnData, ColumnDescriptor, DeltaType)
    case constant(LakeValue, DeltaType)

    var type: DeltaType {
        switch self {
        case .data(_, _, let t), .constant(_, let t): t
        }
    }
}

/// Three-valued results per row: 0 false, 1 true, 2 unknown (NULL).
typealias Mask = [UInt8]

extension LakePredicate {
    /// Evaluates the predicate over `rows` rows at once, straight on the typed buffers.
    func mask(rows: Int, _ input: (String) -> PredicateInput?) throws -> Mask {
        switch self {
        case .constant(let b):
            return Mask(repeating: b ? 1 : 0, count: rows)
        case .column(let c):
            guard let column = input(c.lowercased()) else { return Mask(repeating: 2, count: rows) }
            return Self.orders(column, .bool(true), rows: rows).map { $0 == 2 ? 2 : ($0 == 0 ? 1 : 0) }
        case .isNull(let c, let negated):
            guard let column = input(c.lowercased()) else { return Mask(repeating: negated ? 0 : 1, count: rows) }
            let nulls = Self.nulls(column, rows: rows)
            return nulls.map { ($0 == 1) != negated ? 1 : 0 }
        case .comparison(let c, let op, let literal):
            guard let column = input(c.lowercased()), let value = Self.value(literal, type: column.type), value != .null else {
                return Mask(repeating: 2, count: rows)
            }
            // Orders become truth values in place: 0xFF (less), 0 (equal), 1 (greater), 2 (null) → 0, 1 or 2.
            var mask = Self.orders(column, value, rows: rows)
            let less: UInt8 = op.holds(-1) ? 1 : 0, equal: UInt8 = op.holds(0) ? 1 : 0, greater: UInt8 = op.holds(1) ? 1 : 0
            mask.withUnsafeMutableBufferPointer { m in
                for i in m.indices {
                    let o = m[i]
                    m[i] = o == 0 ? equal : o == 1 ? greater : o == 2 ? 2 : less
                }
            }
            return mask
        case .inList(let c, let literals, let negated):
            var out = Mask(repeating: 0, count: rows)
            for literal in literals {
                let eq = try LakePredicate.comparison(c, .eq, literal).mask(rows: rows, input)
                out = Self.or(out, eq)
            }
            return negated ? Self.not(out) : out
        case .and(let a, let b):
            var x = try a.mask(rows: rows, input)
            guard x.contains(where: { $0 != 0 }) else { return x }  // all false: the right side cannot change that
            let y = try b.mask(rows: rows, input)
            x.withUnsafeMutableBufferPointer { p in
                y.withUnsafeBufferPointer { q in
                    for i in p.indices { p[i] = p[i] == 0 || q[i] == 0 ? 0 : (p[i] & q[i] == 1 ? 1 : 2) }
                }
            }
            return x
        case .or(let a, let b):
            let x = try a.mask(rows: rows, input)
            guard x.contains(where: { $0 != 1 }) else { return x }  // all true
            return Self.or(x, try b.mask(rows: rows, input))
        case .not(let a):
            return Self.not(try a.mask(rows: rows, input))
        }
    }

    static func or(_ x: Mask, _ y: Mask) -> Mask {
        var out = x
        out.withUnsafeMutableBufferPointer { p in
            y.withUnsafeBufferPointer { q in
                for i in p.indices { p[i] = p[i] == 1 || q[i] == 1 ? 1 : (p[i] | q[i] == 0 ? 0 : 2) }
            }
        }
        return out
    }
    static func not(_ x: Mask) -> Mask { x.map { $0 == 2 ? 2 : 1 - $0 } }

    /// 1 where the row is null.
    static func nulls(_ input: PredicateInput, rows: Int) -> Mask {
        switch input {
        case .constant(let v, _): return Mask(repeating: v == .null ? 1 : 0, count: rows)
        case .data(let data, let column, _):
            guard let defs = data.definitionLevels else { return Mask(repeating: 0, count: rows) }
            let maxDef = UInt8(column.maxDefinitionLevel)
            return defs.map { $0 == maxDef ? 0 : 1 }
        }
    }

    /// Per row: the sign of (value − literal) as a bit pattern of Int8, or 2 for null / not comparable.
    static func orders(_ input: PredicateInput, _ literal: LakeValue, rows: Int) -> [UInt8] {
        func code(_ order: Int?) -> UInt8 { order.map { UInt8(bitPattern: Int8($0)) } ?? 2 }
        switch input {
        case .constant(let v, _):
            return [UInt8](repeating: code(v.compare(literal)), count: rows)
        case .data(let data, let column, let type):
            var dense: [UInt8]
            switch (data.values, type, literal) {
            case (.int64(let v), .primitive, .int(let l)):
                dense = v.map { $0 < l ? 0xFF : $0 > l ? 1 : 0 }
            case (.int32(let v), .primitive, .int(let l)):
                dense = v.map { Int64($0) < l ? 0xFF : Int64($0) > l ? 1 : 0 }
            case (.double(let v), .primitive, _):
                guard let target = literal.asDouble else { return [UInt8](repeating: 2, count: rows) }
                dense = v.map { $0 < target ? 0xFF : $0 > target ? 1 : $0 == target ? 0 : 2 }  // NaN: 2
            case (.float(let v), .primitive, _):
                guard let target = literal.asDouble else { return [UInt8](repeating: 2, count: rows) }
                dense = v.map { Double($0) < target ? 0xFF : Double($0) > target ? 1 : Double($0) == target ? 0 : 2 }
            case (.byteArray(let v), .primitive("string"), .string(let l)):
                let target = Array(l.utf8)
                dense = [UInt8](repeating: 2, count: v.count)
                target.withUnsafeBufferPointer { t in
                    v.data.withUnsafeBufferPointer { d in
                        v.offsets.withUnsafeBufferPointer { o in
                            for i in 0..<v.count {
                                let start = Int(o[i]), length = Int(o[i + 1]) - start
                                let common = min(length, t.count)
                                var c: Int32 = 0
                                if common > 16 {
                                    c = memcmp(d.baseAddress! + start, t.baseAddress!, common)
                                } else {
                                    // Short values (most keys and categories): no call per row.
                                    var k = 0
                                    while k < common, d[start &+ k] == t[k] { k &+= 1 }
                                    if k < common { c = d[start &+ k] < t[k] ? -1 : 1 }
                                }
                                if c == 0 { c = length < t.count ? -1 : length > t.count ? 1 : 0 }
                                dense[i] = c < 0 ? 0xFF : c > 0 ? 1 : 0
                            }
                        }
                    }
                }
            default:
                // Decimals, binary, booleans, mixed kinds: through typed values.
                let values = (try? DeltaTable.values(data, column: column, type: type)) ?? []
                return values.count == rows ? values.map { code($0.compare(literal)) } : [UInt8](repeating: 2, count: rows)
            }
            guard let defs = data.definitionLevels else { return dense }
            let maxDef = UInt8(column.maxDefinitionLevel)
            var out = [UInt8](repeating: 2, count: rows)
            var next = 0
            for (row, level) in defs.enumerated() where level == maxDef {
                out[row] = dense[next]
                next += 1
            }
            return out
        }
    }
}

extension LakeValue {
    var asDouble: Double? {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        default: nil
        }
    }
}

extension DeltaType {
    var isDecimal: Bool { if case .decimal = self { return true }; return false }
}
