/// Little-endian readers and the RLE/bit-packed hybrid, bounds-checked for hostile pages.
struct ByteCursor {
    let bytes: ArraySlice<UInt8>
    var position: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.position = bytes.startIndex
    }

    var remaining: Int { bytes.endIndex - position }

    mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else { throw ParquetError("Page data ends early: wanted \(count) bytes, \(remaining) left") }
        defer { position += count }
        return bytes[position..<position + count]
    }

    mutating func uint32() throws -> UInt32 {
        let b = try take(4)
        var v: UInt32 = 0
        for (i, byte) in b.enumerated() { v |= UInt32(byte) << (8 * UInt32(i)) }
        return v
    }

    mutating func uint64() throws -> UInt64 {
        let b = try take(8)
        var v: UInt64 = 0
        for (i, byte) in b.enumerated() { v |= UInt64(byte) << (8 * UInt64(i)) }
        return v
    }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard shift < 64 else { throw ParquetError("Varint too long in page data") }
            let byte = try take(1).first!
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }
}

enum RLEHybrid {
    /// Decodes `count` values of `bitWidth` bits from the RLE/bit-packed hybrid encoding.
    static func decode(_ data: ArraySlice<UInt8>, bitWidth: Int, count: Int) throws -> [UInt32] {
        guard (0...32).contains(bitWidth) else { throw ParquetError("Invalid bit width \(bitWidth)") }
        var out: [UInt32] = []
        out.reserveCapacity(min(count, 1 << 16))
        if bitWidth == 0 { return [UInt32](repeating: 0, count: count) }
        var cursor = ByteCursor(data)
        let byteWidth = (bitWidth + 7) / 8
        while out.count < count {
            let header = try cursor.varint()
            if header & 1 == 0 {
                let run = Int(clamping: header >> 1)
                let raw = try cursor.take(byteWidth)
                var value: UInt32 = 0
                for (i, byte) in raw.enumerated() { value |= UInt32(byte) << (8 * UInt32(i)) }
                guard run > 0 else { throw ParquetError("Empty RLE run") }
                out.append(contentsOf: repeatElement(value, count: min(run, count - out.count)))
            } else {
                let groups = Int(clamping: header >> 1)
                guard groups > 0, groups <= cursor.remaining else { throw ParquetError("Bit-packed run longer than the page") }
                let packed = try cursor.take(groups * bitWidth)
                var bitOffset = 0
                let mask: UInt64 = bitWidth == 32 ? 0xFFFF_FFFF : (1 << UInt64(bitWidth)) - 1
                for _ in 0..<(groups * 8) where out.count < count {
                    var value: UInt64 = 0
                    var read = 0
                    while read < bitWidth {
                        let byteIndex = packed.startIndex + (bitOffset + read) / 8
                        let bitInByte = (bitOffset + read) % 8
                        let take = min(8 - bitInByte, bitWidth - read)
                        let bits = (UInt64(packed[byteIndex]) >> UInt64(bitInByte)) & ((1 << UInt64(take)) - 1)
                        value |= bits << UInt64(read)
                        read += take
                    }
                    out.append(UInt32(value & mask))
                    bitOffset += bitWidth
                }
            }
        }
        return out
    }
}
