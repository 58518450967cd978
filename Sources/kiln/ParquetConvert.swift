import ArgumentParser
import Foundation
import KilnCore
import KilnLake
import KilnParquet

extension Parquet {
    struct Convert: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "convert", abstract: "Convert CSV, JSON lines or Parquet into a Parquet file.",
            discussion: """
                The input format comes from the extension (.csv, .jsonl/.ndjson, .parquet). Without --schema, CSV columns \
                are typed from the first 1,000 rows (BIGINT, DOUBLE, BOOLEAN, DATE, TIMESTAMP, else STRING; empty fields \
                are null) and JSON fields from the first 1,000 lines (fields sorted by name, as Spark does). The output \
                is written to a temporary file and renamed into place, so a failed conversion leaves nothing behind.
                """)
        @Argument(help: "Input file (.csv, .jsonl, .ndjson or .parquet).") var input: String
        @Argument(help: "Output Parquet file.") var output: String
        @Option(help: "Compression: snappy, zstd, gzip or none.") var codec = "snappy"
        @Option(help: "Column types, e.g. 'id BIGINT NOT NULL, name STRING, tags ARRAY<STRING>, price DECIMAL(10,2)'.") var schema: String?
        @Option(help: "Rows per row group (default 1,048,576; a Parquet input keeps its row groups unless this is given).")
        var rowGroupRows: Int?
        @Option(help: "Target data page size in bytes.") var pageSize = 1 << 20
        @Flag(help: "Write every column PLAIN (no dictionary encoding).") var noDictionary = false
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            var options = ParquetWriterOptions()
            switch codec.lowercased() {
            case "snappy": options.codec = .snappy
            case "zstd": options.codec = .zstd
            case "gzip": options.codec = .gzip
            case "none", "uncompressed": options.codec = .uncompressed
            default: throw ValidationError("Unknown codec '\(codec)'; use snappy, zstd, gzip or none")
            }
            guard (rowGroupRows ?? 1) > 0 else { throw ValidationError("--row-group-rows must be positive") }
            options.pageSize = max(1024, pageSize)
            options.dictionary = !noDictionary
            let lower = input.lowercased()
            guard FileManager.default.fileExists(atPath: input) else { throw ValidationError("No file '\(input)'") }
            let temporary = output + ".kiln-tmp-\(getpid())"
            var finished = false
            defer { if !finished { unlink(temporary) } }
            let started = Date()
            let summary: ConvertSummary = try Parquet.run {
                var source = try InputSource(path: input, schema: schema, batchRows: rowGroupRows)
                var writer: ParquetFileWriter?
                var summary = ConvertSummary()
                let metadata = source.keyValueMetadata
                var clock = Date()
                try source.batchesWithProgress { schema, columns in
                    summary.readSeconds += Date().timeIntervalSince(clock)
                    clock = Date()
                    if writer == nil {
                        writer = try ParquetFileWriter(path: temporary, schema: schema, options: options, keyValueMetadata: metadata)
                        summary.schema = InputSource.describe(schema)
                    }
                    try writer!.writeRowGroup(columns)
                    summary.rows += columns.first?.rowCount ?? 0
                    summary.rowGroups += 1
                    summary.decodedBytes += columns.reduce(0) { $0 + $1.memoryBytes }
                    summary.writeSeconds += Date().timeIntervalSince(clock)
                    clock = Date()
                }
                clock = Date()
                if writer == nil {
                    writer = try ParquetFileWriter(path: temporary, schema: source.schema, options: options, keyValueMetadata: source.keyValueMetadata)
                    summary.schema = InputSource.describe(source.schema)
                }
                try writer!.close()
                summary.writeSeconds += Date().timeIntervalSince(clock)
                return summary
            }
            guard rename(temporary, output) == 0 else { throw ValidationError("Cannot move the result to '\(output)': \(String(cString: strerror(errno)))") }
            finished = true
            let seconds = Date().timeIntervalSince(started)
            let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
            if json {
                return try printJSON(["rows": summary.rows, "row_groups": summary.rowGroups, "bytes": size, "seconds": seconds,
                                      "read_seconds": summary.readSeconds, "write_seconds": summary.writeSeconds,
                                      "decoded_bytes": summary.decodedBytes, "schema": summary.schema] as [String: Any])
            }
            print(String(format: "Wrote %d rows in %d row groups to %@ (%.1f MB, %@) in %.2f s", summary.rows, summary.rowGroups, output,
                         Double(size) / 1e6, options.codec.name, seconds))
        }
    }
}

struct ConvertSummary {
    var rows = 0
    var rowGroups = 0
    var readSeconds = 0.0
    var writeSeconds = 0.0
    var decodedBytes = 0
    var schema = ""
}
