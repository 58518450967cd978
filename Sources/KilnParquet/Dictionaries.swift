import Foundation

/// Dictionary encoding for the writer: distinct values in first-seen order, and an index per value. Builds with
/// open-addressing hash tables over the typed buffers and gives up (returns nil) once the dictionary would pass
/// the page limit, so the column falls back to PLAIN.
enum Dictionaries {
    struct Encoded {
        var values: ColumnValues
        var indices: [UInt32]
        var bitWidth: Int
    }

    static func build(_ values: ColumnValues, limit: Int) -> Encoded? {
        let result: (ColumnValues, [UInt32])?
        switch values {
        case .boolean: return nil
        case .int32(let v): result = fixed(v, limit: limit, key: { UInt64(UInt32(bitPattern: $0)) }).map { (.int32($0), $1) }
        case .int64(let v): result = fixed(v, limit: limit, key: { UInt64(bitPattern: $0) }).map { (.int64($0), $1) }
        case .float(let v): result = fixed(v, limit: limit, key: { UInt64($0.bitPattern) }).map { (.float($0), $1) }
        case .double(let v): result = fixed(v, limit: limit, key: { $0.bitPattern }).map { (.double($0), $1) }
        case .byteArray(let v): result = bytes(v, limit: limit).map { (.byteArray($0), $1) }
        case .int96, .fixedLenByteArray: return nil
        }
        guard let (dictionary, indices) = result, dictionary.count > 0 else { return nil }
        return Encoded(values: dictionary, indices: indices, bitWidth: max(1, RLEHybrid.bitWidth(UInt64(dictionary.count - 1))))
    }

    /// Whether to give up on the dictionary after a sample of 4,096-value steps: when nearly every value is new, or,
    /// after 64k values, when it grows fast enough to pass its limit well before the end (`limit` counted in entries).
    /// (Extrapolating from the first steps gave up on columns of a few thousand values: their first 4,096 rows are
    /// mostly new values, then no more come.)
    static func hopeless(distinct: Int, seen: Int, total: Int, limit: Int) -> Bool {
        // Nearly every value new: a dictionary would only add an index per value.
        if Double(distinct) > Double(seen) * 0.9 { return true }
        guard seen >= 1 << 16 else { return false }
        return Double(distinct) / Double(seen) * Double(total) > Double(limit) * 2 && Double(distinct) > Double(seen) * 0.5
    }

    @inline(__always)
    static func mix(_ key: UInt64) -> UInt64 {
        var h = key &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 29
        return h &* 0xBF58_476D_1CE4_E5B9
    }

    static func fixed<T: ParquetFixedWidth>(_ values: [T], limit: Int, key: (T) -> UInt64) -> ([T], [UInt32])? {
        var slots = HashSlots()
        var dictionary: [T] = []
        var indices = [UInt32]()
        indices.reserveCapacity(values.count)
        let maxEntries = limit / T.byteWidth
        for (seen, value) in values.enumerated() {
            if seen & 0xFFF == 0xFFF, Self.hopeless(distinct: dictionary.count, seen: seen + 1, total: values.count, limit: maxEntries) { return nil }
            // `mix` is a bijection, so equal hashes mean equal keys: no second comparison needed.
            let (index, inserted) = slots.lookup(mix(key(value))) { _ in true }
            if inserted {
                guard dictionary.count < maxEntries else { return nil }
                dictionary.append(value)
            }
            indices.append(UInt32(index))
        }
        return (dictionary, indices)
    }

    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ UInt64(bytes.count)
        var i = 0
        while i + 8 <= bytes.count {
            h = mix(h ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < bytes.count {
            tail |= UInt64(bytes[i]) << shift
            shift += 8
            i += 1
        }
        return mix(h ^ tail)
    }

    static func bytes(_ values: ByteArrays, limit: Int) -> (ByteArrays, [UInt32])? {
        var slots = HashSlots()
        var dictionary = ByteArrays()
        var indices = [UInt32]()
        indices.reserveCapacity(values.count)
        var dictionaryBytes = 0
        let ok: Bool = values.data.withUnsafeBytes { data in
            values.offsets.withUnsafeBufferPointer { offsets in
                for i in 0..<values.count {
                    if i & 0xFFF == 0xFFF, Self.hopeless(distinct: dictionary.count, seen: i + 1, total: values.count,
                                                            limit: limit / max(1, dictionaryBytes / max(1, dictionary.count))) { return false }
                    let start = Int(offsets[i])
                    let value = UnsafeRawBufferPointer(rebasing: data[start..<Int(offsets[i + 1])])
                    let (index, inserted) = slots.lookup(hash(value)) { entry in
                        let candidate = dictionary[entry]
                        return candidate.count == value.count && candidate.withUnsafeBytes { c in
                            value.count == 0 || memcmp(c.baseAddress!, value.baseAddress!, value.count) == 0
                        }
                    }
                    if inserted {
                        dictionaryBytes += value.count + 4
                        guard dictionaryBytes <= limit else { return false }
                        dictionary.append(value)
                    }
                    indices.append(UInt32(index))
                }
                return true
            }
        }
        return ok ? (dictionary, indices) : nil
    }
}

/// Open addressing over 64-bit hashes with linear probing, for building dictionaries: entries are numbered in
/// insertion order; callers confirm equality of entries whose hashes match.
struct HashSlots {
    private var table = [Int32](repeating: -1, count: 1024)
    private var hashes: [UInt64] = []

    /// The entry with hash `h` that `same` accepts, or a new entry for it.
    @inline(__always)
    mutating func lookup(_ h: UInt64, same: (Int) -> Bool) -> (index: Int, inserted: Bool) {
        let mask = table.count - 1
        var slot = Int(truncatingIfNeeded: h) & mask
        while true {
            let entry = table[slot]
            if entry < 0 {
                table[slot] = Int32(hashes.count)
                hashes.append(h)
                if hashes.count * 2 > table.count { grow() }
                return (hashes.count - 1, true)
            }
            if hashes[Int(entry)] == h, same(Int(entry)) { return (Int(entry), false) }
            slot = (slot + 1) & mask
        }
    }

    private mutating func grow() {
        table = [Int32](repeating: -1, count: table.count * 2)
        let mask = table.count - 1
        for (i, h) in hashes.enumerated() {
            var slot = Int(truncatingIfNeeded: h) & mask
            while table[slot] >= 0 { slot = (slot + 1) & mask }
            table[slot] = Int32(i)
        }
    }
}
