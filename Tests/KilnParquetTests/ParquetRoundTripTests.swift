import Foundation
@testable import KilnParquet
import Testing

/// A directory removed when the value goes away.
final class Scratch {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-parquet-\(UUID().uuidString)")
    init() { try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(at: url) }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}

/// A schema with every physical type, nulls and nested fields, and rows for it.
enum Sample {
    static let schema = ParquetSchema([
        .leaf("id", .int64, .required),
        .leaf("flag", .boolean),
        .leaf("small", .int32, logical: .integer(bits: 16, signed: true)),
        .leaf("ratio", .float),
        .leaf("score", .double),
        .leaf("name", .byteArray, logical: .string),
        .leaf("code", .fixedLenByteArray, typeLength: 3),
        .leaf("legacy_ts", .int96),
        .list("tags", element: .leaf("element", .byteArray, logical: .string)),
        .group("point", .optional, [.leaf("x", .int32), .list("path", element: .leaf("element", .double, .required))]),
        .map("attrs", key: .leaf("key", .byteArray, logical: .string), value: .leaf("value", .int64)),
        .list("matrix", element: .list("element", element: .leaf("element", .int32))),
    ])

    static func row(_ i: Int, using g: inout SplitMix64) -> [ParquetCell] {
        func maybe(_ cell: ParquetCell) -> ParquetCell { Int.random(in: 0..<5, using: &g) == 0 ? .null : cell }
        let tags = (0..<Int.random(in: 0..<4, using: &g)).map { _ in maybe(.bytes(Array("t\(Int.random(in: 0..<5, using: &g))".utf8))) }
        let path = (0..<Int.random(in: 0..<3, using: &g)).map { _ in ParquetCell.double(Double.random(in: -1...1, using: &g)) }
        let attrs = (0..<Int.random(in: 0..<3, using: &g)).map { k in
            ParquetCell.MapEntry(.bytes(Array("k\(k)".utf8)), maybe(.int64(Int64.random(in: Int64.min...Int64.max, using: &g))))
        }
        let matrix = (0..<Int.random(in: 0..<3, using: &g)).map { _ in
            maybe(.list((0..<Int.random(in: 0..<3, using: &g)).map { _ in maybe(.int32(Int32.random(in: -9...9, using: &g))) }))
        }
        return [
            .int64(Int64(i) * 7 - 1000),
            maybe(.bool(Bool.random(using: &g))),
            maybe(.int32(Int32.random(in: -32768...32767, using: &g))),
            maybe(.float(Float.random(in: -1e6...1e6, using: &g))),
            maybe(.double(i % 17 == 0 ? .nan : Double.random(in: -1e300...1e300, using: &g))),
            maybe(.bytes(Array((i % 3 == 0 ? "name-\(i)" : "common-\(i % 10)").utf8))),
            maybe(.bytes([UInt8(i & 0xFF), UInt8(i >> 8 & 0xFF), 7])),
            maybe(.bytes((0..<12).map { _ in UInt8.random(in: 0...255, using: &g) })),
            maybe(.list(tags)),
            maybe(.record([maybe(.int32(Int32(i))), maybe(.list(path))])),
            maybe(.map(attrs)),
            maybe(.list(matrix)),
        ]
    }

    static func rows(_ n: Int, seed: UInt64 = 1) -> [[ParquetCell]] {
        var g = SplitMix64(seed: seed)
        return (0..<n).map { row($0, using: &g) }
    }

    /// Writes `rows` in row groups of `groupRows`; returns the path.
    @discardableResult
    static func write(_ rows: [[ParquetCell]], to path: String, options: ParquetWriterOptions = ParquetWriterOptions(), groupRows: Int = 400) throws -> FileMetaData {
        let writer = try ParquetFileWriter(path: path, schema: schema, options: options)
        var shredder = RecordShredder(schema: schema)
        for row in rows {
            try shredder.append(row)
            if shredder.rows == groupRows { try writer.writeRowGroup(shredder.take()) }
        }
        if shredder.rows > 0 { try writer.writeRowGroup(shredder.take()) }
        return try writer.close()
    }

    /// Reads every row back through record assembly.
    static func read(_ path: String) throws -> [[ParquetCell]] {
        let reader = try ParquetFileReader(path: path)
        let all = Array(reader.columns.indices)
        var rows: [[ParquetCell]] = []
        for (g, data) in try reader.readAll(rowGroups: Array(reader.metadata.rowGroups.indices), columns: all).enumerated() {
            let assembler = try RecordAssembler(schema: reader.schema, columns: Dictionary(uniqueKeysWithValues: zip(all, data)))
            #expect(assembler.rowCount == Int(reader.metadata.rowGroups[g].numRows))
            for row in 0..<assembler.rowCount { rows.append(try assembler.row(row)) }
        }
        return rows
    }
}

/// NaN-tolerant equality for cells.
func same(_ a: ParquetCell, _ b: ParquetCell) -> Bool {
    switch (a, b) {
    case (.double(let x), .double(let y)): return x == y || (x.isNaN && y.isNaN)
    case (.list(let x), .list(let y)), (.record(let x), .record(let y)): return x.count == y.count && zip(x, y).allSatisfy(same)
    case (.map(let x), .map(let y)): return x.count == y.count && zip(x, y).allSatisfy { same($0.key, $1.key) && same($0.value, $1.value) }
    default: return a == b
    }
}

@Suite("Parquet writer and reader")
struct ParquetRoundTripTests {
    @Test("every type, nulls and nested fields survive a write and a read", arguments: [Codec.uncompressed, .snappy, .zstd, .gzip])
    func roundTrip(codec: Codec) throws {
        let scratch = Scratch()
        let rows = Sample.rows(1500, seed: UInt64(codec.rawValue) + 1)
        for dictionary in [true, false] {
            var options = ParquetWriterOptions(codec: codec)
            options.dictionary = dictionary
            options.pageSize = 700  // many pages per chunk
            let path = scratch.path("t-\(dictionary).parquet")
            let meta = try Sample.write(rows, to: path, options: options)
            #expect(meta.numRows == 1500 && meta.rowGroups.count == 4)
            let back = try Sample.read(path)
            #expect(back.count == rows.count)
            for (a, b) in zip(rows, back) where !zip(a, b).allSatisfy(same) {
                Issue.record("row differs: \(a) vs \(b)")
                break
            }
            let reread = try FileMetaData.read(path: path)
            #expect(reread == meta)
            let encodings = Set(reread.rowGroups[0].columns[5].encodings)
            #expect(encodings.contains(Encoding.rleDictionary.rawValue) == dictionary)
        }
    }

    @Test("dictionary-encoded string chunks can come back as codes, equal to the values once written out")
    func dictionaryCodes() throws {
        let scratch = Scratch()
        let rows = Sample.rows(1500, seed: 7)
        for dictionary in [true, false] {
            var options = ParquetWriterOptions(codec: .snappy)
            options.dictionary = dictionary
            options.pageSize = 700  // many pages per chunk
            let path = scratch.path("codes-\(dictionary).parquet")
            _ = try Sample.write(rows, to: path, options: options)
            let reader = try ParquetFileReader(path: path)
            var coded = 0
            for group in reader.metadata.rowGroups.indices {
                for column in reader.columns.indices {
                    let plain = try reader.readColumn(rowGroup: group, column: column)
                    let kept = try reader.readColumn(rowGroup: group, column: column, keepingCodes: true)
                    #expect(plain.dictionaryCodes == nil)
                    if let codes = kept.dictionaryCodes {
                        coded += 1
                        #expect(reader.columns[column].element.physicalType == .byteArray)
                        #expect(kept.values.count == 0 && codes.codes.count == plain.values.count)
                    }
                    guard reader.columns[column].element.physicalType == .byteArray else { continue }  // (NaNs differ from themselves)
                    #expect(try kept.materialized() == plain, "row group \(group), column \(reader.columns[column].dottedPath)")
                    #expect(try reader.readRowGroup(group, columns: [column], keepingCodes: [column]) == [kept])
                }
            }
            // name, tags' elements (repeated) and attrs' keys, in each of the four row groups.
            #expect(coded == (dictionary ? 12 : 0))
        }
    }

    @Test("an empty file and an empty row group are valid")
    func empty() throws {
        let scratch = Scratch()
        let path = scratch.path("empty.parquet")
        try Sample.write([], to: path)
        #expect(try Sample.read(path).isEmpty)
        let writer = try ParquetFileWriter(path: path, schema: Sample.schema)
        var shredder = RecordShredder(schema: Sample.schema)
        try writer.writeRowGroup(shredder.take())
        try writer.close()
        #expect(try ParquetFileReader(path: path).metadata.rowGroups.first?.numRows == 0)
    }

    @Test("typed buffers: flat columns decode straight into arrays, nulls as levels")
    func typedBuffers() throws {
        let scratch = Scratch()
        let schema = ParquetSchema([.leaf("a", .int64, .required), .leaf("b", .double), .leaf("s", .byteArray, logical: .string)])
        let path = scratch.path("flat.parquet")
        let writer = try ParquetFileWriter(path: path, schema: schema)
        let n = 10_000
        try writer.writeRowGroup([
            ColumnData(values: .int64((0..<n).map { Int64($0) })),
            ColumnData(values: .double((0..<n).filter { $0 % 3 != 0 }.map { Double($0) / 2 }),
                       definitionLevels: (0..<n).map { $0 % 3 == 0 ? 0 : 1 }),
            ColumnData(values: .byteArray(ByteArrays((0..<n).map { Array("v\($0 % 7)".utf8) }))),
        ])
        try writer.close()
        let reader = try ParquetFileReader(path: path)
        let data = try reader.readRowGroup(0)
        #expect(data[0] == ColumnData(values: .int64((0..<n).map { Int64($0) })))
        #expect(data[1].definitionLevels?.count == n && data[1].values.count == n - (n + 2) / 3)
        #expect(data[2].definitionLevels == nil)  // an optional column without nulls carries no levels
        guard case .byteArray(let strings) = data[2].values else { Issue.record("not strings"); return }
        #expect(Array(strings[12]) == Array("v5".utf8))
        #expect(data[2].memoryBytes < n * 8)
        // Sliced rows keep levels and values aligned.
        let slice = data[1].slice(rows: 3..<7, maxDefinitionLevel: 1)
        #expect(slice.definitionLevels == [0, 1, 1, 0] && slice.values == .double([2, 2.5]))
    }

    @Test("statistics let readers skip row groups")
    func skipping() throws {
        let scratch = Scratch()
        let path = scratch.path("stats.parquet")
        try Sample.write(Sample.rows(1200), to: path, groupRows: 300)
        let reader = try ParquetFileReader(path: path)
        // ids are i * 7 - 1000: group g spans [2100g - 1000, 2100g + 1093]
        #expect(try reader.rowGroups(matching: []) == [0, 1, 2, 3])
        #expect(try reader.rowGroups(matching: [ColumnPredicate("id", .ge, .int(4300))]) == [2, 3])
        #expect(try reader.rowGroups(matching: [ColumnPredicate("id", .lt, .int(-1000))]) == [])
        #expect(try reader.rowGroups(matching: [ColumnPredicate("id", .eq, .int(1100))]) == [1])
        #expect(try reader.rowGroups(matching: [ColumnPredicate("id", .gt, .double(1093.5)), ColumnPredicate("id", .le, .int(3199))]) == [1])
        #expect(try reader.rowGroups(matching: [ColumnPredicate("name", .gt, .string("zzz"))]) == [])
        #expect(throws: ParquetError.self) { try reader.rowGroups(matching: [ColumnPredicate("nope", .eq, .int(1))]) }
        #expect(try ColumnPredicate.parse("id >= 5") == ColumnPredicate("id", .ge, .int(5)))
        #expect(try ColumnPredicate.parse("name = 'a b'") == ColumnPredicate("name", .eq, .string("a b")))
        #expect(try ColumnPredicate.parse("x<0.5") == ColumnPredicate("x", .lt, .double(0.5)))
        #expect(throws: ParquetError.self) { try ColumnPredicate.parse("id ~ 5") }
        #expect(ColumnPredicate("x", .le, .int(3)).matches(.int32(3)) && !ColumnPredicate("x", .le, .int(3)).matches(.null))
    }

    @Test("a dictionary that outgrows its limit falls back to PLAIN")
    func dictionaryFallback() throws {
        let values = ByteArrays((0..<5000).map { Array("repeated-\($0 / 2)".utf8) })
        #expect(Dictionaries.build(.byteArray(values), limit: 1 << 20)?.values.count == 2500)
        #expect(Dictionaries.build(.byteArray(values), limit: 10_000) == nil)
        // Nearly every value new: a dictionary would not pay, and the sample says so early.
        #expect(Dictionaries.build(.byteArray(ByteArrays((0..<5000).map { Array("unique-\($0)".utf8) })), limit: 1 << 20) == nil)
        #expect(Dictionaries.build(.int64((0..<5000).map(Int64.init)), limit: 1 << 20) == nil)
        let repeated = Dictionaries.build(.int64((0..<1000).map { Int64($0 % 10) }), limit: 1 << 20)
        #expect(repeated?.values == .int64((0..<10).map(Int64.init)) && repeated?.bitWidth == 4)
        #expect(repeated?.indices.prefix(12) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1])
        // A few thousand values drawn at random over many rows: the first 4,096 rows are mostly new values, but the
        // column has a small dictionary, and gets one (this used to be extrapolated to "hopeless").
        var g = SplitMix64(seed: 5)
        let drawn = ByteArrays((0..<300_000).map { _ in Array("s\(Int.random(in: 0..<5000, using: &g))".utf8) })
        #expect(Dictionaries.build(.byteArray(drawn), limit: 1 << 20)?.values.count == 5000)
        #expect(Dictionaries.build(.int64((0..<300_000).map { _ in Int64.random(in: 0..<5000, using: &g) }), limit: 1 << 20)?.values.count == 5000)
    }

    @Test("the writer refuses columns that do not fit the schema")
    func writerValidation() throws {
        let scratch = Scratch()
        let schema = ParquetSchema([.leaf("a", .int64, .required), .list("l", element: .leaf("element", .int32))])
        let writer = try ParquetFileWriter(path: scratch.path("bad.parquet"), schema: schema)
        let list = ColumnData(values: .int32([1]), definitionLevels: [3], repetitionLevels: [0])
        #expect(throws: ParquetError.self) { try writer.writeRowGroup([ColumnData(values: .int64([1]))]) }
        #expect(throws: ParquetError.self) { try writer.writeRowGroup([ColumnData(values: .double([1])), list]) }
        #expect(throws: ParquetError.self) { try writer.writeRowGroup([ColumnData(values: .int64([1, 2])), list]) }
        #expect(throws: ParquetError.self) {
            try writer.writeRowGroup([ColumnData(values: .int64([1])), ColumnData(values: .int32([1]), definitionLevels: [5], repetitionLevels: [0])])
        }
        var shredder = RecordShredder(schema: schema)
        #expect(throws: ParquetError.self) { try shredder.append([.null, .null]) }  // required field
        #expect(throws: ParquetError.self) { try shredder.append([.int64(1), .int32(3)]) }  // a scalar for a list
        try writer.writeRowGroup([ColumnData(values: .int64([1])), list])
        try writer.close()
    }
}

@Suite("Parquet encodings")
struct EncodingTests {
    @Test("RLE/bit-packed hybrid: the spec's example and random round trips")
    func rle() throws {
        var out: [UInt8] = []
        RLEHybrid.encode([0, 1, 2, 3, 4, 5, 6, 7] as [UInt32], bitWidth: 3, into: &out)
        #expect(out == [0x03, 0x88, 0xC6, 0xFA])
        var decoded: [UInt32] = []
        try RLEHybrid.decode([0x03, 0x88, 0xC6, 0xFA], bitWidth: 3, count: 8, into: &decoded)
        #expect(decoded == [0, 1, 2, 3, 4, 5, 6, 7])
        var g = SplitMix64(seed: 42)
        for width in [1, 2, 3, 5, 8, 13, 20, 32] {
            for _ in 0..<20 {
                let n = Int.random(in: 0..<600, using: &g)
                var values: [UInt32] = []
                while values.count < n {
                    let value = UInt32.random(in: 0...UInt32(UInt64(1) << UInt64(width) - 1), using: &g)
                    values += Array(repeating: value, count: Bool.random(using: &g) ? Int.random(in: 1...30, using: &g) : 1)
                }
                values = Array(values.prefix(n))
                var bytes: [UInt8] = []
                RLEHybrid.encode(values, bitWidth: width, into: &bytes)
                var back: [UInt32] = []
                try RLEHybrid.decode(bytes[...], bitWidth: width, count: n, into: &back)
                #expect(back == values)
            }
        }
    }

    @Test("DELTA_BINARY_PACKED round trips extremes and reports the bytes it used")
    func delta() throws {
        var g = SplitMix64(seed: 7)
        let cases: [[Int64]] = [[], [5], [1, 2, 3, 4, 5], [Int64.max, Int64.min, 0, -1, 1, Int64.max],
                                (0..<1000).map { _ in Int64.random(in: -1_000_000...1_000_000, using: &g) },
                                (0..<300).map { Int64($0) * 1_000_003 }]
        for values in cases {
            var bytes: [UInt8] = []
            DeltaBinaryPacked.encode(values, into: &bytes)
            let (back, used) = try DeltaBinaryPacked.decode((bytes + [0xAB, 0xCD])[...], limit: values.count)
            #expect(back == values)
            #expect(used == bytes.count)
        }
        // The spec's example: 1..5 with block 128 / 4 miniblocks.
        #expect(throws: ParquetError.self) { try DeltaBinaryPacked.decode([0x80, 0x01, 0x04, 0x05][...], limit: 5) }
        #expect(throws: ParquetError.self) { try DeltaBinaryPacked.decode([0x80, 0x01, 0x04, 0xFF, 0xFF, 0x03, 0x02][...], limit: 5) }
        #expect(throws: ParquetError.self) { try DeltaBinaryPacked.decode([0x81, 0x01, 0x04, 0x01, 0x02][...], limit: 5) }
    }
}

@Suite("Schema DDL and text values")
struct SchemaDDLTests {
    @Test("parses SQL column lists into Parquet nodes, and names them back")
    func parse() throws {
        let schema = try SchemaDDL.parse(
            "id BIGINT NOT NULL, `odd name` STRING, price DECIMAL(10,2), big DECIMAL(30, 4), tiny DECIMAL(5,1), day DATE, at TIMESTAMP, "
                + "tags ARRAY<STRING>, point STRUCT<x: DOUBLE, y: DOUBLE NOT NULL>, attrs MAP<STRING, ARRAY<INT>>, flag BOOLEAN, s SMALLINT")
        let fields = schema.root.children
        #expect(fields.map(\.name).prefix(2) == ["id", "odd name"])
        #expect(fields[0].repetition == .required && fields[1].repetition == .optional)
        #expect(fields[2].element.physicalType == .int64 && fields[2].element.logicalType == .decimal(precision: 10, scale: 2))
        #expect(fields[3].element.physicalType == .fixedLenByteArray && fields[3].element.typeLength == 13)
        #expect(fields[4].element.physicalType == .int32)
        #expect(schema.columns.map(\.dottedPath).contains("attrs.key_value.value.list.element"))
        #expect(fields.map(SchemaDDL.typeName) == ["BIGINT", "STRING", "DECIMAL(10,2)", "DECIMAL(30,4)", "DECIMAL(5,1)", "DATE", "TIMESTAMP",
                                                   "ARRAY<STRING>", "STRUCT<x: DOUBLE, y: DOUBLE>", "MAP<STRING, ARRAY<INT>>", "BOOLEAN",
                                                   "SMALLINT"])
        for bad in ["", "a", "a FOO", "a INT,", "a INT, a STRING", "a DECIMAL(40,2)", "a ARRAY<INT", "a STRUCT<>", "a INT b"] {
            #expect(throws: ParquetError.self, "\(bad)") { try SchemaDDL.parse(bad) }
        }
    }

    @Test("dates, timestamps and decimals from text")
    func text() throws {
        #expect(TextValues.date("1970-01-01") == 0)
        #expect(TextValues.date("2000-02-29") == 11_016)
        #expect(TextValues.date("1969-12-31") == -1)
        #expect(TextValues.date("2001-02-29") == nil && TextValues.date("2001-2-3") == nil)
        #expect(TextValues.timestampMicros("2024-01-02T03:04:05.5Z") == 1_704_164_645_500_000)
        #expect(TextValues.timestampMicros("2024-01-02 05:04:05+02:00") == 1_704_164_645_000_000)
        #expect(TextValues.timestampMicros("2024-01-02") == 1_704_153_600_000_000)
        #expect(TextValues.timestampMicros("2024-01-02T25:00") == nil)
        #expect(TextValues.decimalUnscaled("-1.5", scale: 2) == -150)
        #expect(TextValues.decimalUnscaled("1.234", scale: 2) == nil)
        #expect(TextValues.decimalUnscaled("1.230", scale: 2) == 123)
        #expect(TextValues.decimalBytes("-1", scale: 0, width: 2) == [0xFF, 0xFF])
        #expect(TextValues.decimalBytes("256", scale: 0, width: 2) == [0x01, 0x00])
        #expect(TextValues.decimalBytes("40000", scale: 0, width: 2) == nil)
        let element = try SchemaDDL.node("x", type: "SMALLINT").element
        #expect(try TextValues.cell(Array("-32768".utf8), element: element) == .int32(-32768))
        #expect(throws: ParquetError.self) { try TextValues.cell(Array("40000".utf8), element: element) }
    }
}
