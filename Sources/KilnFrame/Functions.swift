import Foundation
import KilnCore

/// Scalar SQL functions (Spark names), applied to whole columns.
enum Functions {
    static let names: Set<String> = ["abs", "round", "floor", "ceil", "ceiling", "sqrt", "exp", "ln", "log", "log10", "log2", "pow", "power",
                                     "sign", "signum", "mod", "upper", "ucase", "lower", "lcase", "length", "char_length", "substring",
                                     "substr", "concat", "trim", "ltrim", "rtrim", "replace", "startswith", "endswith", "starts_with", "ends_with", "contains",
                                     "coalesce", "ifnull", "nvl", "nullif", "if", "iff", "greatest", "least", "year", "month", "day",
                                     "dayofmonth", "quarter", "dayofweek", "hour", "minute", "second", "date_add", "date_sub", "datediff",
                                     "add_months", "to_date", "to_timestamp", "current_date", "current_timestamp", "now", "date_trunc",
                                     "isnull", "isnotnull", "nanvl", "lpad", "rpad", "reverse", "instr", "left", "right", "cast_string",
                                     "get_json_object"]

    static func call(_ name: String, _ args: [Column], rows n: Int) throws -> Column {
        func arity(_ counts: ClosedRange<Int>) throws {
            guard counts.contains(args.count) else {
                throw KilnError.invalid("\(name.uppercased()) takes \(counts.lowerBound == counts.upperBound ? "\(counts.lowerBound)" : "\(counts.lowerBound) to \(counts.upperBound)") arguments, got \(args.count)")
            }
        }
        func math(_ f: (Double) -> Double) throws -> Column {
            try arity(1...1)
            let x = try Operators.doubles(args[0])
            var valid = args[0].validity ?? [Bool](repeating: true, count: n)
            let out = x.enumerated().map { i, v -> Double in
                let r = f(v)
                if r.isNaN && !v.isNaN { valid[i] = false }
                return r
            }
            return Column(type: .float64, values: .double(out), validity: valid)
        }
        func strings(_ f: (String) -> String) throws -> Column {
            try arity(1...1)
            let s = try args[0].cast(to: .string)
            guard case .bytes(let b) = s.values else { throw KilnError.invalid("\(name) needs a string") }
            var out = ByteColumn()
            for i in 0..<n { out.append(f(b.string(i))) }
            return Column(type: .string, values: .bytes(out), validity: s.validity)
        }
        /// `strings(f)`, with an in-place byte map when every value is ASCII (the common case).
        func ascii(_ map: (UInt8) -> UInt8, else f: (String) -> String) throws -> Column {
            try arity(1...1)
            let s = try args[0].cast(to: .string)
            guard case .bytes(var b) = s.values else { throw KilnError.invalid("\(name) needs a string") }
            guard !b.data.contains(where: { $0 >= 0x80 }) else { return try strings(f) }
            b.data = b.data.map(map)
            return Column(type: .string, values: .bytes(b), validity: s.validity)
        }
        func perRow(_ type: FrameType, _ f: ([Value]) throws -> Value) throws -> Column {
            var out: [Value] = []
            out.reserveCapacity(n)
            for i in 0..<n { out.append(try f(args.map { $0.value(i) })) }
            return Column.from(out, type: type)
        }
        func dateParts(_ f: (Int64, Int64) -> Int64) throws -> Column {
            // f(days, micros of day)
            try arity(1...1)
            var c = args[0]
            if c.type == .string { c = try c.cast(to: .timestamp) }
            guard case .int(let v) = c.values, c.type == .date || c.type == .timestamp else { throw KilnError.invalid("\(name.uppercased()) needs a date or timestamp") }
            let perDay: Int64 = 86_400_000_000
            let out = v.map { x -> Int64 in
                if c.type == .date { return f(x, 0) }
                let day = x >= 0 ? x / perDay : -((-x + perDay - 1) / perDay)
                return f(day, x - day * perDay)
            }
            return Column(type: .int32, values: .int(out), validity: c.validity)
        }
        switch name {
        case "abs":
            try arity(1...1)
            switch args[0].values {
            case .int(let v): return Column(type: args[0].type, values: .int(v.map { $0 == .min ? $0 : abs($0) }), validity: args[0].validity)
            default: var c = try math { abs($0) }; c.type = args[0].type == .float32 ? .float64 : args[0].type.isNumeric ? args[0].type : .float64; return c
            }
        case "round":
            try arity(1...2)
            let digits = args.count == 2 ? Int(args[1].value(0).int ?? 0) : 0
            if args[0].type.isInteger, digits >= 0 { return args[0] }
            let scale = pow(10, Double(digits))
            var c = try call("abs", [args[0]], rows: n)
            // HALF_UP, as Spark rounds.
            let x = try Operators.doubles(args[0])
            c.values = .double(x.map { v in
                let scaled = v * scale
                let r = (abs(scaled) + 0.5 + 1e-9 * abs(scaled)).rounded(.down)
                return (scaled < 0 ? -r : r) / scale
            })
            c.type = args[0].type.isInteger ? .float64 : args[0].type
            if case .decimal(let p, _) = args[0].type { c.type = .decimal(precision: p, scale: max(0, digits)) }
            return c
        case "floor", "ceil", "ceiling":
            try arity(1...1)
            if args[0].type.isInteger { return args[0] }
            let x = try Operators.doubles(args[0])
            return Column(type: .int64, values: .int(x.map { Int64(name == "floor" ? $0.rounded(.down) : $0.rounded(.up)) }), validity: args[0].validity)
        case "sqrt": return try math { $0 < 0 ? .nan : $0.squareRoot() }
        case "exp": return try math { Foundation.exp($0) }
        case "ln": return try math { $0 <= 0 ? .nan : Foundation.log($0) }
        case "log10": return try math { $0 <= 0 ? .nan : Foundation.log10($0) }
        case "log2": return try math { $0 <= 0 ? .nan : Foundation.log2($0) }
        case "log":
            if args.count == 1 { return try call("ln", args, rows: n) }
            try arity(2...2)
            return try perRow(.float64) { v in
                guard let b = v[0].double, let x = v[1].double, b > 0, x > 0, b != 1 else { return .null }
                return .double(Foundation.log(x) / Foundation.log(b))
            }
        case "pow", "power":
            try arity(2...2)
            let x = try Operators.doubles(args[0]), y = try Operators.doubles(args[1])
            return Column(type: .float64, values: .double(zip(x, y).map { Foundation.pow($0, $1) }), validity: Operators.validity(args[0], args[1]))
        case "sign", "signum": return try math { $0 > 0 ? 1 : $0 < 0 ? -1 : 0 }
        case "mod": try arity(2...2); return try Operators.binary("%", args[0], args[1])
        case "upper", "ucase": return try ascii({ $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 }, else: { $0.uppercased() })
        case "lower", "lcase": return try ascii({ $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, else: { $0.lowercased() })
        case "trim": return try strings { $0.trimmingCharacters(in: .whitespaces) }
        case "ltrim": return try strings { String($0.drop { $0 == " " }) }
        case "rtrim": return try strings { var s = $0; while s.last == " " { s.removeLast() }; return s }
        case "reverse": return try strings { String($0.reversed()) }
        case "length", "char_length":
            try arity(1...1)
            let s = try args[0].cast(to: .string)
            guard case .bytes(let b) = s.values else { throw KilnError.invalid("length needs a string") }
            if !b.data.contains(where: { $0 >= 0x80 }) {
                return Column(type: .int32, values: .int((0..<n).map { Int64(b.offsets[$0 + 1] - b.offsets[$0]) }), validity: s.validity)
            }
            return Column(type: .int32, values: .int((0..<n).map { Int64(b.string($0).count) }), validity: s.validity)
        case "substring", "substr", "left", "right":
            try arity(name == "left" || name == "right" ? 2...2 : 2...3)
            if let sliced = Self.asciiSubstring(name, args, rows: n) { return sliced }
            return try perRow(.string) { v in
                guard case .string(let s) = v[0].castText, let p = v[1].int else { return .null }
                let chars = Array(s)
                if name == "left" { return .string(String(chars.prefix(max(0, Int(p))))) }
                if name == "right" { return .string(String(chars.suffix(max(0, Int(p))))) }
                // 1-based; 0 acts as 1; negative counts from the end.
                var start = p > 0 ? Int(p) - 1 : p == 0 ? 0 : max(0, chars.count + Int(p))
                start = min(start, chars.count)
                var length = chars.count - start
                if v.count == 3 {
                    guard let l = v[2].int else { return .null }
                    length = min(length, max(0, Int(l)))
                }
                return .string(String(chars[start..<start + length]))
            }
        case "concat":
            var out = ByteColumn()
            let parts = try args.map { try $0.cast(to: .string) }
            var valid = [Bool](repeating: true, count: n)
            for i in 0..<n {
                var bytes: [UInt8] = []
                for p in parts {
                    if p.isNull(i) { valid[i] = false; break }
                    if case .bytes(let b) = p.values { bytes += b[i] }
                }
                out.append(valid[i] ? bytes : [])
            }
            return Column(type: .string, values: .bytes(out), validity: valid)
        case "replace":
            try arity(2...3)
            return try perRow(.string) { v in
                guard case .string(let s) = v[0].castText, case .string(let a) = v[1].castText else { return .null }
                let b: String
                if v.count == 3 { guard case .string(let r) = v[2].castText else { return .null }; b = r } else { b = "" }
                return .string(a.isEmpty ? s : s.replacingOccurrences(of: a, with: b))
            }
        case "get_json_object":
            // Spark's: the value at a `$.a.b[0]` path of a JSON text; strings unquoted, objects and arrays as JSON.
            try arity(2...2)
            return try perRow(.string) { v in
                guard case .string(let text) = v[0].castText, case .string(let path) = v[1].castText,
                      let steps = Self.jsonPath(path), var node = try? JSONValue.parse(Array(text.utf8)) else { return .null }
                for step in steps {
                    switch (step, node) {
                    case (.key(let k), .object(let o)): guard let next = o[k] else { return .null }; node = next
                    case (.index(let i), .array(let a)): guard i < a.count else { return .null }; node = a[i]
                    default: return .null
                    }
                }
                switch node {
                case .null: return .null
                case .string(let s): return .string(s)
                case .number(let n): return .string(n)
                case .bool(let b): return .string(b ? "true" : "false")
                case .array, .object: return .string(node.json)
                }
            }
        case "starts_with": return try call("startswith", args, rows: n)
        case "ends_with": return try call("endswith", args, rows: n)
        case "startswith", "endswith", "contains", "instr":
            try arity(2...2)
            return try perRow(name == "instr" ? .int32 : .bool) { v in
                guard case .string(let s) = v[0].castText, case .string(let p) = v[1].castText else { return .null }
                switch name {
                case "startswith": return .bool(s.hasPrefix(p))
                case "endswith": return .bool(s.hasSuffix(p))
                case "contains": return .bool(p.isEmpty || s.contains(p))
                default:
                    guard let r = s.range(of: p) else { return .int(0) }
                    return .int(Int64(s.distance(from: s.startIndex, to: r.lowerBound) + 1))
                }
            }
        case "lpad", "rpad":
            try arity(2...3)
            return try perRow(.string) { v in
                guard case .string(let s) = v[0].castText, let l = v[1].int else { return .null }
                var pad = " "
                if v.count == 3 { guard case .string(let p) = v[2].castText else { return .null }; pad = p }
                let length = max(0, Int(l))
                if s.count >= length || pad.isEmpty { return .string(String(s.prefix(length))) }
                let fill = String(String(repeating: pad, count: length / pad.count + 1).prefix(length - s.count))
                return .string(name == "lpad" ? fill + s : s + fill)
            }
        case "coalesce", "ifnull", "nvl":
            guard !args.isEmpty else { throw KilnError.invalid("COALESCE needs arguments") }
            let type = Operators.resultType(args)
            let cast = try args.map { try $0.cast(to: type) }
            var out = cast[0]
            for next in cast.dropFirst() {
                let rows = (0..<n).filter { out.isNull($0) && !next.isNull($0) }
                out = out.replacing(rows, from: next)
            }
            return out
        case "nullif":
            try arity(2...2)
            let eq = try Operators.binary("=", args[0], args[1])
            guard case .bool(let bits) = eq.values else { return args[0] }
            var valid = args[0].validity ?? [Bool](repeating: true, count: n)
            for i in 0..<n where bits[i] && !eq.isNull(i) { valid[i] = false }
            var out = args[0]
            out.validity = valid.contains(false) ? valid : nil
            return out
        case "if", "iff":
            try arity(3...3)
            let type = Operators.resultType(Array(args[1...]))
            let cond = try args[0].asBool()
            guard case .bool(let bits) = cond.values else { throw KilnError.invalid("IF needs a condition") }
            let rows = (0..<n).filter { bits[$0] && !cond.isNull($0) }
            return try args[2].cast(to: type).replacing(rows, from: try args[1].cast(to: type))
        case "greatest", "least":
            guard !args.isEmpty else { throw KilnError.invalid("\(name.uppercased()) needs arguments") }
            let type = Operators.commonType(args.map(\.type))
            var out = try args[0].cast(to: type)
            for next in try args.dropFirst().map({ try $0.cast(to: type) }) {
                let better = try Operators.compare(name == "greatest" ? ">" : "<", next, out)
                guard case .bool(let bits) = better.values else { continue }
                out = out.replacing((0..<n).filter { !next.isNull($0) && (out.isNull($0) || bits[$0]) }, from: next)
            }
            return out
        case "isnull", "isnotnull":
            try arity(1...1)
            return Column(type: .bool, values: .bool((0..<n).map { args[0].isNull($0) == (name == "isnull") }))
        case "nanvl":
            try arity(2...2)
            let x = try Operators.doubles(args[0])
            return try args[0].cast(to: .float64).replacing((0..<n).filter { x[$0].isNaN }, from: try args[1].cast(to: .float64))
        case "year": return try dateParts { d, _ in Dates.civil(days: d).year }
        case "month": return try dateParts { d, _ in Dates.civil(days: d).month }
        case "day", "dayofmonth": return try dateParts { d, _ in Dates.civil(days: d).day }
        case "quarter": return try dateParts { d, _ in (Dates.civil(days: d).month - 1) / 3 + 1 }
        case "dayofweek": return try dateParts { d, _ in ((d + 4) % 7 + 7) % 7 + 1 }  // 1 = Sunday
        case "hour": return try dateParts { _, m in m / 3_600_000_000 }
        case "minute": return try dateParts { _, m in m / 60_000_000 % 60 }
        case "second": return try dateParts { _, m in m / 1_000_000 % 60 }
        case "to_date":
            try arity(1...1)
            return try args[0].cast(to: .date)
        case "to_timestamp":
            try arity(1...1)
            return try args[0].cast(to: .timestamp)
        case "date_add", "date_sub":
            try arity(2...2)
            let days = try args[1].cast(to: .int64)
            return try addInterval(args[0], 0, unit: "day", perRow: name == "date_add" ? days : try Operators.arithmetic("*", days, Column.broadcast(.int(-1), count: n)))
        case "add_months":
            try arity(2...2)
            return try addInterval(args[0], 0, unit: "month", perRow: try args[1].cast(to: .int64))
        case "datediff":
            try arity(2...2)
            let a = try args[0].cast(to: .date), b = try args[1].cast(to: .date)
            guard case .int(let x) = a.values, case .int(let y) = b.values else { throw KilnError.invalid("DATEDIFF needs dates") }
            return Column(type: .int32, values: .int(zip(x, y).map { $0 - $1 }), validity: Operators.validity(a, b))
        case "current_date":
            let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
            return Column.broadcast(.date(now / 86_400_000_000), count: n)
        case "current_timestamp", "now":
            return Column.broadcast(.timestamp(Int64(Date().timeIntervalSince1970 * 1_000_000)), count: n)
        case "date_trunc":
            try arity(2...2)
            guard case .string(let unit) = args[0].value(0) else { throw KilnError.invalid("DATE_TRUNC needs a unit such as 'MONTH'") }
            let t = try args[1].cast(to: .timestamp)
            guard case .int(let v) = t.values else { throw KilnError.invalid("DATE_TRUNC needs a timestamp") }
            let perDay: Int64 = 86_400_000_000
            let out = try v.map { x -> Int64 in
                let day = x >= 0 ? x / perDay : -((-x + perDay - 1) / perDay)
                let c = Dates.civil(days: day)
                switch unit.lowercased() {
                case "year", "yyyy", "yy": return Dates.days(year: c.year, month: 1, day: 1) * perDay
                case "quarter": return Dates.days(year: c.year, month: (c.month - 1) / 3 * 3 + 1, day: 1) * perDay
                case "month", "mon", "mm": return Dates.days(year: c.year, month: c.month, day: 1) * perDay
                case "week": return (day - ((day + 3) % 7 + 7) % 7) * perDay
                case "day", "dd": return day * perDay
                case "hour": return x - (x - day * perDay) % 3_600_000_000
                case "minute": return x - (x - day * perDay) % 60_000_000
                case "second": return x - (x - day * perDay) % 1_000_000
                default: throw KilnError.invalid("DATE_TRUNC does not know the unit '\(unit)'")
                }
            }
            return Column(type: .timestamp, values: .int(out), validity: t.validity)
        default:
            throw KilnError.invalid("Unknown function \(name.uppercased())")
        }
    }

    /// date ± interval: days, or months/years with the day clamped to the month's end (as Spark's add_months).
    static func addInterval(_ column: Column, _ amount: Int64, unit: String, perRow: Column? = nil) throws -> Column {
        var c = column
        if c.type == .string { c = try c.cast(to: .date) }
        guard case .int(let v) = c.values, c.type == .date || c.type == .timestamp else {
            throw KilnError.invalid("An interval can only be added to a date or timestamp, not a \(column.type)")
        }
        var amounts = [Int64](repeating: amount, count: v.count)
        var valid = c.validity
        if let perRow {
            guard case .int(let k) = perRow.values else { throw KilnError.invalid("Expected a number of days or months") }
            amounts = k
            valid = Operators.validity(c, perRow)
        }
        let perDay: Int64 = 86_400_000_000
        let u = unit.lowercased().hasSuffix("s") ? String(unit.lowercased().dropLast()) : unit.lowercased()
        let out: [Int64] = try zip(v, amounts).map { x, k in
            let day = c.type == .date ? x : (x >= 0 ? x / perDay : -((-x + perDay - 1) / perDay))
            let rest = c.type == .date ? 0 : x - day * perDay
            var newDay: Int64
            switch u {
            case "day": newDay = day + k
            case "week": newDay = day + 7 * k
            case "month", "year":
                let months = u == "year" ? 12 * k : k
                let civil = Dates.civil(days: day)
                let total = civil.year * 12 + (civil.month - 1) + months
                let year = total >= 0 ? total / 12 : (total - 11) / 12
                let month = total - year * 12 + 1
                let next = month == 12 ? Dates.days(year: year + 1, month: 1, day: 1) : Dates.days(year: year, month: month + 1, day: 1)
                let lastDay = next - Dates.days(year: year, month: month, day: 1)
                newDay = Dates.days(year: year, month: month, day: min(civil.day, lastDay))
            case "hour", "minute", "second":
                guard c.type == .timestamp else { throw KilnError.invalid("A date has no \(u)s; cast it to a timestamp first") }
                let scale: Int64 = u == "hour" ? 3_600_000_000 : u == "minute" ? 60_000_000 : 1_000_000
                return x + k * scale
            default: throw KilnError.invalid("Unknown interval unit '\(unit)'")
            }
            return c.type == .date ? newDay : newDay * perDay + rest
        }
        return Column(type: c.type, values: .int(out), validity: valid)
    }
}

extension Value {
    /// The value as text for string functions (null stays null).
    var castText: Value {
        switch self {
        case .null: .null
        case .string: self
        default: .string(text)
        }
    }
}

extension Functions {
    enum JSONStep { case key(String), index(Int) }

    /// `$.a.b[2]` as steps; nil when it is not such a path.
    static func jsonPath(_ path: String) -> [JSONStep]? {
        guard path.hasPrefix("$") else { return nil }
        var steps: [JSONStep] = []
        var rest = Substring(path.dropFirst())
        while !rest.isEmpty {
            if rest.hasPrefix(".") {
                rest = rest.dropFirst()
                let name = rest.prefix { $0 != "." && $0 != "[" }
                guard !name.isEmpty else { return nil }
                steps.append(.key(String(name)))
                rest = rest.dropFirst(name.count)
            } else if rest.hasPrefix("[") {
                guard let close = rest.firstIndex(of: "]") else { return nil }
                let inside = rest[rest.index(after: rest.startIndex)..<close]
                if let i = Int(inside) { steps.append(.index(i)) }
                else if inside.hasPrefix("'"), inside.hasSuffix("'"), inside.count >= 2 { steps.append(.key(String(inside.dropFirst().dropLast()))) }
                else { return nil }
                rest = rest[rest.index(after: close)...]
            } else {
                return nil
            }
        }
        return steps
    }
}

extension Expr {
    /// Whether `name` is one of Kiln's built-in scalar, aggregate or window functions (user functions cannot shadow
    /// them when called unqualified).
    public static func isBuiltinFunction(_ name: String) -> Bool {
        let lower = name.lowercased()
        return Functions.names.contains(lower) || Window.ranking.contains(lower) || Window.offsets.contains(lower) || Window.aggregates.contains(lower)
    }
}

extension Functions {
    /// SUBSTRING/LEFT/RIGHT of an all-ASCII string column with integer positions, sliced as bytes (one character is
    /// one byte there); nil for anything else (the general path counts characters).
    static func asciiSubstring(_ name: String, _ args: [Column], rows n: Int) -> Column? {
        guard args[0].type == .string, case .bytes(let b) = args[0].values, !b.data.contains(where: { $0 >= 0x80 }),
              args[1].type.isInteger, case .int(let positions) = args[1].values else { return nil }
        var lengths: [Int64]?
        if args.count == 3 {
            guard args[2].type.isInteger, case .int(let l) = args[2].values else { return nil }
            lengths = l
        }
        let validities = args.compactMap(\.validity)
        let valid: [Bool]? = validities.isEmpty ? nil : (0..<n).map { i in validities.allSatisfy { $0[i] } }
        var out = ByteColumn()
        out.offsets = [Int](repeating: 0, count: n + 1)
        out.data = [UInt8](repeating: 0, count: b.data.count)  // a slice is never longer than its value
        var end = 0
        out.offsets.withUnsafeMutableBufferPointer { offsets in
            out.data.withUnsafeMutableBufferPointer { data in
                b.offsets.withUnsafeBufferPointer { o in
                    b.data.withUnsafeBufferPointer { d in
                        for i in 0..<n {
                            defer { offsets[i + 1] = end }
                            if let valid, !valid[i] { continue }
                            let from = o[i], count = o[i + 1] - from
                            let p = Int(clamping: positions[i])
                            var start: Int, length: Int
                            switch name {
                            case "left": (start, length) = (0, min(count, max(0, p)))
                            case "right": length = min(count, max(0, p)); start = count - length
                            default:
                                // 1-based; 0 acts as 1; negative counts from the end.
                                start = min(p > 0 ? p - 1 : p == 0 ? 0 : max(0, count + p), count)
                                length = count - start
                                if let lengths { length = min(length, max(0, Int(clamping: lengths[i]))) }
                            }
                            if length > 0 { (data.baseAddress! + end).update(from: d.baseAddress! + from + start, count: length) }
                            end += length
                        }
                    }
                }
            }
        }
        out.data.removeSubrange(end...)
        return Column(type: .string, values: .bytes(out), validity: valid)
    }
}
