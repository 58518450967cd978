import Foundation
import KilnCore

/// A scalar expression over the columns of a frame, evaluated a whole column at a time.
public indirect enum Expr: Sendable, Equatable {
    case column(String)
    case literal(Value)
    case negate(Expr)
    case not(Expr)
    /// `+ - * / % = != < <= > >= AND OR ||` (and `<=>`, null-safe equality).
    case binary(String, Expr, Expr)
    case call(String, [Expr])
    case caseWhen([CaseBranch], otherwise: Expr?)
    case cast(Expr, FrameType)
    case isNull(Expr, negated: Bool)
    case inList(Expr, [Expr], negated: Bool)
    case like(Expr, pattern: Expr, negated: Bool)
    /// `INTERVAL n DAY|MONTH|YEAR` (only as an operand of + and - with a date).
    case interval(Int64, unit: String)
    /// `function(args) OVER (PARTITION BY ... ORDER BY ... [ROWS BETWEEN ...])`.
    case window(Window)
    /// `e IN (a set of integer keys)`, built by the planner (semi-join reduction); null where `e` is null.
    case inKeys(Expr, KeySet)

    public struct CaseBranch: Sendable, Equatable {
        public var when: Expr
        public var then: Expr
        public init(when: Expr, then: Expr) {
            self.when = when
            self.then = then
        }
    }

    /// Names of the columns the expression reads.
    public var columns: Set<String> {
        var out = Set<String>()
        visit { if case .column(let name) = $0 { out.insert(name.lowercased()) } }
        return out
    }

    /// The expression split at its top-level ANDs.
    public var conjuncts: [Expr] {
        if case .binary("AND", let a, let b) = self { return a.conjuncts + b.conjuncts }
        return [self]
    }

    /// Calls `body` on this node and every node below it.
    public func visit(_ body: (Expr) -> Void) {
        body(self)
        switch self {
        case .column, .literal, .interval: break
        case .window(let w):
            w.args.forEach { $0.visit(body) }
            w.partitionBy.forEach { $0.visit(body) }
            w.orderBy.forEach { $0.expr.visit(body) }
        case .negate(let e), .not(let e), .cast(let e, _), .isNull(let e, _): e.visit(body)
        case .binary(_, let a, let b): a.visit(body); b.visit(body)
        case .call(_, let args): args.forEach { $0.visit(body) }
        case .caseWhen(let branches, let otherwise):
            for b in branches { b.when.visit(body); b.then.visit(body) }
            otherwise?.visit(body)
        case .inList(let e, let items, _): e.visit(body); items.forEach { $0.visit(body) }
        case .like(let e, let p, _): e.visit(body); p.visit(body)
        case .inKeys(let e, _): e.visit(body)
        }
    }

    /// Rebuilds the tree top-down: `transform` may replace a node (its subtree is then not visited); nil descends.
    public func rewriteTopDown(_ transform: (Expr) throws -> Expr?) rethrows -> Expr {
        if let replaced = try transform(self) { return replaced }
        switch self {
        case .column, .literal, .interval: return self
        case .window(let w): return .window(try w.map { try $0.rewriteTopDown(transform) })
        case .negate(let e): return .negate(try e.rewriteTopDown(transform))
        case .not(let e): return .not(try e.rewriteTopDown(transform))
        case .cast(let e, let t): return .cast(try e.rewriteTopDown(transform), t)
        case .isNull(let e, let n): return .isNull(try e.rewriteTopDown(transform), negated: n)
        case .binary(let op, let a, let b): return .binary(op, try a.rewriteTopDown(transform), try b.rewriteTopDown(transform))
        case .call(let name, let args): return .call(name, try args.map { try $0.rewriteTopDown(transform) })
        case .caseWhen(let branches, let otherwise):
            return .caseWhen(try branches.map { CaseBranch(when: try $0.when.rewriteTopDown(transform), then: try $0.then.rewriteTopDown(transform)) },
                             otherwise: try otherwise?.rewriteTopDown(transform))
        case .inList(let e, let items, let n):
            return .inList(try e.rewriteTopDown(transform), try items.map { try $0.rewriteTopDown(transform) }, negated: n)
        case .like(let e, let p, let n): return .like(try e.rewriteTopDown(transform), pattern: try p.rewriteTopDown(transform), negated: n)
        case .inKeys(let e, let keys): return .inKeys(try e.rewriteTopDown(transform), keys)
        }
    }

    /// Rebuilds the tree bottom-up, letting `transform` replace nodes (nil keeps a node).
    public func rewrite(_ transform: (Expr) throws -> Expr?) rethrows -> Expr {
        let rebuilt: Expr
        switch self {
        case .column, .literal, .interval: rebuilt = self
        case .window(let w): rebuilt = .window(try w.map { try $0.rewrite(transform) })
        case .negate(let e): rebuilt = .negate(try e.rewrite(transform))
        case .not(let e): rebuilt = .not(try e.rewrite(transform))
        case .cast(let e, let t): rebuilt = .cast(try e.rewrite(transform), t)
        case .isNull(let e, let n): rebuilt = .isNull(try e.rewrite(transform), negated: n)
        case .binary(let op, let a, let b): rebuilt = .binary(op, try a.rewrite(transform), try b.rewrite(transform))
        case .call(let name, let args): rebuilt = .call(name, try args.map { try $0.rewrite(transform) })
        case .caseWhen(let branches, let otherwise):
            rebuilt = .caseWhen(try branches.map { CaseBranch(when: try $0.when.rewrite(transform), then: try $0.then.rewrite(transform)) },
                                otherwise: try otherwise?.rewrite(transform))
        case .inList(let e, let items, let n): rebuilt = .inList(try e.rewrite(transform), try items.map { try $0.rewrite(transform) }, negated: n)
        case .like(let e, let p, let n): rebuilt = .like(try e.rewrite(transform), pattern: try p.rewrite(transform), negated: n)
        case .inKeys(let e, let keys): rebuilt = .inKeys(try e.rewrite(transform), keys)
        }
        return try transform(rebuilt) ?? rebuilt
    }
}

// MARK: Evaluation

extension Expr {
    /// The expression's value for every row of `frame`.
    public func evaluate(_ frame: Frame) throws -> Column {
        let n = frame.rowCount
        switch self {
        case .column(let name): return try frame.column(name)
        case .literal(let value): return Column.broadcast(value, count: n)
        case .interval: throw KilnError.invalid("An INTERVAL can only be added to or subtracted from a date")
        case .window(let w): return try w.evaluate(frame)
        case .negate(let e):
            let c = try e.evaluate(frame)
            switch c.values {
            case .int(let v): return Column(type: c.type, values: .int(v.map { 0 &- $0 }), validity: c.validity)
            case .double(let v): return Column(type: c.type, values: .double(v.map { -$0 }), validity: c.validity)
            default: throw KilnError.invalid("Cannot negate a \(c.type)")
            }
        case .not(let e):
            let c = try e.evaluate(frame).asBool()
            guard case .bool(let v) = c.values else { return c }
            return Column(type: .bool, values: .bool(v.map { !$0 }), validity: c.validity)
        case .binary(let op, let a, let b):
            if case .interval(let amount, let unit) = b, op == "+" || op == "-" {
                return try Functions.addInterval(try a.evaluate(frame), op == "+" ? amount : -amount, unit: unit)
            }
            if case .interval(let amount, let unit) = a, op == "+" {
                return try Functions.addInterval(try b.evaluate(frame), amount, unit: unit)
            }
            if op == "AND" || op == "OR" { return try Operators.logical(op, try a.evaluate(frame), try b.evaluate(frame)) }
            // A column against a literal: no broadcast column for the literal.
            if case .literal(let v) = b, let mine = try? Operators.scalar(op, try a.evaluate(frame), v, literalOnRight: true) { return mine }
            if case .literal(let v) = a, let mine = try? Operators.scalar(op, try b.evaluate(frame), v, literalOnRight: false) { return mine }
            return try Operators.binary(op, try a.evaluate(frame), try b.evaluate(frame))
        case .call(let name, let args):
            return try Functions.call(name.lowercased(), try args.map { try $0.evaluate(frame) }, rows: n)
        case .caseWhen(let branches, let otherwise):
            let fallback = try otherwise?.evaluate(frame)
            let thens = try branches.map { try $0.then.evaluate(frame) }
            let type = Operators.resultType(thens + (fallback.map { [$0] } ?? []))
            var out = try (fallback ?? Column.nulls(type, count: n)).cast(to: type)
            var decided = [Bool](repeating: false, count: n)
            for (branch, then) in zip(branches, thens) {
                let cond = try branch.when.evaluate(frame).asBool()
                guard case .bool(let bits) = cond.values else { continue }
                var rows: [Int] = []
                for i in 0..<n where !decided[i] && bits[i] && !cond.isNull(i) {
                    decided[i] = true
                    rows.append(i)
                }
                out = out.replacing(rows, from: try then.cast(to: type))
            }
            return out
        case .cast(let e, let type): return try e.evaluate(frame).cast(to: type)
        case .isNull(let e, let negated):
            let c = try e.evaluate(frame)
            let nulls = (0..<n).map { c.isNull($0) != negated }
            return Column(type: .bool, values: .bool(nulls))
        case .inList(let e, let items, let negated):
            let value = try e.evaluate(frame)
            if value.type == .string, case .bytes(let strings) = value.values {
                let needles = items.compactMap { item -> [UInt8]? in if case .literal(.string(let t)) = item { return Array(t.utf8) }; return nil }
                if needles.count == items.count, needles.count <= 16 {
                    return Column(type: .bool, values: .bool(Self.member(strings, of: needles, negated: negated)), validity: value.validity)
                }
            }
            if items.count > 8, items.allSatisfy({ if case .literal = $0 { return true }; return false }) {
                return try Self.member(value, of: items.map { if case .literal(let v) = $0 { return v }; return .null }, negated: negated)
            }
            var result: Column?
            for item in items {
                let eq = try Operators.binary("=", value, try item.evaluate(frame))
                result = try result.map { try Operators.logical("OR", $0, eq) } ?? eq
            }
            let found = result ?? Column(type: .bool, values: .bool([Bool](repeating: false, count: n)))
            guard negated, case .bool(let v) = found.values else { return found }
            return Column(type: .bool, values: .bool(v.map { !$0 }), validity: found.validity)
        case .inKeys(let e, let keys):
            let value = try e.evaluate(frame)
            guard case .int(let v) = value.values else { throw KilnError.invalid("Key sets hold integers, not \(value.type)") }
            return Column(type: .bool, values: .bool(convert(v) { keys.contains($0) }), validity: value.validity)
        case .like(let e, let pattern, let negated):
            let value = try e.evaluate(frame).cast(to: .string)
            guard case .literal(.string(let p)) = pattern else { throw KilnError.invalid("LIKE needs a literal pattern") }
            guard case .bytes(let strings) = value.values else { throw KilnError.invalid("LIKE applies to strings") }
            return Column(type: .bool, values: .bool(LikePattern(p).mask(strings, negated: negated)), validity: value.validity)
        }
    }
}

extension Expr {
    /// Whether each string is one of `needles` (compared as bytes, no value copied), `!= negated`.
    static func member(_ strings: ByteColumn, of needles: [[UInt8]], negated: Bool) -> [Bool] {
        let flat = needles.flatMap { $0 }
        var bounds = [0]
        for needle in needles { bounds.append(bounds.last! + needle.count) }
        return flat.withUnsafeBufferPointer { f in
            strings.mask { value, length in
                for k in 0..<needles.count where bounds[k + 1] - bounds[k] == length {
                    if length == 0 || memcmp(value!, f.baseAddress! + bounds[k], length) == 0 { return !negated }
                }
                return negated
            }
        }
    }

    /// `value IN (literals)` through a hash of the literals: null when the value is null, or when it is not found
    /// and the list has a null (SQL's rule).
    static func member(_ value: Column, of literals: [Value], negated: Bool) throws -> Column {
        let listHasNull = literals.contains(.null)
        let list = Column.from(literals.filter { $0 != .null }, type: value.type.storage == .bytes ? .string : literals.contains { if case .double = $0 { return true }; return false } ? .float64 : value.type)
        let type = FrameType.common([value.type, list.type])
        let both = Column.concatenate([try value.cast(to: type), try list.cast(to: type)])
        let n = value.count
        let grouping = Grouping(keys: [both], rows: n + list.count)
        var inList = [Bool](repeating: false, count: grouping.count)
        for j in n..<(n + list.count) { inList[grouping.groupOf[j]] = true }
        var out = [Bool](repeating: false, count: n)
        var valid = [Bool](repeating: true, count: n)
        for i in 0..<n {
            if value.isNull(i) { valid[i] = false; continue }
            let found = inList[grouping.groupOf[i]]
            if !found && listHasNull { valid[i] = false; continue }
            out[i] = found != negated
        }
        return Column(type: .bool, values: .bool(out), validity: valid)
    }
}

/// SQL LIKE with `%` and `_` (and `\` escapes), matched on bytes.
struct LikePattern {
    enum Piece { case literal([UInt8]), any, one }
    var pieces: [Piece] = []
    var prefix: [UInt8]?

    init(_ pattern: String) {
        var literal: [UInt8] = []
        var escape = false
        for byte in pattern.utf8 {
            if escape { literal.append(byte); escape = false; continue }
            switch byte {
            case UInt8(ascii: "\\"): escape = true
            case UInt8(ascii: "%"):
                if !literal.isEmpty { pieces.append(.literal(literal)); literal = [] }
                pieces.append(.any)
            case UInt8(ascii: "_"):
                if !literal.isEmpty { pieces.append(.literal(literal)); literal = [] }
                pieces.append(.one)
            default: literal.append(byte)
            }
        }
        if !literal.isEmpty { pieces.append(.literal(literal)) }
    }

    func matches(_ s: ArraySlice<UInt8>) -> Bool { s.withUnsafeBufferPointer { match($0, 0, 0) } }

    /// Whether each value matches, `!= negated`. Patterns of one literal with `%` at either end or both (`'ab%'`,
    /// `'%ab'`, `'%ab%'`, `'ab'`) compare bytes in place, and so do literals separated by `%` without `_`
    /// (`'%special%requests%'`: each found leftmost after the one before, the first and last pinned to the ends
    /// when no `%` stands there); the rest run the general matcher on each value's bytes.
    func mask(_ strings: ByteColumn, negated: Bool) -> [Bool] {
        if pieces.count > 3, !pieces.contains(where: { if case .one = $0 { return true } else { return false } }) {
            return sequenceMask(strings, negated: negated)
        }
        enum Shape { case exact, prefix, suffix, contains, general }
        var shape = Shape.general
        var literal: [UInt8] = []
        switch pieces.count {
        case 0: shape = .exact
        case 1: if case .literal(let l) = pieces[0] { shape = .exact; literal = l } else if case .any = pieces[0] { shape = .contains }
        case 2:
            if case .literal(let l) = pieces[0], case .any = pieces[1] { shape = .prefix; literal = l }
            if case .any = pieces[0], case .literal(let l) = pieces[1] { shape = .suffix; literal = l }
        case 3: if case .any = pieces[0], case .literal(let l) = pieces[1], case .any = pieces[2] { shape = .contains; literal = l }
        default: break
        }
        return literal.withUnsafeBufferPointer { l in
            let k = l.count
            return strings.mask { start, length in
                let hit: Bool
                switch shape {
                case .exact: hit = length == k && (k == 0 || memcmp(start!, l.baseAddress!, k) == 0)
                case .prefix: hit = length >= k && (k == 0 || memcmp(start!, l.baseAddress!, k) == 0)
                case .suffix: hit = length >= k && (k == 0 || memcmp(start! + length - k, l.baseAddress!, k) == 0)
                case .contains:
                    if k == 0 { hit = true } else if length < k { hit = false } else {
                        var found = false
                        let first = l[0]
                        for at in 0...(length - k) where start![at] == first && memcmp(start! + at, l.baseAddress!, k) == 0 {
                            found = true
                            break
                        }
                        hit = found
                    }
                case .general: hit = match(UnsafeBufferPointer(start: start, count: length), 0, 0)
                }
                return hit != negated
            }
        }
    }

    /// `mask` for literals separated by `%` (no `_`): the leftmost match of each literal after the previous one
    /// decides (a later match could only leave less room for the rest).
    private func sequenceMask(_ strings: ByteColumn, negated: Bool) -> [Bool] {
        let literals = pieces.compactMap { if case .literal(let l) = $0 { return l } else { return nil } }
        let pinnedStart: Bool, pinnedEnd: Bool
        if case .literal = pieces.first! { pinnedStart = true } else { pinnedStart = false }
        if case .literal = pieces.last! { pinnedEnd = true } else { pinnedEnd = false }
        let head = pinnedStart ? literals.first! : [], tail = pinnedEnd ? literals.last! : []
        let middle = Array(literals.dropFirst(pinnedStart ? 1 : 0).dropLast(pinnedEnd ? 1 : 0))
        return strings.mask { start, length in
            guard let start else { return literals.isEmpty != negated }  // an empty buffer: only all-`%` matches
            guard length >= head.count + tail.count else { return negated }
            guard head.isEmpty || memcmp(start, head, head.count) == 0,
                  tail.isEmpty || memcmp(start + length - tail.count, tail, tail.count) == 0 else { return negated }
            var at = head.count
            let end = length - tail.count
            for literal in middle {
                guard let found = Self.find(literal, in: start, from: at, to: end) else { return negated }
                at = found + literal.count
            }
            return !negated
        }
    }

    /// The first position of `needle` (not empty) in `base[from..<end]`: `memchr` for its first byte, then a compare.
    @inline(__always) static func find(_ needle: [UInt8], in base: UnsafePointer<UInt8>, from: Int, to end: Int) -> Int? {
        let k = needle.count, first = Int32(needle[0])
        var at = from
        while end - at >= k {
            guard let hit = memchr(base + at, first, end - at - k + 1) else { return nil }
            let i = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            if memcmp(base + i, needle, k) == 0 { return i }
            at = i + 1
        }
        return nil
    }

    /// `at` indexes the value's bytes in place, so no row is copied.
    private func match(_ s: UnsafeBufferPointer<UInt8>, _ at: Int, _ piece: Int) -> Bool {
        if piece == pieces.count { return at == s.endIndex }
        switch pieces[piece] {
        case .literal(let l):
            guard s.endIndex - at >= l.count, s[at..<at + l.count].elementsEqual(l) else { return false }
            return match(s, at + l.count, piece + 1)
        case .one:
            // One character: a whole UTF-8 sequence.
            guard at < s.endIndex else { return false }
            var next = at + 1
            while next < s.endIndex, s[next] & 0xC0 == 0x80 { next += 1 }
            return match(s, next, piece + 1)
        case .any:
            if piece + 1 == pieces.count { return true }
            var i = at
            while i <= s.endIndex {
                if match(s, i, piece + 1) { return true }
                i += 1
            }
            return false
        }
    }
}

extension Column {
    /// `count` copies of a scalar (type from the value; null is a null string).
    public static func broadcast(_ value: Value, count: Int) -> Column {
        switch value {
        case .null: return Column.nulls(.string, count: count)
        case .bool(let b): return Column(type: .bool, values: .bool([Bool](repeating: b, count: count)))
        case .int(let n): return Column(type: .int64, values: .int([Int64](repeating: n, count: count)))
        case .date(let d): return Column(type: .date, values: .int([Int64](repeating: d, count: count)))
        case .timestamp(let t): return Column(type: .timestamp, values: .int([Int64](repeating: t, count: count)))
        case .double(let d): return Column(type: .float64, values: .double([Double](repeating: d, count: count)))
        case .decimal(let u, let s):
            return Column(type: .decimal(precision: 38, scale: s), values: .double([Double](repeating: value.double ?? 0, count: count)),
                          unscaled: [Int128](repeating: u, count: count))
        case .string(let s), .nested(let s, _):
            var b = ByteColumn()
            let bytes = Array(s.utf8)
            b.data.reserveCapacity(bytes.count * count)
            for _ in 0..<count { b.append(bytes) }
            if case .nested(_, let type) = value { return Column(type: type, values: .bytes(b)) }
            return Column(type: .string, values: .bytes(b))
        case .bytes(let bytes):
            var b = ByteColumn()
            for _ in 0..<count { b.append(bytes) }
            return Column(type: .binary, values: .bytes(b))
        }
    }

    /// Whether every row is null (a NULL literal: its type yields to the others').
    public var allNull: Bool { validity?.allSatisfy { !$0 } ?? (count == 0) }

    /// As a boolean column (SQL truthiness: only booleans qualify). - Throws: for other types.
    func asBool() throws -> Column {
        if type == .bool { return self }
        if case .bool = values { return self }
        if validity?.allSatisfy({ !$0 }) ?? false { return Column(type: .bool, values: .bool([Bool](repeating: false, count: count)), validity: validity) }
        throw KilnError.invalid("Expected a boolean condition, got a \(type)")
    }

    /// This column with rows `rows` taken from `other` (same type and length).
    func replacing(_ rows: [Int], from other: Column) -> Column {
        guard !rows.isEmpty else { return self }
        var out = self
        var valid = validity ?? [Bool](repeating: true, count: count)
        switch (out.values, other.values) {
        case (.bool(var a), .bool(let b)): for r in rows { a[r] = b[r] }; out.values = .bool(a)
        case (.int(var a), .int(let b)): for r in rows { a[r] = b[r] }; out.values = .int(a)
        case (.double(var a), .double(let b)): for r in rows { a[r] = b[r] }; out.values = .double(a)
        case (.bytes(let a), .bytes(let b)):
            let replace = Set(rows)
            var c = ByteColumn()
            for i in 0..<count { c.append(replace.contains(i) ? b[i] : a[i]) }
            out.values = .bytes(c)
        default: break
        }
        for r in rows { valid[r] = !other.isNull(r) }
        out.validity = valid.contains(false) ? valid : nil
        return out
    }

    /// CAST(column AS type): numbers, strings, dates and timestamps convert as Spark does; unparsable text is null.
    public func cast(to target: FrameType) throws -> Column {
        if target == type { return self }
        if type.isNested || target.isNested {
            // A nested value's text is what CAST(... AS STRING) gives; nothing else converts yet.
            guard target == .string else { throw KilnError.invalid("Cannot cast \(type) to \(target)") }
            var copy = self
            copy.type = .string
            return copy
        }
        // Same storage: only the label changes (integer widths, float/decimal, string/binary).
        let temporal: Set<FrameType> = [.date, .timestamp]
        let relabel: Bool
        switch (type.storage, target.storage) {
        case (.int, .int): relabel = !temporal.contains(type) && !temporal.contains(target)
        case (.double, .double), (.bytes, .bytes): relabel = true
        default: relabel = false
        }
        if relabel {
            var copy = self
            copy.type = target
            return copy
        }
        let n = count
        var valid = validity ?? [Bool](repeating: true, count: n)
        let out: FrameValues
        switch (values, target.storage) {
        case (.int(let v), .double): out = .double(v.map(Double.init))
        case (.double(let v), .int):
            out = .int(v.enumerated().map { i, d in
                guard d.isFinite, abs(d) < 9.2e18 else { valid[i] = false; return 0 }
                return Int64(d.rounded(.towardZero))
            })
        case (.int(let v), .int):
            if target == .date, type == .timestamp {
                out = .int(v.map { $0 >= 0 ? $0 / 86_400_000_000 : -((-$0 + 86_400_000_000 - 1) / 86_400_000_000) })
            } else if target == .timestamp, type == .date {
                out = .int(v.map { $0 * 86_400_000_000 })
            } else { out = .int(v) }
        case (.bool(let v), .int): out = .int(v.map { $0 ? 1 : 0 })
        case (.bool(let v), .double): out = .double(v.map { $0 ? 1 : 0 })
        case (.int(let v), .bool): out = .bool(v.map { $0 != 0 })
        case (.double(let v), .bool): out = .bool(v.map { $0 != 0 })
        case (_, .bytes):
            var b = ByteColumn()
            for i in 0..<n { b.append(valid[i] ? value(i).text : "") }
            out = .bytes(b)
        case (.bytes(let s), _):
            var scalars: [Value] = []
            scalars.reserveCapacity(n)
            for i in 0..<n {
                guard valid[i] else { scalars.append(.null); continue }
                let text = s.string(i).trimmingCharacters(in: .whitespaces)
                switch target {
                case .date: scalars.append(Dates.parseDate(text).map(Value.date) ?? .null)
                case .timestamp: scalars.append(Dates.parseTimestamp(text).map(Value.timestamp) ?? .null)
                case .bool:
                    let l = text.lowercased()
                    scalars.append(l == "true" ? .bool(true) : l == "false" ? .bool(false) : .null)
                default:
                    if target.isInteger { scalars.append(Int64(text).map(Value.int) ?? Double(text).map { .int(Int64($0)) } ?? .null) }
                    else { scalars.append(Double(text).map(Value.double) ?? .null) }
                }
            }
            return Column.from(scalars, type: target)
        default: throw KilnError.invalid("Cannot cast \(type) to \(target)")
        }
        return Column(type: target, values: out, validity: valid)
    }
}

/// A fixed set of integer keys for membership tests: a bitmap over the value range when it is small, else a hash set.
public final class KeySet: Sendable, Equatable {
    let low: Int64
    let bitmap: [UInt64]
    let hashed: Set<Int64>
    public let count: Int

    /// The smallest and largest key (nil when empty): what file statistics can check.
    public let bounds: ClosedRange<Int64>?

    public init(_ values: [Int64]) {
        count = values.count
        guard let lo = values.min(), let hi = values.max() else {
            (low, bitmap, hashed, bounds) = (0, [], [], nil)
            return
        }
        bounds = lo...hi
        let (span, overflow) = hi.subtractingReportingOverflow(lo)
        if !overflow, span < Int64(max(1 << 24, 64 * values.count)) {
            var bits = [UInt64](repeating: 0, count: Int(span) / 64 + 1)
            for v in values {
                let k = Int(v - lo)
                bits[k >> 6] |= 1 << UInt64(k & 63)
            }
            (low, bitmap, hashed) = (lo, bits, [])
        } else {
            (low, bitmap, hashed) = (0, [], Set(values))
        }
    }

    @inline(__always)
    public func contains(_ v: Int64) -> Bool {
        if bitmap.isEmpty { return hashed.contains(v) }
        let (k, overflow) = v.subtractingReportingOverflow(low)
        guard !overflow, k >= 0, k < Int64(bitmap.count) * 64 else { return false }
        return bitmap[Int(k) >> 6] & (1 << UInt64(k & 63)) != 0
    }

    public static func == (a: KeySet, b: KeySet) -> Bool { a === b }
}
