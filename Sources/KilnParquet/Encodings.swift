#if _endian(big)
#error("KilnParquet copies PLAIN values with memcpy and assumes a little-endian machine")
#endif

/// Little-endian readers over page bytes, bounds-checked for hostile pages.
struct ByteCursor {
    let bytes: ArraySlice<UInt8>
    var position: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.position = bytes.startIndex
    }

    var remaining: Int { bytes.endIndex - position }
    var rest: ArraySlice<UInt8> { bytes[position...] }

    mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else { throw ParquetError("Page data ends early: wanted \(count) bytes, \(remaining) left") }
        defer { position += count }
        return bytes[position..<position + count]
    }

    mutating func byte() throws -> UInt8 {
        guard position < bytes.endIndex else { throw ParquetError("Page data ends early") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func uint32() throws -> UInt32 {
        let b = try take(4)
        return b.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
    }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard shift < 64 else { throw ParquetError("Varint too long in page data") }
            let byte = try byte()
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    mutating func zigzag() throws -> Int64 {
        let raw = try varint()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }
}

/// Reads `width` bits (0...64) starting at bit `bit` of a little-endian bit stream; the caller checked the bounds.
@inline(__always)
func readBits(_ buffer: UnsafeRawBufferPointer, bit: Int, width: Int) -> UInt64 {
    if width == 0 { return 0 }
    let byte = bit >> 3
    let shift = bit & 7
    if width <= 56, byte + 8 <= buffer.count {
        let word = buffer.loadUnaligned(fromByteOffset: byte, as: UInt64.self)
        return (word >> UInt64(shift)) & (UInt64.max >> UInt64(64 - width))
    }
    var value: UInt64 = 0
    var read = 0
    while read < width {
        let index = (bit + read) >> 3
        let inByte = (bit + read) & 7
        let take = min(8 - inByte, width - read)
        let bits = (UInt64(buffer[index]) >> UInt64(inByte)) & ((1 << UInt64(take)) - 1)
        value |= bits << UInt64(read)
        read += take
    }
    return value
}

/// The RLE / bit-packed hybrid encoding (levels, dictionary indices, booleans).
enum RLEHybrid {
    /// Decodes `count` values of `bitWidth` bits, appending them to `out`.
    static func decode<T: FixedWidthInteger>(_ data: ArraySlice<UInt8>, bitWidth: Int, count: Int, into out: inout [T]) throws {
        guard (0...32).contains(bitWidth) else { throw ParquetError("Invalid bit width \(bitWidth)") }
        guard count > 0 else { return }
        if bitWidth == 0 {
            out.append(contentsOf: repeatElement(0, count: count))
            return
        }
        let base = out.count
        out.append(contentsOf: repeatElement(0, count: count))
        try data.withUnsafeBytes { raw in
            try out.withUnsafeMutableBufferPointer { buffer in
                try decode(raw, bitWidth: bitWidth, into: UnsafeMutableBufferPointer(rebasing: buffer[base...]))
            }
        }
    }

    /// Decodes `out.count` values into `out` (preallocated: no per-value append; bit-packed runs read with word loads).
    static func decode<T: FixedWidthInteger>(_ raw: UnsafeRawBufferPointer, bitWidth: Int, into out: UnsafeMutableBufferPointer<T>) throws {
        let target = out.count
        let byteWidth = (bitWidth + 7) / 8
        let mask = UInt64.max >> UInt64(64 - bitWidth)
        var position = 0
        var filled = 0
        while filled < target {
            var header: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard position < raw.count else { throw ParquetError("RLE data ends early") }
                guard shift < 64 else { throw ParquetError("Varint too long in RLE data") }
                let byte = raw[position]
                position += 1
                header |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { break }
                shift += 7
            }
            if header & 1 == 0 {
                let run = Int(clamping: header >> 1)
                guard run > 0 else { throw ParquetError("Empty RLE run") }
                guard position + byteWidth <= raw.count else { throw ParquetError("RLE run value ends early") }
                var value: UInt64 = 0
                for i in 0..<byteWidth { value |= UInt64(raw[position + i]) << (8 * UInt64(i)) }
                position += byteWidth
                guard value >> UInt64(bitWidth) == 0 else { throw ParquetError("RLE value \(value) wider than \(bitWidth) bits") }
                let n = min(run, target - filled)
                (out.baseAddress! + filled).update(repeating: T(truncatingIfNeeded: value), count: n)
                filled += n
            } else {
                let groups = Int(clamping: header >> 1)
                guard groups > 0, groups <= (raw.count - position) / bitWidth + 1 else { throw ParquetError("Bit-packed run longer than the page") }
                let available = min(groups * bitWidth, raw.count - position)
                let packed = UnsafeRawBufferPointer(rebasing: raw[position..<position + available])
                let values = min(groups * 8, target - filled, available * 8 / bitWidth)
                guard values > 0 else { throw ParquetError("Bit-packed run ends early") }
                // Word loads (bits past the run are masked off) while 8 bytes of the page remain from the value's first
                // byte; the tail bit by bit.
                let room = raw.count - position
                let fast = room >= 8 ? min(values, ((room - 8) * 8) / bitWidth + 1) : 0
                var bit = position * 8
                for k in 0..<fast {
                    let word = raw.loadUnaligned(fromByteOffset: bit >> 3, as: UInt64.self)
                    out[filled + k] = T(truncatingIfNeeded: (word >> UInt64(bit & 7)) & mask)
                    bit += bitWidth
                }
                for k in fast..<values {
                    out[filled + k] = T(truncatingIfNeeded: readBits(packed, bit: k * bitWidth, width: bitWidth))
                }
                filled += values
                position += available
            }
        }
    }

    /// Encodes `values` (each below `1 << bitWidth`, `bitWidth` at most 32) as the hybrid: repeats of 8 or more as RLE runs, the rest in
    /// bit-packed groups of 8 (the last group padded with zeros).
    static func encode<C: RandomAccessCollection>(_ values: C, bitWidth: Int, into out: inout [UInt8]) where C.Element: FixedWidthInteger, C.Index == Int {
        let n = values.count
        let start = values.startIndex
        let byteWidth = (bitWidth + 7) / 8
        func varint(_ value: Int) {
            var v = UInt64(value)
            while v >= 0x80 {
                out.append(UInt8(v & 0x7F) | 0x80)
                v >>= 7
            }
            out.append(UInt8(v))
        }
        func runLength(at i: Int) -> Int {
            let v = values[start + i]
            var j = i + 1
            while j < n, values[start + j] == v { j += 1 }
            return j - i
        }
        var i = 0
        while i < n {
            let run = runLength(at: i)
            if run >= 8 || i + run == n {
                varint(run << 1)
                let value = UInt64(truncatingIfNeeded: values[start + i])
                for b in 0..<byteWidth { out.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(b)))) }
                i += run
                continue
            }
            // A literal section: whole groups of 8 until a run of 8 or more begins at a group boundary.
            var end = i
            repeat {
                end = min(end + 8, n)
            } while end < n && end - i < 8 * 63 && runLength(at: end) < 8
            let groups = (end - i + 7) / 8
            varint(groups << 1 | 1)
            var accumulator: UInt64 = 0
            var bits = 0
            for k in 0..<(groups * 8) {
                let value = i + k < n ? UInt64(truncatingIfNeeded: values[start + i + k]) : 0
                accumulator |= value << UInt64(bits)
                bits += bitWidth
                while bits >= 8 {
                    out.append(UInt8(truncatingIfNeeded: accumulator))
                    accumulator = bitWidth == 64 ? 0 : accumulator >> 8
                    bits -= 8
                }
            }
            if bits > 0 { out.append(UInt8(truncatingIfNeeded: accumulator)) }
            i = end
        }
    }

    /// The number of bits needed to store `value`.
    static func bitWidth(_ value: UInt64) -> Int { value == 0 ? 0 : 64 - value.leadingZeroBitCount }
}

/// DELTA_BINARY_PACKED: blocks of bit-packed deltas from a running value.
enum DeltaBinaryPacked {
    /// Decodes up to the declared count of values (at most `limit`), returning them and how many bytes were used.
    static func decode(_ data: ArraySlice<UInt8>, limit: Int) throws -> (values: [Int64], used: Int) {
        var cursor = ByteCursor(data)
        let blockSize = try cursor.varint()
        let miniblocks = try cursor.varint()
        let total = try cursor.varint()
        var last = try cursor.zigzag()
        guard blockSize > 0, blockSize % 128 == 0, blockSize <= 1 << 20, miniblocks > 0, blockSize % miniblocks == 0,
              (blockSize / miniblocks) % 32 == 0 else {
            throw ParquetError("Bad DELTA_BINARY_PACKED header (block \(blockSize), \(miniblocks) miniblocks)")
        }
        guard total <= UInt64(limit) else { throw ParquetError("DELTA_BINARY_PACKED declares \(total) values; the page holds \(limit)") }
        let count = Int(total)
        let perMiniblock = Int(blockSize / miniblocks)
        var values: [Int64] = []
        values.reserveCapacity(count)
        if count > 0 { values.append(last) }
        while values.count < count {
            let minDelta = UInt64(bitPattern: try cursor.zigzag())
            let widths = try cursor.take(Int(miniblocks))
            for width in widths where values.count < count {
                let w = Int(width)
                guard w <= 64 else { throw ParquetError("DELTA_BINARY_PACKED bit width \(w)") }
                let full = perMiniblock * w / 8
                let needed = min(perMiniblock, count - values.count)
                let neededBytes = (needed * w + 7) / 8
                guard cursor.remaining >= neededBytes else { throw ParquetError("DELTA_BINARY_PACKED miniblock ends early") }
                let packed = cursor.bytes[cursor.position..<cursor.position + neededBytes]
                packed.withUnsafeBytes { raw in
                    var value = UInt64(bitPattern: last)
                    for k in 0..<needed {
                        value = value &+ minDelta &+ readBits(raw, bit: k * w, width: w)
                        values.append(Int64(bitPattern: value))
                    }
                    last = Int64(bitPattern: value)
                }
                cursor.position += min(full, cursor.remaining)
            }
        }
        return (values, cursor.position - data.startIndex)
    }

    /// Encodes values (used by tests and by writers that choose it): blocks of 128, 4 miniblocks.
    static func encode(_ values: [Int64], into out: inout [UInt8]) {
        func varint(_ v: UInt64) {
            var v = v
            while v >= 0x80 {
                out.append(UInt8(v & 0x7F) | 0x80)
                v >>= 7
            }
            out.append(UInt8(v))
        }
        func zigzag(_ v: Int64) { varint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }
        varint(128)
        varint(4)
        varint(UInt64(values.count))
        zigzag(values.first ?? 0)
        var i = 1
        while i < values.count {
            let end = min(i + 128, values.count)
            var deltas = (i..<end).map { values[$0] &- values[$0 - 1] }
            let minDelta = deltas.min()!
            deltas = deltas.map { $0 &- minDelta }
            deltas += [Int64](repeating: 0, count: 128 - deltas.count)
            zigzag(minDelta)
            var widths: [Int] = []
            for m in 0..<4 {
                let slice = deltas[m * 32..<(m + 1) * 32]
                widths.append(RLEHybrid.bitWidth(slice.map { UInt64(bitPattern: $0) }.max()!))
            }
            out.append(contentsOf: widths.map { UInt8($0) })
            let used = (end - i + 31) / 32
            for m in 0..<used {
                var accumulator: [UInt8] = [UInt8](repeating: 0, count: 32 * widths[m] / 8)
                for k in 0..<32 {
                    let value = UInt64(bitPattern: deltas[m * 32 + k])
                    for b in 0..<widths[m] where value >> UInt64(b) & 1 == 1 {
                        let bit = k * widths[m] + b
                        accumulator[bit >> 3] |= 1 << UInt8(bit & 7)
                    }
                }
                out.append(contentsOf: accumulator)
            }
            i = end
        }
    }
}
