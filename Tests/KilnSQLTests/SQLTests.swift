import Foundation
import KilnCore
@testable import KilnFrame
import KilnLake
import KilnParquet
@testable import KilnSQL
import Testing

/// A warehouse with one small table, `main.default.t`: id, g (a group with a null), x (a double with a null).
final class Warehouse {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-sql-\(UUID().uuidString)").path
    let engine: SQLEngine

    init() throws {
        let schema = DeltaSchema([DeltaField(name: "id", type: .primitive("long")), DeltaField(name: "g", type: .primitive("string")),
                                  DeltaField(name: "x", type: .primitive("double"))])
        let table = try DeltaTable.create(at: root + "/main/default/t", schema: schema)
        let parquet = try schema.parquetSchema()
        var shredder = RecordShredder(schema: parquet)
        let rows: [(Int64, String?, Double?)] = [(1, "a", 1.5), (2, "a", nil), (3, "b", 4), (4, nil, 8), (5, "b", -1)]
        for (id, g, x) in rows {
            try shredder.append([.int64(id), g.map { .bytes(Array($0.utf8)) } ?? .null, x.map { .double($0) } ?? .null])
        }
        try table.write(LakeBatch(schema: parquet, columns: shredder.take()))
        engine = SQLEngine(catalog: Catalog(warehouse: root))
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func rows(_ sql: String) throws -> [[Value]] {
        let frame = try engine.execute(sql)
        return (0..<frame.rowCount).map(frame.row)
    }
}

@Suite("SQL")
struct SQLTests {
    @Test("grouping keeps nulls as a group; aggregates skip nulls")
    func grouping() throws {
        let w = try Warehouse()
        #expect(try w.rows("SELECT g, count(*) AS n, count(x) AS c, sum(x) AS s FROM t GROUP BY g ORDER BY g NULLS FIRST") == [
            [.null, .int(1), .int(1), .double(8)], [.string("a"), .int(2), .int(1), .double(1.5)], [.string("b"), .int(2), .int(2), .double(3)],
        ])
        #expect(try w.rows("SELECT count(*), sum(x) FROM t WHERE id > 100") == [[.int(0), .null]])
    }

    @Test("conditions that read no column are computed once: EXPLAIN shows the literal and skipping uses it")
    func constantFolding() throws {
        let w = try Warehouse()
        #expect(try w.rows("SELECT id FROM t WHERE id < 1 + 2 AND g = concat('a', '') ORDER BY id") == [[.int(1)], [.int(2)]])
        let plan = try w.engine.execute("EXPLAIN SELECT id FROM t WHERE id < 1 + 2 AND g = concat('a', '') AND x > CAST(NULL AS DOUBLE)")
        let scan = try #require((0..<plan.rowCount).map { plan.row($0).map { if case .string(let s) = $0 { return s }; return "" }.joined(separator: " ") }
            .first { $0.contains("Scan") })
        #expect(scan.contains("(id < 3)") && scan.contains("(g = 'a')") && scan.contains("skipping on: (id < 3 AND g = 'a')"), "\(scan)")
        #expect(scan.contains("CAST(NULL"), "a NULL keeps its expression (its literal would lose the type): \(scan)")
    }

    @Test("three-valued logic in WHERE: null comparisons drop rows, IS NULL finds them")
    func nulls() throws {
        let w = try Warehouse()
        // ORDER BY an output's name that is also a column's: the output wins, as in DuckDB and Spark.
        #expect(try w.rows("SELECT g, count(*) AS x FROM t GROUP BY g ORDER BY x DESC, g NULLS FIRST") == [
            [.string("a"), .int(2)], [.string("b"), .int(2)], [.null, .int(1)],
        ])
        #expect(try w.rows("SELECT id, -id AS x FROM t ORDER BY x LIMIT 2") == [[.int(5), .int(-5)], [.int(4), .int(-4)]])
        #expect(try w.rows("SELECT id FROM t WHERE x > 0 OR g = 'zzz' ORDER BY id") == [[.int(1)], [.int(3)], [.int(4)]])
        #expect(try w.rows("SELECT id FROM t WHERE NOT (x > 0) ORDER BY id") == [[.int(5)]])
        #expect(try w.rows("SELECT id FROM t WHERE x IS NULL OR g IS NULL ORDER BY id") == [[.int(2)], [.int(4)]])
        #expect(try w.rows("SELECT id FROM t WHERE id NOT IN (1, 2, NULL)") == [])
    }

    @Test("joins: inner, left with unmatched rows, semi and anti")
    func joins() throws {
        let w = try Warehouse()
        let left = "SELECT a.id, b.id FROM t a LEFT JOIN t b ON a.g = b.g AND a.id < b.id ORDER BY a.id, b.id NULLS FIRST"
        #expect(try w.rows(left) == [[.int(1), .int(2)], [.int(2), .null], [.int(3), .int(5)], [.int(4), .null], [.int(5), .null]])
        #expect(try w.rows("SELECT id FROM t a LEFT SEMI JOIN (SELECT g FROM t WHERE x < 0) b ON a.g = b.g ORDER BY id") == [[.int(3)], [.int(5)]])
        #expect(try w.rows("SELECT count(*) FROM t a LEFT ANTI JOIN t b ON a.id = b.id + 1") == [[.int(1)]])
    }

    @Test("correlated EXISTS, NOT EXISTS and IN become semi and anti joins")
    func correlated() throws {
        let w = try Warehouse()
        // Rows with another row of the same group and a larger id.
        #expect(try w.rows("SELECT id FROM t a WHERE EXISTS (SELECT 1 FROM t b WHERE b.g = a.g AND b.id > a.id) ORDER BY id") == [[.int(1)], [.int(3)]])
        #expect(try w.rows("SELECT id FROM t a WHERE NOT EXISTS (SELECT 1 FROM t b WHERE b.g = a.g AND b.id > a.id) ORDER BY id") == [[.int(2)], [.int(4)], [.int(5)]])
        #expect(try w.rows("SELECT id FROM t a WHERE id IN (SELECT b.id - 1 FROM t b WHERE b.g = a.g) ORDER BY id") == [[.int(1)]])
        // Uncorrelated ones still run once.
        #expect(try w.rows("SELECT count(*) FROM t WHERE EXISTS (SELECT 1 FROM t WHERE x < 0)") == [[.int(5)]])
    }

    @Test("window functions number, rank and accumulate within partitions")
    func windows() throws {
        let w = try Warehouse()
        let sql = "SELECT id, row_number() OVER (PARTITION BY g ORDER BY id DESC) AS r, sum(id) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS s FROM t ORDER BY id"
        #expect(try w.rows(sql) == [[.int(1), .int(2), .int(1)], [.int(2), .int(1), .int(3)], [.int(3), .int(2), .int(5)], [.int(4), .int(1), .int(7)],
                                    [.int(5), .int(1), .int(9)]])
    }

    @Test("text to dates and timestamps: one-digit months, real days only, UTC offsets")
    func dateCasts() throws {
        let w = try Warehouse()
        let row = try w.rows("SELECT CAST('2024-1-5' AS DATE), CAST('2024-02-31' AS DATE), CAST('2024-01-02 10:00:00' AS DATE), CAST('2024-01-02T10:00:00+02:00' AS TIMESTAMP)")
        #expect(row == [[.date(Dates.days(year: 2024, month: 1, day: 5)), .null, .date(Dates.days(year: 2024, month: 1, day: 2)),
                         .timestamp(Dates.days(year: 2024, month: 1, day: 2) * 86_400_000_000 + 8 * 3_600_000_000)]])
    }

    @Test("errors name the problem and where it is")
    func errors() throws {
        let w = try Warehouse()
        for (sql, words) in [("SELECT nope FROM t", "nope"), ("SELECT id FROM t WHERE", "end of"), ("SELECT g, count(*) FROM t", "GROUP BY"),
                             ("SELECT * FROM missing", "does not exist"), ("SELECT 'unterminated", "unterminated"),
                             ("SELECT a.id FROM t a JOIN t b ON a.id = b.id WHERE id = 1", "ambiguous"),
                             ("SELECT id FROM t a WHERE id NOT IN (SELECT id FROM t b WHERE b.g = a.g)", "NOT EXISTS")] {
            do {
                _ = try w.engine.execute(sql)
                Issue.record("\(sql) should fail")
            } catch let error as KilnError {
                #expect(error.message.contains(words), "\(sql): \(error.message)")
            }
        }
    }

    @Test("the statement service runs, waits, reports failures and binds typed parameters")
    func statements() async throws {
        let w = try Warehouse()
        let service = StatementService(warehouse: w.root)
        // The longest wait the API allows: other suites running in parallel can hold both cores for seconds.
        let ok = try await service.execute("SELECT count(*) FROM t WHERE id > :low", parameters: [.init(name: "low", value: "2", type: "INT")], wait: 50)
        #expect(ok.state == .succeeded && ok.result?.row(0) == [.int(3)])
        let bad = try await service.execute("SELECT nope FROM t", wait: 50)
        #expect(bad.state == .failed && bad.error?.code == .invalidParameterValue)
        await #expect(throws: KilnError.self) { try await service.execute("SELECT :x", parameters: [.init(name: "x", value: "y", type: "INT")], wait: 1) }
        await #expect(throws: KilnError.self) { try await service.get("missing") }
    }

    @Test("aggregates over many files merge partial results exactly (streaming GROUP BY)")
    func streamingAggregation() throws {
        let w = try Warehouse()
        // Two more files: the same rows with ids shifted, and a file whose rows the filter removes entirely.
        let table = try DeltaTable.open(w.root + "/main/default/t")
        let parquet = try table.snapshot().schema.parquetSchema()
        for (offset, g, x) in [(10, "a", 2.0), (20, "zzz", -50.0)] as [(Int64, String, Double)] {
            var shredder = RecordShredder(schema: parquet)
            for i in 1...3 { try shredder.append([.int64(offset + Int64(i)), .bytes(Array(g.utf8)), .double(x * Double(i))]) }
            try table.write(LakeBatch(schema: parquet, columns: shredder.take()))
        }
        #expect(try table.snapshot().files.count == 3)
        let rows = try w.rows("SELECT g, count(*) AS n, count(x) AS c, sum(x) AS s, avg(x) AS a, min(id) AS lo, max(x) AS hi FROM t WHERE x > -10 OR x IS NULL GROUP BY g ORDER BY g NULLS FIRST")
        #expect(rows == [
            [.null, .int(1), .int(1), .double(8), .double(8), .int(4), .double(8)],
            [.string("a"), .int(5), .int(4), .double(13.5), .double(3.375), .int(1), .double(6)],
            [.string("b"), .int(2), .int(2), .double(3), .double(1.5), .int(3), .double(4)],
        ])
        #expect(try w.rows("SELECT count(*), sum(x), avg(id) FROM t WHERE id > 1000") == [[.int(0), .null, .null]])
        #expect(try w.rows("SELECT count(*) AS n, sum(id) FROM t HAVING count(*) > 5") == [[.int(11), .int(117)]])
    }

    @Test("DESCRIBE DETAIL: one row with the table's partitioning, file count, size, properties and protocol")
    func describeDetail() throws {
        let w = try Warehouse()
        _ = try w.engine.execute("CREATE TABLE main.default.p (id BIGINT, region STRING) PARTITIONED BY (region) TBLPROPERTIES ('team' = 'ml')")
        _ = try w.engine.execute("INSERT INTO main.default.p VALUES (1, 'n'), (2, 's'), (3, 's')")
        let frame = try w.engine.execute("DESCRIBE DETAIL main.default.p")
        #expect(frame.rowCount == 1)
        let row = Dictionary(uniqueKeysWithValues: zip(frame.names, frame.row(0)))
        #expect(row["format"] == .string("delta") && row["name"] == .string("main.default.p"))
        #expect(row["partitionColumns"] == .string("[\"region\"]"))
        #expect(row["numFiles"] == .int(2))  // one file per partition
        let files = try FileManager.default.subpathsOfDirectory(atPath: w.root + "/main/default/p").filter { $0.hasSuffix(".parquet") }
        let size = try files.reduce(Int64(0)) { $0 + ((try FileManager.default.attributesOfItem(atPath: w.root + "/main/default/p/" + $1)[.size] as? Int64) ?? 0) }
        #expect(row["sizeInBytes"] == .int(size) && size > 0)
        #expect(row["properties"]?.text.contains("\"team\":\"ml\"") == true)
        #expect(row["location"] == .string(w.root + "/main/default/p"))
        if case .timestamp? = row["lastModified"] {} else { Issue.record("lastModified: \(String(describing: row["lastModified"]))") }
        #expect(throws: KilnError.self) { try w.engine.execute("DESCRIBE DETAIL main.default.nope") }
    }
}

@Suite("SQL functions")
struct SQLFunctionTests {
    @Test("a call is its body with the arguments cast in; functions call functions; unqualified names resolve in the current schema")
    func inlining() throws {
        let w = try Warehouse()
        _ = try w.engine.execute("CREATE FUNCTION main.default.scaled(v DOUBLE, k INT) RETURNS DOUBLE RETURN v * k")
        _ = try w.engine.execute("CREATE FUNCTION default.bucket(v DOUBLE) RETURNS STRING RETURN CASE WHEN scaled(v, 2) > 5 THEN 'hi' ELSE 'lo' END")
        #expect(try w.rows("SELECT id, main.default.scaled(x, 10), bucket(x) FROM t WHERE id <= 3 ORDER BY id") == [
            [.int(1), .double(15), .string("lo")], [.int(2), .null, .string("lo")], [.int(3), .double(40), .string("hi")],
        ])
        // The declared return type wins: an INT function over a double truncates as CAST does.
        _ = try w.engine.execute("CREATE OR REPLACE FUNCTION scaled(v DOUBLE, k INT) RETURNS BIGINT RETURN v * k")
        #expect(try w.rows("SELECT scaled(1.26, 10)") == [[.int(12)]])
        // A built-in name is never shadowed when called unqualified.
        _ = try w.engine.execute("CREATE FUNCTION upper(s STRING) RETURNS STRING RETURN 'shadow'")
        #expect(try w.rows("SELECT upper('a'), main.default.upper('a')") == [[.string("A"), .string("shadow")]])
        let called = try Parser.parse("SELECT bucket(x), upper(g) FROM t", functions: w.engine.catalog.functionResolver).functions
        #expect(called == ["main.default.bucket"])
        #expect(try w.rows("SHOW USER FUNCTIONS LIKE 'b*|s*'") == [[.string("main.default.bucket")], [.string("main.default.scaled")]])
    }

    @Test("DESCRIBE FUNCTION lists the signature; EXTENDED adds the body; describing needs what calling needs")
    func describe() throws {
        let w = try Warehouse()
        _ = try w.engine.execute("CREATE FUNCTION main.default.area(w DOUBLE, height DOUBLE) RETURNS DOUBLE COMMENT 'a rectangle' RETURN w * height")
        #expect(try w.rows("DESCRIBE FUNCTION area") == [
            [.string("Function:    main.default.area")], [.string("Type:        SCALAR")], [.string("Input:       w      DOUBLE")],
            [.string("             height DOUBLE")], [.string("Returns:     DOUBLE")],
        ])
        let extended = try w.rows("DESCRIBE FUNCTION EXTENDED main.default.area").map { $0[0] }
        #expect(extended.contains(.string("Body:        w * height")) && extended.contains(.string("Comment:     a rectangle")))
        #expect(throws: KilnError.self) { try w.engine.execute("DESCRIBE FUNCTION nope") }
        let refs = try StatementReferences.of("DESCRIBE FUNCTION area", catalog: w.engine.catalog)
        #expect(refs.functionsCalled == ["main.default.area"])
    }

    @Test("bad definitions and calls are clear errors; DROP removes; recursion stops")
    func errors() throws {
        let w = try Warehouse()
        #expect(throws: KilnError.self) { try w.engine.execute("CREATE FUNCTION f(a INT) RETURNS INT RETURN a + b") }
        #expect(throws: KilnError.self) { try w.engine.execute("CREATE FUNCTION f(a BLOB) RETURNS INT RETURN a") }
        #expect(throws: KilnError.self) { try w.engine.execute("CREATE FUNCTION f(a INT, A INT) RETURNS INT RETURN a") }
        _ = try w.engine.execute("CREATE FUNCTION f(a INT) RETURNS INT RETURN a + 1")
        #expect(throws: KilnError.self) { try w.engine.execute("CREATE FUNCTION f(a INT) RETURNS INT RETURN a") }  // exists
        _ = try w.engine.execute("CREATE FUNCTION IF NOT EXISTS f(a INT) RETURNS INT RETURN a")
        #expect(try w.rows("SELECT f(1)") == [[.int(2)]])
        #expect(throws: KilnError.self) { try w.engine.execute("SELECT f(1, 2)") }
        #expect(throws: KilnError.self) { try w.engine.execute("SELECT main.default.nope(1)") }
        _ = try w.engine.execute("CREATE OR REPLACE FUNCTION f(a INT) RETURNS INT RETURN f(a)")
        #expect(throws: KilnError.self) { try w.engine.execute("SELECT f(1)") }
        _ = try w.engine.execute("DROP FUNCTION f")
        _ = try w.engine.execute("DROP FUNCTION IF EXISTS f")
        #expect(throws: KilnError.self) { try w.engine.execute("DROP FUNCTION f") }
    }

    @Test("ALTER ... OWNER TO and COMMENT ON parse into the catalog's statements")
    func catalogStatements() throws {
        guard case .grants(let owner) = try Parser.parse("ALTER TABLE s.t OWNER TO `ada@example.com`").0,
              case .grants(let comment) = try Parser.parse("COMMENT ON SCHEMA main.s IS NULL").0,
              case .grants(let catalog) = try Parser.parse("ALTER CATALOG c OWNER TO analysts").0 else {
            Issue.record("not catalog statements")
            return
        }
        #expect(owner == GrantStatement(action: .setOwner, privileges: [], securableType: "table", name: ["s", "t"], principal: "ada@example.com"))
        #expect(comment.action == .comment && comment.comment == "" && comment.name == ["main", "s"])
        #expect(catalog.securableType == "catalog" && catalog.principal == "analysts")
        #expect(throws: KilnError.self) { try Parser.parse("COMMENT ON TABLE t IS 'x'") }
    }
}

@Suite("Top-N")
struct TopNTests {
    @Test("ORDER BY ... LIMIT picks the rows a full sort puts first, ties and nulls included, with OFFSET")
    func sameAsSorting() throws {
        let w = try Warehouse()
        _ = try w.engine.execute("""
            CREATE TABLE main.default.big AS SELECT id, id % 7 AS k, CASE WHEN id % 11 = 0 THEN NULL ELSE (id * 7919) % 1000 / 10.0 END AS v,
            CONCAT('s', CAST(id % 13 AS STRING)) AS s FROM range(5000)
            """)
        for order in ["v DESC", "v", "v NULLS FIRST", "k, v DESC", "s DESC, id", "k DESC, s, v NULLS FIRST", "v * -1 + k"] {
            let all = try w.rows("SELECT id, v, k, s FROM main.default.big ORDER BY \(order)")
            for (limit, offset) in [(10, 0), (1, 0), (25, 5), (0, 0), (3, 4990)] {
                let top = try w.rows("SELECT id, v, k, s FROM main.default.big ORDER BY \(order) LIMIT \(limit) OFFSET \(offset)")
                #expect(top == Array(all.dropFirst(offset).prefix(limit)), "ORDER BY \(order) LIMIT \(limit) OFFSET \(offset)")
            }
        }
        // A limit too large to add the offset to is every row after the offset.
        #expect(try w.rows("SELECT id FROM main.default.big ORDER BY id DESC LIMIT 9223372036854775807 OFFSET 4998") == [[.int(1)], [.int(0)]])
        // A window function in the outputs still sees every row.
        let ranked = try w.rows("SELECT id, row_number() OVER (ORDER BY id DESC) AS r FROM main.default.big ORDER BY id LIMIT 2")
        #expect(ranked == [[.int(0), .int(5000)], [.int(1), .int(4999)]])
    }
}

@Suite("Grouping codes")
struct GroupingCodesTests {
    @Test("wide integers, doubles and short strings get one dense code per distinct value, in order of first appearance")
    func denseCodes() {
        var generator = SystemRandomNumberGenerator()
        let distinct = (0..<30_000).map { _ in Int64.random(in: .min ... .max, using: &generator) }
        let values = (0..<200_000).map { _ in distinct[Int.random(in: 0..<distinct.count, using: &generator)] }
        let doubles = values.map { Double($0 % 5_000) }
        var strings = ByteColumn()
        for v in values { strings.append("k\(abs(v % 4_000))") }
        for column in [Column(type: .int64, values: .int(values)), Column(type: .float64, values: .double(doubles)),
                       Column(type: .string, values: .bytes(strings))] {
            let g = Grouping(keys: [column], rows: values.count)
            var codeOf: [Value: Int] = [:]
            var ok = true
            for i in 0..<values.count {
                let v = column.value(i)
                if let c = codeOf[v] { ok = ok && c == g.groupOf[i] } else { ok = ok && g.groupOf[i] == codeOf.count; codeOf[v] = g.groupOf[i] }
            }
            #expect(ok && g.count == codeOf.count, "\(column.type)")
            #expect(g.firstRow == g.firstRow.sorted())
        }
    }
}

@Suite("File skipping and EXPLAIN")
struct FileSkippingTests {
    /// The `files: N of M` part of a scan's EXPLAIN detail for `table`.
    static func files(_ w: Warehouse, _ sql: String, table: String) throws -> (read: Int, total: Int, detail: String) {
        let plan = try w.engine.execute(sql)
        let steps = try plan.column("step"), details = try plan.column("detail")
        let row = try #require((0..<plan.rowCount).first { steps.value($0).text.trimmingCharacters(in: .whitespaces) == "Scan \(table)" })
        let detail = details.value(row).text
        let match = try #require(detail.firstMatch(of: /files: (\d+) of (\d+)/))
        return (Int(match.1)!, Int(match.2)!, detail)
    }

    @Test("a partitioned table: EXPLAIN shows the pushed filter and the partitions' files skipped; answers are unchanged")
    func partitioned() throws {
        let w = try Warehouse()
        _ = try w.engine.execute("CREATE TABLE main.default.p (id BIGINT, c STRING, x DOUBLE) PARTITIONED BY (c)")
        for batch in 0..<3 {
            let values = (0..<40).map { i in "(\(batch * 40 + i), 'c\(i % 5)', \(Double(i) / 4))" }.joined(separator: ", ")
            _ = try w.engine.execute("INSERT INTO main.default.p VALUES \(values)")
        }
        let scan = try Self.files(w, "EXPLAIN SELECT sum(x) FROM main.default.p WHERE c = 'c3' AND x >= 0", table: "main.default.p")
        #expect(scan.total == 15 && scan.read == 3, "\(scan.detail)")
        #expect(scan.detail.contains("filter: ((c = 'c3') AND (x >= 0))") && scan.detail.contains("skipped"), "\(scan.detail)")
        #expect(try w.rows("SELECT count(*), sum(x) FROM main.default.p WHERE c = 'c3' AND x >= 0") == [[.int(24), .double(3 * (0.75 + 2 + 3.25 + 4.5 + 5.75 + 7 + 8.25 + 9.5))]])
        let range = try Self.files(w, "EXPLAIN SELECT id FROM main.default.p WHERE c IN ('c1', 'c2') OR c LIKE 'c4%'", table: "main.default.p")
        #expect(range.read == 9, "\(range.detail)")
        // A filter the statistics cannot use reads every file, and the answer still counts every match.
        let opaque = try Self.files(w, "EXPLAIN SELECT id FROM main.default.p WHERE upper(c) = 'C3'", table: "main.default.p")
        #expect(opaque.read == 15 && !opaque.detail.contains("skipping on"), "\(opaque.detail)")
        #expect(try w.rows("SELECT count(*) FROM main.default.p WHERE upper(c) = 'C3'") == [[.int(24)]])
    }

    @Test("a Z-ordered table: files are skipped on both clustered columns, and EXPLAIN ANALYZE counts the rows")
    func zOrdered() throws {
        let w = try Warehouse()
        _ = try w.engine.execute("CREATE TABLE main.default.z (a BIGINT, b BIGINT, v DOUBLE)")
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<4 {
            let values = (0..<500).map { _ in "(\(Int.random(in: 0..<64, using: &rng)), \(Int.random(in: 0..<64, using: &rng)), 1.0)" }
            _ = try w.engine.execute("INSERT INTO main.default.z VALUES " + values.joined(separator: ", "))
        }
        let expected = try w.rows("SELECT count(*) FROM main.default.z WHERE a < 8 AND b < 8")
        let table = try DeltaTable.open(w.root + "/main/default/z")
        let result = try table.optimize(targetSize: 600, zOrderBy: ["a", "b"])
        #expect(result.filesAdded >= 8, "\(result.filesAdded) files")
        for query in ["SELECT count(*) FROM main.default.z WHERE a < 8 AND b < 8", "SELECT count(*) FROM main.default.z WHERE b BETWEEN 60 AND 63 AND a >= 56"] {
            let scan = try Self.files(w, "EXPLAIN " + query, table: "main.default.z")
            #expect(scan.read * 4 <= scan.total, "\(query): \(scan.detail)")
        }
        #expect(try w.rows("SELECT count(*) FROM main.default.z WHERE a < 8 AND b < 8") == expected)
        let analyzed = try w.engine.execute("EXPLAIN ANALYZE SELECT count(*) FROM main.default.z WHERE a < 8 AND b < 8")
        #expect(analyzed.names == ["step", "detail", "rows", "time_ms"])
        let total = try #require((0..<analyzed.rowCount).first { try analyzed.column("step").value($0).text == "Total" })
        #expect(try analyzed.column("rows").value(total) == .int(1))
    }

    @Test("EXPLAIN reads no data; EXPLAIN of a statement that is not a query is refused")
    func explainIsPlanOnly() throws {
        let w = try Warehouse()
        let plan = try w.engine.execute("EXPLAIN SELECT g, count(*) FROM t WHERE id > 2 GROUP BY g ORDER BY g")
        #expect(plan.names == ["step", "detail"])
        let steps = (0..<plan.rowCount).map { (try? plan.column("step").value($0).text) ?? "" }.map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(steps.contains("Scan t") && steps.contains { $0.hasPrefix("Aggregate") } && steps.contains("Sort"), "\(steps)")
        #expect(throws: KilnError.self) { try w.engine.execute("EXPLAIN DELETE FROM t") }
    }
}

@Suite("Planner rewrites")
struct PlannerRewriteTests {
    @Test("the shared conjuncts of an OR become join keys (TPC-H q19's shape), and decimal literal arithmetic is exact")
    func orFactoringAndExactLiterals() throws {
        let w = try Warehouse()
        let factored = "SELECT a.id, b.id FROM t a, t b WHERE (a.id = b.id AND a.x > 1) OR (a.id = b.id AND b.g = 'b') ORDER BY a.id"
        #expect(try w.rows(factored) == [[.int(1), .int(1)], [.int(3), .int(3)], [.int(4), .int(4)], [.int(5), .int(5)]])
        #expect(try w.rows("SELECT 0.06 - 0.01 AS d, 0.1 + 0.2 AS s, 3 * 1.1 AS m") == [[.double(0.05), .double(0.3), .double(3.3)]])
        #expect(try w.rows("SELECT abs(coalesce(x, 2)) AS v FROM t WHERE id > 100") == [])
        #expect(try w.rows("SELECT c_count, count(*) FROM (SELECT g, count(*) FROM t GROUP BY g) AS c (g, c_count) GROUP BY c_count ORDER BY c_count")
                == [[.int(1), .int(1)], [.int(2), .int(2)]])
        #expect(try w.rows("SELECT substring(g FROM 1 FOR 1) AS s, substr('kiln' FROM 2) AS r FROM t WHERE id = 1") == [[.string("a"), .string("iln")]])
        #expect(try w.rows("WITH m AS (SELECT max(x) AS top FROM t) SELECT id FROM t WHERE x = (SELECT top FROM m)") == [[.int(4)]])
    }
}

@Suite("Sort order")
struct SortOrderTests {
    @Test("the normalized-key sort gives the comparators' order: nulls first/last, NaN, -0, descending, ties by row")
    func normalizedKeysMatchTheComparators() throws {
        var rng = SystemRandomNumberGenerator()
        let specials: [Double] = [.nan, -.nan, 0, -0.0, .infinity, -.infinity, 1.5, -1.5]
        for round in 0..<40 {
            let n = 65 + round * 37
            let ints = (0..<n).map { _ in Int64.random(in: -5...5, using: &rng) * (round % 3 == 0 ? Int64.max / 8 : 1) }
            let doubles = (0..<n).map { _ in Bool.random(using: &rng) ? specials.randomElement(using: &rng)! : Double(Int.random(in: -3...3, using: &rng)) / 2 }
            let bools = (0..<n).map { _ in Bool.random(using: &rng) }
            let nulls = { (0..<n).map { _ in Int.random(in: 0..<6, using: &rng) != 0 } }
            let columns = [Column(type: .int64, values: .int(ints), validity: round % 2 == 0 ? nulls() : nil),
                           Column(type: .float64, values: .double(doubles), validity: round % 4 < 2 ? nulls() : nil),
                           Column(type: .bool, values: .bool(bools), validity: nulls())]
            let chosen = (0..<Int.random(in: 1...2, using: &rng)).map { _ in columns.randomElement(using: &rng)! }
            let keys = chosen.map { ($0, Bool.random(using: &rng), [nil, true, false].randomElement(using: &rng)!) }
            let fast = try #require(Frame.normalizedOrder(keys, count: n))
            let before = Frame.sortOrder(keys, count: n, limit: n / 8)  // the top-N heap (on normalized keys up to two)
            let all = Self.sorted(keys, count: n)
            #expect(fast == all, "round \(round)")
            #expect(before == Array(all.prefix(n / 8)), "round \(round)")
        }
    }

    /// Every row in the order of `compare` over the keys, ties by row.
    static func sorted(_ keys: [(Column, Bool, Bool?)], count n: Int) -> [Int] {
        Array(0..<n).sorted { a, b in
            for key in keys {
                let c = compare(key.0, a, b, descending: key.1, nullsFirst: key.2)
                if c != 0 { return c < 0 }
            }
            return a < b
        }
    }

    /// Spark's order, written out independently: nulls by `nullsFirst` (default: first ascending), NaN above every
    /// number, -0 equal to 0.
    static func compare(_ c: Column, _ a: Int, _ b: Int, descending: Bool, nullsFirst: Bool?) -> Int {
        let first = nullsFirst ?? !descending
        switch (c.isNull(a), c.isNull(b)) {
        case (true, true): return 0
        case (true, false): return first ? -1 : 1
        case (false, true): return first ? 1 : -1
        default: break
        }
        var order = 0
        switch c.values {
        case .int(let v): order = v[a] < v[b] ? -1 : v[a] > v[b] ? 1 : 0
        case .double(let v):
            let x = v[a], y = v[b]
            order = x.isNaN || y.isNaN ? (x.isNaN == y.isNaN ? 0 : x.isNaN ? 1 : -1) : x < y ? -1 : x > y ? 1 : 0
        case .bool(let v): order = v[a] == v[b] ? 0 : v[a] ? 1 : -1
        case .bytes(let v): order = v[a] == v[b] ? 0 : v[a].lexicographicallyPrecedes(v[b]) ? -1 : 1
        }
        return descending ? -order : order
    }

    @Test("top-N led by a string key (eight-byte prefixes first) gives the sorted order: shared prefixes, zero bytes, empty values, ties")
    func stringPrefixes() throws {
        var rng = SystemRandomNumberGenerator()
        let pieces: [[UInt8]] = [[], [0], [0, 0], Array("a".utf8), Array("abcdefgh".utf8), Array("abcdefghi".utf8), Array("abcdefgh\0".utf8),
                                 Array("abcdefgg".utf8), [0xFF], Array("é".utf8), Array("z".utf8)]
        for round in 0..<30 {
            let n = 200 + round * 13
            var strings = ByteColumn()
            for _ in 0..<n { strings.append((0..<Int.random(in: 0...2, using: &rng)).flatMap { _ in pieces.randomElement(using: &rng)! }) }
            let ints = Column(type: .int64, values: .int((0..<n).map { _ in Int64.random(in: 0...3, using: &rng) }))
            let text = Column(type: .string, values: .bytes(strings))
            let keys = [(text, Bool.random(using: &rng), nil as Bool?), (ints, Bool.random(using: &rng), nil as Bool?)]
            let all = Self.sorted(keys, count: n)
            #expect(Frame.sortOrder(keys, count: n, limit: n / 8) == Array(all.prefix(n / 8)), "round \(round)")
        }
    }
}

@Suite("ASOF JOIN")
struct AsofJoinTests {
    @Test("each label row gets the latest feature row at or before it; ties go to the newest row; LEFT keeps the rest")
    func pointInTime() throws {
        let w = try Warehouse()
        _ = try w.engine.execute("CREATE TABLE main.default.labels (id BIGINT, k BIGINT, ts DATE)")
        _ = try w.engine.execute("CREATE TABLE main.default.feats (k BIGINT, ts DATE, v DOUBLE)")
        _ = try w.engine.execute("""
            INSERT INTO main.default.labels VALUES (1, 1, DATE '2024-01-05'), (2, 1, DATE '2024-01-10'), (3, 2, DATE '2024-01-01'),
              (4, NULL, DATE '2024-01-10'), (5, 1, NULL), (6, 2, DATE '2024-02-01')
            """)
        _ = try w.engine.execute("""
            INSERT INTO main.default.feats VALUES (1, DATE '2024-01-05', 0.5), (1, DATE '2024-01-01', 0.1), (2, DATE '2024-01-02', 2.0),
              (1, DATE '2024-01-05', 0.7), (NULL, DATE '2024-01-01', 9.0), (2, NULL, 8.0)
            """)
        let left = try w.rows("SELECT l.id, f.v FROM labels l ASOF LEFT JOIN feats f ON l.k = f.k AND l.ts >= f.ts ORDER BY l.id")
        #expect(left == [[.int(1), .double(0.7)], [.int(2), .double(0.7)], [.int(3), .null], [.int(4), .null], [.int(5), .null], [.int(6), .double(2.0)]])
        let strict = try w.rows("SELECT l.id, f.v FROM labels l ASOF JOIN feats f ON l.k = f.k AND f.ts < l.ts ORDER BY l.id")
        #expect(strict == [[.int(1), .double(0.1)], [.int(2), .double(0.7)], [.int(6), .double(2.0)]])
        let forward = try w.rows("SELECT l.id, f.v FROM labels l ASOF JOIN feats f ON l.k = f.k AND l.ts <= f.ts ORDER BY l.id")
        #expect(forward == [[.int(1), .double(0.7)], [.int(3), .double(2.0)]])
        #expect(throws: KilnError.self) { try w.rows("SELECT * FROM labels l ASOF JOIN feats f ON l.k = f.k") }
        #expect(throws: KilnError.self) { try w.rows("SELECT * FROM labels l ASOF JOIN feats f ON l.k = f.k AND l.ts >= f.ts AND f.v > 0") }
    }
}

@Suite("Streamed top-N")
struct StreamedTopNTests {
    @Test("ORDER BY ... LIMIT over a table of many files keeps each chunk's first rows: the same rows, ties by position")
    func sameAsSortingEverything() throws {
        let w = try Warehouse()
        _ = try w.engine.execute("CREATE TABLE main.default.many (id BIGINT, v DOUBLE, s STRING)")
        var rng = SystemRandomNumberGenerator()
        for batch in 0..<6 {
            let values = (0..<200).map { i in
                let v = Int.random(in: 0..<5, using: &rng) == 0 ? "NULL" : "\(Double(Int.random(in: 0..<20, using: &rng)) / 2)"
                return "(\(batch * 200 + i), \(v), 's\(Int.random(in: 0..<7, using: &rng))')"
            }
            _ = try w.engine.execute("INSERT INTO main.default.many VALUES " + values.joined(separator: ", "))
        }
        for (order, limit, offset) in [("v DESC", 7, 0), ("v NULLS FIRST, s DESC", 25, 3), ("s, v DESC NULLS LAST", 1, 0), ("v * -1", 40, 10)] {
            let all = try w.rows("SELECT id, v, s FROM main.default.many ORDER BY \(order)")
            let top = try w.rows("SELECT id, v, s FROM main.default.many WHERE id >= 0 ORDER BY \(order) LIMIT \(limit) OFFSET \(offset)")
            #expect(top == Array(all.dropFirst(offset).prefix(limit)), "\(order)")
        }
        let plan = try w.engine.execute("EXPLAIN ANALYZE SELECT id FROM main.default.many ORDER BY v DESC LIMIT 5")
        let steps = (0..<plan.rowCount).map { (try? plan.column("detail").value($0).text) ?? "" }
        #expect(steps.contains { $0.contains("files: 6 of 6") && $0.contains("rows go straight into the next step") }, "\(steps)")
    }
}

@Suite("Primary keys")
struct PrimaryKeyTests {
    static func key(_ w: Warehouse, _ table: String) throws -> PrimaryKey? {
        PrimaryKey(properties: try DeltaTable.open(w.root + "/main/default/" + table).snapshot().metadata.configuration)
    }

    @Test("CREATE TABLE with a PRIMARY KEY (and a TIMESERIES column) keeps it on the table; bad keys are refused")
    func declared() throws {
        let w = try Warehouse()
        _ = try w.engine.execute("CREATE TABLE main.default.f (id BIGINT NOT NULL, ts TIMESTAMP NOT NULL, x DOUBLE, CONSTRAINT f_pk PRIMARY KEY (ID, ts TIMESERIES))")
        #expect(try Self.key(w, "f") == PrimaryKey(name: "f_pk", columns: ["id", "ts"], timeseries: ["ts"]))
        _ = try w.engine.execute("CREATE TABLE main.default.g (k STRING NOT NULL, v INT, PRIMARY KEY (k))")
        #expect(try Self.key(w, "g") == PrimaryKey(name: "g_pk", columns: ["k"]))
        for (sql, words) in [("CREATE TABLE main.default.h (id BIGINT, PRIMARY KEY (id))", "nullable"),
                             ("CREATE TABLE main.default.h (id BIGINT NOT NULL, PRIMARY KEY (nope))", "does not have"),
                             ("CREATE TABLE main.default.h (id BIGINT NOT NULL, n INT NOT NULL, PRIMARY KEY (id, n TIMESERIES))", "TIMESTAMP or DATE"),
                             ("CREATE TABLE main.default.h (id BIGINT NOT NULL, PRIMARY KEY (id), PRIMARY KEY (id))", "one PRIMARY KEY")] {
            #expect { try w.engine.execute(sql) } throws: { "\($0)".contains(words) }
            #expect(!FileManager.default.fileExists(atPath: w.root + "/main/default/h/_delta_log"), "\(sql)")
        }
    }

    @Test("ALTER TABLE adds and drops a primary key; a second one is refused; rows are untouched")
    func altered() throws {
        let w = try Warehouse()
        _ = try w.engine.execute("CREATE TABLE main.default.f (id BIGINT NOT NULL, day DATE NOT NULL, x DOUBLE)")
        _ = try w.engine.execute("INSERT INTO main.default.f VALUES (1, DATE '2024-01-01', 0.5)")
        _ = try w.engine.execute("ALTER TABLE main.default.f ADD CONSTRAINT f_pk PRIMARY KEY (id, day TIMESERIES)")
        #expect(try Self.key(w, "f") == PrimaryKey(name: "f_pk", columns: ["id", "day"], timeseries: ["day"]))
        #expect { try w.engine.execute("ALTER TABLE main.default.f ADD CONSTRAINT other PRIMARY KEY (id)") } throws: { "\($0)".contains("already has the primary key f_pk") }
        #expect { try w.engine.execute("ALTER TABLE main.default.t ADD CONSTRAINT t_pk PRIMARY KEY (id)") } throws: { "\($0)".contains("nullable") }
        _ = try w.engine.execute("ALTER TABLE main.default.f DROP CONSTRAINT f_pk")
        #expect(try Self.key(w, "f") == nil)
        _ = try w.engine.execute("ALTER TABLE main.default.f ADD CONSTRAINT k PRIMARY KEY (id)")
        _ = try w.engine.execute("ALTER TABLE main.default.f DROP PRIMARY KEY")
        #expect(try Self.key(w, "f") == nil)
        #expect(try w.rows("SELECT id, x FROM main.default.f") == [[.int(1), .double(0.5)]])
    }
}
