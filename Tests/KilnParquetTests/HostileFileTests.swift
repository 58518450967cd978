import Foundation
@testable import KilnParquet
import Testing

/// Hostile Parquet files: each must fail with a `ParquetError` (or, for harmless mutations, decode), never crash,
/// hang or allocate without bound.
@Suite("Hostile Parquet files")
struct HostileFileTests {
    /// A valid file with nested columns, several pages and every codec path exercised by the writer.
    static func validFile(_ scratch: Scratch, codec: Codec = .snappy) throws -> (path: String, bytes: [UInt8], meta: FileMetaData) {
        let path = scratch.path("valid-\(codec.name).parquet")
        var options = ParquetWriterOptions(codec: codec)
        options.pageSize = 400
        let meta = try Sample.write(Sample.rows(300, seed: 9), to: path, options: options, groupRows: 120)
        return (path, [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), meta)
    }

    /// Reads everything the way `cat` does; returns the error, if any.
    static func readAll(_ bytes: [UInt8], scratch: Scratch, name: String = "probe.parquet") -> (any Error)? {
        let path = scratch.path(name)
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        // Every column again with dictionary codes kept: the same checks must hold on that path (and nothing trap).
        let codes = Result {
            let reader = try ParquetFileReader(path: path)
            for group in reader.metadata.rowGroups.indices {
                for column in reader.columns.indices { _ = try reader.readColumn(rowGroup: group, column: column, keepingCodes: true).materialized() }
            }
        }
        do {
            _ = try Sample.read(path)
            if case .failure(let error) = codes { return error }
            return nil
        } catch {
            return error
        }
    }

    /// The file with its footer replaced by `footer`.
    static func withFooter(_ bytes: [UInt8], meta: FileMetaData, _ footer: [UInt8]) -> [UInt8] {
        let oldLength = Int(UInt32(bytes[bytes.count - 8]) | UInt32(bytes[bytes.count - 7]) << 8 | UInt32(bytes[bytes.count - 6]) << 16
            | UInt32(bytes[bytes.count - 5]) << 24)
        let body = Array(bytes[..<(bytes.count - 8 - oldLength)])
        let length = UInt32(footer.count)
        return body + footer + (0..<4).map { UInt8(truncatingIfNeeded: length >> (8 * UInt32($0))) } + Array("PAR1".utf8)
    }

    @Test("bad magic, truncation anywhere and a lying footer length are errors")
    func layout() throws {
        let scratch = Scratch()
        let (_, bytes, _) = try Self.validFile(scratch)
        #expect(Self.readAll(bytes, scratch: scratch) == nil)
        #expect(Self.readAll(Array("XXXX".utf8) + bytes.dropFirst(4), scratch: scratch) is ParquetError)
        #expect(Self.readAll(bytes.dropLast(4) + Array("PARX".utf8), scratch: scratch) is ParquetError)
        for cut in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 300)) {
            #expect(Self.readAll(Array(bytes.prefix(cut)), scratch: scratch) is ParquetError, "cut at \(cut)")
        }
        var lying = bytes
        for (i, b) in [UInt8](arrayLiteral: 0xFF, 0xFF, 0xFF, 0x7F).enumerated() { lying[bytes.count - 8 + i] = b }
        #expect(Self.readAll(lying, scratch: scratch) is ParquetError)
    }

    @Test("absurd sizes and offsets in the footer are errors, not allocations")
    func footerLies() throws {
        let scratch = Scratch()
        let (_, bytes, meta) = try Self.validFile(scratch)
        func mutate(_ change: (inout ColumnChunkMetaData) -> Void) -> [UInt8] {
            var copy = meta
            change(&copy.rowGroups[0].columns[0])
            return Self.withFooter(bytes, meta: meta, copy.serialized)
        }
        let lies: [(String, [UInt8])] = [
            ("values", mutate { $0.numValues = Int64.max / 2 }),
            ("values-small", mutate { $0.numValues = 3 }),
            ("compressed", mutate { $0.totalCompressedSize = Int64.max / 4 }),
            ("negative", mutate { $0.totalCompressedSize = -5 }),
            ("offset", mutate { $0.dataPageOffset = Int64(bytes.count) * 3 }),
            ("offset-zero", mutate { $0.dataPageOffset = 0; $0.dictionaryPageOffset = nil }),
            ("codec", mutate { $0.codec = .lzo }),
            ("type", mutate { $0.physicalType = .double }),
        ]
        for (name, file) in lies {
            #expect(Self.readAll(file, scratch: scratch) is ParquetError, "\(name)")
        }
        var rows = meta
        rows.rowGroups[0].numRows = 1 << 40
        #expect(Self.readAll(Self.withFooter(bytes, meta: meta, rows.serialized), scratch: scratch) is ParquetError)
        var schema = meta
        schema.schema.root.element.numChildren = 1000
        var footer = ThriftCompactReader(schema.serialized)
        var s = try footer.readStruct()
        s[2] = .list(.structure, Array((s.list(2) ?? []).prefix(3)))
        var writer = ThriftCompactWriter()
        writer.writeStruct(s)
        #expect(Self.readAll(Self.withFooter(bytes, meta: meta, writer.bytes), scratch: scratch) is ParquetError)
    }

    @Test("wrong page headers are errors")
    func pageHeaders() throws {
        let scratch = Scratch()
        let (_, bytes, meta) = try Self.validFile(scratch, codec: .uncompressed)
        let chunk = meta.rowGroups[0].columns[0]  // the required int64 id column: PLAIN or dictionary pages
        let start = Int(chunk.startOffset)
        var reader = ThriftCompactReader(bytes, position: start)
        let header = try reader.readStruct()
        let headerEnd = reader.position
        func replace(_ change: (inout ThriftStruct) -> Void) -> [UInt8] {
            var h = header
            change(&h)
            var writer = ThriftCompactWriter()
            writer.writeStruct(h)
            // Same length keeps the rest of the file where the footer says it is; pad or skip to fit.
            return Array(bytes[..<start]) + writer.bytes + Array(bytes[headerEnd...])
        }
        let cases: [(String, [UInt8])] = [
            ("compressed size past the chunk", replace { $0[3] = .i32(Int32.max) }),
            ("negative size", replace { $0[3] = .i32(-1) }),
            ("uncompressed size absurd", replace { $0[2] = .i32(Int32.max) }),
            ("value count absurd", replace {
                var inner = $0.structure(7) ?? $0.structure(5)!
                inner[1] = .i32(Int32.max)
                $0[$0.structure(7) != nil ? 7 : 5] = .structure(inner)
            }),
            ("missing page header struct", replace { $0[5] = nil; $0[7] = nil }),
            ("garbage", Array(bytes[..<start]) + [UInt8](repeating: 0xFF, count: 16) + Array(bytes[(start + 16)...])),
        ]
        for (name, file) in cases {
            #expect(Self.readAll(file, scratch: scratch) is ParquetError, "\(name)")
        }
    }

    @Test("seeded mutations of valid files never crash, hang or run away", arguments: [Codec.uncompressed, .snappy, .zstd, .gzip])
    func fuzz(codec: Codec) throws {
        let scratch = Scratch()
        let (_, bytes, _) = try Self.validFile(scratch, codec: codec)
        var g = SplitMix64(seed: 0xF00D + UInt64(codec.rawValue))
        let deadline = Date().addingTimeInterval(8)
        var runs = 0, failures = 0
        while runs < 400, Date() < deadline {
            var mutated = bytes
            switch Int.random(in: 0..<4, using: &g) {
            case 0:  // flip bytes anywhere
                for _ in 0..<Int.random(in: 1...6, using: &g) { mutated[Int.random(in: 0..<mutated.count, using: &g)] = UInt8.random(in: 0...255, using: &g) }
            case 1:  // flip bytes in the footer, where sizes live
                let footerStart = max(4, mutated.count - 600)
                for _ in 0..<Int.random(in: 1...4, using: &g) { mutated[Int.random(in: footerStart..<mutated.count - 8, using: &g)] ^= UInt8.random(in: 1...255, using: &g) }
            case 2:  // splice a run of bytes from elsewhere
                let from = Int.random(in: 0..<mutated.count - 40, using: &g), to = Int.random(in: 4..<mutated.count - 48, using: &g)
                mutated.replaceSubrange(to..<to + 32, with: bytes[from..<from + 32])
            default:  // set a byte to a boundary value
                mutated[Int.random(in: 4..<mutated.count - 8, using: &g)] = [0x00, 0x7F, 0x80, 0xFF].randomElement(using: &g)!
            }
            if Self.readAll(mutated, scratch: scratch, name: "fuzz.parquet") != nil { failures += 1 }
            runs += 1
        }
        #expect(runs >= 50)
        #expect(failures > 0)  // the mutations do reach the checks
    }
}
