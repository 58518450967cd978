import CSnappy
import CZlib
import CZstd

/// Decompresses page bodies. Output sizes come from the page header and are checked: a page that inflates to
/// anything but its declared size is an error, and no page may declare more than `maxPageBytes`.
enum Codecs {
    static let maxPageBytes = 1 << 30

    static func decompress(_ input: ArraySlice<UInt8>, codec: Codec, uncompressedSize: Int) throws -> [UInt8] {
        guard uncompressedSize >= 0, uncompressedSize <= maxPageBytes else {
            throw ParquetError("Page declares \(uncompressedSize) uncompressed bytes; the limit is \(maxPageBytes)")
        }
        // No codec Parquet uses inflates real pages past ~1000:1; a header claiming more is lying, and believing it
        // would let a tiny hostile page make us allocate up to `maxPageBytes`.
        guard uncompressedSize <= max(16 << 20, input.count * 1100) else {
            throw ParquetError("Page declares \(uncompressedSize) uncompressed bytes from \(input.count) compressed ones")
        }
        switch codec {
        case .uncompressed:
            guard input.count == uncompressedSize else { throw ParquetError("Uncompressed page size does not match its header") }
            return Array(input)
        case .snappy: return try snappy(input, size: uncompressedSize)
        case .zstd: return try zstd(input, size: uncompressedSize)
        case .gzip: return try gzip(input, size: uncompressedSize)
        default: throw ParquetError("Codec \(codec.name) is not supported yet")
        }
    }

    static func snappy(_ input: ArraySlice<UInt8>, size: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: size)
        var length = size
        let status = input.withUnsafeBytes { src in
            output.withUnsafeMutableBytes { dst in
                var declared = 0
                guard snappy_uncompressed_length(src.baseAddress, src.count, &declared) == SNAPPY_OK, declared == size else {
                    return SNAPPY_INVALID_INPUT
                }
                return snappy_uncompress(src.baseAddress, src.count, dst.baseAddress, &length)
            }
        }
        guard status == SNAPPY_OK, length == size else { throw ParquetError("Corrupt SNAPPY page") }
        return output
    }

    static func zstd(_ input: ArraySlice<UInt8>, size: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: size)
        let written = input.withUnsafeBytes { src in
            output.withUnsafeMutableBytes { dst in ZSTD_decompress(dst.baseAddress, dst.count, src.baseAddress, src.count) }
        }
        guard ZSTD_isError(written) == 0, written == size else { throw ParquetError("Corrupt ZSTD page") }
        return output
    }

    static func gzip(_ input: ArraySlice<UInt8>, size: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: size)
        var source = Array(input)
        var stream = z_stream()
        // 15 + 32: accept gzip or zlib headers.
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw ParquetError("Cannot start GZIP decompression")
        }
        defer { inflateEnd(&stream) }
        let status = source.withUnsafeMutableBytes { src in
            output.withUnsafeMutableBytes { dst in
                stream.next_in = src.bindMemory(to: Bytef.self).baseAddress
                stream.avail_in = uInt(src.count)
                stream.next_out = dst.bindMemory(to: Bytef.self).baseAddress
                stream.avail_out = uInt(dst.count)
                return inflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END, Int(stream.total_out) == size else { throw ParquetError("Corrupt GZIP page") }
        return output
    }
}

extension Codecs {
    /// Compresses a page body. ZSTD uses level 1 and GZIP level 6, as Arrow does by default.
    static func compress(_ input: [UInt8], codec: Codec) throws -> [UInt8] {
        switch codec {
        case .uncompressed:
            return input
        case .snappy:
            var length = snappy_max_compressed_length(input.count)
            var output = [UInt8](repeating: 0, count: length)
            let status = input.withUnsafeBytes { src in
                output.withUnsafeMutableBytes { dst in snappy_compress(src.baseAddress, src.count, dst.baseAddress, &length) }
            }
            guard status == SNAPPY_OK else { throw ParquetError("SNAPPY compression failed") }
            output.removeLast(output.count - length)
            return output
        case .zstd:
            var output = [UInt8](repeating: 0, count: ZSTD_compressBound(input.count))
            let written = input.withUnsafeBytes { src in
                output.withUnsafeMutableBytes { dst in ZSTD_compress(dst.baseAddress, dst.count, src.baseAddress, src.count, 1) }
            }
            guard ZSTD_isError(written) == 0 else { throw ParquetError("ZSTD compression failed") }
            output.removeLast(output.count - written)
            return output
        case .gzip:
            var stream = z_stream()
            // 15 + 16: a gzip header, which is what Parquet's GZIP means.
            guard deflateInit2_(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                throw ParquetError("Cannot start GZIP compression")
            }
            defer { deflateEnd(&stream) }
            var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))) + 32)
            var source = input
            let status = source.withUnsafeMutableBytes { src in
                output.withUnsafeMutableBytes { dst in
                    stream.next_in = src.bindMemory(to: Bytef.self).baseAddress
                    stream.avail_in = uInt(src.count)
                    stream.next_out = dst.bindMemory(to: Bytef.self).baseAddress
                    stream.avail_out = uInt(dst.count)
                    return deflate(&stream, Z_FINISH)
                }
            }
            guard status == Z_STREAM_END else { throw ParquetError("GZIP compression failed") }
            output.removeLast(output.count - Int(stream.total_out))
            return output
        default:
            throw ParquetError("Kiln does not write \(codec.name); use SNAPPY, ZSTD, GZIP or none")
        }
    }
}
