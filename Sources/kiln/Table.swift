import ArgumentParser
import Foundation
import KilnCore
import KilnLake
import KilnParquet
import KilnPlatform

struct Table: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "table", abstract: "Work with Delta tables on disk (local only: no server needed, none used).",
        discussion: """
            TABLE is a directory (/data/sales) or catalog.schema.table, which lives under \
            $KILN_HOME/warehouse/<catalog>/<schema>/<table>. Other Delta engines (delta-rs, Spark, DuckDB, Polars) read and \
            write the same tables.
            These commands read and write the folders on this machine. For tables on a server, use \
            `kiln sql --url URL` (SELECT, DESCRIBE HISTORY, INSERT, UPDATE, DELETE, MERGE run there).
            """,
        subcommands: [Create.self, Describe.self, History.self, Cat.self, Changes.self, Write.self, Scan.self, Delete.self, Update.self, Merge.self, Optimize.self,
                      Restore.self, Generate.self,
                      Vacuum.self]
    )

    /// Where a table argument points.
    struct Location: ParsableArguments {
        @Argument(help: "Table directory, or catalog.schema.table under $KILN_HOME/warehouse.") var table: String
        @Option(help: "Home folder for catalog.schema.table names (env KILN_HOME, default ~/.kiln).") var home: String?
        @Option(help: ArgumentHelp("Not supported: table commands are local; use kiln sql --url.", visibility: .hidden)) var url: String?

        func validate() throws {
            if let url {
                throw ValidationError("kiln table and kiln profile work on local folders only. To reach the tables of the server at \(url), run SQL there: kiln sql --url \(url) \"SELECT * FROM \(table) LIMIT 10\"")
            }
        }

        var path: String { Self.path(table, home: home) }

        /// A table argument's directory: itself, or `<home>/warehouse/<catalog>/<schema>/<table>` for a three-part name.
        static func path(_ table: String, home: String?) -> String {
            KilnConfiguration.tablePath(table, home: home.map { URL(fileURLWithPath: $0) }
                                        ?? KilnConfiguration.defaultHome(environment: ProcessInfo.processInfo.environment))
        }

        func open() throws -> DeltaTable { try Table.run { try DeltaTable.open(path) } }
    }

    /// Runs `body`, turning library errors into messages for people.
    static func run<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as KilnError {
            throw CLIError("\(error.code.rawValue): \(error.message)")
        } catch let error as ParquetError {
            throw CLIError(error.description)
        }
    }

    static func time(_ ms: Int64?) -> String {
        guard let ms else { return "" }
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }

    /// `--version N` or `--timestamp ISO` → what to read.
    struct TimeTravel: ParsableArguments {
        @Option(help: "Read this version.") var version: Int64?
        @Option(help: "Read the newest version at or before this time (ISO-8601, e.g. 2024-01-02T03:04:05Z).") var timestamp: String?

        func milliseconds() throws -> Int64? {
            guard let timestamp else { return nil }
            guard version == nil else { throw ValidationError("Give --version or --timestamp, not both") }
            guard let micros = TextValues.timestampMicros(timestamp) else {
                throw ValidationError("--timestamp '\(timestamp)' is not a timestamp; write it like 2024-01-02T03:04:05Z")
            }
            return micros / 1000
        }

        /// The version asked for in `table` (nil: the newest).
        func resolve(in table: DeltaTable) throws -> Int64? {
            try milliseconds().map { try table.log.version(at: $0) } ?? version
        }
    }
}

extension Table {
    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create an empty table.")
        @OptionGroup var location: Location
        @Option(help: "Columns, e.g. 'id BIGINT NOT NULL, region STRING, x DOUBLE, tags ARRAY<STRING>'.") var schema: String
        @Option(help: "Comma-separated partition columns.") var partitionBy: String?
        @Option(name: .customLong("property"), help: "Table property key=value (delta.appendOnly=true, delta.constraints.name=expr...). Repeatable.")
        var properties: [String] = []
        @Option(help: "A description of the table.") var comment: String?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            var props: [String: String] = [:]
            for p in properties {
                guard let eq = p.firstIndex(of: "=") else { throw ValidationError("--property '\(p)' must be key=value") }
                props[String(p[..<eq])] = String(p[p.index(after: eq)...])
            }
            let table = try Table.run {
                let parquet = try SchemaDDL.parse(schema)
                return try DeltaTable.create(at: location.path, schema: try DeltaSchema(parquet: parquet),
                                             partitionColumns: partitionBy.map { $0.split(separator: ",").map(String.init) } ?? [],
                                             properties: props, name: location.table.contains("/") ? nil : location.table, description: comment)
            }
            if json { return try printJSON(["path": table.path, "version": 0] as [String: Any]) }
            print("Created \(table.path) (version 0)")
        }
    }

    struct Describe: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "describe", abstract: "Show a table's schema, partitioning, properties, protocol and size.")
        @OptionGroup var location: Location
        @OptionGroup var travel: TimeTravel
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let table = try location.open()
            let snapshot = try Table.run {
                try table.snapshot(version: try travel.resolve(in: table))
            }
            let bytes = snapshot.files.reduce(Int64(0)) { $0 + $1.size }
            let proto = snapshot.protocolVersion
            if json {
                var out: [String: Any] = [
                    "path": table.path, "version": snapshot.version, "id": snapshot.metadata.id,
                    "columns": snapshot.schema.fields.map { ["name": $0.name, "type": $0.type.sqlName, "nullable": $0.nullable] as [String: Any] },
                    "partition_columns": snapshot.partitionColumns, "properties": snapshot.metadata.configuration,
                    "min_reader_version": proto.minReaderVersion, "min_writer_version": proto.minWriterVersion,
                    "num_files": snapshot.files.count, "size_bytes": bytes,
                ]
                if let rows = snapshot.numRecords { out["num_rows"] = rows }
                if let f = proto.readerFeatures { out["reader_features"] = f }
                if let f = proto.writerFeatures { out["writer_features"] = f }
                if let d = snapshot.metadata.description { out["description"] = d }
                return try printJSON(out)
            }
            print("\(table.path) at version \(snapshot.version)")
            if let d = snapshot.metadata.description { print(d) }
            printTable(["COLUMN", "TYPE", "NULLABLE", "PARTITION"], snapshot.schema.fields.map { f in
                [f.name, f.type.sqlName, f.nullable ? "yes" : "NOT NULL", snapshot.partitionColumns.contains(f.name) ? "yes" : ""]
            })
            print("files \(snapshot.files.count), rows \(snapshot.numRecords.map(String.init) ?? "?"), \(String(format: "%.1f", Double(bytes) / 1e6)) MB, protocol \(proto.minReaderVersion)/\(proto.minWriterVersion)")
            for key in snapshot.metadata.configuration.keys.sorted() { print("  \(key) = \(snapshot.metadata.configuration[key]!)") }
        }
    }

    struct History: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "history", abstract: "List the table's commits, newest first.")
        @OptionGroup var location: Location
        @Option(help: "Show at most this many commits.") var limit: Int?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let table = try location.open()
            let history = try Table.run { try table.log.history(limit: limit) }
            func text(_ v: JSONValue?) -> String {
                guard let v else { return "" }
                if case .string(let s) = v { return s }
                return JSONCells.text(v).withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) }
            }
            if json {
                let rows: [[String: Any]] = history.map { h in
                    var row: [String: Any] = ["version": h.version, "timestamp": h.timestamp ?? 0]
                    for (k, v) in h.info { row[k] = (try? JSONSerialization.jsonObject(with: Data(JSONCells.text(v)), options: .fragmentsAllowed)) ?? text(v) }
                    return row
                }
                return try printJSON(rows)
            }
            printTable(["VERSION", "TIMESTAMP", "OPERATION", "PARAMETERS", "METRICS"], history.map { h in
                [String(h.version), Table.time(h.timestamp), text(h.info["operation"]), text(h.info["operationParameters"]), text(h.info["operationMetrics"])]
            })
        }
    }

    struct Cat: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "cat", abstract: "Print rows as JSON lines (as `kiln parquet cat` prints them).")
        @OptionGroup var location: Location
        @OptionGroup var travel: TimeTravel
        @Option(help: "Comma-separated columns (default: all).") var columns: String?
        @Option(name: .customLong("where"), help: "A SQL condition: region = 'us' AND x < 0.5.") var predicate: String?
        @Option(help: "Stop after this many rows.") var limit: Int?

        func run() throws {
            let table = try location.open()
            try Table.run {
                let plan = try table.plan(version: travel.version, timestamp: try travel.milliseconds(), predicate: predicate)
                let wanted = columns.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
                for name in wanted ?? [] where plan.snapshot.schema.field(name) == nil {
                    throw KilnError.invalid("No column '\(name)'; columns are \(plan.snapshot.schema.fields.map(\.name).joined(separator: ", "))")
                }
                let nodes = try table.nodes(plan.snapshot, fields: wanted)
                let renderer = ParquetJSON(include: { _ in true })
                var printed = 0
                for file in plan.files {
                    if let limit, printed >= limit { break }
                    var out: [UInt8] = []
                    try table.readRows(file, plan: plan, fields: wanted) { cells in
                        if let limit, printed >= limit { return false }
                        out += renderer.row(cells, fields: nodes)
                        out.append(0x0A)
                        printed += 1
                        return true
                    }
                    FileHandle.standardOutput.write(Data(out))
                }
            }
        }
    }

    struct Changes: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "changes", abstract: "Print the change data feed between two versions as JSON lines.",
            discussion: """
                Each row carries _change_type (insert, delete, update_preimage, update_postimage), _commit_version and \
                _commit_timestamp. The table needs delta.enableChangeDataFeed=true over the versions read.
                """)
        @OptionGroup var location: Location
        @Option(help: "First version (inclusive).") var from: Int64
        @Option(help: "Last version (inclusive; default: the newest).") var to: Int64?
        @Option(help: "Comma-separated columns (default: all).") var columns: String?
        @Option(help: "Stop after this many rows.") var limit: Int?

        func run() throws {
            let table = try location.open()
            try Table.run {
                let wanted = columns.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
                let renderer = ParquetJSON(include: { _ in true })
                let nodes = try table.nodes(try table.snapshot(version: to), fields: wanted)
                let extra: [SchemaNode] = [.leaf("_change_type", .byteArray, logical: .string), .leaf("_commit_version", .int64),
                                           .leaf("_commit_timestamp", .int64, logical: .timestamp(.millis, utc: true))]
                var printed = 0
                var out: [UInt8] = []
                try table.changes(from: from, to: to, fields: wanted) { change in
                    if let limit, printed >= limit { return false }
                    out += renderer.row(change.cells + [.bytes(Array(change.changeType.utf8)), .int64(change.version), .int64(change.timestamp)],
                                        fields: nodes + extra)
                    out.append(0x0A)
                    printed += 1
                    if out.count > 1 << 16 {
                        FileHandle.standardOutput.write(Data(out))
                        out = []
                    }
                    return true
                }
                FileHandle.standardOutput.write(Data(out))
            }
        }
    }

    struct Write: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "write", abstract: "Write rows from a CSV, JSON-lines or Parquet file (creates the table if it does not exist).",
            discussion: "The whole input lands as one commit. Columns are matched by name; a type mismatch or an unknown column is refused unless --merge-schema adds it.")
        @OptionGroup var location: Location
        @Option(help: "Input file (.csv, .jsonl or .parquet).") var from: String
        @Option(help: "append or overwrite.") var mode = "append"
        @Option(help: "Partition columns when the table is created.") var partitionBy: String?
        @Flag(help: "Add the input's new columns to the table.") var mergeSchema = false
        @Option(help: "With --mode overwrite: replace only rows matching this condition on partition columns.") var replaceWhere: String?
        @Option(help: "Column types of a CSV/JSON input when creating the table (default: inferred).") var schema: String?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            guard let writeMode = WriteMode(rawValue: mode) else { throw ValidationError("--mode must be append or overwrite") }
            let started = Date()
            let path = location.path
            let result = try Table.run { () -> WriteResult in
                let existing = try? DeltaTable.open(path)
                var inputSchema: ParquetSchema?
                if let table = existing, schema == nil {
                    // Text inputs are typed by the table's own schema.
                    inputSchema = try table.snapshot().schema.parquetSchema()
                    if from.lowercased().hasSuffix(".parquet") { inputSchema = nil }
                }
                var source = try InputSource(path: from, schema: schema, parquetSchema: inputSchema, batchRows: nil)
                let load: ((LakeBatch) throws -> Void) throws -> Void = { emit in
                    try source.batchesWithProgress { schema, columns in try emit(LakeBatch(schema: schema, columns: columns)) }
                }
                guard let existing else {
                    // A new table: version 0 holds its metadata and these rows, one commit.
                    return try DeltaTable.create(at: path, schema: try DeltaSchema(parquet: source.schema),
                                                 partitionColumns: partitionBy.map { $0.split(separator: ",").map(String.init) } ?? [],
                                                 mergeSchema: mergeSchema, batches: load)
                }
                if partitionBy != nil {
                    let current = try existing.snapshot().partitionColumns
                    guard current == partitionBy!.split(separator: ",").map(String.init) else {
                        throw KilnError.invalid("The table is partitioned by \(current.isEmpty ? "nothing" : current.joined(separator: ", ")); --partition-by cannot change that")
                    }
                }
                return try existing.write(mode: writeMode, mergeSchema: mergeSchema, replaceWhere: replaceWhere, batches: load)
            }
            let seconds = Date().timeIntervalSince(started)
            if json {
                return try printJSON(["version": result.version, "rows": result.rowsWritten, "files_added": result.filesAdded,
                                      "files_removed": result.filesRemoved, "seconds": seconds] as [String: Any])
            }
            print(String(format: "Wrote %d rows in %d files as version %lld of %@ (%.2f s)", result.rowsWritten, result.filesAdded, result.version, path, seconds))
        }
    }

    struct Scan: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "scan", abstract: "Decode the matching rows into memory; print rows and files read and skipped (the benchmark entry point).")
        @OptionGroup var location: Location
        @OptionGroup var travel: TimeTravel
        @Option(name: .customLong("where"), help: "A SQL condition; partitions and file statistics skip what cannot match.") var predicate: String?
        @Option(help: "Comma-separated columns (default: all).") var columns: String?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let started = Date()
            let table = try location.open()
            let (plan, rows, bytes) = try Table.run { () -> (ScanPlan, Int, Int) in
                let plan = try table.plan(version: travel.version, timestamp: try travel.milliseconds(), predicate: predicate)
                let (rows, bytes) = try table.scan(plan, columns: columns.map { $0.split(separator: ",").map(String.init) })
                return (plan, rows, bytes)
            }
            let seconds = Date().timeIntervalSince(started)
            if json {
                return try printJSON(["rows": rows, "files_read": plan.files.count, "files_skipped": plan.skippedFiles, "version": plan.snapshot.version,
                                      "seconds": seconds, "decoded_bytes": bytes] as [String: Any])
            }
            print(String(format: "%d rows from %d files (%d skipped) at version %lld in %.3f s", rows, plan.files.count, plan.skippedFiles,
                         plan.snapshot.version, seconds))
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete the rows matching a condition.")
        @OptionGroup var location: Location
        @Option(name: .customLong("where"), help: "A SQL condition: region = 'us' AND x < 0.5.") var predicate: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let table = try location.open()
            let result = try Table.run { try table.delete(where: predicate) }
            if json { return try printJSON(["version": result.version as Any, "rows_deleted": result.rowsDeleted, "files_removed": result.filesRemoved,
                                            "files_added": result.filesAdded] as [String: Any]) }
            guard let version = result.version else { return print("No rows match; nothing changed") }
            print("Deleted \(result.rowsDeleted) rows (\(result.filesRemoved) files rewritten or dropped) as version \(version)")
        }
    }

    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "restore", abstract: "Make the table's current content that of an earlier version (a new commit).")
        @OptionGroup var location: Location
        @OptionGroup var travel: TimeTravel
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let table = try location.open()
            let result = try Table.run { () -> WriteResult in
                guard let target = try travel.resolve(in: table) else {
                    throw KilnError.invalid("Give the version to restore with --version N or --timestamp TS")
                }
                return try table.restore(to: target)
            }
            if json { return try printJSON(["version": result.version, "files_added": result.filesAdded, "files_removed": result.filesRemoved] as [String: Any]) }
            print("Restored as version \(result.version) (\(result.filesAdded) files added back, \(result.filesRemoved) removed)")
        }
    }

    struct Vacuum: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "vacuum", abstract: "Delete data files the table no longer references and that are older than the retention.")
        @OptionGroup var location: Location
        @Option(help: "Keep files removed less than this many hours ago (default: the table's delta.deletedFileRetentionDuration, 168).")
        var retainHours: Double?
        @Flag(help: "List what would be deleted; delete nothing.") var dryRun = false
        @Flag(help: "Allow a retention shorter than the table's (breaks time travel to older versions).") var force = false
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let table = try location.open()
            let files = try Table.run { try table.vacuum(retentionHours: retainHours, dryRun: dryRun, force: force) }
            if json { return try printJSON(["dry_run": dryRun, "files": files, "count": files.count] as [String: Any]) }
            for file in files { print(file) }
            print(dryRun ? "\(files.count) files would be deleted" : "Deleted \(files.count) files")
        }
    }

    struct Merge: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "merge", abstract: "Upsert rows from a file: update (or delete) matching rows, insert the others.",
            discussion: "Rows match on equal key columns: --on 't.id = s.id AND t.day = s.day'. Each target row may match one source row at most.")
        @OptionGroup var location: Location
        @Option(help: "Source file (.csv, .jsonl or .parquet).") var from: String
        @Option(help: "Join condition on equal columns, e.g. 't.id = s.id'.") var on: String
        @Option(help: "update, delete or none: what happens to matched target rows.") var whenMatched = "update"
        @Flag(help: "Do not insert source rows without a match.") var noInsert = false
        @Flag(help: "Delete target rows no source row matches.") var deleteNotMatchedBySource = false
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            guard let matched = MergeClauses.Matched(rawValue: whenMatched) else { throw ValidationError("--when-matched must be update, delete or none") }
            let table = try location.open()
            let started = Date()
            let result = try Table.run { () -> MergeResult in
                let inputSchema = from.lowercased().hasSuffix(".parquet") ? nil : try table.snapshot().schema.parquetSchema()
                var source = try InputSource(path: from, parquetSchema: inputSchema, batchRows: nil)
                return try table.merge(condition: on, clauses: MergeClauses(whenMatched: matched, insertNotMatched: !noInsert,
                                                                           deleteNotMatchedBySource: deleteNotMatchedBySource)) { emit in
                    try source.batchesWithProgress { schema, columns in try emit(LakeBatch(schema: schema, columns: columns)) }
                }
            }
            let seconds = Date().timeIntervalSince(started)
            if json {
                return try printJSON(["version": result.version as Any, "source_rows": result.sourceRows, "updated": result.updated,
                                      "deleted": result.deleted, "inserted": result.inserted, "files_removed": result.filesRemoved,
                                      "files_added": result.filesAdded, "seconds": seconds] as [String: Any])
            }
            guard let version = result.version else { return print("Nothing to change") }
            print(String(format: "Merged %d source rows as version %lld: %d updated, %d deleted, %d inserted (%.2f s)", result.sourceRows, version,
                         result.updated, result.deleted, result.inserted, seconds))
        }
    }

    struct Optimize: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "optimize", abstract: "Compact small files into larger ones (per partition).")
        @OptionGroup var location: Location
        @Option(help: "Target file size in bytes (default 100 MiB).") var targetSize: Int64 = 100 << 20
        @Option(name: .customLong("where"), help: "Only partitions matching this condition on partition columns.") var predicate: String?
        @Option(help: "Comma-separated columns to Z-order the rows by (rewrites every file of the chosen partitions).") var zorderBy: String?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let table = try location.open()
            let columns = zorderBy.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } } ?? []
            let result = try Table.run { try table.optimize(targetSize: targetSize, where: predicate, zOrderBy: columns) }
            if json {
                return try printJSON(["version": result.version as Any, "files_removed": result.filesRemoved, "files_added": result.filesAdded,
                                      "partitions_optimized": result.partitionsOptimized] as [String: Any])
            }
            guard let version = result.version else { return print("Nothing to compact") }
            print("Compacted \(result.filesRemoved) files into \(result.filesAdded) as version \(version)")
        }
    }

    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "update", abstract: "Set columns to values in the rows matching a condition.")
        @OptionGroup var location: Location
        @Option(help: "Assignments: \"x = 0, region = 'us', note = NULL\".") var set: String
        @Option(name: .customLong("where"), help: "A SQL condition (default: every row).") var predicate: String?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let table = try location.open()
            let result = try Table.run { try table.update(set: set, where: predicate) }
            if json {
                return try printJSON(["version": result.version as Any, "rows_updated": result.rowsUpdated, "files_removed": result.filesRemoved,
                                      "files_added": result.filesAdded] as [String: Any])
            }
            guard let version = result.version else { return print("No rows match; nothing changed") }
            print("Updated \(result.rowsUpdated) rows as version \(version)")
        }
    }

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "generate", abstract: "GENERATE symlink_format_manifest: manifests for Presto, Athena and Hive.")
        @Argument(help: "What to generate: symlink_format_manifest.") var mode: String
        @OptionGroup var location: Location

        func run() throws {
            guard mode.lowercased() == "symlink_format_manifest" else { throw ValidationError("Only symlink_format_manifest can be generated") }
            let table = try location.open()
            let count = try Table.run { try table.generateSymlinkManifest() }
            print("Wrote \(count) manifest file\(count == 1 ? "" : "s") under \(table.path)/_symlink_format_manifest")
        }
    }
}
