import Foundation
import KilnCore
@testable import KilnFrame
@testable import KilnSQL
import Testing

@Suite("Eager aggregation")
struct EagerAggregationTests {
    /// A random fact table `f` (keys with nulls and misses, values with nulls) and a dimension `d` with duplicate
    /// and null keys, written through SQL.
    static func tables(_ engine: SQLEngine, seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        func maybe(_ text: String) -> String { rng.next() % 6 == 0 ? "NULL" : text }
        let facts = (0..<Int(rng.next() % 120)).map { _ in
            "(\(maybe("\(rng.next() % 9)")), \(maybe(String(Double(rng.next() % 2000) / 8 - 100))), \(maybe("\(Int(rng.next() % 50) - 10)")), \(maybe("\(rng.next() % 3)")))"
        }
        let dims = (0..<Int(rng.next() % 12)).map { _ in
            "(\(maybe("\(rng.next() % 10)")), \(maybe("'n\(rng.next() % 4)'")), \(maybe("\(rng.next() % 5)")), \(maybe("\(rng.next() % 3)")))"
        }
        var e = engine
        _ = try e.execute("CREATE TABLE main.default.f (k BIGINT, v DOUBLE, n BIGINT, j BIGINT)")
        _ = try e.execute("CREATE TABLE main.default.d (k BIGINT, name STRING, w BIGINT, j BIGINT)")
        if !facts.isEmpty { _ = try e.execute("INSERT INTO main.default.f VALUES " + facts.joined(separator: ", ")) }
        if !dims.isEmpty { _ = try e.execute("INSERT INTO main.default.d VALUES " + dims.joined(separator: ", ")) }
    }

    static let queries = [
        "SELECT d.name, count(*), sum(f.v), min(f.n), max(f.n), avg(f.v), count(f.v), avg(f.n) FROM main.default.f f JOIN main.default.d d ON f.k = d.k GROUP BY d.name ORDER BY d.name",
        "SELECT d.name, d.w, count(*) AS c, sum(n) AS total FROM main.default.f f JOIN main.default.d d ON f.k = d.k WHERE f.n > 0 AND d.w < 4 GROUP BY d.name, d.w ORDER BY d.name, d.w",
        "SELECT count(*), sum(f.n), max(f.v) FROM main.default.d d JOIN main.default.f f ON d.k = f.k",
        "SELECT d.name, count(*) AS c, sum(f.v) AS s FROM main.default.f f JOIN main.default.d d ON f.k = d.k GROUP BY d.name HAVING count(*) > 2 ORDER BY c DESC, d.name LIMIT 3",
        "SELECT d.w, sum(f.n) AS s, count(f.n) FROM main.default.f f JOIN main.default.d d ON f.k = d.k AND f.j = d.j GROUP BY d.w ORDER BY d.w",
        "SELECT upper(d.name) AS u, coalesce(sum(f.v), 0) + 1 AS s1 FROM main.default.d d JOIN main.default.f f ON f.k = d.k GROUP BY upper(d.name) ORDER BY u",
    ]

    @Test("aggregating below the join gives the plain join's answer on random tables (nulls, duplicate and missing keys)")
    func equalsThePlainJoin() throws {
        for seed in UInt64(0)..<60 {
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-eager-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: root) }
            var eager = SQLEngine(catalog: Catalog(warehouse: root))
            eager.eagerAggregation = .always
            var plain = eager
            plain.eagerAggregation = .never
            try Self.tables(eager, seed: seed)
            for sql in Self.queries {
                let explained = try eager.execute("EXPLAIN " + sql)
                let text = (0..<explained.rowCount).map { explained.row($0).map(\.text).joined(separator: " ") }.joined(separator: "\n")
                #expect(text.contains("__eager"), "not rewritten: \(sql)")
                let a = try eager.execute(sql), b = try plain.execute(sql)
                #expect(a.names == b.names, "\(sql)")
                #expect(Self.same(a, b), "seed \(seed): \(sql)\neager \((0..<a.rowCount).map(a.row))\nplain \((0..<b.rowCount).map(b.row))")
            }
        }
    }

    @Test("left alone: outer joins, DISTINCT aggregates, aggregates over both sides, small fact tables in auto mode")
    func leftAlone() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-eager-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var engine = SQLEngine(catalog: Catalog(warehouse: root))
        try Self.tables(engine, seed: 1)
        engine.eagerAggregation = .always
        for sql in [
            "SELECT d.name, count(*) FROM main.default.f f LEFT JOIN main.default.d d ON f.k = d.k GROUP BY d.name",
            "SELECT d.name, count(DISTINCT f.n) FROM main.default.f f JOIN main.default.d d ON f.k = d.k GROUP BY d.name",
            "SELECT d.name, sum(f.v * d.w) FROM main.default.f f JOIN main.default.d d ON f.k = d.k GROUP BY d.name",
            "SELECT f.j, count(*) FROM main.default.f f JOIN main.default.d d ON f.k = d.k GROUP BY f.j",
        ] {
            let explained = try engine.execute("EXPLAIN " + sql)
            #expect(!(0..<explained.rowCount).contains { explained.row($0).map(\.text).joined().contains("__eager") }, "\(sql)")
        }
        engine.eagerAggregation = .auto  // f has at most 119 rows, d up to 11: not 8 times as many
        let sql = Self.queries[0]
        let explained = try engine.execute("EXPLAIN " + sql)
        let rows = (try engine.execute("SELECT count(*) FROM main.default.f").row(0)[0], try engine.execute("SELECT count(*) FROM main.default.d").row(0)[0])
        if case (.int(let f), .int(let d)) = rows, f < 8 * max(d, 1) {
            #expect(!(0..<explained.rowCount).contains { explained.row($0).map(\.text).joined().contains("__eager") })
        }
    }

    static func same(_ a: Frame, _ b: Frame) -> Bool {
        guard a.rowCount == b.rowCount, a.columns.count == b.columns.count else { return false }
        for r in 0..<a.rowCount {
            for (x, y) in zip(a.row(r), b.row(r)) {
                switch (x, y) {
                case (.double(let p), .double(let q)): if abs(p - q) > 1e-9 * max(1, abs(p), abs(q)) { return false }
                default: if x != y { return false }
                }
            }
        }
        return true
    }
}

@Suite("String filters in place")
struct StringFilterTests {
    @Test("LIKE's in-place fast paths and IN over strings agree with the general matcher and with plain equality")
    func agree() throws {
        var rng = SplitMix64(seed: 42)
        let alphabet: [Character] = ["a", "b", "%", "_", "é"]
        func word(_ max: Int) -> String { String((0..<Int(rng.next() % UInt64(max + 1))).map { _ in alphabet[Int(rng.next() % 5)] }) }
        var strings = ByteColumn()
        var values: [String] = []
        for _ in 0..<400 {
            let w = word(5)
            values.append(w)
            strings.append(w)
        }
        for _ in 0..<300 {
            let literal = word(3).replacingOccurrences(of: "%", with: "").replacingOccurrences(of: "_", with: "")
            let other = word(2).replacingOccurrences(of: "%", with: "").replacingOccurrences(of: "_", with: "")
            let pattern = [literal, literal + "%", "%" + literal, "%" + literal + "%", "%", "", literal + "_", "_%" + literal,
                           "%" + literal + "%" + other + "%", literal + "%" + other, literal + "%" + other + "%" + literal,
                           "%" + other + "%" + literal, "%%" + literal + "%%"][Int(rng.next() % 13)]
            let like = LikePattern(pattern)
            let fast = like.mask(strings, negated: false)
            for (i, v) in values.enumerated() {
                #expect(fast[i] == like.matches(ArraySlice(Array(v.utf8))), "'\(v)' LIKE '\(pattern)'")
            }
            #expect(like.mask(strings, negated: true) == fast.map { !$0 })
            let needles = (0..<Int(1 + rng.next() % 4)).map { _ in word(3) }
            let member = Expr.member(strings, of: needles.map { Array($0.utf8) }, negated: false)
            #expect(member == values.map { needles.contains($0) }, "IN \(needles)")
            let column = Column(type: .string, values: .bytes(strings))
            for op in ["=", "!=", "<", "<=", ">", ">="] {
                let inPlace = try #require(Operators.scalar(op, column, .string(needles[0]), literalOnRight: true))
                let broadcast = try Operators.binary(op, column, Column.broadcast(.string(needles[0]), count: values.count))
                #expect((0..<values.count).allSatisfy { inPlace.value($0) == broadcast.value($0) }, "\(op) '\(needles[0])'")
            }
        }
    }
}

@Suite("String functions on bytes")
struct StringFunctionBytesTests {
    @Test("ASCII fast paths of SUBSTRING/LEFT/RIGHT, LOWER/UPPER and LENGTH give the character-based answers")
    func agree() throws {
        var rng = SplitMix64(seed: 7)
        let letters = Array("aBc Xy_z9")
        var words: [Value] = []
        for i in 0..<300 {
            words.append(i % 17 == 0 ? .null : .string(String((0..<Int(rng.next() % 7)).map { _ in letters[Int(rng.next() % UInt64(letters.count))] })))
        }
        let ascii = Column.from(words, type: .string)
        // The same words and one that is not ASCII: the whole column takes the general (character) path.
        let mixed = Column.from(words + [.string("ü")], type: .string)
        func column(_ values: [Int64?]) -> Column { Column.from(values.map { $0.map(Value.int) ?? .null }, type: .int64) }
        let positions = (0..<300).map { i -> Int64? in i % 23 == 0 ? nil : Int64(Int(rng.next() % 13) - 6) }
        let lengths = (0..<300).map { i -> Int64? in i % 29 == 0 ? nil : Int64(Int(rng.next() % 9) - 2) }
        for (name, extra) in [("substring", [column(positions), column(lengths)]), ("substr", [column(positions)]), ("left", [column(positions)]),
                              ("right", [column(positions)]), ("lower", []), ("upper", []), ("length", [])] {
            let fast = try Functions.call(name, [ascii] + extra, rows: 300)
            let general = try Functions.call(name, [mixed] + extra.map { Column.concatenate([$0, column([1])]) }, rows: 301)
            for i in 0..<300 { #expect(fast.value(i) == general.value(i), "\(name) row \(i): \(words[i])") }
        }
    }
}
