import ArgumentParser
import Foundation
import KilnCore
import KilnParquet

struct Parquet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parquet", abstract: "Inspect Parquet files (works on local files; no server needed).",
        subcommands: [Schema.self, Stats.self, Cat.self, Scan.self, Convert.self]
    )

    static func open(_ path: String) throws -> ParquetFileReader {
        do {
            return try ParquetFileReader(path: path)
        } catch let error as ParquetError {
            throw ValidationError("\(error.description). Check that the path points at a complete Parquet file.")
        }
    }

    /// Runs `body`, turning Parquet errors into messages for people.
    static func run<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as ParquetError {
            throw ValidationError(error.description)
        }
    }

    struct Schema: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "schema", abstract: "Print the leaf columns with their types.")
        @Argument(help: "The Parquet file.") var file: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let reader = try Parquet.open(file)
            let leaves = reader.columns
            if json {
                let rows: [[String: Any]] = leaves.map { leaf in
                    var row: [String: Any] = ["path": leaf.dottedPath,
                                              "physical_type": leaf.element.physicalType?.name ?? "GROUP",
                                              "repetition": leaf.element.repetition?.name ?? "REQUIRED",
                                              "max_definition_level": leaf.maxDefinitionLevel,
                                              "max_repetition_level": leaf.maxRepetitionLevel]
                    if let logical = leaf.element.logicalType { row["logical_type"] = logical.name }
                    if let converted = leaf.element.convertedTypeName { row["converted_type"] = converted }
                    if let length = leaf.element.typeLength { row["type_length"] = Int(length) }
                    return row
                }
                return try printJSON(rows)
            }
            printTable(["FIELD", "TYPE"], reader.schema.root.children.map { [$0.name, SchemaDDL.typeName($0)] })
            print("")
            printTable(["COLUMN", "PHYSICAL", "REPETITION", "LOGICAL"], leaves.map { leaf in
                let logical: String = leaf.element.logicalType?.name ?? leaf.element.convertedTypeName ?? ""
                return [leaf.dottedPath, leaf.element.physicalType?.name ?? "GROUP", leaf.element.repetition?.name ?? "REQUIRED", logical]
            })
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "stats", abstract: "Print row count, row groups and per-column sizes and codecs.")
        @Argument(help: "The Parquet file.") var file: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let meta = try Parquet.open(file).metadata
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
            commandName: "cat", abstract: "Print rows as JSON lines.",
            discussion: """
                Dates are YYYY-MM-DD, timestamps ISO-8601 UTC with microseconds, decimals strings, binary base64, \
                NaN/Infinity strings, lists arrays, structs and maps objects.
                """)
        @Argument(help: "The Parquet file.") var file: String
        @Option(help: "Comma-separated columns to print (default: all); a struct's name selects all its fields.") var columns: String?
        @Option(help: "Stop after this many rows.") var limit: Int?
        @Option(name: .customLong("where"), help: "Keep rows where a top-level column compares true: 'x >= 5', \"name = 'a'\". Repeatable.")
        var filters: [String] = []

        func run() throws {
            let reader = try Parquet.open(file)
            try Parquet.run {
                let selected = try columns.map { try reader.columnIndices($0.split(separator: ",").map(String.init)) } ?? Array(reader.columns.indices)
                let predicates = try filters.map(ColumnPredicate.parse)
                let filterColumns = try predicates.map { p -> Int in
                    guard let i = reader.schema.columnIndex(p.column), reader.columns[i].path.count == 1,
                          reader.columns[i].maxRepetitionLevel == 0 else {
                        throw ParquetError("--where works on top-level, non-repeated columns; '\(p.column)' is not one")
                    }
                    return i
                }
                let needed = selected + filterColumns.filter { !selected.contains($0) }
                var printed = 0
                for group in try reader.rowGroups(matching: predicates) {
                    if let limit, printed >= limit { break }
                    let data = try reader.readRowGroup(group, columns: needed)
                    let all = RecordAssembler.columns(needed, data)
                    let shown = try RecordAssembler(schema: reader.schema, columns: all.filter { selected.contains($0.key) })
                    let tests = try RecordAssembler(schema: reader.schema, columns: all.filter { filterColumns.contains($0.key) })
                    let testFields = tests.fields.map(\.name)
                    let renderer = ParquetJSON(include: shown.hasSelectedLeaf)
                    var out: [UInt8] = []
                    for row in 0..<shown.rowCount {
                        if let limit, printed >= limit { break }
                        if !predicates.isEmpty {
                            let cells = try tests.row(row)
                            let keep = predicates.allSatisfy { p in
                                guard let i = testFields.firstIndex(of: p.column) else { return false }
                                return p.matches(cells[i])
                            }
                            if !keep { continue }
                        }
                        out += renderer.row(try shown.row(row), fields: shown.fields)
                        out.append(0x0A)
                        printed += 1
                    }
                    FileHandle.standardOutput.write(Data(out))
                }
            }
        }
    }

    struct Scan: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "scan", abstract: "Decode every value of the chosen columns into memory; print the row count and the time taken.",
            discussion: "The benchmark entry point: row groups and columns decode in parallel; --where skips row groups by their statistics.")
        @Argument(help: "The Parquet file.") var file: String
        @Option(help: "Comma-separated columns (default: all).") var columns: String?
        @Option(name: .customLong("where"), help: "Skip row groups whose min/max rule out 'column <op> value'. Repeatable.")
        var filters: [String] = []
        @Flag(help: "Decode on one thread.") var serial = false
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let started = Date()
            let reader = try Parquet.open(file)
            let (rows, bytes, groups) = try Parquet.run { () -> (Int, Int, Int) in
                let selected = try columns.map { try reader.columnIndices($0.split(separator: ",").map(String.init)) } ?? Array(reader.columns.indices)
                let groups = try reader.rowGroups(matching: try filters.map(ColumnPredicate.parse))
                let data = try reader.readAll(rowGroups: groups, columns: selected, parallel: !serial)
                let rows = groups.reduce(0) { $0 + Int(reader.metadata.rowGroups[$1].numRows) }
                return (rows, data.reduce(0) { $0 + $1.reduce(0) { $0 + $1.memoryBytes } }, groups.count)
            }
            let seconds = Date().timeIntervalSince(started)
            if json {
                return try printJSON(["rows": rows, "seconds": seconds, "decoded_bytes": bytes, "row_groups_read": groups,
                                      "row_groups_skipped": reader.metadata.rowGroups.count - groups] as [String: Any])
            }
            print(String(format: "%d rows, %d of %d row groups, %.1f MB decoded in %.3f s (%.0f MB/s)", rows, groups,
                         reader.metadata.rowGroups.count, Double(bytes) / 1e6, seconds, Double(bytes) / 1e6 / max(seconds, 1e-9)))
        }
    }
}

extension RecordAssembler {
    static func columns(_ indices: [Int], _ data: [ColumnData]) -> [Int: ColumnData] {
        Dictionary(uniqueKeysWithValues: zip(indices, data))
    }
}
