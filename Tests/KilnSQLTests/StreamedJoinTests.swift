import Foundation
import KilnCore
@testable import KilnFrame
@testable import KilnSQL
import Testing

@Suite("Streamed joins")
struct StreamedJoinTests {
    /// A fact table `f` written in three commits (three files: three chunks streamed), a dimension `d` with
    /// duplicate and null keys, and a small `e`; nulls everywhere.
    static func tables(_ engine: SQLEngine, seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        func maybe(_ text: String) -> String { rng.next() % 6 == 0 ? "NULL" : text }
        var e = engine
        _ = try e.execute("CREATE TABLE main.default.f (k BIGINT, v DOUBLE, n BIGINT, j INT, s STRING)")
        _ = try e.execute("CREATE TABLE main.default.d (k BIGINT, name STRING, w BIGINT, j BIGINT)")
        _ = try e.execute("CREATE TABLE main.default.e (j BIGINT, tag STRING)")
        for _ in 0..<3 {
            let facts = (0..<Int(rng.next() % 80)).map { _ in
                "(\(maybe("\(Int(rng.next() % 12) - 2)")), \(maybe(String(Double(rng.next() % 2000) / 8 - 100))), \(maybe("\(Int(rng.next() % 50) - 10)")), "
                    + "\(maybe("\(rng.next() % 3)")), \(maybe("'n\(rng.next() % 5)'")))"
            }
            if !facts.isEmpty { _ = try e.execute("INSERT INTO main.default.f VALUES " + facts.joined(separator: ", ")) }
        }
        let dims = (0..<Int(rng.next() % 14)).map { _ in
            "(\(maybe("\(rng.next() % 10)")), \(maybe("'n\(rng.next() % 4)'")), \(maybe("\(rng.next() % 5)")), \(maybe("\(rng.next() % 3)")))"
        }
        if !dims.isEmpty { _ = try e.execute("INSERT INTO main.default.d VALUES " + dims.joined(separator: ", ")) }
        let tags = (0..<Int(rng.next() % 5)).map { _ in "(\(maybe("\(rng.next() % 3)")), \(maybe("'t\(rng.next() % 2)'")))" }
        if !tags.isEmpty { _ = try e.execute("INSERT INTO main.default.e VALUES " + tags.joined(separator: ", ")) }
    }

    /// Runs `body` with an engine over a fresh warehouse (removed afterwards) holding `tables(seed:)`, unless nil.
    static func withWarehouse(seed: UInt64?, _ body: (inout SQLEngine) throws -> Void) throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-streamed-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var engine = SQLEngine(catalog: Catalog(warehouse: root))
        if let seed { try tables(engine, seed: seed) }
        try body(&engine)
    }

    static let queries = [
        // Aggregates over both sides, one integer key.
        "SELECT count(*), sum(f.v * d.w), min(d.name), max(f.n), avg(f.v) FROM main.default.f f JOIN main.default.d d ON f.k = d.k",
        // Grouped by a build column, two keys of different integer types, HAVING.
        "SELECT d.name, count(*) AS c, sum(f.n) AS s FROM main.default.f f JOIN main.default.d d ON f.k = d.k AND f.j = d.j "
            + "GROUP BY d.name HAVING count(*) > 0 ORDER BY d.name",
        // A filter on the streamed table (pushed into its scan) and a residual condition over both sides.
        "SELECT d.w, count(*), sum(f.v) FROM main.default.f f JOIN main.default.d d ON f.k = d.k WHERE f.v > -20 AND f.n > d.w GROUP BY d.w ORDER BY d.w",
        // An expression key on the streamed side, grouped by a streamed column.
        "SELECT f.s, count(*), max(d.w) FROM main.default.f f JOIN main.default.d d ON f.k + 1 = d.k GROUP BY f.s ORDER BY f.s",
        // A string key (the build side grouped again per chunk) and a double against an integer.
        "SELECT count(*), sum(d.w) FROM main.default.f f JOIN main.default.d d ON f.s = d.name",
        "SELECT count(*), min(f.k) FROM main.default.f f JOIN main.default.d d ON f.v = d.w",
        // Three tables in comma syntax: the other two joined and filtered first.
        "SELECT e.tag, count(*), sum(f.v) FROM main.default.f f, main.default.d d, main.default.e e "
            + "WHERE f.k = d.k AND d.j = e.j AND e.tag <> 't9' GROUP BY e.tag ORDER BY e.tag",
        // JOIN syntax over three tables, a key with the build table on the left.
        "SELECT count(*), sum(f.n) FROM main.default.d d JOIN main.default.f f ON d.k = f.k JOIN main.default.e e ON e.j = d.j",
    ]

    static func explain(_ engine: SQLEngine, _ sql: String) throws -> String {
        let explained = try engine.execute("EXPLAIN ANALYZE " + sql)
        return (0..<explained.rowCount).map { explained.row($0).map(\.text).joined(separator: " ") }.joined(separator: "\n")
    }

    @Test("a streamed join gives the materialized join's answer on random tables (nulls, duplicate and missing keys, several files)")
    func equalsTheMaterializedJoin() throws {
        for seed in UInt64(0)..<20 {
            try Self.withWarehouse(seed: seed) { streamed in
            streamed.streamedJoins = .always
            streamed.eagerAggregation = .never
            var plain = streamed
            plain.streamedJoins = .never
            for sql in Self.queries {
                #expect(try Self.explain(streamed, sql).contains("while scanning and joining"), "not streamed: \(sql)")
                #expect(try !Self.explain(plain, sql).contains("while scanning and joining"), "\(sql)")
                let a = try streamed.execute(sql), b = try plain.execute(sql)
                #expect(a.names == b.names, "\(sql)")
                #expect(EagerAggregationTests.same(a, b), "seed \(seed): \(sql)\nstreamed \((0..<a.rowCount).map(a.row))\nplain \((0..<b.rowCount).map(b.row))")
            }
            }
        }
    }

    @Test("left alone: outer joins, two different DISTINCT counts, no equality to the large table, small tables in auto mode")
    func leftAlone() throws {
        try Self.withWarehouse(seed: 3) { engine in
        engine.eagerAggregation = .never
        engine.streamedJoins = .always
        for sql in [
            "SELECT d.name, count(*) FROM main.default.f f LEFT JOIN main.default.d d ON f.k = d.k GROUP BY d.name",
            "SELECT count(DISTINCT f.n), count(DISTINCT d.w) FROM main.default.f f JOIN main.default.d d ON f.k = d.k",
            "SELECT count(*) FROM main.default.f f JOIN main.default.d d ON f.k < d.k",
            "SELECT f.k, d.k FROM main.default.f f JOIN main.default.d d ON f.k = d.k",
            // Keys to two other tables: joined without f, d and e would pair up many-to-many (TPC-H q5's shape).
            "SELECT count(*) FROM main.default.f f, main.default.d d, main.default.e e WHERE f.k = d.k AND f.j = e.j",
            "SELECT count(*) FROM main.default.f f, main.default.d d, main.default.e e WHERE f.k = d.k AND f.n > e.j",
        ] {
            let plan = try Self.explain(engine, sql)
            #expect(!plan.contains("while scanning and joining"), "\(sql)")
        }
        engine.streamedJoins = .auto  // f has under 2^18 rows
        let plan = try Self.explain(engine, Self.queries[0])
        #expect(!plan.contains("while scanning and joining"))
        }
    }

    @Test("COUNT(DISTINCT x) streams (x joins the partial groups' keys) with the materialized answer")
    func distinctCountsStream() throws {
        for seed in UInt64(0)..<12 {
            try Self.withWarehouse(seed: seed) { engine in
            engine.streamedJoins = .always
            engine.eagerAggregation = .never
            for (streamed, materialized) in [
                ("SELECT count(DISTINCT n), count(*), sum(v), avg(k) FROM main.default.f",
                 "SELECT count(DISTINCT n), count(*), sum(v), avg(k) FROM (SELECT * FROM main.default.f) x"),
                ("SELECT k, count(DISTINCT s) AS d, min(v), count(n) FROM main.default.f WHERE v > -30 GROUP BY k ORDER BY k",
                 "SELECT k, count(DISTINCT s) AS d, min(v), count(n) FROM (SELECT * FROM main.default.f) x WHERE v > -30 GROUP BY k ORDER BY k"),
                // Nothing passes: counts are 0, not NULL.
                ("SELECT count(DISTINCT n), count(*), count(v), sum(v) FROM main.default.f WHERE v > 1000",
                 "SELECT count(DISTINCT n), count(*), count(v), sum(v) FROM (SELECT * FROM main.default.f) x WHERE v > 1000"),
                ("SELECT d.name, count(DISTINCT f.n), count(*) FROM main.default.f f JOIN main.default.d d ON f.k = d.k GROUP BY d.name ORDER BY d.name",
                 "SELECT d.name, count(DISTINCT f.n), count(*) FROM (SELECT * FROM main.default.f) f JOIN main.default.d d ON f.k = d.k GROUP BY d.name ORDER BY d.name"),
            ] {
                #expect(try Self.explain(engine, streamed).contains("(while scanning"), "not streamed: \(streamed)")
                #expect(try !Self.explain(engine, materialized).contains("(while scanning"), "\(materialized)")
                let a = try engine.execute(streamed), b = try engine.execute(materialized)
                #expect(EagerAggregationTests.same(a, b), "seed \(seed): \(streamed)\n\((0..<a.rowCount).map(a.row))\n\((0..<b.rowCount).map(b.row))")
            }
            // Two different distinct arguments are not streamed, and still answer.
            let two = "SELECT count(DISTINCT n), count(DISTINCT k) FROM main.default.f"
            #expect(try !Self.explain(engine, two).contains("(while scanning"))
            _ = try engine.execute(two)
            }
        }
    }

    @Test("a correlated scalar subquery reads only the inner rows its outer keys ask for, with the unfiltered answer")
    func subqueryReadsOuterKeysOnly() throws {
        for seed in UInt64(0)..<10 {
            try Self.withWarehouse(seed: seed) { engine in
            let correlated = "SELECT d.k, d.w, d.name FROM main.default.d d WHERE d.w < (SELECT sum(f.n) FROM main.default.f f "
                + "WHERE f.k = d.k AND f.j = d.j AND f.v > -50) ORDER BY d.k, d.w, d.name"
            let joined = "SELECT d.k, d.w, d.name FROM main.default.d d JOIN (SELECT k, j, sum(n) AS s FROM main.default.f WHERE v > -50 GROUP BY k, j) g "
                + "ON d.k = g.k AND d.j = g.j WHERE d.w < g.s ORDER BY d.k, d.w, d.name"
            let a = try engine.execute(correlated), b = try engine.execute(joined)
            #expect(EagerAggregationTests.same(a, b), "seed \(seed)\n\((0..<a.rowCount).map(a.row))\n\((0..<b.rowCount).map(b.row))")
            let plan = try Self.explain(engine, correlated)
            #expect(plan.contains("k IN (") && plan.contains("keys read from the other side of a join"), "\(plan)")
            }
        }
    }

    @Test("a correlated scalar subquery over no rows has its value over no rows: count(*) is 0, sum is NULL")
    func subqueryOverNoRows() throws {
        try Self.withWarehouse(seed: nil) { engine in
            _ = try engine.execute("CREATE TABLE main.default.a AS SELECT id AS k FROM range(4)")
            _ = try engine.execute("CREATE TABLE main.default.b AS SELECT id % 2 AS k, id AS v FROM range(6)")
            let zero = try engine.execute("SELECT k FROM main.default.a a WHERE 0 = (SELECT count(*) FROM main.default.b b WHERE b.k = a.k) ORDER BY k")
            #expect((0..<zero.rowCount).map { zero.row($0) } == [[.int(2)], [.int(3)]])
            let plusOne = try engine.execute("SELECT k FROM main.default.a a WHERE (SELECT count(*) + 1 FROM main.default.b b WHERE b.k = a.k) = 1 ORDER BY k")
            #expect(plusOne.rowCount == 2)
            let sum = try engine.execute("SELECT count(*) FROM main.default.a a WHERE (SELECT sum(v) FROM main.default.b b WHERE b.k = a.k) IS NULL")
            #expect(sum.row(0) == [.int(2)])
        }
    }

    @Test("SELECT * over joined tables lists their columns in FROM order, whatever order they were joined in")
    func starKeepsFromOrder() throws {
        try Self.withWarehouse(seed: nil) { engine in
        _ = try engine.execute("CREATE TABLE main.default.a AS SELECT id AS x, id * 10 AS av FROM range(3)")
        _ = try engine.execute("CREATE TABLE main.default.b AS SELECT id AS y, id * 100 AS bv FROM range(3)")
        _ = try engine.execute("CREATE TABLE main.default.c AS SELECT id AS x, id AS y FROM range(3)")
        for sql in ["SELECT * FROM main.default.a, main.default.b, main.default.c WHERE a.x = c.x AND b.y = c.y ORDER BY av",
                    "SELECT * FROM main.default.a JOIN main.default.b ON true JOIN main.default.c ON a.x = c.x AND b.y = c.y ORDER BY av"] {
            let result = try engine.execute(sql)
            #expect(result.names == ["x", "av", "y", "bv", "x", "y"], "\(sql)")
            #expect(result.row(1).map(\.text) == ["1", "10", "1", "100", "1", "1"], "\(sql)")
        }
        // An ON condition's unqualified name that only its own join can resolve: the joins are not flattened.
        let scoped = try engine.execute("SELECT count(*) FROM main.default.a JOIN main.default.b ON av = bv JOIN main.default.c ON c.x = a.x")
        #expect(scoped.row(0) == [.int(1)])
        }
    }

    @Test("the join index finds exactly a nested loop's pairs: nulls, negative and extreme keys, packed key pairs, other types")
    func indexMatchesNestedLoop() throws {
        var rng = SplitMix64(seed: 9)
        func ints(_ n: Int, spread: Int64, nulls: Bool, type: FrameType = .int64) -> Column {
            let values = (0..<n).map { _ -> Int64 in
                switch rng.next() % 20 {
                case 0: return Int64.max
                case 1: return Int64.min
                default: return Int64(rng.next() % UInt64(spread)) - spread / 2
                }
            }
            let valid = nulls ? (0..<n).map { _ in rng.next() % 5 != 0 } : nil
            return Column(type: type, values: .int(type == .int32 ? values.map { max(min($0, Int64(Int32.max)), Int64(Int32.min)) } : values), validity: valid)
        }
        func naive(_ probe: [Column], _ build: [Column]) -> [[Int]] {
            var out: [[Int]] = []
            for i in 0..<probe[0].count {
                for j in 0..<build[0].count where zip(probe, build).allSatisfy({ p, b in
                    !p.isNull(i) && !b.isNull(j) && p.value(i) == b.value(j)
                }) { out.append([i, j]) }
            }
            return out
        }
        for round in 0..<120 {
            let keys = 1 + round % 3
            let spread: Int64 = [3, 40, 5_000_000, 1 << 40][round % 4]
            let build = (0..<keys).map { k in ints(Int(rng.next() % 60), spread: spread, nulls: round % 2 == 0, type: k == 1 ? .int32 : .int64) }
            let buildRows = build.map(\.count).min()!
            let trimmed = build.map { $0.take(Array(0..<buildRows)) }
            let probe = (0..<keys).map { _ in ints(Int(rng.next() % 80), spread: spread, nulls: round % 3 == 0) }
            let probeRows = probe.map(\.count).min()!
            let p = probe.map { $0.take(Array(0..<probeRows)) }
            let types = zip(p, trimmed).map { FrameType.common([$0.type, $1.type]) }
            let index = try JoinIndex(keys: trimmed, rows: buildRows, types: types)
            let got = try index.pairs(p, rows: probeRows)
            #expect(zip(got.left, got.right).map { [$0, $1] } == naive(p, trimmed), "round \(round)")
            // A filter's mask (nulls drop too) leaves rows out as they probe.
            let bits = (0..<probeRows).map { _ in rng.next() % 3 != 0 }, known = (0..<probeRows).map { _ in rng.next() % 7 != 0 }
            let keep = Column(type: .bool, values: .bool(bits), validity: round % 2 == 0 ? known : nil)
            let kept = try index.pairs(p, rows: probeRows, keep: keep)
            #expect(zip(kept.left, kept.right).map { [$0, $1] } == naive(p, trimmed).filter { bits[$0[0]] && (round % 2 != 0 || known[$0[0]]) },
                    "round \(round), masked")
            // A second probe of the same index (it is built once and probed per chunk).
            let again = try index.pairs(trimmed, rows: buildRows)
            #expect(zip(again.left, again.right).map { [$0, $1] } == naive(trimmed, trimmed), "round \(round), self")
        }
        // Strings and doubles against integers go through the general path with the same answers.
        let names = Column.from([.string("a"), .null, .string("b"), .string("a")], type: .string)
        let wanted = Column.from([.string("b"), .string("a"), .null], type: .string)
        let byName = try JoinIndex(keys: [names], rows: 4, types: [.string])
        #expect(byName.isGeneral)
        let pairs = try byName.pairs([wanted], rows: 3)
        #expect(pairs.left == [0, 1, 1] && pairs.right == [2, 0, 3])
        let doubles = Column(type: .float64, values: .double([1.0, 2.5, 3.0]))
        let integers = Column(type: .int64, values: .int([3, 1, 2]))
        let mixed = try JoinIndex(keys: [integers], rows: 3, types: [.float64]).pairs([doubles], rows: 3)
        #expect(mixed.left == [0, 2] && mixed.right == [1, 0])
    }
}

@Suite("Running window aggregates")
struct RunningWindowTests {
    @Test("count, sum and avg over the default frame equal the row-by-row frame aggregate (nulls, ints, doubles, no ORDER BY)")
    func typedEqualsRowByRow() throws {
        var rng = SplitMix64(seed: 5)
        for round in 0..<30 {
            let n = Int(rng.next() % 200)
            var ids = Array(0..<Int64(n))
            ids.shuffle(using: &rng)
            let p = (0..<n).map { _ in Int64(rng.next() % 4) }
            let i = (0..<n).map { _ in Int64(rng.next() % 1000) - 500 }
            let d = (0..<n).map { _ in Double(rng.next() % 10_000) / 7 - 300 }
            let valid = (0..<n).map { _ in rng.next() % 5 != 0 }
            let frame = Frame(names: ["id", "p", "i", "d", "f"], columns: [
                Column(type: .int64, values: .int(ids)), Column(type: .int64, values: .int(p)),
                Column(type: .int32, values: .int(i), validity: round % 2 == 0 ? valid : nil),
                Column(type: .float64, values: .double(d), validity: round % 3 == 0 ? valid : nil),
                Column(type: .float32, values: .double(d.map { Double(Float($0)) }), validity: nil),
            ])
            var engine = SQLEngine(catalog: Catalog(warehouse: FileManager.default.temporaryDirectory.path))
            engine.inputs["w"] = frame
            for call in ["count(*)", "count(i)", "sum(i)", "avg(i)", "sum(d)", "avg(d)", "count(d)", "sum(f)", "avg(f)"] {
                // Unique ORDER BY keys: the default RANGE frame is the ROWS frame up to the current row.
                let typed = try engine.execute("SELECT id, \(call) OVER (PARTITION BY p ORDER BY id) AS v FROM w ORDER BY id")
                let rowByRow = try engine.execute("SELECT id, \(call) OVER (PARTITION BY p ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS v FROM w ORDER BY id")
                #expect(typed.columns[1].type == rowByRow.columns[1].type, "\(call)")
                #expect((0..<n).map(typed.row) == (0..<n).map(rowByRow.row), "round \(round): \(call)")
                let whole = try engine.execute("SELECT id, \(call) OVER (PARTITION BY p) AS v FROM w ORDER BY id")
                let wholeRows = try engine.execute("SELECT id, \(call) OVER (PARTITION BY p ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS v FROM w ORDER BY id")
                #expect((0..<n).map(whole.row).map { $0[1] } .count == n)
                #expect(zip((0..<n).map(whole.row), (0..<n).map(wholeRows.row)).allSatisfy { a, b in
                    if case .double(let x) = a[1], case .double(let y) = b[1] { return abs(x - y) <= 1e-9 * max(1, abs(x)) }
                    return a == b
                }, "round \(round): \(call) over the whole partition")
            }
        }
        // Peers (equal ORDER BY values) enter the frame together.
        var engine = SQLEngine(catalog: Catalog(warehouse: FileManager.default.temporaryDirectory.path))
        engine.inputs["t"] = Frame(names: ["o", "v"], columns: [Column(type: .int64, values: .int([1, 2, 2, 3])), Column(type: .int64, values: .int([10, 20, 30, 40]))])
        let peers = try engine.execute("SELECT o, sum(v) OVER (ORDER BY o) AS s, count(*) OVER (ORDER BY o) AS c FROM t ORDER BY o, v")
        #expect((0..<4).map { peers.row($0)[1] } == [.int(10), .int(60), .int(60), .int(100)])
        #expect((0..<4).map { peers.row($0)[2] } == [.int(1), .int(3), .int(3), .int(4)])
    }
}

@Suite("Memory limit")
struct MemoryLimitTests {
    @Test("sizes parse with K/M/G/T units (powers of 1024); anything else is refused with what to write")
    func parsing() throws {
        #expect(try MemoryLimit(parsing: "512MB").bytes == 512 << 20)
        #expect(try MemoryLimit(parsing: "2g").bytes == 2 << 30)
        #expect(try MemoryLimit(parsing: "1.5GiB").bytes == 3 << 29)
        #expect(try MemoryLimit(parsing: " 1500000 ").bytes == 1_500_000)
        for bad in ["", "lots", "-1GB", "0", "12XB", "GB"] {
            #expect(throws: KilnError.self, "\(bad)") { try MemoryLimit(parsing: bad) }
        }
    }

    @Test("a query past its limit stops with RESOURCE_EXHAUSTED naming the step and the way out; under it, nothing changes")
    func stops() throws {
        // A limit of 0 bytes over a baseline of 0: any resident process is past it (no timing involved).
        let none = MemoryLimit(bytes: 0)
        do {
            try none.check("the step Sort")
            Issue.record("no error")
        } catch let error as KilnError {
            #expect(error.code == .resourceExhausted && error.httpStatus() == 429)
            #expect(error.message.contains("the step Sort") && error.message.contains("--memory-limit") && error.message.contains("KILN_SQL_MEMORY_LIMIT"))
        }
        try MemoryLimit(bytes: 1 << 50).startingNow().check("anything")
        // Through the engine: the limit is checked after steps (a fresh baseline per statement).
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-memory-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var engine = SQLEngine(catalog: Catalog(warehouse: root))
        engine.memoryLimit = MemoryLimit(bytes: 1 << 40)
        #expect(try engine.execute("SELECT count(*) FROM range(1000)").row(0) == [.int(1000)])
    }
}
