import ArgumentParser
import Foundation
import KilnCore
import KilnParquet

struct Parquet: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect Parquet files (works on local files; no server needed).",
        subcommands: [Schema.self, Stats.self, Cat.self]
    )

    static func open(_ path: String) throws -> FileMetaData {
        do {
            return try FileMetaData.read(path: path)
        } catch let error as ParquetError {
            throw ValidationError("\(error.description). Check that the path points at a complete Parquet file.")
        }
    }

    struct Schema: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the leaf columns with their types.")
        @Argument(help: "The Parquet file.") var file: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let meta = try Parquet.open(file)
            let leaves = try meta.leaves()
            if json {
                let rows: [[String: Any]] = leaves.map { leaf in
                    var row: [String: Any] = ["path": leaf.path.joined(separator: "."),
                                              "physical_type": leaf.element.physicalType?.name ?? "GROUP",
                                              "repetition": leaf.element.repetition?.name ?? "REQUIRED"]
                    if let logical = leaf.element.logicalType { row["logical_type"] = logical }
                    if let converted = leaf.element.convertedTypeName { row["converted_type"] = converted }
                    if let length = leaf.element.typeLength { row["type_length"] = Int(length) }
                    return row
                }
                return try printJSON(rows)
            }
            printTable(["COLUMN", "PHYSICAL", "REPETITION", "LOGICAL"], leaves.map { leaf in
                [leaf.path.joined(separator: "."), leaf.element.physicalType?.name ?? "GROUP", leaf.element.repetition?.name ?? "REQUIRED",
                 leaf.element.logicalType ?? leaf.element.convertedTypeName ?? ""]
            })
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print row count, row groups and per-column sizes and codecs.")
        @Argument(help: "The Parquet file.") var file: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let meta = try Parquet.open(file)
            var columns: [String: (compressed: Int64, uncompressed: Int64, values: Int64, nulls: Int64, codec: String)] = [:]
            var order: [String] = []
            for group in meta.rowGroups {
                for chunk in group.columns {
                    let key = chunk.path.joined(separator: ".")
                    if columns[key] == nil { order.append(key) }
                    var entry = columns[key] ?? (0, 0, 0, 0, chunk.codec.name)
                    entry.compressed += chunk.totalCompressedSize
                    entry.uncompressed += chunk.totalUncompressedSize
                    entry.values += chunk.numValues
                    entry.nulls += chunk.nullCount ?? 0
                    columns[key] = entry
                }
            }
            if json {
                try printJSON([
                    "num_rows": meta.numRows, "row_groups": meta.rowGroups.count, "created_by": meta.createdBy ?? "",
                    "columns": order.map { key -> [String: Any] in
                        let c = columns[key]!
                        return ["path": key, "codec": c.codec, "compressed_bytes": c.compressed, "uncompressed_bytes": c.uncompressed,
                                "num_values": c.values, "null_count": c.nulls]
                    },
                ] as [String: Any])
                return
            }
            print("rows \(meta.numRows), row groups \(meta.rowGroups.count), created by \(meta.createdBy ?? "?")")
            printTable(["COLUMN", "CODEC", "VALUES", "NULLS", "COMPRESSED", "UNCOMPRESSED"], order.map { key in
                let c = columns[key]!
                return [key, c.codec, String(c.values), String(c.nulls), String(c.compressed), String(c.uncompressed)]
            })
        }
    }
}

extension Parquet {
    struct Cat: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print rows as JSON lines (flat, uncompressed files for now).",
            discussion: "Dates are YYYY-MM-DD, timestamps ISO-8601 UTC with microseconds, decimals strings, binary base64, NaN/Infinity strings.")
        @Argument(help: "The Parquet file.") var file: String
        @Option(help: "Comma-separated columns to print (default: all).") var columns: String?
        @Option(help: "Stop after this many rows.") var limit: Int?

        func run() throws {
            let reader: ParquetFileReader
            do { reader = try ParquetFileReader(path: file) } catch let error as ParquetError { throw ValidationError(error.description) }
            let names = reader.leaves.map { $0.path.joined(separator: ".") }
            var selected = Array(names.indices)
            if let columns {
                selected = try columns.split(separator: ",").map { name in
                    guard let index = names.firstIndex(of: String(name)) else {
                        throw ValidationError("No column '\(name)'; columns are \(names.joined(separator: ", "))")
                    }
                    return index
                }
            }
            var printed = 0
            for group in reader.metadata.rowGroups.indices {
                if let limit, printed >= limit { break }
                let data: [[ParquetValue]]
                do {
                    data = try selected.map { try reader.readColumn(rowGroup: group, leaf: $0) }
                } catch let error as ParquetError {
                    throw ValidationError(error.description)
                }
                let rows = data.first?.count ?? 0
                var out = ""
                for row in 0..<rows {
                    if let limit, printed >= limit { break }
                    var w = JSONWriter()
                    w.object { w in
                        for (i, column) in selected.enumerated() {
                            w.key(names[column])
                            ParquetJSON.write(data[i][row], element: reader.leaves[column].element, into: &w)
                        }
                    }
                    out += String(decoding: w.bytes, as: UTF8.self) + "\n"
                    printed += 1
                }
                FileHandle.standardOutput.write(Data(out.utf8))
            }
        }
    }
}

/// Renders Parquet values as `kiln parquet cat` prints them.
enum ParquetJSON {
    static func write(_ value: ParquetValue, element: SchemaElement, into w: inout JSONWriter) {
        let logical = element.logicalType ?? ""
        let converted = element.convertedTypeName ?? ""
        switch value {
        case .null: w.null()
        case .bool(let b): w.value(b)
        case .int32(let v):
            if logical == "DATE" || converted == "DATE" {
                w.value(date(days: Int64(v)))
            } else if logical.hasPrefix("DECIMAL") || converted == "DECIMAL" {
                w.value(decimal(String(v), scale: Int(element.scale ?? 0)))
            } else if logical.hasPrefix("INT(") && logical.hasSuffix("unsigned)") || converted.hasPrefix("UINT_") {
                w.value(Int64(UInt32(bitPattern: v)))
            } else {
                w.value(Int64(v))
            }
        case .int64(let v):
            if logical.hasPrefix("TIMESTAMP") || converted.hasPrefix("TIMESTAMP") {
                let unit: Int64 = logical.contains("MILLIS") || converted == "TIMESTAMP_MILLIS" ? 1_000
                    : logical.contains("NANOS") ? 1_000_000_000 : 1_000_000
                w.value(timestamp(v, perSecond: unit))
            } else if logical.hasPrefix("DECIMAL") || converted == "DECIMAL" {
                w.value(decimal(String(v), scale: Int(element.scale ?? 0)))
            } else if logical == "INT(64, unsigned)" || converted == "UINT_64" {
                w.raw(String(UInt64(bitPattern: v)))
            } else {
                w.value(v)
            }
        case .int96(let bytes):
            var nanos: UInt64 = 0
            for i in 0..<8 { nanos |= UInt64(bytes[i]) << (8 * UInt64(i)) }
            var julian: UInt32 = 0
            for i in 0..<4 { julian |= UInt32(bytes[8 + i]) << (8 * UInt32(i)) }
            let days = Int64(julian) - 2_440_588
            w.value(timestamp(days * 86_400_000_000_000 + Int64(nanos), perSecond: 1_000_000_000))
        case .float(let f): w.value(Double(f))
        case .double(let d): w.value(d)
        case .bytes(let bytes):
            if logical.hasPrefix("DECIMAL") || converted == "DECIMAL" {
                w.value(decimal(bigEndianSigned(bytes), scale: Int(element.scale ?? 0)))
            } else if ["STRING", "ENUM", "JSON"].contains(logical) || ["UTF8", "ENUM", "JSON"].contains(converted) {
                w.value(String(decoding: bytes, as: UTF8.self))
            } else {
                w.value(Data(bytes).base64EncodedString())
            }
        }
    }

    static func date(days: Int64) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd"
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.locale = Locale(identifier: "en_US_POSIX")
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(days) * 86_400))
    }

    /// ISO-8601 UTC with microseconds, from a count of `perSecond` units since the epoch.
    static func timestamp(_ value: Int64, perSecond: Int64) -> String {
        var seconds = value / perSecond
        var fraction = value % perSecond
        if fraction < 0 { fraction += perSecond; seconds -= 1 }
        let micros = fraction * 1_000_000 / perSecond
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.locale = Locale(identifier: "en_US_POSIX")
        let micro = String(micros)
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds))) + "." + String(repeating: "0", count: 6 - micro.count) + micro + "Z"
    }

    /// Inserts the decimal point `scale` digits from the right of an integer's text.
    static func decimal(_ integer: String, scale: Int) -> String {
        guard scale > 0 else { return integer }
        let negative = integer.hasPrefix("-")
        var digits = negative ? String(integer.dropFirst()) : integer
        if digits.count <= scale { digits = String(repeating: "0", count: scale - digits.count + 1) + digits }
        let point = digits.index(digits.endIndex, offsetBy: -scale)
        return (negative ? "-" : "") + digits[..<point] + "." + digits[point...]
    }

    /// The decimal text of a big-endian two's-complement integer of any width.
    static func bigEndianSigned(_ bytes: [UInt8]) -> String {
        guard let first = bytes.first else { return "0" }
        let negative = first & 0x80 != 0
        var magnitude = bytes
        if negative {  // two's complement: invert and add one
            magnitude = magnitude.map { ~$0 }
            var carry = true
            for i in magnitude.indices.reversed() where carry {
                let (sum, overflow) = magnitude[i].addingReportingOverflow(1)
                magnitude[i] = sum
                carry = overflow
            }
        }
        var digits: [UInt8] = []
        var number = magnitude.drop { $0 == 0 }.map { UInt32($0) }
        while !number.isEmpty {
            var remainder: UInt32 = 0
            var next: [UInt32] = []
            for byte in number {
                let current = remainder * 256 + byte
                let quotient = current / 10
                remainder = current % 10
                if !(next.isEmpty && quotient == 0) { next.append(quotient) }
            }
            digits.append(UInt8(remainder))
            number = next
        }
        let text = digits.isEmpty ? "0" : String(digits.reversed().map { Character(String($0)) })
        return negative && text != "0" ? "-" + text : text
    }
}
