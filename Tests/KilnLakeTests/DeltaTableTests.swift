import Foundation
import KilnCore
@testable import KilnLake
import KilnParquet
import Testing

final class TableDirectory {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-lake-\(UUID().uuidString)").path
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

enum Rows {
    static let schema = DeltaSchema([
        DeltaField(name: "id", type: .primitive("long"), nullable: false),
        DeltaField(name: "region", type: .primitive("string")),
        DeltaField(name: "x", type: .primitive("double")),
        DeltaField(name: "day", type: .primitive("date")),
        DeltaField(name: "tags", type: .array(.primitive("string"), containsNull: true)),
    ])

    /// A batch of `n` rows starting at id `start`.
    static func batch(_ start: Int, _ n: Int, regions: [String] = ["us", "eu", "ap"]) throws -> LakeBatch {
        let parquet = try schema.parquetSchema()
        var shredder = RecordShredder(schema: parquet)
        for i in start..<start + n {
            try shredder.append([
                .int64(Int64(i)),
                i % 10 == 9 ? .null : .bytes(Array(regions[i % regions.count].utf8)),
                .double(Double(i) / 10),
                .int32(Int32(19_000 + i % 3)),
                i % 4 == 0 ? .null : .list([.bytes(Array("t\(i % 3)".utf8))]),
            ])
        }
        return LakeBatch(schema: parquet, columns: shredder.take())
    }

    static func ids(_ table: DeltaTable, version: Int64? = nil, where predicate: String? = nil) throws -> [Int64] {
        let plan = try table.plan(version: version, predicate: predicate)
        var ids: [Int64] = []
        for file in plan.files {
            try table.readRows(file, plan: plan, fields: ["id"]) { row in
                if case .int64(let id) = row[0] { ids.append(id) }
                return true
            }
        }
        return ids.sorted()
    }
}

@Suite("Delta tables")
struct DeltaTableTests {
    @Test("create, append, overwrite, time travel, history and checkpoints")
    func lifecycle() throws {
        let dir = TableDirectory()
        let table = try DeltaTable.create(at: dir.path, schema: Rows.schema, properties: ["delta.checkpointInterval": "3"])
        #expect(throws: KilnError.self) { try DeltaTable.create(at: dir.path, schema: Rows.schema) }
        for k in 0..<4 { try table.write(try Rows.batch(k * 100, 100)) }
        #expect(try Rows.ids(table) == (0..<400).map(Int64.init))
        #expect(try Rows.ids(table, version: 2) == (0..<200).map(Int64.init))
        #expect(FileManager.default.fileExists(atPath: dir.path + "/_delta_log/00000000000000000003.checkpoint.parquet"))
        let result = try table.write(try Rows.batch(1000, 10), mode: .overwrite)
        #expect(result.version == 5 && result.filesRemoved == 4)
        #expect(try Rows.ids(table) == (1000..<1010).map(Int64.init))
        #expect(try Rows.ids(table, version: 4).count == 400)
        let history = try table.log.history()
        #expect(history.map(\.version) == [5, 4, 3, 2, 1, 0])
        if case .string(let op)? = history.last?.info["operation"] { #expect(op == "CREATE TABLE") } else { Issue.record("no operation") }
        // A snapshot replayed from the checkpoint equals one replayed from commits alone.
        let fromCheckpoint = try table.snapshot(version: 4)
        try FileManager.default.removeItem(atPath: dir.path + "/_delta_log/00000000000000000003.checkpoint.parquet")
        let fromCommits = try table.snapshot(version: 4)
        #expect(fromCheckpoint.files == fromCommits.files && fromCheckpoint.metadata == fromCommits.metadata)
        #expect(fromCheckpoint.protocolVersion == fromCommits.protocolVersion)
        #expect(throws: KilnError.self) { try table.snapshot(version: 9) }
    }

    @Test("a table created with rows is one commit; a failed create leaves nothing behind")
    func createWithRows() throws {
        let dir = TableDirectory()
        let result = try DeltaTable.create(at: dir.path, schema: Rows.schema, partitionColumns: ["region"], name: "t") { emit in
            try emit(try Rows.batch(0, 50))
            try emit(try Rows.batch(50, 50))
        }
        #expect(result.version == 0 && result.rowsWritten == 100)
        let table = try DeltaTable.open(dir.path)
        #expect(try Rows.ids(table, version: 0) == (0..<100).map(Int64.init))
        #expect(try table.snapshot(version: 0).partitionColumns == ["region"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/_delta_log") == ["00000000000000000000.json"])
        #expect(throws: KilnError.self) { try DeltaTable.create(at: dir.path, schema: Rows.schema) { _ in } }

        let failed = TableDirectory()
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try DeltaTable.create(at: failed.path, schema: Rows.schema, partitionColumns: ["region"]) { emit in
                try emit(try Rows.batch(0, 50))
                throw Boom()
            }
        }
        #expect(throws: KilnError.self) { try DeltaTable.open(failed.path).snapshot() }
        let left = FileManager.default.enumerator(atPath: failed.path)?.allObjects.compactMap { $0 as? String } ?? []
        #expect(!left.contains { $0.hasSuffix(".parquet") || $0.hasSuffix(".json") })
    }

    @Test("partitioned writes, pruning and statistics skipping")
    func partitions() throws {
        let dir = TableDirectory()
        let table = try DeltaTable.create(at: dir.path, schema: Rows.schema, partitionColumns: ["region"])
        try table.write(try Rows.batch(0, 300))
        let snapshot = try table.snapshot()
        #expect(Set(snapshot.files.map { $0.partitionValues["region"] ?? nil }) == ["us", "eu", "ap", nil])
        #expect(snapshot.files.contains { $0.path.hasPrefix("region=__HIVE_DEFAULT_PARTITION__/") })
        let pruned = try table.plan(predicate: "region = 'eu'")
        #expect(pruned.files.count == 1 && pruned.skippedFiles == 3)
        #expect(try Rows.ids(table, where: "region = 'eu' AND id < 20") == [1, 4, 7, 10, 13, 16])
        #expect(try Rows.ids(table, where: "region IS NULL").count == 30)
        try table.write(try Rows.batch(10_000, 50))
        let stats = try table.plan(predicate: "id >= 10000")
        #expect(stats.files.count == 4 && stats.skippedFiles == 4)  // the first write's files end at id 299
        #expect(try Rows.ids(table, where: "id >= 10000 AND x > 1004.5") == (10_046..<10_050).map(Int64.init))
        let replaced = try table.write(try Rows.batch(0, 9, regions: ["eu"]), mode: .overwrite, replaceWhere: "region = 'eu'")
        #expect(replaced.filesRemoved == 2)
        #expect(try Rows.ids(table, where: "region = 'eu'") == (0..<9).map(Int64.init))
        #expect(throws: KilnError.self) { try table.write(try Rows.batch(0, 5), mode: .overwrite, replaceWhere: "region = 'eu'") }
    }

    @Test("schema enforcement, evolution, NOT NULL and CHECK constraints")
    func enforcement() throws {
        let dir = TableDirectory()
        let table = try DeltaTable.create(at: dir.path, schema: Rows.schema, properties: ["delta.constraints.positive": "x >= 0"])
        #expect(try table.snapshot().protocolVersion == DeltaProtocol(minReaderVersion: 1, minWriterVersion: 3))
        let extra = ParquetSchema([.leaf("id", .int64, .required), .leaf("score", .double)])
        let batch = LakeBatch(schema: extra, columns: [ColumnData(values: .int64([1, 2])), ColumnData(values: .double([0.5, 1.5]))])
        #expect(throws: KilnError.self) { try table.write(batch) }
        let evolved = try table.write(batch, mergeSchema: true)
        #expect(try table.snapshot().schema.fields.map(\.name) == ["id", "region", "x", "day", "tags", "score"])
        #expect(evolved.version == 1)
        let wrongType = LakeBatch(schema: ParquetSchema([.leaf("id", .byteArray, logical: .string)]),
                                  columns: [ColumnData(values: .byteArray(ByteArrays([Array("a".utf8)])))])
        #expect(throws: KilnError.self) { try table.write(wrongType) }
        let nullID = LakeBatch(schema: ParquetSchema([.leaf("id", .int64)]), columns: [ColumnData(values: .int64([]), definitionLevels: [0])])
        #expect(throws: KilnError.self) { try table.write(nullID) }
        let negative = LakeBatch(schema: ParquetSchema([.leaf("id", .int64, .required), .leaf("x", .double)]),
                                 columns: [ColumnData(values: .int64([5])), ColumnData(values: .double([-1]))])
        #expect(throws: KilnError.self) { try table.write(negative) }
        #expect(try table.snapshot().version == 1)  // nothing committed by the refused writes
    }

    @Test("concurrent appends from threads all land; conflicting overwrites fail")
    func concurrency() async throws {
        let dir = TableDirectory()
        let table = try DeltaTable.create(at: dir.path, schema: Rows.schema)
        let path = dir.path
        try await withThrowingTaskGroup(of: Void.self) { group in
            for k in 0..<12 {
                group.addTask { _ = try DeltaTable(path: path).write(try Rows.batch(k * 10, 10)) }
            }
            try await group.waitForAll()
        }
        #expect(try Rows.ids(table) == (0..<120).map(Int64.init))
        #expect(try table.snapshot().version == 12)
        // An overwrite that read version 12 loses to an append committed after it.
        let stale = try table.snapshot()
        try table.write(try Rows.batch(500, 1))
        #expect(throws: KilnError.self) {
            _ = try table.commit([], readVersion: stale.version, operation: "DELETE", parameters: [:], metrics: [:], blindAppend: false, configuration: [:])
        }
    }

    @Test("predicates parse and evaluate with SQL's three-valued logic")
    func predicates() throws {
        let p = try LakePredicate.parse("region = 'us' AND (x < 0.5 OR x IS NULL) AND NOT day IN ('2024-01-01')")
        #expect(p.columns == ["region", "x", "day"])
        func row(_ values: [String: LakeValue]) -> (String) -> (LakeValue, DeltaType)? {
            { name in
                let types: [String: DeltaType] = ["region": .primitive("string"), "x": .primitive("double"), "day": .primitive("date")]
                return types[name].map { (values[name] ?? .null, $0) }
            }
        }
        #expect(p.evaluate(row(["region": .string("us"), "x": .double(0.1), "day": .int(TextValues.date("2024-01-02")!)])) == true)
        #expect(p.evaluate(row(["region": .string("us"), "x": .double(0.9), "day": .int(0)])) == false)
        #expect(p.evaluate(row(["region": .null, "x": .double(0.1), "day": .int(0)])) == nil)
        for bad in ["", "x <", "x = 'a", "(x = 1", "x IS 5", "x = 1 y"] {
            #expect(throws: KilnError.self, "\(bad)") { try LakePredicate.parse(bad) }
        }
    }

    @Test("MERGE updates, deletes and inserts by key; OPTIMIZE compacts without changing rows")
    func mergeAndOptimize() throws {
        let dir = TableDirectory()
        let table = try DeltaTable.create(at: dir.path, schema: Rows.schema, partitionColumns: ["region"])
        for k in 0..<3 { try table.write(try Rows.batch(k * 50, 50)) }  // ids 0..<150
        let upserts = try Rows.batch(140, 20)  // 140..<150 match, 150..<160 are new
        let merged = try table.merge(condition: "t.id = s.id") { emit in try emit(upserts) }
        #expect((merged.updated, merged.inserted, merged.deleted) == (10, 10, 0))
        #expect(try Rows.ids(table) == (0..<160).map(Int64.init))
        let history = try table.log.history(limit: 1)
        if case .string(let op)? = history[0].info["operation"] { #expect(op == "MERGE") }
        let deleting = try table.merge(condition: "id = id", clauses: MergeClauses(whenMatched: .delete, insertNotMatched: false)) { emit in
            try emit(try Rows.batch(0, 5))
        }
        #expect(deleting.deleted == 5 && deleting.inserted == 0)
        #expect(try Rows.ids(table) == (5..<160).map(Int64.init))
        let pruning = try table.merge(condition: "t.id = s.id", clauses: MergeClauses(insertNotMatched: false, deleteNotMatchedBySource: true)) { emit in
            try emit(try Rows.batch(100, 10))
        }
        #expect(pruning.updated == 10 && pruning.deleted == 145)
        #expect(try Rows.ids(table) == (100..<110).map(Int64.init))
        #expect(throws: KilnError.self) { try table.merge(condition: "t.id = s.id") { emit in try emit(try Rows.batch(0, 2)); try emit(try Rows.batch(0, 2)) } }
        #expect(throws: KilnError.self) { try table.merge(condition: "t.id < s.id") { _ in } }

        for k in 0..<4 { try table.write(try Rows.batch(1000 + k * 10, 10)) }
        let before = try Rows.ids(table)
        let filesBefore = try table.snapshot().files.count
        let optimized = try table.optimize()
        #expect(optimized.filesRemoved > optimized.filesAdded && optimized.filesAdded > 0)
        #expect(try table.snapshot().files.count < filesBefore)
        #expect(try Rows.ids(table) == before)
        #expect(try table.snapshot().files.allSatisfy { !$0.dataChange })  // every surviving file came from the compaction
        #expect(try table.optimize().version == nil)  // nothing left to compact

        // Z-order: rows sorted along (id, x) into several files, so a range on id skips files.
        let zdir = TableDirectory()
        let z = try DeltaTable.create(at: zdir.path, schema: Rows.schema)
        for k in [3, 0, 6, 1, 7, 2, 5, 4] { try z.write(try Rows.batch(k * 50, 50)) }
        #expect(try z.plan(predicate: "id < 40").skippedFiles == 7)
        let total = try z.snapshot().files.reduce(Int64(0)) { $0 + $1.size }
        let ordered = try z.optimize(targetSize: total / 4, zOrderBy: ["id", "x"])
        #expect(ordered.filesRemoved == 8 && ordered.filesAdded >= 3)
        #expect(try Rows.ids(z) == (0..<400).map(Int64.init))
        #expect(try z.plan(predicate: "id < 40").skippedFiles >= 1)
        #expect(throws: KilnError.self) { try z.optimize(zOrderBy: ["tags"]) }
    }

    @Test("UPDATE sets columns in matching rows, moving rows across partitions when needed")
    func update() throws {
        let dir = TableDirectory()
        let table = try DeltaTable.create(at: dir.path, schema: Rows.schema, partitionColumns: ["region"])
        try table.write(try Rows.batch(0, 90))
        let result = try table.update(set: "x = -1, region = 'moved'", where: "id < 10")
        #expect(result.rowsUpdated == 10)
        #expect(try Rows.ids(table, where: "region = 'moved' AND x = -1") == (0..<10).map(Int64.init))
        #expect(try Rows.ids(table).count == 90)
        #expect(try table.update(set: "x = 5", where: "id > 1000").version == nil)
        #expect(try table.generateSymlinkManifest() == 5)  // us, eu, ap, null, moved
        let manifest = try String(contentsOfFile: dir.path + "/_symlink_format_manifest/region=moved/manifest", encoding: .utf8)
        #expect(manifest.hasPrefix("file:///") && manifest.contains("region=moved/part-"))
        #expect(throws: KilnError.self) { try table.update(set: "id = NULL", where: "id = 1") }  // NOT NULL
        #expect(throws: KilnError.self) { try table.update(set: "nope = 1") }
        #expect(throws: KilnError.self) { try table.update(set: "x 1") }
    }

    @Test("the change data feed records inserts, deletes and update images; OPTIMIZE records nothing")
    func changeDataFeed() throws {
        let dir = TableDirectory()
        let table = try DeltaTable.create(at: dir.path, schema: Rows.schema, partitionColumns: ["region"],
                                          properties: ["delta.enableChangeDataFeed": "true"])
        #expect(try table.snapshot().protocolVersion.minWriterVersion == 4)
        try table.write(try Rows.batch(0, 30))                           // 1
        try table.delete(where: "id < 5")                                 // 2
        try table.update(set: "x = -1", where: "id = 7")                  // 3
        try table.write(try Rows.batch(30, 30))                          // 4
        #expect(try table.optimize().version == 5)
        var seen: [String: [Int64]] = [:]
        try table.changes(from: 0) { change in
            if case .int64(let id) = change.cells[0] { seen["\(change.version) \(change.changeType)", default: []].append(id) }
            return true
        }
        #expect(seen["1 insert"]?.count == 30)
        #expect(seen["2 delete"]?.sorted() == [0, 1, 2, 3, 4])
        #expect(seen["3 update_preimage"] == [7] && seen["3 update_postimage"] == [7])
        #expect(seen["4 insert"]?.count == 30)
        #expect(seen.keys.allSatisfy { !$0.hasPrefix("5 ") })
        #expect(try table.delete(where: "id = 8").version == 6)
        var last: [String] = []
        try table.changes(from: 6, to: 6) { last.append($0.changeType); return true }
        #expect(last == ["delete"])
        // A table without the feed refuses.
        let plain = TableDirectory()
        let other = try DeltaTable.create(at: plain.path, schema: Rows.schema)
        try other.write(try Rows.batch(0, 3))
        #expect(throws: KilnError.self) { try other.changes(from: 0) { _ in true } }
    }

    @Test("deletion vectors: Z85, CRC-32 and Roaring bitmaps decode; bad input is an error")
    func deletionVectorCodecs() throws {
        #expect(try DeletionVector.z85Decode("HelloWorld") == [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B])
        #expect(DeletionVector.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        // Magic, one bucket (high 0), a no-run Roaring bitmap with one array container {1, 5, 70000 & 0xFFFF in key 1}.
        var bytes: [UInt8] = [0xD1, 0xD3, 0x39, 0x64] + [1, 0, 0, 0, 0, 0, 0, 0] + [0, 0, 0, 0]
        bytes += [0x3A, 0x30, 0, 0] + [2, 0, 0, 0]                     // cookie 12346, 2 containers
        bytes += [0, 0, 1, 0] + [1, 0, 0, 0]                           // key 0 card 2, key 1 card 1
        bytes += [0, 0, 0, 0] + [0, 0, 0, 0]                           // offsets (unused by the reader)
        bytes += [1, 0, 5, 0] + [0x70, 0x11]                           // {1, 5}, {65536 + 4464}
        #expect(try DeletionVector.decodeBitmap(bytes) == [1, 5, 70000])
        #expect(throws: KilnError.self) { try DeletionVector.decodeBitmap(Array(bytes.dropLast())) }
        #expect(throws: KilnError.self) { try DeletionVector.decodeBitmap([0, 0, 0, 0] + bytes.dropFirst(4)) }
        #expect(throws: KilnError.self) { try DeletionVector.z85Decode("Hell~") }
        #expect(throws: KilnError.self) { try DeletionVector.z85Decode("Hell") }
        let inline: [String: JSONValue] = ["storageType": .string("i"), "pathOrInlineDv": .string("wrong"), "sizeInBytes": .number("4")]
        #expect(throws: KilnError.self) { try DeletionVector.rows(inline, tablePath: "/nonexistent") }
    }

    @Test("expired commits before a checkpoint are cleaned up; the table stays readable from the checkpoint")
    func logCleanup() throws {
        let dir = TableDirectory()
        let table = try DeltaTable.create(at: dir.path, schema: Rows.schema, properties: ["delta.checkpointInterval": "3"])
        for k in 0..<7 { try table.write(try Rows.batch(k * 10, 10)) }      // versions 1...7; checkpoints at 3 and 6
        // Nothing is old enough yet.
        #expect(try table.cleanUpLog(before: DeltaTable.now() - 3_600_000) == 0)
        // Age commits 0...4: the newest checkpoint they all precede is 3 (5 is not a checkpoint; 6's commit 5 is young).
        let old = Date(timeIntervalSinceNow: -40 * 86_400)
        for v in 0...4 {
            try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: table.log.logPath + "/" + DeltaLog.commitName(Int64(v)))
        }
        #expect(try table.cleanUpLog(before: DeltaTable.now() - 30 * 86_400_000) == 3)   // commits 0, 1, 2
        #expect(try Rows.ids(table).count == 70)
        #expect(try Rows.ids(table, version: 3).count == 30)
        #expect(throws: KilnError.self) { try table.snapshot(version: 2) }
        // A commit past the interval runs the cleanup itself (default retention 30 days): commits 3...5 are old now.
        for v in 3...5 {
            try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: table.log.logPath + "/" + DeltaLog.commitName(Int64(v)))
        }
        try table.write(try Rows.batch(70, 10))                             // 8
        try table.write(try Rows.batch(80, 10))                             // 9: checkpoint, cleanup
        let names = try FileManager.default.contentsOfDirectory(atPath: table.log.logPath)
        #expect(!names.contains(DeltaLog.commitName(3)) && !names.contains(String(format: "%020d.checkpoint.parquet", 3)))
        #expect(names.contains(DeltaLog.commitName(6)))
        #expect(try Rows.ids(table).count == 90)
    }

    @Test("generated columns: computed when missing, checked when given; unknown expressions refused")
    func generatedColumns() throws {
        func generation(_ expression: String, _ type: DeltaType = .primitive("integer")) throws -> GeneratedColumn {
            let schema = DeltaSchema([DeltaField(name: "ts", type: .primitive("timestamp")),
                                      DeltaField(name: "g", type: type, metadata: ["delta.generationExpression": .string(expression)])])
            return try #require(try GeneratedColumn.of(schema).first)
        }
        let micros: Int64 = 1_704_151_800_000_000   // 2024-01-01T23:30:00Z
        #expect(try generation("YEAR(ts)").value(.int(micros)) == .int(2024))
        #expect(try generation("month(`ts`)").value(.int(micros)) == .int(1))
        #expect(try generation("DAYOFMONTH(ts)").value(.int(micros)) == .int(1))
        #expect(try generation("HOUR(ts)").value(.int(micros)) == .int(23))
        #expect(try generation("HOUR(ts)").value(.int(-7_200_000_000)) == .int(22))          // 1969-12-31T22:00Z
        #expect(try generation("CAST(ts AS DATE)", .primitive("date")).value(.int(-1)) == .int(-1))
        #expect(try generation("to_date(ts)", .primitive("date")).value(.null) == .null)
        #expect(throws: KilnError.self) { try generation("ts + INTERVAL 1 DAY", .primitive("timestamp")) }
        #expect(throws: KilnError.self) { try generation("UPPER(ts)", .primitive("string")) }

        let dir = TableDirectory()
        let schema = DeltaSchema([DeltaField(name: "id", type: .primitive("long")), DeltaField(name: "day", type: .primitive("date")),
                                  DeltaField(name: "year", type: .primitive("integer"), nullable: false,
                                             metadata: ["delta.generationExpression": .string("YEAR(day)")])])
        let table = try DeltaTable.create(at: dir.path, schema: schema, partitionColumns: ["year"])
        #expect(try table.snapshot().protocolVersion.minWriterVersion == 4)
        var shredder = RecordShredder(schema: ParquetSchema([.leaf("id", .int64), .leaf("day", .int32, logical: .date)]))
        for (id, day) in [(1, 19_723), (2, 0), (3, -1)] { try shredder.append([.int64(Int64(id)), .int32(Int32(day))]) }
        try table.write(LakeBatch(schema: shredder.schema, columns: shredder.take()))
        let plan = try table.plan()
        var years: [Int64: ParquetCell] = [:]
        for file in plan.files {
            try table.readRows(file, plan: plan) { row in
                if case .int64(let id) = row[0] { years[id] = row[2] }
                return true
            }
        }
        #expect(years == [1: .int32(2024), 2: .int32(1970), 3: .int32(1969)])
    }
}
