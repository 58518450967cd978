import ArgumentParser
import Foundation
import KilnParquet

struct Parquet: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect Parquet files (works on local files; no server needed).",
        subcommands: [Schema.self, Stats.self]
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
