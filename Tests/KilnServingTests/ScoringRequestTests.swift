import Foundation
import KilnCore
import KilnFrame
import KilnServing
import Testing

@Suite("Scoring requests")
struct ScoringRequestTests {
    func frame(_ text: String) throws -> Frame { try ScoringRequest.frame(body: Array(text.utf8)) }

    @Test("numeric dataframe_split bodies read directly equal the general reader, nulls and index included")
    func fastPathMatches() throws {
        let bodies = [
            #"{"dataframe_split": {"columns": ["a", "b"], "data": [[1, -2.5e-3], [null, 0.1], [3.000000000000001, 1E300]]}}"#,
            #"{ "dataframe_split" : { "index": [0, 1], "columns": ["x"], "data": [ [ 17 ], [ -0.0 ] ] } }"#,
        ]
        for body in bodies {
            let fast = try frame(body)
            let general = try ScoringRequest.frame(try ScoringRequest.fields(Array(body.utf8)))
            #expect(fast == general)
        }
        let parsed = try frame(bodies[0])
        #expect(parsed.names == ["a", "b"] && parsed.rowCount == 3)
        #expect(parsed.columns[0].isNull(1) && parsed.columns[1].value(2) == .double(1e300))
    }

    @Test("other shapes fall back to the general reader; bad ones are clear errors")
    func fallback() throws {
        let text = try frame(#"{"dataframe_split": {"columns": ["c"], "data": [["red"], [null]]}}"#)
        #expect(text.columns[0].type == .string)
        let records = try frame(#"{"dataframe_records": [{"a": 1}, {"a": 2}], "params": {"k": 1}}"#)
        #expect(records.rowCount == 2)
        #expect(throws: KilnError.self) { try frame(#"{"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}"#) }
        #expect(throws: KilnError.self) { try frame(#"{"nothing": 1}"#) }
        #expect(throws: KilnError.self) { try frame("not json") }
    }
}
