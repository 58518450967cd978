import Foundation
import KilnCore
import KilnFeatures
import KilnFrame
import KilnLake
import Testing

@Suite("Training sets")
struct TrainingSetTests {
    static let day: Int64 = 86_400_000_000

    /// A time-series feature table: keys 1 and 2, rows on days 1, 3, 3 (a tie: the later row wins), 5.
    static let table = Frame(names: ["id", "ts", "x"], columns: [
        Column(type: .int64, values: .int([1, 1, 1, 2, 1])),
        Column(type: .timestamp, values: .int([1 * day, 3 * day, 3 * day, 2 * day, 5 * day])),
        Column.from([.double(10), .double(30), .double(31), .null, .double(50)], type: .float64),
    ])
    static let pk = PrimaryKey(name: "pk", columns: ["id", "ts"], timeseries: ["ts"])
    static let labels = Frame(names: ["id", "at"], columns: [
        Column(type: .int64, values: .int([1, 1, 1, 2, 3, 1])),
        Column.from([.timestamp(0), .timestamp(3 * day), .timestamp(4 * day), .timestamp(9 * day), .timestamp(day), .null], type: .timestamp),
    ])

    func join(_ lookup: FeatureLookup, labels: Frame = labels) throws -> [Value] {
        let out = try TrainingSet.join(labels: labels, lookups: [lookup], sources: ["c.s.t": .init(frame: Self.table, primaryKey: Self.pk)])
        #expect(out.rowCount == labels.rowCount)
        return (0..<out.rowCount).map { out.columns.last!.value($0) }
    }

    @Test("the newest row at or before the label's time wins, whole; ties go to the later row; no match is null or the default")
    func pointInTime() throws {
        let lookup = FeatureLookup(tableName: "c.s.t", lookupKey: ["id"], timestampLookupKey: "at")
        #expect(try join(lookup) == [.null, .double(31), .double(31), .null, .null, .null])
        var withDefault = lookup
        withDefault.defaultValues = ["x": .int(-1)]
        // Key 2's row matched with a null x: the null stays (defaults are for rows with no match).
        #expect(try join(withDefault) == [.double(-1), .double(31), .double(31), .null, .double(-1), .double(-1)])
        var windowed = lookup
        windowed.lookbackMicros = Self.day
        #expect(try join(windowed) == [.null, .double(31), .double(31), .null, .null, .null])
        windowed.lookbackMicros = Self.day - 1
        #expect(try join(windowed) == [.null, .double(31), .null, .null, .null, .null])
    }

    @Test("lookups are checked against the table's key before anything is read")
    func checks() throws {
        let keys: [String: (primaryKey: PrimaryKey, columns: [String])] = ["c.s.t": (Self.pk, ["id", "ts", "x"])]
        func refusal(_ lookups: [FeatureLookup], labels: [String] = ["id", "at"]) -> String {
            do {
                _ = try TrainingSet.plan(lookups, labelColumns: labels, keys: keys)
                return ""
            } catch { return "\(error)" }
        }
        #expect(refusal([FeatureLookup(tableName: "c.s.t", lookupKey: ["id"])]).contains("timestamp_lookup_key"))
        #expect(refusal([FeatureLookup(tableName: "c.s.t", lookupKey: ["id"], featureNames: ["y"], timestampLookupKey: "at")]).contains("no feature 'y'"))
        #expect(refusal([FeatureLookup(tableName: "c.s.t", lookupKey: ["nope"], timestampLookupKey: "at")]).contains("'nope'"))
        let a = FeatureLookup(tableName: "c.s.t", lookupKey: ["id"], timestampLookupKey: "at", lookbackMicros: 5)
        var b = a
        b.lookbackMicros = nil
        b.renameOutputs = ["x": "x2"]
        #expect(refusal([a, b]).contains("one lookback window"))
        #expect(refusal([a, a]).contains("Two lookups give a column named 'x'"))
        #expect(refusal([FeatureLookup(tableName: "c.s.u", lookupKey: ["id"])]).contains("does not exist"))
        // Matching every key column, time included, is an exact join.
        #expect(try TrainingSet.plan([FeatureLookup(tableName: "c.s.t", lookupKey: ["id", "at"])], labelColumns: ["id", "at"], keys: keys)["c.s.t"] == ["id", "ts", "x"])
    }
}
