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
    @Option(name: .customLong("option"), help: "A CSV option key=value: sep, quote, escape, header, mode (PERMISSIVE, DROPMALFORMED, FAILFAST). Repeatable.")
    var options: [String] = []
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let started = Date()
        let path = Table.Location.path(into, home: home)
        let result = try Table.run { () -> IngestResult in
            var bar: ProgressBar?
            defer { bar?.finish() }
            let pairs = try keyValues(options, option: "option")
            return try DeltaTable.ingest(directory: from, into: path, format: format, csv: try CSVOptions(pairs)) { _, done, total in
                if bar == nil { bar = ProgressBar(total: total, unit: "files") }
                bar?.update(done)
            }
        }
        let seconds = Date().timeIntervalSince(started)
        if json {
            return try printJSON(["version": result.version.map { $0 as Any } ?? NSNull(), "files": result.files, "rows": result.rows,
                                  "seconds": seconds] as [String: Any])
        }
        if result.files.isEmpty {
            print("No new files in \(from)")
        } else {
            print(String(format: "Loaded %d rows from %d new files as version %lld of %@ (%.2f s)", result.rows, result.files.count,
                         result.version ?? 0, path, seconds))
        }
    }
}
