import ArgumentParser
import Foundation
import KilnFrame

/// `kiln features`: feature tables, training sets and the online store on a running server (docs/features.md), and
/// (by default, locally) feature pipelines.
struct Features: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features", abstract: "Feature tables, training sets and the online store; feature pipelines.",
        discussion: """
            On a running server (--url, env KILN_URL; rows as Parquet files):
              kiln features create main.default.user_spend --primary-keys user_id,ts --timeseries ts --from spend.parquet
              kiln features write main.default.user_spend --from more.parquet          (merge on the key)
              kiln features read main.default.user_spend [--output rows.parquet]
              kiln features training-set --labels labels.parquet --output train.parquet \\
                --lookup 'table=main.default.user_spend,key=user_id,timestamp=event_ts,lookback=30d'
              kiln features publish main.default.user_spend --store shop [--online-table NAME] [--mode SNAPSHOT]
              kiln features lookup main.default.user_spend_online user_id=1 user_id=2
            Locally, without a subcommand: fit a feature pipeline (kiln features transform --help).
            """,
        subcommands: [FeatureTransform.self, Create.self, Write.self, Read.self, TrainingSetCommand.self, Publish.self, Lookup.self],
        defaultSubcommand: FeatureTransform.self)

    static func file(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("Cannot read \(path): give a Parquet file") }
        return [UInt8](data)
    }

    /// Writes Parquet bytes to `output`, or prints the first rows as a table (all of them as JSON with --json).
    static func show(_ data: Data, output: String?, json: Bool, limit: Int = 20) throws {
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: data) else { throw CLIError("Cannot write \(output)") }
            let rows = try Frame.read(parquetBytes: [UInt8](data)).rowCount
            if json { return try printJSON(["rows": rows, "output": output] as [String: Any]) }
            return print("Wrote \(rows) rows to \(output)")
        }
        let frame = try Frame.read(parquetBytes: [UInt8](data))
        if json {
            return try printJSON((0..<frame.rowCount).map { i in
                Dictionary(uniqueKeysWithValues: zip(frame.names, frame.row(i).map { v -> Any in
                    switch v {
                    case .null: return NSNull()
                    case .bool(let b): return b
                    case .int(let n): return n
                    case .double(let d): return d
                    default: return v.text
                    }
                }))
            })
        }
        printTable(frame.names, (0..<min(limit, frame.rowCount)).map { i in frame.row(i).map { $0 == .null ? "" : $0.text } })
        if frame.rowCount > limit { print("… \(frame.rowCount - limit) more rows (--output FILE writes them all)") }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a feature table from a Parquet file's columns and rows.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "catalog.schema.table") var name: String
        @Option(help: "Primary-key columns, comma-separated.") var primaryKeys: String
        @Option(help: "The TIMESERIES key column (one of the keys).") var timeseries: String?
        @Option(help: "Partition columns, comma-separated.") var partitionColumns: String?
        @Option(help: "Description.") var description: String?
        @Option(help: "Parquet file with the columns (and rows) of the table.") var from: String

        func run() async throws {
            var query = [("name", name), ("primary_keys", primaryKeys)]
            if let timeseries { query.append(("timeseries_column", timeseries)) }
            if let partitionColumns { query.append(("partition_columns", partitionColumns)) }
            if let description { query.append(("description", description)) }
            let data = try await client.client().bytes("POST", "api/2.0/kiln/features/tables", query: query, body: try Features.file(from))
            let answer = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            if client.json { return try printJSON(answer) }
            print("Created \(name) (\(answer["num_inserted_rows"] as? Int ?? 0) rows)")
        }
    }

    struct Write: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "write", abstract: "Merge a Parquet file's rows into a feature table on its key.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "catalog.schema.table") var name: String
        @Option(help: "Parquet file with the rows (every key column, any features).") var from: String

        func run() async throws {
            let data = try await client.client().bytes("POST", "api/2.0/kiln/features/tables/\(name)/rows", body: try Features.file(from))
            let answer = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            if client.json { return try printJSON(answer) }
            let added = answer["added_columns"] as? [String] ?? []
            print("Merged into \(name): \(answer["num_updated_rows"] as? Int ?? 0) updated, \(answer["num_inserted_rows"] as? Int ?? 0) inserted"
                  + (added.isEmpty ? "" : "; new features \(added.joined(separator: ", "))") + " (version \(answer["version"] as? Int ?? 0))")
        }
    }

    struct Read: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "read", abstract: "A feature table's rows.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "catalog.schema.table") var name: String
        @Option(help: "Write the rows to this Parquet file instead of printing them.") var output: String?

        func run() async throws {
            try Features.show(try await client.client().bytes("GET", "api/2.0/kiln/features/tables/\(name)/rows", body: nil), output: output, json: client.json)
        }
    }

    struct TrainingSetCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "training-set", abstract: "Join features onto label rows, point in time.",
            discussion: """
                Each --lookup is key=value pairs: table (required), key (label columns, '+'-separated, matching the table's \
                keys), timestamp (the label's time column: a point-in-time join), features ('+'-separated), lookback \
                (seconds, or with s/m/h/d), default.FEATURE=value, rename.FEATURE=name.
                """)
        @OptionGroup var client: ClientOptions
        @Option(help: "Parquet file of label rows.") var labels: String
        @Option(name: .customLong("lookup"), help: "A feature lookup (repeatable).") var lookups: [String]
        @Option(help: "Columns to leave out, comma-separated.") var exclude: String?
        @Option(help: "Write the training set to this Parquet file instead of printing it.") var output: String?

        func run() async throws {
            let spec: [String: Any] = ["feature_lookups": try lookups.map(Self.lookup),
                                       "exclude_columns": (exclude ?? "").split(separator: ",").map(String.init)]
            let text = String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self)
            let data = try await client.client().bytes("POST", "api/2.0/kiln/features/training-sets", query: [("spec", text)], body: try Features.file(labels))
            try Features.show(data, output: output, json: client.json)
        }

        static func lookup(_ text: String) throws -> [String: Any] {
            var out: [String: Any] = [:], defaults: [String: Any] = [:], rename: [String: String] = [:]
            for pair in text.split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw CLIError("--lookup takes key=value pairs separated by commas; got '\(pair)'") }
                let (key, value) = (parts[0], parts[1])
                switch key {
                case "table": out["table_name"] = value
                case "key": out["lookup_key"] = value.split(separator: "+").map(String.init)
                case "timestamp": out["timestamp_lookup_key"] = value
                case "features": out["feature_names"] = value.split(separator: "+").map(String.init)
                case "lookback": out["lookback_window_seconds"] = try seconds(value)
                default:
                    if key.hasPrefix("default.") {
                        defaults[String(key.dropFirst(8))] = Int64(value).map { $0 as Any } ?? Double(value).map { $0 as Any } ?? value
                    } else if key.hasPrefix("rename.") {
                        rename[String(key.dropFirst(7))] = value
                    } else {
                        throw CLIError("Unknown --lookup field '\(key)': use table, key, timestamp, features, lookback, default.F, rename.F")
                    }
                }
            }
            guard out["table_name"] != nil, out["lookup_key"] != nil else { throw CLIError("A --lookup needs table= and key=") }
            out["default_values"] = defaults
            out["rename_outputs"] = rename
            return out
        }

        static func seconds(_ text: String) throws -> Double {
            let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
            if let unit = text.last, let scale = units[unit], let n = Double(text.dropLast()) { return n * scale }
            guard let n = Double(text) else { throw CLIError("lookback is seconds, or a number with s, m, h or d: '\(text)'") }
            return n
        }
    }

    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "publish", abstract: "Publish a feature table to an online store (created when missing).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "catalog.schema.table") var name: String
        @Option(help: "Online store.") var store: String
        @Option(help: "Online table name (default: <table>_online).") var onlineTable: String?
        @Option(help: "SNAPSHOT, TRIGGERED (the changes since the last publish) or CONTINUOUS.") var mode = "TRIGGERED"

        func run() async throws {
            let api = try client.client()
            if try await api.find("GET", "api/2.0/feature-store/online-stores/\(store)") == nil {
                _ = try await api.call("POST", "api/2.0/feature-store/online-stores", body: ["name": store, "capacity": "CU_1"])
            }
            var spec: [String: Any] = ["online_store": store, "publish_mode": mode]
            if let onlineTable { spec["online_table_name"] = onlineTable }
            let answer = try await api.call("POST", "api/2.0/feature-store/tables/\(name)/publish", body: ["publish_spec": spec], timeout: 3600)
            if client.json { return try printJSON(answer) }
            print("Published \(name) to \(answer["online_table_name"] as? String ?? "?") in \(store): version \(answer["published_version"] as? Int ?? 0), "
                  + "\(answer["num_keys"] as? Int ?? 0) keys (\((answer["incremental"] as? Bool ?? false) ? "incremental, \(answer["rows_read"] as? Int ?? 0) changed rows read" : "snapshot"))")
        }
    }

    struct Lookup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "lookup", abstract: "Look keys up in an online table.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Online table.") var name: String
        @Argument(help: "Keys as column=value (several columns of one key joined with '+': id=1+region=eu).") var keys: [String]

        func run() async throws {
            let parsed: [[String: Any]] = try keys.map { key in
                Dictionary(uniqueKeysWithValues: try key.split(separator: "+").map { part -> (String, Any) in
                    let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
                    guard kv.count == 2 else { throw CLIError("A key is column=value: '\(part)'") }
                    return (kv[0], Int64(kv[1]).map { $0 as Any } ?? kv[1])
                })
            }
            let answer = try await client.client().call("POST", "api/2.0/kiln/features/online-tables/\(name)/lookup", body: ["keys": parsed])
            let outputs = answer["outputs"] as? [Any] ?? []
            if client.json { return try printJSON(outputs) }
            let rows = outputs.compactMap { $0 as? [String: Any] }
            let columns = rows.first.map { Array($0.keys).sorted() } ?? []
            printTable(["KEY"] + columns, zip(keys, outputs).map { key, row in
                guard let row = row as? [String: Any] else { return ["\(key) (not found)"] + columns.map { _ in "" } }
                return [key] + columns.map { row[$0].map { $0 is NSNull ? "" : "\($0)" } ?? "" }
            })
        }
    }
}
