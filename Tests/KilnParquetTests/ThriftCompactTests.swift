import Foundation
import KilnParquet
import Testing

@Suite("Thrift compact protocol")
struct ThriftCompactTests {
    static func decode(_ bytes: [UInt8]) throws -> ThriftStruct {
        var reader = ThriftCompactReader(bytes)
        return try reader.readStruct()
    }

    static func encode(_ value: ThriftStruct) -> [UInt8] {
        var writer = ThriftCompactWriter()
        writer.writeStruct(value)
        return writer.bytes
    }

    @Test("encodes field headers, zigzag varints, booleans, binaries and lists as the spec lays them out")
    func knownBytes() throws {
        #expect(Self.encode(ThriftStruct([1: .i32(1)])) == [0x15, 0x02, 0x00])
        #expect(Self.encode(ThriftStruct([1: .bool(true)])) == [0x11, 0x00])
        #expect(Self.encode(ThriftStruct([1: .bool(false)])) == [0x12, 0x00])
        #expect(Self.encode(ThriftStruct([16: .i64(-1)])) == [0x06, 0x20, 0x01, 0x00])
        #expect(Self.encode(ThriftStruct([1: .binary(Array("ab".utf8)), 2: .list(.i32, [.i32(1), .i32(2), .i32(3)])]))
            == [0x18, 0x02, 0x61, 0x62, 0x19, 0x35, 0x02, 0x04, 0x06, 0x00])
        #expect(Self.encode(ThriftStruct([1: .i64(300)])) == [0x16, 0xD8, 0x04, 0x00])
    }

    @Test("round-trips every type, long lists, maps, nested structs and far field ids")
    func roundTrip() throws {
        let nested = ThriftStruct([1: .i16(-7), 3: .double(-0.5), 4: .byte(-3)])
        let value = ThriftStruct([
            1: .bool(true), 2: .bool(false), 3: .i32(Int32.min), 4: .i64(Int64.max), 5: .double(.pi),
            6: .binary(Array("héllo".utf8)), 7: .list(.i64, (0..<40).map { .i64(Int64($0) * -3) }),
            8: .list(.boolTrue, [.bool(true), .bool(false), .bool(true)]),
            9: .set(.binary, [.binary([1]), .binary([2])]),
            10: .map(.binary, .i32, [ThriftPair(.binary(Array("k".utf8)), .i32(9))]),
            11: .structure(nested), 12: .list(.structure, [.structure(nested), .structure(ThriftStruct())]),
            300: .i32(5), -4: .i32(6),
        ])
        #expect(try Self.decode(Self.encode(value)) == value)
    }

    /// The footer of a file pyarrow wrote: `pa.table({"id": [1, 2, 3], "name": ["a", None, "c"]})`.
    static let pyarrowFooter = Array(Data(base64Encoded: "FQQZPDUAGAZzY2hlbWEVBAAVBCUCGAJpZAAVDCUCGARuYW1lJQBMHAAAABYGGRwZLCYAHBUEGTUABhAZGAJpZBUCFgYW3gEW4AEmUiYIHBgIAwAAAAAAAAAYCAEAAAAAAAAAFgAoCAMAAAAAAAAAGAgBAAAAAAAAABERABksFQQVABUCABUAFRAVAgA8KQYZJgAGAAAAJgAcFQwZNQAGEBkYBG5hbWUVAhYGFnwWhAEmnAIm6AEcNgIoAWMYAWEREQAZLBUEFQAVAgAVABUQFQIAPBYEGQYZJgIEAAAAFtoCFgYmCBbkAgAZHBgMQVJST1c6c2NoZW1hGOwBLy8vLy82Z0FBQUFRQUFBQUFBQUtBQXdBQmdBRkFBZ0FDZ0FBQUFBQkJBQU1BQUFBQ0FBSUFBQUFCQUFJQUFBQUJBQUFBQUlBQUFCRUFBQUFCQUFBQU5ULy8vOEFBQUVGRUFBQUFCd0FBQUFFQUFBQUFBQUFBQVFBQUFCdVlXMWxBQUFBQUFRQUJBQUVBQUFBRUFBVUFBZ0FCZ0FIQUF3QUFBQVFBQkFBQUFBQUFBRUNFQUFBQUJ3QUFBQUVBQUFBQUFBQUFBSUFBQUJwWkFBQUNBQU1BQWdBQndBSUFBQUFBQUFBQVVBQUFBQT0AGCBwYXJxdWV0LWNwcC1hcnJvdyB2ZXJzaW9uIDI1LjAuMRksHAAAHAAAAA==")!)

    @Test("reads the FileMetaData footer pyarrow writes")
    func pyarrowFooter() throws {
        let meta = try Self.decode(Self.pyarrowFooter)
        #expect(meta.i64(3) == 3)  // num_rows
        let schema = try #require(meta.list(2)).compactMap { value -> String? in
            if case .structure(let element) = value { return element.string(4) }
            return nil
        }
        #expect(schema == ["schema", "id", "name"])
        let rowGroups = try #require(meta.list(4))
        #expect(rowGroups.count == 1)
        #expect(meta.string(6)?.hasPrefix("parquet-cpp-arrow") == true)  // created_by
        // What we decode, we encode back to bytes that decode to the same value.
        #expect(try Self.decode(Self.encode(meta)) == meta)
    }

    @Test("hostile input: every truncation of a real footer fails cleanly")
    func truncations() {
        let bytes = Self.pyarrowFooter
        for length in 0..<bytes.count {
            #expect(throws: ParquetError.self) { try Self.decode(Array(bytes[0..<length])) }
        }
    }

    @Test("hostile input: lying lengths, absurd counts, deep nesting and bad types are errors", arguments: [
        [0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F],            // binary claiming 4 GiB
        [0x19, 0xF5, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F],      // list claiming 4 billion i32s
        [0x1B, 0xFF, 0xFF, 0xFF, 0x7F, 0x55],            // map claiming 268 million entries
        [0x1D],                                          // unknown type 13
        [0x16, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], // varint longer than 64 bits
        [0x15, 0x80, 0x80, 0x80, 0x80, 0x20],            // i32 out of range
        Array(repeating: 0x1C, count: 200),              // structs nested 200 deep
        [0x19, 0x30],                                    // list with STOP elements
    ] as [[UInt8]])
    func hostile(bytes: [UInt8]) {
        #expect(throws: ParquetError.self) { try Self.decode(bytes) }
    }

    @Test("seeded mutations of a real footer never crash or hang")
    func mutations() {
        var generator = SplitMix64(seed: 0x5EED)
        let original = Self.pyarrowFooter
        for _ in 0..<3000 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...8, using: &generator) {
                let i = Int.random(in: 0..<bytes.count, using: &generator)
                bytes[i] = UInt8.random(in: 0...255, using: &generator)
            }
            _ = try? Self.decode(bytes)
        }
    }
}

/// A small deterministic generator for reproducible fuzzing.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Parquet footer")
struct FileMetaDataTests {
    @Test("decodes the schema, row count and row groups of a pyarrow footer")
    func pyarrowFooter() throws {
        let meta = try FileMetaData(footer: ThriftCompactTests.pyarrowFooter)
        #expect(meta.numRows == 3)
        let leaves = meta.schema.columns
        #expect(leaves.map { $0.path } == [["id"], ["name"]])
        #expect(leaves.map { $0.element.physicalType } == [PhysicalType.int64, .byteArray])
        #expect(leaves[1].element.logicalType == .string)
        #expect(leaves.map(\.maxDefinitionLevel) == [1, 1])
        #expect(meta.rowGroups.first?.columns.map(\.path) == [["id"], ["name"]])
        #expect(meta.rowGroups.first?.columns[1].nullCount == 1)
    }

    @Test("files that are not Parquet fail with a clear error")
    func badFiles() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-parquet-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let footer = ThriftCompactTests.pyarrowFooter
        func file(_ bytes: [UInt8]) throws -> String {
            let path = directory.appendingPathComponent(UUID().uuidString).path
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return path
        }
        let magic = Array("PAR1".utf8)
        let length = UInt32(footer.count)
        let lengthBytes = (0..<4).map { UInt8((length >> (8 * UInt32($0))) & 0xFF) }
        let good = magic + footer + lengthBytes + magic
        #expect(try FileMetaData.read(path: try file(good)).numRows == 3)
        for bad in [Array("PAR1".utf8), Array("XXXX".utf8) + footer + lengthBytes + magic,
                    magic + footer + [0xFF, 0xFF, 0xFF, 0x7F] + magic, magic + Array(footer.prefix(40)) + lengthBytes + magic] {
            #expect(throws: ParquetError.self) { try FileMetaData.read(path: try file(bad)) }
        }
        #expect(throws: ParquetError.self) { try FileMetaData.read(path: directory.appendingPathComponent("missing").path) }
    }
}
