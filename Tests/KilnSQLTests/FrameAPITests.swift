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

    @Test("key sets (bitmap and hashed), restricted groupings, integer join pairs")
    func kernels() throws {
        let dense = KeySet([5, 9, 5, 700])
        #expect([4, 5, 9, 700, 701, -3].map(dense.contains) == [false, true, true, true, false, false])
        let sparse = KeySet([Int64.min, 0, Int64.max])
        #expect([Int64.min, 0, Int64.max, 1].map(sparse.contains) == [true, true, true, false])
        #expect(!KeySet([]).contains(0))
        let filtered = try Self.frame.filter(.inKeys(.column("id"), KeySet([2, 4, 6])))
        #expect(filtered.columns[0].values == .int([2, 4, 6]))

        // Rows failing the mask leave the groups; a group with no passing row disappears.
        var grouping = Grouping(keys: [Self.frame.columns[1]], rows: 6)  // us, eu, us, null, eu, us
        #expect(grouping.count == 3)
        grouping.restrict(to: Column(type: .bool, values: .bool([false, true, true, false, true, true])))
        #expect(grouping.firstRow == [1, 2])  // eu first (row 1), then us (row 2); the null group is gone
        #expect(grouping.groupOf == [2, 0, 1, 2, 0, 1])  // 2: the dropped rows

        let pairs = try Frame.equiJoinPairs(leftKeys: [Column.from([.int(1), .null, .int(3), .int(1)], type: .int64)],
                                            rightKeys: [Column.from([.int(1), .int(1), .null, .int(3)], type: .int64)], leftRows: 4, rightRows: 4)
        #expect(pairs.left == [0, 0, 2, 3, 3] && pairs.right == [0, 1, 3, 0, 1])
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
