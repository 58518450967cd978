import Foundation
import KilnCore

/// Vectorized arithmetic, comparison and logic with SQL null semantics.
enum Operators {
    /// The type values of several types meet in (CASE branches, UNION columns, IN lists).
    /// The type of a value chosen from `columns` (COALESCE, IF, CASE): the common type of the columns that hold a
    /// value; when none does (no rows, or only nulls), of those that are not strings, since a NULL literal
    /// evaluates to a string column — so `abs(coalesce(x, 0))` stays a number on an empty or all-null input.
    static func resultType(_ columns: [Column]) -> FrameType {
        let typed = columns.filter { !$0.allNull }
        if !typed.isEmpty { return commonType(typed.map(\.type)) }
        let nonText = columns.filter { $0.type != .string }
        return commonType((nonText.isEmpty ? columns : nonText).map(\.type))
    }

    static func commonType(_ types: [FrameType]) -> FrameType {
        guard var result = types.first else { return .string }
        for t in types.dropFirst() where t != result {
            if result.isInteger && t.isInteger {
                result = .int64
            } else if result.isNumeric && t.isNumeric {
                if case .decimal = result, case .decimal = t { result = .decimal(precision: 38, scale: max(result.scale, t.scale)) }
                else if (result.isInteger || t.isInteger), case .decimal = (result.isInteger ? t : result) { result = result.isInteger ? t : result }
                else { result = .float64 }
            } else if (result == .date && t == .timestamp) || (result == .timestamp && t == .date) {
                result = .timestamp
            } else {
                result = .string
            }
        }
        return result
    }

    static func validity(_ a: Column, _ b: Column) -> [Bool]? {
        switch (a.validity, b.validity) {
        case (nil, nil): return nil
        case (let x?, nil): return x
        case (nil, let y?): return y
        case (let x?, let y?): return map2(x, y) { $0 && $1 }
        }
    }

    /// Brings a string operand to the other side's temporal type (`d >= '2024-01-01'`).
    static func align(_ a: Column, _ b: Column) throws -> (Column, Column) {
        if (a.type == .date || a.type == .timestamp), b.type == .string { return (a, try b.cast(to: a.type)) }
        if (b.type == .date || b.type == .timestamp), a.type == .string { return (try a.cast(to: b.type), b) }
        if a.type == .date, b.type == .timestamp { return (try a.cast(to: .timestamp), b) }
        if a.type == .timestamp, b.type == .date { return (a, try b.cast(to: .timestamp)) }
        if a.type.storage == .bytes, b.type.isNumeric { return (try a.cast(to: .float64), b) }
        if b.type.storage == .bytes, a.type.isNumeric { return (a, try b.cast(to: .float64)) }
        if a.type == .bool, b.type.storage != .bool { return (a, try b.cast(to: .bool)) }
        if b.type == .bool, a.type.storage != .bool { return (try a.cast(to: .bool), b) }
        return (a, b)
    }

    static func binary(_ op: String, _ left: Column, _ right: Column) throws -> Column {
        let (a, b) = try align(left, right)
        switch op {
        case "+", "-", "*", "/", "%", "DIV": return try arithmetic(op, a, b)
        case "||": return try Functions.call("concat", [a, b], rows: a.count)
        case "=", "==", "!=", "<>", "<", "<=", ">", ">=", "<=>": return try compare(op, a, b)
        default: throw KilnError.invalid("Unknown operator \(op)")
        }
    }

    static func arithmetic(_ op: String, _ a: Column, _ b: Column) throws -> Column {
        guard a.type.isNumeric || a.type == .date, b.type.isNumeric else {
            if a.type == .date, b.type == .date, op == "-" {
                // date - date: days between.
                guard case .int(let x) = a.values, case .int(let y) = b.values else { throw KilnError.invalid("Bad dates") }
                return Column(type: .int32, values: .int(zip(x, y).map { $0 - $1 }), validity: validity(a, b))
            }
            throw KilnError.invalid("Cannot apply \(op) to \(a.type) and \(b.type)")
        }
        var valid = validity(a, b)
        if a.type == .date {
            guard op == "+" || op == "-", case .int(let d) = a.values, case .int(let k) = try b.cast(to: .int64).values else {
                throw KilnError.invalid("A date can only be added to or subtracted from days")
            }
            return Column(type: .date, values: .int(zip(d, k).map { op == "+" ? $0 + $1 : $0 - $1 }), validity: valid)
        }
        let bothInt = a.type.isInteger && b.type.isInteger
        if bothInt && op != "/" {
            guard case .int(let x) = a.values, case .int(let y) = b.values else { throw KilnError.invalid("Bad integers") }
            var out: [Int64]
            switch op {
            case "+": out = map2(x, y) { $0 &+ $1 }
            case "-": out = map2(x, y) { $0 &- $1 }
            case "*": out = map2(x, y) { $0 &* $1 }
            default:
                out = [Int64](repeating: 0, count: x.count)
                // % and DIV by zero are null.
                var v = valid ?? [Bool](repeating: true, count: x.count)
                for i in out.indices {
                    if y[i] == 0 { v[i] = false; continue }
                    out[i] = op == "%" ? x[i] % y[i] : x[i] / y[i]
                }
                valid = v
            }
            return Column(type: a.type == .int64 || b.type == .int64 ? .int64 : max(a.type, b.type), values: .int(out), validity: valid)
        }
        let x = try doubles(a), y = try doubles(b)
        var out: [Double]
        switch op {
        case "+": out = map2(x, y, +)
        case "-": out = map2(x, y, -)
        case "*": out = map2(x, y, *)
        case "/", "%", "DIV":
            out = [Double](repeating: 0, count: x.count)
            // Division by zero is null, as in Spark.
            var v = valid ?? [Bool](repeating: true, count: x.count)
            for i in out.indices {
                if y[i] == 0 { v[i] = false; continue }
                out[i] = op == "/" ? x[i] / y[i] : op == "%" ? x[i].truncatingRemainder(dividingBy: y[i]) : (x[i] / y[i]).rounded(.towardZero)
            }
            valid = v
            if op == "DIV" { return Column(type: .int64, values: .int(out.map { Int64($0) }), validity: valid) }
        default: throw KilnError.invalid("Unknown operator \(op)")
        }
        var type = FrameType.float64
        if case .decimal = a.type, b.type != .float64, b.type != .float32 { type = a.type }
        if case .decimal = b.type, a.type != .float64, a.type != .float32 { type = b.type }
        if op == "/", type != .float64 { type = .decimal(precision: 38, scale: 6) }
        return Column(type: type, values: .double(out), validity: valid)
    }

    static func doubles(_ c: Column) throws -> [Double] {
        switch c.values {
        case .double(let v): return v
        case .int(let v): return convert(v) { Double($0) }
        case .bool(let v): return convert(v) { $0 ? 1 : 0 }
        case .bytes: throw KilnError.invalid("Expected a number, got a \(c.type)")
        }
    }

    static func compare(_ op: String, _ a: Column, _ b: Column) throws -> Column {
        let n = a.count
        var out = [Bool](repeating: false, count: n)
        func apply(_ c: (Int) -> Int?) {
            switch op {
            case "=", "==", "<=>": for i in 0..<n { out[i] = c(i) == 0 }
            case "!=", "<>": for i in 0..<n { out[i] = c(i).map { $0 != 0 } ?? false }
            case "<": for i in 0..<n { out[i] = c(i).map { $0 < 0 } ?? false }
            case "<=": for i in 0..<n { out[i] = c(i).map { $0 <= 0 } ?? false }
            case ">": for i in 0..<n { out[i] = c(i).map { $0 > 0 } ?? false }
            default: for i in 0..<n { out[i] = c(i).map { $0 >= 0 } ?? false }
            }
        }
        switch (a.values, b.values) {
        case (.int(let x), .int(let y)):
            compareArrays(op, x, y, &out)
        case (.bool(let x), .bool(let y)):
            apply { x[$0] == y[$0] ? 0 : (!x[$0] ? -1 : 1) }
        case (.bytes(let x), .bytes(let y)):
            apply { i in
                let l = x[i], r = y[i]
                return l == r ? 0 : l.lexicographicallyPrecedes(r) ? -1 : 1
            }
        default:
            compareArrays(op, try doubles(a), try doubles(b), &out)
        }
        if op == "<=>" {
            // Null-safe equality: two nulls are equal, one null is not; never null itself.
            for i in 0..<n {
                let na = a.isNull(i), nb = b.isNull(i)
                if na || nb { out[i] = na && nb }
            }
            return Column(type: .bool, values: .bool(out))
        }
        return Column(type: .bool, values: .bool(out), validity: validity(a, b))
    }

    /// `out[i] = x[i] op y[i]` in one tight loop per operator.
    static func compareArrays<T: Comparable>(_ op: String, _ x: [T], _ y: [T], _ out: inout [Bool]) {
        switch op {
        case "=", "==", "<=>": out = map2(x, y, ==)
        case "!=", "<>": out = map2(x, y, !=)
        case "<": out = map2(x, y, <)
        case "<=": out = map2(x, y, <=)
        case ">": out = map2(x, y, >)
        default: out = map2(x, y, >=)
        }
    }

    /// `column op literal` (or `literal op column`) where the answer is exactly what `binary` would give with the
    /// literal broadcast: comparisons of integers, dates and timestamps with a literal of the same kind, comparisons
    /// and `+ - *` of floating/decimal columns with a number. Nil when the fast path does not apply.
    /// Each string against `x` by `op` (`=`, `!=`, `<`, ...), byte-wise (UTF-8 order is code point order), in place.
    static func compareBytes(_ b: ByteColumn, _ x: [UInt8], _ op: String) -> [Bool] {
        let want: (Int) -> Bool
        switch op {
        case "=", "==": want = { $0 == 0 }
        case "!=", "<>": want = { $0 != 0 }
        case "<": want = { $0 < 0 }
        case "<=": want = { $0 <= 0 }
        case ">": want = { $0 > 0 }
        default: want = { $0 >= 0 }
        }
        let equalityOnly = op == "=" || op == "==" || op == "!=" || op == "<>"
        return x.withUnsafeBufferPointer { l in
            let k = l.count
            return b.mask { value, length in
                if equalityOnly && length != k { return want(1) }
                let common = min(length, k)
                var c = common == 0 ? 0 : Int(memcmp(value!, l.baseAddress!, common))
                if c == 0 { c = length - k }
                return want(c)
            }
        }
    }

    static func scalar(_ op: String, _ column: Column, _ literal: Value, literalOnRight: Bool) -> Column? {
        let comparisons: Set<String> = ["=", "==", "!=", "<>", "<", "<=", ">", ">="]
        let flipped = ["<": ">", "<=": ">=", ">": "<", ">=": "<="]
        if comparisons.contains(op) {
            let o = literalOnRight ? op : flipped[op] ?? op
            func compare<T: Comparable>(_ v: [T], _ x: T) -> [Bool] {
                switch o {
                case "=", "==": return convert(v) { $0 == x }
                case "!=", "<>": return convert(v) { $0 != x }
                case "<": return convert(v) { $0 < x }
                case "<=": return convert(v) { $0 <= x }
                case ">": return convert(v) { $0 > x }
                default: return convert(v) { $0 >= x }
                }
            }
            switch (column.values, literal) {
            case (.int(let v), .int(let x)) where column.type.isInteger,
                 (.int(let v), .date(let x)) where column.type == .date,
                 (.int(let v), .timestamp(let x)) where column.type == .timestamp:
                return Column(type: .bool, values: .bool(compare(v, x)), validity: column.validity)
            case (.double(let v), .double(let x)):
                return Column(type: .bool, values: .bool(compare(v, x)), validity: column.validity)
            case (.double(let v), .int(let x)):
                return Column(type: .bool, values: .bool(compare(v, Double(x))), validity: column.validity)
            case (.bytes(let b), .string(let x)) where column.type == .string:
                return Column(type: .bool, values: .bool(compareBytes(b, Array(x.utf8), o)), validity: column.validity)
            default: return nil
            }
        }
        guard ["+", "-", "*"].contains(op), case .double(let v) = column.values, column.type.isNumeric else { return nil }
        let x: Double
        switch literal {
        case .double(let d): x = d
        case .int(let i): x = Double(i)
        default: return nil
        }
        // The result type as `arithmetic` gives it with the literal broadcast.
        let lit = Column.broadcast(literal, count: 0), empty = Column(type: column.type, values: .double([]))
        guard let type = try? (literalOnRight ? arithmetic(op, empty, lit) : arithmetic(op, lit, empty)).type else { return nil }
        let out: [Double]
        switch op {
        case "+": out = convert(v) { $0 + x }
        case "*": out = convert(v) { $0 * x }
        default: out = literalOnRight ? convert(v) { $0 - x } : convert(v) { x - $0 }
        }
        return Column(type: type, values: .double(out), validity: column.validity)
    }

    /// `zip(x, y).map(f)` as one tight loop into uninitialized storage (vectorizable; no per-element bookkeeping).
    @inline(__always)
    static func map2<A, B, T>(_ x: [A], _ y: [B], _ f: (A, B) -> T) -> [T] {
        let n = Swift.min(x.count, y.count)
        return [T](unsafeUninitializedCapacity: n) { out, initialized in
            x.withUnsafeBufferPointer { x in
                y.withUnsafeBufferPointer { y in
                    for i in 0..<n { (out.baseAddress! + i).initialize(to: f(x[i], y[i])) }
                }
            }
            initialized = n
        }
    }

    /// AND / OR with three-valued logic: false AND null = false, true OR null = true.
    static func logical(_ op: String, _ left: Column, _ right: Column) throws -> Column {
        let a = try left.asBool(), b = try right.asBool()
        guard case .bool(let x) = a.values, case .bool(let y) = b.values else { throw KilnError.invalid("Expected booleans") }
        let n = x.count
        if a.validity == nil, b.validity == nil {
            // Branch-free on the bytes of the flags (a Bool is stored as 0 or 1).
            let and = op == "AND"
            let out = [Bool](unsafeUninitializedCapacity: n) { out, initialized in
                x.withUnsafeBytes { x in
                    y.withUnsafeBytes { y in
                        let o = UnsafeMutableRawBufferPointer(out)
                        for i in 0..<n { o[i] = and ? x[i] & y[i] : x[i] | y[i] }
                    }
                }
                initialized = n
            }
            return Column(type: .bool, values: .bool(out))
        }
        var out = [Bool](repeating: false, count: n)
        var valid = [Bool](repeating: true, count: n)
        for i in 0..<n {
            let na = a.isNull(i), nb = b.isNull(i)
            if op == "AND" {
                if (!na && !x[i]) || (!nb && !y[i]) { out[i] = false } else if na || nb { valid[i] = false } else { out[i] = true }
            } else {
                if (!na && x[i]) || (!nb && y[i]) { out[i] = true } else if na || nb { valid[i] = false } else { out[i] = false }
            }
        }
        return Column(type: .bool, values: .bool(out), validity: valid)
    }
}

extension FrameType {
    /// The type values of several types meet in (UNION columns, CASE branches).
    public static func common(_ types: [FrameType]) -> FrameType { Operators.commonType(types) }
}

extension FrameType: Comparable {
    var rank: Int {
        switch self {
        case .int8: 1
        case .int16: 2
        case .int32: 3
        case .int64: 4
        default: 5
        }
    }

    var scale: Int { if case .decimal(_, let s) = self { return s }; return 0 }

    public static func < (a: FrameType, b: FrameType) -> Bool { a.rank < b.rank }
}
