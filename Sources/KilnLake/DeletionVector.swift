import Foundation
import KilnCore

/// Reads Delta deletion vectors: the rows of a data file that later commits deleted without rewriting it.
///
/// A descriptor (`add.deletionVector`) names where the vector lives: `u` — a file `deletion_vector_<uuid>.bin` in
/// the table (an optional directory prefix, then the UUID in Z85), `p` — an absolute path, `i` — inline, Z85 text.
/// In a file, one byte of format version is followed by vectors, each `size` (Int32 BE), the bytes, and a CRC-32
/// (BE); `offset` points at the size. The bytes are a magic number (1681511377 LE) and a 64-bit Roaring bitmap in
/// the portable format: a count of 32-bit bitmaps (Int64 LE), then for each its high 32 bits (UInt32 LE) and a
/// standard Roaring bitmap.
enum DeletionVector {
    static let magic: UInt32 = 1_681_511_377

    /// The deleted row indexes (0-based positions in the file), sorted.
    static func rows(_ descriptor: [String: JSONValue], tablePath: String) throws -> [Int] {
        try rows(descriptor, storage: .local(tablePath))
    }

    /// The deleted row indexes of a descriptor whose `u` files live in `storage`.
    static func rows(_ descriptor: [String: JSONValue], storage tableStorage: TableStorage) throws -> [Int] {
        func string(_ key: String) -> String? { if case .string(let s)? = descriptor[key] { return s }; return nil }
        func int(_ key: String) -> Int? { if case .number(let n)? = descriptor[key] { return Int(n) }; return nil }
        guard let storage = string("storageType"), let location = string("pathOrInlineDv"), let size = int("sizeInBytes"), size >= 0 else {
            throw invalid("a descriptor without storageType, pathOrInlineDv or sizeInBytes")
        }
        let bytes: [UInt8]
        switch storage {
        case "i":
            let decoded = try z85Decode(Substring(location))
            guard decoded.count >= size else { throw invalid("inline data shorter than sizeInBytes") }
            bytes = Array(decoded.prefix(size))
        case "u", "p":
            let offset = int("offset") ?? 1
            if storage == "u" {
                guard location.count >= 20 else { throw invalid("'\(location)' is too short to hold a UUID") }
                let uuid = try z85Decode(Substring(location.suffix(20)))
                let hex = Hex.encode(uuid)
                let text = [hex.prefix(8), hex.dropFirst(8).prefix(4), hex.dropFirst(12).prefix(4), hex.dropFirst(16).prefix(4), hex.dropFirst(20)]
                    .joined(separator: "-")
                let prefix = location.dropLast(20)
                let name = "deletion_vector_\(text).bin"
                let data: [UInt8]
                do {
                    data = try tableStorage.store.read(try tableStorage.key((prefix.isEmpty ? "" : prefix + "/") + name),
                                                       range: Int64(max(0, offset))..<Int64(max(0, offset) + size + 8))
                } catch let error as KilnError where error.code == .resourceDoesNotExist {
                    throw invalid("\(name) is missing")
                }
                bytes = try vector(data, size: size)
            } else {
                let path = location.hasPrefix("file:") ? (URL(string: location)?.path ?? location) : location
                bytes = try readFromFile(path, offset: offset, size: size)
            }
        default:
            throw KilnError(.invalidState, "Deletion vector storage type '\(storage)' is not supported")
        }
        let rows = try decodeBitmap(bytes)
        if let cardinality = int("cardinality"), cardinality != rows.count {
            throw invalid("it holds \(rows.count) rows but its descriptor says \(cardinality)")
        }
        return rows
    }

    static func invalid(_ what: String) -> KilnError { KilnError(.invalidState, "A deletion vector cannot be read: \(what)") }

    /// One vector of a deletion-vector file: checks the size the file records and the CRC-32.
    static func readFromFile(_ path: String, offset: Int, size: Int) throws -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw invalid("\(URL(fileURLWithPath: path).lastPathComponent) is missing") }
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(max(0, offset)))
        return try vector([UInt8](try handle.read(upToCount: size + 8) ?? Data()), size: size)
    }

    /// The vector's bytes from its size, body and checksum as stored in a file.
    static func vector(_ data: [UInt8], size: Int) throws -> [UInt8] {
        guard data.count == size + 8 else { throw invalid("the file ends before the vector does") }
        let recorded = Int(bigEndian32(data, 0))
        guard recorded == size else { throw invalid("the file records \(recorded) bytes where the descriptor says \(size)") }
        let body = Array(data[4..<(4 + size)])
        guard bigEndian32(data, 4 + size) == crc32(body) else { throw invalid("its checksum does not match") }
        return body
    }

    static func bigEndian32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc = crcTable[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
        }
        return crc ^ 0xFFFF_FFFF
    }

    static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static let z85Alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)
    static let z85Values: [Int16] = {
        var table = [Int16](repeating: -1, count: 256)
        for (i, c) in z85Alphabet.enumerated() { table[Int(c)] = Int16(i) }
        return table
    }()

    /// Z85 (ZeroMQ base-85): every 5 characters are 4 bytes, big-endian.
    static func z85Decode(_ text: Substring) throws -> [UInt8] {
        let chars = Array(text.utf8)
        guard chars.count % 5 == 0 else { throw invalid("Z85 text of \(chars.count) characters (a multiple of 5 is needed)") }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 5 * 4)
        for start in stride(from: 0, to: chars.count, by: 5) {
            var value: UInt64 = 0
            for c in chars[start..<start + 5] {
                let digit = z85Values[Int(c)]
                guard digit >= 0 else { throw invalid("'\(Character(Unicode.Scalar(c)))' is not a Z85 character") }
                value = value * 85 + UInt64(digit)
            }
            guard value <= UInt64(UInt32.max) else { throw invalid("Z85 group out of range") }
            out += [UInt8(value >> 24 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
        }
        return out
    }

    /// Magic number + portable 64-bit Roaring bitmap → sorted row indexes.
    static func decodeBitmap(_ bytes: [UInt8]) throws -> [Int] {
        var reader = Reader(bytes: bytes)
        guard try reader.u32() == magic else { throw invalid("unknown format (the magic number is not 1681511377)") }
        let count = try reader.u64()
        guard count <= UInt64(bytes.count) else { throw invalid("\(count) bitmaps in \(bytes.count) bytes") }
        var rows: [Int] = []
        var previousHigh: Int64 = -1
        for _ in 0..<count {
            let high = try reader.u32()
            guard Int64(high) > previousHigh else { throw invalid("bitmap keys out of order") }
            previousHigh = Int64(high)
            let base = Int(high) << 32
            try readRoaring32(&reader) { rows.append(base | Int($0)) }
        }
        return rows
    }

    /// A standard (32-bit) Roaring bitmap in the portable format; calls `add` for each value in ascending order.
    static func readRoaring32(_ reader: inout Reader, add: (UInt32) -> Void) throws {
        let cookie = try reader.u32()
        let containers: Int
        var runFlags: [UInt8] = []
        if cookie & 0xFFFF == 12347 {
            containers = Int(cookie >> 16) + 1
            runFlags = try reader.bytes((containers + 7) / 8)
        } else if cookie == 12346 {
            containers = Int(try reader.u32())
        } else {
            throw invalid("unknown Roaring cookie \(cookie)")
        }
        guard containers <= 65536 else { throw invalid("\(containers) Roaring containers") }
        var keys: [UInt32] = [], cardinalities: [Int] = []
        for _ in 0..<containers {
            keys.append(UInt32(try reader.u16()))
            cardinalities.append(Int(try reader.u16()) + 1)
        }
        // Offsets are there without run containers, or with at least 4 containers; the data follows in order anyway.
        if runFlags.isEmpty || containers >= 4 { _ = try reader.bytes(4 * containers) }
        for i in 0..<containers {
            let high = keys[i] << 16
            let isRun = !runFlags.isEmpty && runFlags[i / 8] >> (i % 8) & 1 == 1
            if isRun {
                let runs = Int(try reader.u16())
                for _ in 0..<runs {
                    let start = UInt32(try reader.u16()), length = UInt32(try reader.u16())
                    guard start + length <= 0xFFFF else { throw invalid("a run past its container") }
                    for v in start...(start + length) { add(high | v) }
                }
            } else if cardinalities[i] <= 4096 {
                for _ in 0..<cardinalities[i] { add(high | UInt32(try reader.u16())) }
            } else {
                let words = try reader.bytes(8192)
                for (w, byte) in words.enumerated() where byte != 0 {
                    for bit in 0..<8 where byte >> bit & 1 == 1 { add(high | UInt32(w * 8 + bit)) }
                }
            }
        }
    }

    /// Little-endian reads with bounds checks.
    struct Reader {
        let bytes: [UInt8]
        var at = 0

        mutating func bytes(_ n: Int) throws -> [UInt8] {
            guard n >= 0, at + n <= bytes.count else { throw DeletionVector.invalid("the bitmap ends early") }
            defer { at += n }
            return Array(bytes[at..<at + n])
        }

        mutating func u16() throws -> UInt16 {
            let b = try bytes(2)
            return UInt16(b[0]) | UInt16(b[1]) << 8
        }

        mutating func u32() throws -> UInt32 {
            let b = try bytes(4)
            return b.enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
        }

        mutating func u64() throws -> UInt64 {
            let b = try bytes(8)
            return b.enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        }
    }
}
