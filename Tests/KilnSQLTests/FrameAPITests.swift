import Foundation
import KilnCore
import KilnFrame
import Testing

@Suite("DataFrame API")
struct FrameAPITests {
    static let frame = Frame(names: ["id", "region", "amount"], columns: [
        Column(type: .int64, values: .int([1, 2, 3, 4, 5, 6])),
        Column.from([.string("us"), .string("eu"), .string("us"), .null, .string("eu"), .string("us")], type: .string),
        Column.from([.double(10), .double(2.5), .null, .double(7), .double(1), .double(4)], type: .float64),
    ])

    @Test("filter, withColumn, groupBy/agg and sort compose")
    func pipeline() throws {
        let out = try Self.frame
            .filter(.binary(">", .column("amount"), .literal(.double(1.5))))
            .withColumn("double", .binary("*", .column("amount"), .literal(.int(2))))
            .groupBy("region").agg(("count", nil, "n"), ("sum", "double", "total"), ("max", "id", "last"))
            .sort(("total", descending: true))
        #expect(out.names == ["region", "n", "total", "last"])
        #expect((0..<out.rowCount).map(out.row) == [
            [.string("us"), .int(2), .double(28), .int(6)], [.null, .int(1), .double(14), .int(4)], [.string("eu"), .int(1), .double(5), .int(2)],
        ])
    }

    @Test("nulls: dropna and fillna; duplicates; describe")
    func cleaning() throws {
        #expect(try Self.frame.dropna().rowCount == 4)
        #expect(try Self.frame.dropna(["amount"]).rowCount == 5)
        let filled = try Self.frame.fillna(["region": .string("??"), "amount": .int(0)])
        #expect(filled.columns[1].value(3) == .string("??") && filled.columns[2].value(2) == .double(0))
        #expect(try Self.frame.dropDuplicates(["region"]).column("id") == Column(type: .int64, values: .int([1, 2, 4])))
        let d = try Self.frame.describe()
        #expect(d.names == ["summary", "id", "amount"] && d.columns[2].value(0) == .double(5) && d.columns[1].value(1) == .double(3.5))
    }

    @Test("joins keep unmatched rows as asked")
    func joins() throws {
        let regions = Frame(names: ["region", "name"], columns: [Column.from([.string("us"), .string("ap")], type: .string),
                                                                 Column.from([.string("United States"), .string("Asia")], type: .string)])
        #expect(try Self.frame.join(regions, on: [("region", "region")]).rowCount == 3)
        let left = try Self.frame.join(regions, on: [("region", "region")], how: "left")
        #expect(left.rowCount == 6 && left.names == ["id", "region", "amount", "region_right", "name"])
        #expect(try Self.frame.join(regions, on: [("region", "region")], how: "full").rowCount == 7)
        #expect(try Self.frame.join(regions, on: [("region", "region")], how: "anti").rowCount == 3)
        #expect(throws: KilnError.self) { try Self.frame.join(regions, on: [("region", "region")], how: "sideways") }
    }

    @Test("random splits and samples are reproducible and cover every row once")
    func randomness() throws {
        let big = Frame(names: ["id"], columns: [Column(type: .int64, values: .int((0..<10_000).map(Int64.init)))])
        let parts = big.randomSplit([0.8, 0.2], seed: 42)
        #expect(parts[0].rowCount + parts[1].rowCount == 10_000)
        #expect(abs(Double(parts[1].rowCount) / 10_000 - 0.2) < 0.02)
        #expect(parts[1] == big.randomSplit([0.8, 0.2], seed: 42)[1])
        #expect(parts[1] != big.randomSplit([0.8, 0.2], seed: 43)[1])
        #expect(big.sample(fraction: 0.1, seed: 7) == big.sample(fraction: 0.1, seed: 7))
    }
}
