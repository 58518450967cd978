import Foundation
import KilnCore
@testable import KilnLake
import KilnParquet
import Testing

/// Delta Acceptance Testing (DAT) reader cases: Spark-written tables in `tests/data/dat-golden-2022`, each read at
/// every expected version and compared with the expected rows as a multiset.
@Suite("DAT golden tables")
struct DATTests {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("tests/data/dat-golden-2022/reader_tests/generated").path
    }()

    /// Rows as canonical JSON text (keys sorted), so row order and column order do not matter.
    static func canonical(_ cells: [ParquetCell], nodes: [SchemaNode]) -> String {
        var object: [String: JSONValue] = [:]
        for (cell, node) in zip(cells, nodes) { object[node.name] = JSONCells.json(cell, node: node) }
        return JSONText.string(.object(object))
    }

    static func expectedRows(_ path: String) throws -> [String] {
        let reader = try ParquetFileReader(path: path)
        var rows: [String] = []
        let all = Array(reader.columns.indices)
        for group in reader.metadata.rowGroups.indices {
            let assembler = try RecordAssembler(schema: reader.schema, columns: Dictionary(uniqueKeysWithValues: zip(all, try reader.readRowGroup(group))))
            for row in 0..<assembler.rowCount { rows.append(canonical(try assembler.row(row), nodes: assembler.fields)) }
        }
        return rows.sorted()
    }

    @Test("each case reads equal to its expected rows at every version", arguments: ["basic_append", "basic_partitioned", "multi_partitioned", "with_schema_change"])
    func readCase(name: String) throws {
        let casePath = Self.root + "/" + name
        let table = try DeltaTable.open(casePath + "/delta")
        let latest = try #require(try table.log.latestVersion())
        for entry in try FileManager.default.contentsOfDirectory(atPath: casePath + "/expected") {
            let expectedDir = casePath + "/expected/" + entry
            let meta = try JSONValue.parse(try Data(contentsOf: URL(fileURLWithPath: expectedDir + "/table_version_metadata.json")))
            guard case .object(let m) = meta, case .number(let v)? = m["version"], let version = Int64(v) else { Issue.record("bad metadata"); continue }
            #expect(entry != "latest" || version == latest)
            let plan = try table.plan(version: version)
            if case .number(let r)? = m["min_reader_version"] { #expect(Int(r) == plan.snapshot.protocolVersion.minReaderVersion) }
            if case .number(let w)? = m["min_writer_version"] { #expect(Int(w) == plan.snapshot.protocolVersion.minWriterVersion) }
            let nodes = try table.nodes(plan.snapshot)
            var rows: [String] = []
            for file in plan.files {
                try table.readRows(file, plan: plan) { rows.append(Self.canonical($0, nodes: nodes)); return true }
            }
            #expect(!rows.isEmpty)
            #expect(rows.sorted() == (try Self.expectedRows(expectedDir + "/table_content.parquet")), "\(name) at \(entry)")
        }
    }
}
