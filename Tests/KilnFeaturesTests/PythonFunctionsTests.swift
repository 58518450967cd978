import Foundation
import KilnCore
import KilnFeatures
import KilnFrame
import KilnSQL
import Testing

@Suite("Python feature functions")
struct PythonFunctionsTests {
    static func function(_ parameters: [(String, String)], returns: String, _ body: String) -> SQLFunction {
        SQLFunction(catalog: "main", schema: "default", name: "f", parameters: parameters.map { .init(name: $0.0, typeText: $0.1) },
                    returnsText: returns, body: body, language: .python)
    }

    let runner = PythonFunctions(log: FileManager.default.temporaryDirectory.appendingPathComponent("kiln-python-functions-test.log").path, timeout: 5)

    @Test("values cross into Python and back by their declared types; nulls stay null")
    func types() throws {
        let day: Int64 = 86_400_000_000
        let f = Self.function([("d", "DATE"), ("t", "TIMESTAMP"), ("b", "BINARY"), ("x", "DOUBLE"), ("ok", "BOOLEAN")], returns: "STRING", """
            if d is None:
                return None
            return f"{d.isoformat()}|{t.isoformat()}|{b.hex()}|{x}|{ok}"
            """)
        let arguments = [
            Column.from([.date(19_000), .null], type: .date), Column.from([.timestamp(3 * day + 1), .null], type: .timestamp),
            Column.from([.bytes([0, 255]), .null], type: .binary), Column.from([.double(.infinity), .null], type: .float64),
            Column.from([.bool(true), .null], type: .bool),
        ]
        let out = try runner.call(f, arguments: arguments, rows: 2)
        #expect(out.value(0) == .string("2022-01-08|1970-01-04T00:00:00.000001|00ff|inf|True") && out.value(1) == .null)
        let stamp = Self.function([("d", "DATE")], returns: "TIMESTAMP", "import datetime\nreturn datetime.datetime(d.year, d.month, d.day, 12)")
        #expect(try runner.call(stamp, arguments: [Column.from([.date(1)], type: .date)], rows: 1).value(0) == .timestamp(day + day / 2))
        let reversed = Self.function([("b", "BINARY")], returns: "BINARY", "return b[::-1]")
        #expect(try runner.call(reversed, arguments: [Column.from([.bytes([1, 171])], type: .binary)], rows: 1).value(0) == .bytes([171, 1]))
        let nan = Self.function([("x", "BIGINT")], returns: "DOUBLE", "return float('nan') if x else -float('inf')")
        let out2 = try runner.call(nan, arguments: [Column.from([.int(1), .int(0)], type: .int64)], rows: 2)
        #expect(out2.type == .float64 && out2.value(1) == .double(-.infinity))
        if case .double(let d) = out2.value(0) { #expect(d.isNaN) } else { Issue.record("not a double") }
    }

    @Test("an error names the function, the exception and the row; a wrong return type is an error; a hung call is stopped and the next one runs")
    func errors() throws {
        let divide = Self.function([("x", "BIGINT")], returns: "DOUBLE", "return 10 / x")
        let error = #expect(throws: KilnError.self) { try runner.call(divide, arguments: [Column.from([.int(5), .int(0)], type: .int64)], rows: 2) }
        #expect(error?.code == .invalidParameterValue && error?.message.contains("ZeroDivisionError") == true && error?.message.contains("row 2") == true)
        let wrong = Self.function([("x", "BIGINT")], returns: "BIGINT", "return 'seven'")
        let typed = #expect(throws: KilnError.self) { try runner.call(wrong, arguments: [Column.from([.int(5)], type: .int64)], rows: 1) }
        #expect(typed?.message.contains("integer") == true)
        let syntax = Self.function([("x", "BIGINT")], returns: "BIGINT", "return x +")
        #expect(throws: KilnError.self) { try runner.call(syntax, arguments: [Column.from([.int(5)], type: .int64)], rows: 1) }
        let quick = PythonFunctions(log: FileManager.default.temporaryDirectory.appendingPathComponent("kiln-python-hang.log").path, timeout: 1)
        let hang = Self.function([("x", "BIGINT")], returns: "BIGINT", "while True: pass")
        let stopped = #expect(throws: KilnError.self) { try quick.call(hang, arguments: [Column.from([.int(1)], type: .int64)], rows: 1) }
        #expect(stopped?.message.contains("did not answer") == true)
        let double = Self.function([("x", "BIGINT")], returns: "BIGINT", "return x * 2")
        #expect(try quick.call(double, arguments: [Column.from([.int(21)], type: .int64)], rows: 1).value(0) == .int(42))
    }

    @Test("SQL defines Python functions with Databricks' syntax; SQL statements refuse to call them, clearly")
    func sqlDefinitions() throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-pyfn-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: home) }
        var engine = SQLEngine(catalog: Catalog(warehouse: home.path))
        _ = try engine.execute("CREATE FUNCTION main.default.twice(x DOUBLE) RETURNS DOUBLE LANGUAGE PYTHON AS $$\n  return x * 2\n$$")
        let f = try #require(try engine.catalog.function("main", "default", "twice"))
        #expect(f.language == .python && f.body == "\n  return x * 2\n")
        let call = #expect(throws: KilnError.self) { try engine.execute("SELECT main.default.twice(1.0)") }
        #expect(call?.message.contains("Python function") == true)
        #expect(throws: KilnError.self) { try engine.execute("CREATE FUNCTION main.default.g(x DOUBLE) RETURNS DOUBLE AS $$ return x $$") }
        #expect(throws: KilnError.self) { try engine.execute("CREATE FUNCTION main.default.g(x DECIMAL(10,2)) RETURNS DOUBLE LANGUAGE PYTHON AS $$ return x $$") }
        #expect(throws: KilnError.self) { try engine.execute("CREATE FUNCTION main.default.g(x DOUBLE) RETURNS DOUBLE LANGUAGE PYTHON AS $$ return x") }
        let described = try engine.execute("DESCRIBE FUNCTION EXTENDED main.default.twice")
        #expect((0..<described.rowCount).contains { described.columns[0].value($0) == .string("Language:    PYTHON") })
    }
}
