import Foundation
import KilnCore
@testable import KilnFrame
import KilnLake
import KilnParquet
@testable import KilnSQL
import Testing

/// Filters on string columns that files store dictionary-encoded are decided once per distinct value; the rows
/// that come out must be exactly those a row-by-row evaluation keeps, for every predicate shape, with nulls, across
/// files where the column is dictionary-encoded and where it is plain.
@Suite("Filters decided on dictionaries")
struct DictionaryFilterTests {
    static let pool = ["", "a", "ab", "abc", "Ab", "é", "éa", "a%b", "x_y", "zz", "s001", "s0017", "S001", "  a ", "7"]

    /// Three files: two with `s` dictionary-encoded (nulls in one), one where nearly every `s` is distinct, which
    /// the writer stores PLAIN.
    static func warehouse(seed: UInt64) throws -> (root: String, engine: SQLEngine) {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-dict-\(UUID().uuidString)").path
        let schema = DeltaSchema([DeltaField(name: "id", type: .primitive("long")), DeltaField(name: "s", type: .primitive("string")),
                                  DeltaField(name: "t", type: .primitive("string")), DeltaField(name: "v", type: .primitive("double"))])
        let table = try DeltaTable.create(at: root + "/main/default/t", schema: schema)
        let parquet = try schema.parquetSchema()
        var rng = SplitMix64(seed: seed)
        var id: Int64 = 0
        for (rows, nulls, unique) in [(2000, false, false), (2000, true, false), (9000, true, true)] {
            var shredder = RecordShredder(schema: parquet)
            for _ in 0..<rows {
                id += 1
                let s: String? = nulls && rng.below(7) == 0 ? nil
                    : unique && rng.below(20) != 0 ? "unique-value-\(id)" : pool[Int(rng.below(UInt64(pool.count)))]
                let t: String? = rng.below(9) == 0 ? nil : pool[Int(rng.below(UInt64(pool.count)))]
                try shredder.append([.int64(id), s.map { .bytes(Array($0.utf8)) } ?? .null, t.map { .bytes(Array($0.utf8)) } ?? .null,
                                     .double(Double(rng.below(1000)) / 10)])
            }
            try table.write(LakeBatch(schema: parquet, columns: shredder.take()))
        }
        return (root, SQLEngine(catalog: Catalog(warehouse: root)))
    }

    static let filters = [
        "s LIKE 'a%'", "s NOT LIKE '%b'", "s LIKE 's001%'", "s IN ('a', 'é', 'zz')", "s NOT IN ('a', 'ab')", "s IS NULL",
        "s IS NOT NULL", "s = ''", "NOT (s = 'ab')", "s > 'ab' AND s <= 'zz'", "lower(s) = 'ab' OR s IS NULL",
        "substring(s, 2, 2) = '00' AND lower(s) LIKE '%7'", "coalesce(s, 'none') = 'none'", "length(s) = 0",
        "CASE WHEN s LIKE 'a%' THEN true END", "trim(s) = 'a' AND v > 20", "s LIKE 'a%' AND t LIKE '%b'", "s = t",
        "s LIKE 'unique-value-1%' AND id % 2 = 0", "s LIKE 'a%' OR v < 5", "upper(s) = 'S001' AND (t IS NULL OR t = 'a')",
    ]

    @Test("every filter shape keeps exactly the rows a row-by-row evaluation keeps", arguments: [1, 2] as [UInt64])
    func sameRows(seed: UInt64) throws {
        let (root, engine) = try Self.warehouse(seed: seed)
        defer { try? FileManager.default.removeItem(atPath: root) }
        func rows(_ sql: String) throws -> [[Value]] {
            let frame = try engine.execute(sql)
            return (0..<frame.rowCount).map(frame.row)
        }
        for filter in Self.filters {
            // The projection evaluates the predicate on every row; the WHERE goes through the scan.
            let all = try rows("SELECT id, s, t, (\(filter)) AS keep FROM t ORDER BY id")
            let want = all.filter { $0[3] == .bool(true) }.map { Array($0.prefix(3)) }
            let got = try rows("SELECT id, s, t FROM t WHERE \(filter) ORDER BY id")
            #expect(got == want, "seed \(seed): \(filter): \(got.count) rows, want \(want.count)")
            let counted = try rows("SELECT count(*), count(s), max(id) FROM t WHERE \(filter)")
            #expect(counted == [[.int(Int64(want.count)), .int(Int64(want.filter { $0[1] != .null }.count)), want.last?[0] ?? .null]],
                    "seed \(seed): \(filter) aggregated")
        }
    }

    @Test("a filter on one dictionary-encoded column hands the body only the passing rows, with no mask left")
    func decidedOnTheDictionary() throws {
        let (root, _) = try Self.warehouse(seed: 3)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let table = try DeltaTable.open(root + "/main/default/t")
        let filter = Expr.like(.column("s"), pattern: .literal(.string("a%")), negated: false)
        let seen = try Frame.mapChunks(table, plan: try table.plan(), columns: ["id", "s"], filter: filter) { frame, mask in
            (rows: frame.rowCount, masked: mask != nil, passing: (0..<frame.rowCount).filter {
                if case .string(let s) = frame.columns[1].value($0) { return s.hasPrefix("a") }
                return false
            }.count)
        }
        #expect(seen.count == 3, "\(seen)")
        // The two dictionary files (in whatever order the plan reads them): only passing rows, no mask. The PLAIN
        // file: every row and a mask.
        let decided = seen.filter { !$0.masked }, masked = seen.filter(\.masked)
        #expect(decided.count == 2 && decided.allSatisfy { $0.rows == $0.passing && $0.rows > 0 }, "\(seen)")
        #expect(masked.count == 1 && masked[0].rows == 9000, "\(seen)")
    }
}
