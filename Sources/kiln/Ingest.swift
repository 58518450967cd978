import ArgumentParser
import Foundation
import KilnCore
import KilnLake
import KilnParquet

/// `kiln ingest`: incremental loading (Auto Loader / COPY INTO) of the files of a directory into a Delta table.
struct Ingest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest", abstract: "Load the files of a directory that were not loaded before into a Delta table.",
        discussion: """
            Each run loads every new file of --from in one commit that also records the file names, so a file is \
            loaded exactly once even when a run is killed and repeated. The table is created from the first files \
            when it does not exist; new columns are added (schema evolution); CSV and JSON values that do not fit \
            their column's type are kept, as JSON, in the _rescued_data column.
              kiln ingest --from /landing/orders --into main.sales.orders --format csv
            """)
    @Option(help: "Directory to load from (its files, not subdirectories).") var from: String
    @Option(help: "Table: a directory, or catalog.schema.table under $KILN_HOME/warehouse.") var into: String
    @Option(help: "csv, json or parquet (default: every file with one of those extensions).") var format: String?
    @Option(help: "Home folder for catalog.schema.table names (env KILN_HOME, default ~/.kiln).") var home: String?
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let started = Date()
        let source = URL(fileURLWithPath: from).standardizedFileURL.path
        let extensions: Set<String>
        switch format?.lowercased() {
        case nil: extensions = ["csv", "json", "jsonl", "ndjson", "parquet"]
        case "csv": extensions = ["csv"]
        case "json": extensions = ["json", "jsonl", "ndjson"]
        case "parquet": extensions = ["parquet"]
        default: throw ValidationError("--format must be csv, json or parquet")
        }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: source) else {
            throw CLIError("Cannot list \(source); --from must be a directory")
        }
        let candidates = names.filter { !$0.hasPrefix(".") && !$0.hasPrefix("_") && extensions.contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
        let path = Table.Location.path(into, home: home)
        let result = try Table.run { () -> (version: Int64?, files: [String], rows: Int) in
            var table = try? DeltaTable.open(path)
            let loaded = try table?.ingestedFiles(source: source) ?? []
            let fresh = candidates.filter { !loaded.contains($0) }
            guard !fresh.isEmpty else { return (nil, [], 0) }
            // Columns the table has keep its types; the rest are inferred per file and added.
            if table == nil {
                var first = try InputSource(path: source + "/" + fresh[0], batchRows: nil)
                first.adapt(overrides: [:], rescue: true)
                let schema = try DeltaSchema(parquet: first.schema)
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                table = try DeltaTable.create(at: path, schema: schema)
            }
            var overrides: [String: SchemaNode] = [:]
            for node in try table!.snapshot().schema.parquetSchema().root.children { overrides[node.name.lowercased()] = node }
            let files = JSONText.string(.array(fresh.map(JSONValue.string)))
            let written = try table!.write(mode: .append, mergeSchema: true, operation: "COPY INTO",
                                           parameters: ["source": .string(source), "files": .string(files)]) { emit in
                for name in fresh {
                    var input = try InputSource(path: source + "/" + name, batchRows: nil)
                    input.adapt(overrides: overrides, rescue: true)
                    try input.batches { schema, columns in try emit(LakeBatch(schema: schema, columns: columns)) }
                }
            }
            return (written.version, fresh, written.rowsWritten)
        }
        let seconds = Date().timeIntervalSince(started)
        if json {
            return try printJSON(["version": result.version.map { $0 as Any } ?? NSNull(), "files": result.files, "rows": result.rows,
                                  "seconds": seconds] as [String: Any])
        }
        if result.files.isEmpty {
            print("No new files in \(source)")
        } else {
            print(String(format: "Loaded %d rows from %d new files as version %lld of %@ (%.2f s)", result.rows, result.files.count,
                         result.version ?? 0, path, seconds))
        }
    }
}
