import Foundation

/// Parquet encodings (`Encoding` in parquet.thrift).
public enum Encoding: Int32, Sendable {
    case plain = 0, plainDictionary = 2, rle = 3, bitPacked = 4, deltaBinaryPacked = 5, deltaLengthByteArray = 6,
         deltaByteArray = 7, rleDictionary = 8, byteStreamSplit = 9

    public var name: String {
        switch self {
        case .plain: "PLAIN"
        case .plainDictionary: "PLAIN_DICTIONARY"
        case .rle: "RLE"
        case .bitPacked: "BIT_PACKED"
        case .deltaBinaryPacked: "DELTA_BINARY_PACKED"
        case .deltaLengthByteArray: "DELTA_LENGTH_BYTE_ARRAY"
        case .deltaByteArray: "DELTA_BYTE_ARRAY"
        case .rleDictionary: "RLE_DICTIONARY"
        case .byteStreamSplit: "BYTE_STREAM_SPLIT"
        }
    }
}

/// Decodes the pages of one column chunk into typed buffers and levels.
///
/// Every size comes from the file and is checked before it is used: page sizes against the chunk, value counts
/// against `maxValuesPerPage`, dictionary indices against the dictionary, lengths against the bytes that remain.
struct ColumnChunkDecoder {
    /// Pages declaring more values than this are refused, which bounds what a hostile page can make us allocate.
    static let maxValuesPerPage = 1 << 24

    let column: ColumnDescriptor
    let codec: Codec
    let type: PhysicalType
    let width: Int
    var dictionary: ColumnValues?

    var out: ValueBuilder
    var definitions: [UInt8] = []
    var repetitions: [UInt8] = []
    var slots = 0
    var indexScratch: [UInt32] = []
    /// Keep a BYTE_ARRAY chunk's dictionary codes instead of its values while every data page is dictionary-encoded.
    var keepCodes: Bool
    var codes: [UInt32] = []

    init(column: ColumnDescriptor, codec: Codec, expectedSlots: Int64, byteHint: Int64 = 0, keepCodes: Bool = false) throws {
        guard let type = column.element.physicalType else { throw ParquetError("'\(column.dottedPath)' is a group, not a column") }
        self.column = column
        self.codec = codec
        self.type = type
        width = type == .int96 ? 12 : Int(column.element.typeLength ?? 0)
        out = ValueBuilder(type, width: width)
        self.keepCodes = keepCodes && type == .byteArray
        let reserve = Int(min(expectedSlots, 1 << 20))
        switch type {
        case .boolean: out.bools.reserveCapacity(reserve)
        case .int32: out.ints32.reserveCapacity(reserve)
        case .int64: out.ints64.reserveCapacity(reserve)
        case .float: out.floats.reserveCapacity(reserve)
        case .double: out.doubles.reserveCapacity(reserve)
        case .byteArray:
            if self.keepCodes {
                codes.reserveCapacity(reserve)
            } else {
                out.byteArrays.offsets.reserveCapacity(reserve + 1)
                out.byteArrays.data.reserveCapacity(Int(min(byteHint, 1 << 28)))
            }
        case .int96, .fixedLenByteArray: out.fixed.data.reserveCapacity(reserve * width)
        }
        if column.maxDefinitionLevel > 0 { definitions.reserveCapacity(reserve) }
        if column.maxRepetitionLevel > 0 { repetitions.reserveCapacity(reserve) }
    }

    var name: String { column.dottedPath }

    /// Decodes a whole chunk (its pages back to back) and returns the column's data.
    /// With `keepingCodes`, a BYTE_ARRAY chunk whose data pages are all dictionary-encoded comes back as codes.
    static func decode(chunk bytes: [UInt8], meta: ColumnChunkMetaData, column: ColumnDescriptor, keepingCodes: Bool = false) throws -> ColumnData {
        guard [.uncompressed, .snappy, .gzip, .zstd].contains(meta.codec) else {
            throw ParquetError("Column '\(column.dottedPath)' uses \(meta.codec.name) compression, which Kiln does not read; rewrite the file with SNAPPY, ZSTD or GZIP")
        }
        var decoder = try ColumnChunkDecoder(column: column, codec: meta.codec, expectedSlots: meta.numValues,
                                             byteHint: meta.totalUncompressedSize, keepCodes: keepingCodes)
        var position = 0
        while position < bytes.count, decoder.slots < meta.numValues {
            var reader = ThriftCompactReader(bytes, position: position)
            let header = try reader.readStruct()
            let bodyStart = reader.position
            guard let size = header.i32(3), size >= 0, bodyStart + Int(size) <= bytes.count else {
                throw ParquetError("Page header in '\(column.dottedPath)' declares a size beyond the chunk")
            }
            position = bodyStart + Int(size)
            try decoder.page(header, stored: bytes[bodyStart..<position], remaining: meta.numValues - Int64(decoder.slots))
        }
        guard decoder.slots == meta.numValues else {
            throw ParquetError("Column '\(column.dottedPath)' decoded \(decoder.slots) values; the footer says \(meta.numValues)")
        }
        return decoder.finish()
    }

    mutating func page(_ header: ThriftStruct, stored: ArraySlice<UInt8>, remaining: Int64) throws {
        let uncompressedSize = Int(header.i32(2) ?? -1)
        switch header.i32(1) {
        case 2:  // dictionary page
            guard let dict = header.structure(7), let count = dict.i32(1), count >= 0, Int(count) <= Self.maxValuesPerPage else {
                throw ParquetError("Bad dictionary page header in '\(name)'")
            }
            guard dictionary == nil else { throw ParquetError("Column '\(name)' has two dictionary pages") }
            let body = try Codecs.decompress(stored, codec: codec, uncompressedSize: uncompressedSize)
            var cursor = ByteCursor(body[...])
            dictionary = try plainDictionary(&cursor, count: Int(count))
        case 0, 3:
            let v2 = header.i32(1) == 3
            guard let page = header.structure(v2 ? 8 : 5), let rawCount = page.i32(1), rawCount >= 0 else {
                throw ParquetError("Bad data page header in '\(name)'")
            }
            let count = Int(rawCount)
            guard count <= Self.maxValuesPerPage else {
                throw ParquetError("Data page in '\(name)' declares \(count) values; the limit is \(Self.maxValuesPerPage)")
            }
            guard Int64(count) <= remaining else {
                throw ParquetError("Data page in '\(name)' declares \(count) values; the chunk has \(remaining) left")
            }
            let encoding = page.i32(v2 ? 4 : 2) ?? 0
            let repBits = RLEHybrid.bitWidth(UInt64(column.maxRepetitionLevel))
            let defBits = RLEHybrid.bitWidth(UInt64(column.maxDefinitionLevel))
            let body: [UInt8]
            var cursor: ByteCursor
            let levelStart = definitions.count, repStart = repetitions.count
            if v2 {
                let defLength = Int(page.i32(5) ?? 0), repLength = Int(page.i32(6) ?? 0)
                guard defLength >= 0, repLength >= 0, defLength + repLength <= stored.count else {
                    throw ParquetError("Level lengths exceed the page in '\(name)'")
                }
                let levels = stored.prefix(repLength + defLength)
                if column.maxRepetitionLevel > 0 {
                    try RLEHybrid.decode(levels.prefix(repLength), bitWidth: repBits, count: count, into: &repetitions)
                }
                if column.maxDefinitionLevel > 0 {
                    try RLEHybrid.decode(levels.dropFirst(repLength), bitWidth: defBits, count: count, into: &definitions)
                }
                let values = stored.dropFirst(repLength + defLength)
                let compressed = page.bool(7) ?? true
                body = compressed && codec != .uncompressed
                    ? try Codecs.decompress(values, codec: codec, uncompressedSize: uncompressedSize - repLength - defLength)
                    : Array(values)
                cursor = ByteCursor(body[...])
            } else {
                body = try Codecs.decompress(stored, codec: codec, uncompressedSize: uncompressedSize)
                cursor = ByteCursor(body[...])
                for (max, bits, field) in [(column.maxRepetitionLevel, repBits, 4 as Int16), (column.maxDefinitionLevel, defBits, 3)] where max > 0 {
                    guard (page.i32(field) ?? 3) == 3 else {
                        throw ParquetError("Column '\(name)' uses BIT_PACKED levels (a pre-2013 layout) which Kiln does not read")
                    }
                    let length = Int(try cursor.uint32())
                    let data = try cursor.take(length)
                    if field == 4 {
                        try RLEHybrid.decode(data, bitWidth: bits, count: count, into: &repetitions)
                    } else {
                        try RLEHybrid.decode(data, bitWidth: bits, count: count, into: &definitions)
                    }
                }
            }
            var present = count
            if column.maxDefinitionLevel > 0 {
                let maxDef = UInt8(column.maxDefinitionLevel)
                var highest: UInt8 = 0, full = 0
                definitions.withUnsafeBufferPointer { levels in
                    // In blocks of 255 with byte-wide counters, so the loop vectorizes.
                    var k = levelStart
                    while k < levels.count {
                        let end = min(levels.count, k + 255)
                        var top: UInt8 = 0, defined: UInt8 = 0
                        for j in k..<end {
                            let level = levels[j]
                            top = max(top, level)
                            defined &+= level == maxDef ? 1 : 0
                        }
                        highest = max(highest, top)
                        full += Int(defined)
                        k = end
                    }
                }
                guard highest <= maxDef else { throw ParquetError("Definition level \(highest) above the maximum \(maxDef) in '\(name)'") }
                present = full
            }
            if column.maxRepetitionLevel > 0, count > 0 {
                let maxRep = UInt8(column.maxRepetitionLevel)
                guard repetitions[repStart] == 0 || slots > 0 else { throw ParquetError("Column '\(name)' starts in the middle of a row") }
                for level in repetitions[repStart...] where level > maxRep {
                    throw ParquetError("Repetition level \(level) above the maximum \(maxRep) in '\(name)'")
                }
            }
            try values(&cursor, encoding: encoding, count: present)
            slots += count
        default:
            return  // index pages and unknown page types are skipped
        }
    }

    // MARK: Values

    mutating func values(_ cursor: inout ByteCursor, encoding raw: Int32, count: Int) throws {
        guard let encoding = Encoding(rawValue: raw) else { throw ParquetError("Unknown encoding \(raw) in '\(name)'") }
        func unsupported() -> ParquetError {
            ParquetError("Encoding \(encoding.name) is not valid for \(type.name) column '\(name)'")
        }
        if encoding == .plainDictionary || encoding == .rleDictionary {
            return try dictionaryIndices(&cursor, count: count)
        }
        if keepCodes {  // a writer fell back to plain pages: write out the codes so far and go on with values
            keepCodes = false
            if case .byteArray(let d)? = dictionary { try DictionaryCodes.gather(d, codes, into: &out.byteArrays) }
            codes = []
        }
        switch (type, encoding) {
        case (.boolean, .plain):
            let bytes = try cursor.take((count + 7) / 8)
            bytes.withUnsafeBufferPointer { b in
                for i in 0..<count { out.bools.append(b[i >> 3] >> UInt8(i & 7) & 1 == 1) }
            }
        case (.boolean, .rle):
            let length = Int(try cursor.uint32())
            var bits: [UInt8] = []
            try RLEHybrid.decode(try cursor.take(length), bitWidth: 1, count: count, into: &bits)
            out.bools.append(contentsOf: bits.lazy.map { $0 == 1 })
        case (.int32, .plain): try Self.plain(&cursor, count: count, into: &out.ints32)
        case (.int64, .plain): try Self.plain(&cursor, count: count, into: &out.ints64)
        case (.float, .plain): try Self.plain(&cursor, count: count, into: &out.floats)
        case (.double, .plain): try Self.plain(&cursor, count: count, into: &out.doubles)
        case (.int32, .deltaBinaryPacked):
            let (decoded, _) = try DeltaBinaryPacked.decode(cursor.rest, limit: count)
            guard decoded.count == count else { throw ParquetError("DELTA_BINARY_PACKED page in '\(name)' holds \(decoded.count) of \(count) values") }
            out.ints32.append(contentsOf: decoded.lazy.map { Int32(truncatingIfNeeded: $0) })
        case (.int64, .deltaBinaryPacked):
            let (decoded, _) = try DeltaBinaryPacked.decode(cursor.rest, limit: count)
            guard decoded.count == count else { throw ParquetError("DELTA_BINARY_PACKED page in '\(name)' holds \(decoded.count) of \(count) values") }
            out.ints64.append(contentsOf: decoded)
        case (.int32, .byteStreamSplit): try Self.byteStreamSplit(&cursor, count: count, into: &out.ints32)
        case (.int64, .byteStreamSplit): try Self.byteStreamSplit(&cursor, count: count, into: &out.ints64)
        case (.float, .byteStreamSplit): try Self.byteStreamSplit(&cursor, count: count, into: &out.floats)
        case (.double, .byteStreamSplit): try Self.byteStreamSplit(&cursor, count: count, into: &out.doubles)
        case (.fixedLenByteArray, .byteStreamSplit):
            let bytes = try cursor.take(count * width)
            let base = out.fixed.data.count
            out.fixed.data.append(contentsOf: repeatElement(0, count: count * width))
            bytes.withUnsafeBufferPointer { src in
                out.fixed.data.withUnsafeMutableBufferPointer { dst in
                    for k in 0..<width {
                        for i in 0..<count { dst[base + i * width + k] = src[k * count + i] }
                    }
                }
            }
        case (.byteArray, .plain):
            try Self.plainByteArrays(&cursor, count: count, into: &out.byteArrays)
        case (.int96, .plain), (.fixedLenByteArray, .plain):
            out.fixed.data.append(contentsOf: try cursor.take(count * width))
        case (.byteArray, .deltaLengthByteArray):
            let (lengths, used) = try DeltaBinaryPacked.decode(cursor.rest, limit: count)
            guard lengths.count == count else { throw ParquetError("DELTA_LENGTH_BYTE_ARRAY page in '\(name)' holds too few lengths") }
            cursor.position += used
            for length in lengths {
                guard length >= 0, length <= cursor.remaining else { throw ParquetError("DELTA_LENGTH_BYTE_ARRAY length out of range in '\(name)'") }
                out.byteArrays.append(try cursor.take(Int(length)))
            }
        case (.byteArray, .deltaByteArray), (.fixedLenByteArray, .deltaByteArray):
            let (prefixes, used) = try DeltaBinaryPacked.decode(cursor.rest, limit: count)
            guard prefixes.count == count else { throw ParquetError("DELTA_BYTE_ARRAY page in '\(name)' holds too few prefixes") }
            cursor.position += used
            let (suffixes, usedSuffixes) = try DeltaBinaryPacked.decode(cursor.rest, limit: count)
            guard suffixes.count == count else { throw ParquetError("DELTA_BYTE_ARRAY page in '\(name)' holds too few suffixes") }
            cursor.position += usedSuffixes
            var previous: [UInt8] = []
            for i in 0..<count {
                let prefix = prefixes[i], suffix = suffixes[i]
                guard prefix >= 0, prefix <= previous.count, suffix >= 0, suffix <= cursor.remaining else {
                    throw ParquetError("DELTA_BYTE_ARRAY prefix or suffix out of range in '\(name)'")
                }
                var value = Array(previous.prefix(Int(prefix)))
                value.append(contentsOf: try cursor.take(Int(suffix)))
                if type == .byteArray {
                    out.byteArrays.append(value)
                } else {
                    guard value.count == width else { throw ParquetError("DELTA_BYTE_ARRAY value of \(value.count) bytes in FIXED_LEN_BYTE_ARRAY(\(width)) '\(name)'") }
                    out.fixed.data.append(contentsOf: value)
                }
                previous = value
            }
        default:
            throw unsupported()
        }
    }

    static func plain<T: ParquetFixedWidth & AdditiveArithmetic>(_ cursor: inout ByteCursor, count: Int, into out: inout [T]) throws {
        let bytes = try cursor.take(count * T.byteWidth)
        let base = out.count
        out.append(contentsOf: repeatElement(T.zero, count: count))
        bytes.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                guard let from = src.baseAddress, let to = dst.baseAddress else { return }
                (to + base * T.byteWidth).copyMemory(from: from, byteCount: count * T.byteWidth)
            }
        }
    }

    static func byteStreamSplit<T: ParquetFixedWidth & AdditiveArithmetic>(_ cursor: inout ByteCursor, count: Int, into out: inout [T]) throws {
        let width = T.byteWidth
        let bytes = try cursor.take(count * width)
        let base = out.count
        out.append(contentsOf: repeatElement(T.zero, count: count))
        bytes.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBytes { raw in
                let dst = raw.bindMemory(to: UInt8.self)
                for k in 0..<width {
                    for i in 0..<count { dst[(base + i) * width + k] = src[k * count + i] }
                }
            }
        }
    }

    static func plainByteArrays(_ cursor: inout ByteCursor, count: Int, into out: inout ByteArrays) throws {
        let rest = cursor.rest
        var consumed = 0
        try rest.withUnsafeBytes { raw in
            // First the lengths (checked against the page), then one copy per value into buffers sized once.
            var position = 0, total = 0
            for _ in 0..<count {
                guard position + 4 <= raw.count else { throw ParquetError("Page data ends early in a BYTE_ARRAY length") }
                let length = Int(raw.loadUnaligned(fromByteOffset: position, as: UInt32.self))
                position += 4
                guard length <= raw.count - position else { throw ParquetError("BYTE_ARRAY of \(length) bytes runs past the page") }
                position += length
                total += length
            }
            guard out.data.count + total <= Int(Int32.max) else { throw ParquetError("Column chunk holds more than 2 GiB of BYTE_ARRAY data") }
            consumed = position
            let dataStart = out.data.count, offsetStart = out.offsets.count
            out.data.append(contentsOf: repeatElement(0, count: total))
            out.offsets.append(contentsOf: repeatElement(0, count: count))
            out.data.withUnsafeMutableBufferPointer { data in
                out.offsets.withUnsafeMutableBufferPointer { offsets in
                    var at = 0, end = dataStart
                    for k in 0..<count {
                        let length = Int(raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))
                        at += 4
                        if length > 0 { (data.baseAddress! + end).update(from: raw.baseAddress!.assumingMemoryBound(to: UInt8.self) + at, count: length) }
                        at += length
                        end += length
                        offsets[offsetStart + k] = Int32(end)
                    }
                }
            }
        }
        cursor.position += consumed
    }

    mutating func plainDictionary(_ cursor: inout ByteCursor, count: Int) throws -> ColumnValues {
        switch type {
        case .boolean:
            throw ParquetError("Column '\(name)' has a dictionary page for BOOLEAN values")
        case .int32:
            var v: [Int32] = []
            try Self.plain(&cursor, count: count, into: &v)
            return .int32(v)
        case .int64:
            var v: [Int64] = []
            try Self.plain(&cursor, count: count, into: &v)
            return .int64(v)
        case .float:
            var v: [Float] = []
            try Self.plain(&cursor, count: count, into: &v)
            return .float(v)
        case .double:
            var v: [Double] = []
            try Self.plain(&cursor, count: count, into: &v)
            return .double(v)
        case .byteArray:
            var v = ByteArrays()
            try Self.plainByteArrays(&cursor, count: count, into: &v)
            return .byteArray(v)
        case .int96, .fixedLenByteArray:
            return .fixedLenByteArray(FixedBytes(width: width, data: Array(try cursor.take(count * width))))
        }
    }

    /// Decodes a page's dictionary indices onto the end of `target`, each checked against the dictionary's `size`.
    static func indices(_ cursor: inout ByteCursor, count: Int, into target: inout [UInt32], size: Int, name: String) throws {
        let start = target.count
        if count > 0 {
            let bitWidth = Int(try cursor.byte())
            try RLEHybrid.decode(cursor.rest, bitWidth: bitWidth, count: count, into: &target)
        }
        var largest: UInt32 = 0
        target.withUnsafeBufferPointer { all in
            for index in all[start...] { largest = max(largest, index) }
        }
        if target.count > start, Int(largest) >= size {
            throw ParquetError("Dictionary index \(largest) out of range (\(size) entries) in '\(name)'")
        }
    }

    mutating func dictionaryIndices(_ cursor: inout ByteCursor, count: Int) throws {
        guard let dictionary else { throw ParquetError("Dictionary-encoded page without a dictionary page in '\(name)'") }
        if keepCodes, case .byteArray = dictionary {  // kept as they are
            return try Self.indices(&cursor, count: count, into: &codes, size: dictionary.count, name: name)
        }
        indexScratch.removeAll(keepingCapacity: true)
        try Self.indices(&cursor, count: count, into: &indexScratch, size: dictionary.count, name: name)
        func gather<T>(_ dict: [T], into out: inout [T]) {
            let base = out.count, n = indexScratch.count
            guard n > 0, let first = dict.first else { return }
            out.append(contentsOf: repeatElement(first, count: n))
            dict.withUnsafeBufferPointer { d in
                indexScratch.withUnsafeBufferPointer { indices in
                    out.withUnsafeMutableBufferPointer { o in
                        let target = o.baseAddress! + base
                        for k in 0..<n { target[k] = d[Int(indices[k])] }
                    }
                }
            }
        }
        switch dictionary {
        case .int32(let d): gather(d, into: &out.ints32)
        case .int64(let d): gather(d, into: &out.ints64)
        case .float(let d): gather(d, into: &out.floats)
        case .double(let d): gather(d, into: &out.doubles)
        case .boolean(let d): gather(d, into: &out.bools)
        case .byteArray(let d):
            try DictionaryCodes.gather(d, indexScratch, into: &out.byteArrays)
        case .int96(let d), .fixedLenByteArray(let d):
            for index in indexScratch { out.fixed.data.append(contentsOf: d[Int(index)]) }
        }
    }

    consuming func finish() -> ColumnData {
        if keepCodes, case .byteArray(let d)? = dictionary {
            return ColumnData(values: .byteArray(ByteArrays()),
                              definitionLevels: column.maxDefinitionLevel == 0 || (column.maxRepetitionLevel == 0 && codes.count == slots) ? nil : definitions,
                              repetitionLevels: column.maxRepetitionLevel == 0 ? nil : repetitions,
                              count: slots, dictionaryCodes: DictionaryCodes(dictionary: d, codes: codes))
        }
        let values = out.build()
        let allDefined = column.maxRepetitionLevel == 0 && values.count == slots
        return ColumnData(values: values,
                          definitionLevels: column.maxDefinitionLevel == 0 || allDefined ? nil : definitions,
                          repetitionLevels: column.maxRepetitionLevel == 0 ? nil : repetitions,
                          count: slots)
    }
}
