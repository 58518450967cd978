import ArgumentParser
import Foundation
import KilnCore
import KilnFrame
import KilnPlatform
import KilnSQL

struct SQL: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sql", abstract: "Run SQL over Delta tables and Parquet files, locally or on a server (--url).",
        discussion: """
            Local (the default): tables are catalog.schema.table under $KILN_HOME/warehouse (main and default when \
            left out), delta.`/path/to/table` or parquet.`/path/file.parquet`, read by this process.
            Remote (--url, or KILN_URL when set): the statement runs on that server through \
            /api/2.0/sql/statements, on its warehouse and with its permissions; results come back in chunks.
            Examples:
              kiln sql "SELECT region, count(*) AS n FROM sales GROUP BY region ORDER BY n DESC"
              kiln sql --url http://127.0.0.1:5000 --format csv "SELECT * FROM main.default.sales"
            """)
    @Argument(help: "The SQL statement (none: read statements from standard input, or an interactive shell on a terminal).") var statement: String?
    @Option(help: "Home folder holding the warehouse (env KILN_HOME, default ~/.kiln); with --url, where admin.token is.") var home: String?
    @Option(help: "Run on the server at this URL instead of locally (env KILN_URL).") var url: String?
    @Option(help: "Access token for --url (env KILN_TOKEN, else the home's admin.token).") var token: String?
    @Option(help: "table, json, jsonl or csv.") var format = "table"
    @Option(name: .customLong("param"), help: "A :name parameter value, name=value (repeatable).") var parameters: [String] = []
    @Flag(help: "Print the statement's run time to standard error (\"Time: 0.123 s\": planning and execution, no output).") var timing = false
    @Option(help: "Stop a statement that grows this process's memory by more than this (e.g. 4GB; env KILN_SQL_MEMORY_LIMIT); local only.") var memoryLimit: String?

    func validate() throws {
        guard ["table", "json", "jsonl", "csv"].contains(format) else { throw ValidationError("--format must be table, json, jsonl or csv") }
    }

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let base = home.map { URL(fileURLWithPath: $0) } ?? KilnConfiguration.defaultHome(environment: env)
        let values = try keyValues(parameters, option: "param").mapValues { text in
            Int64(text).map(Value.int) ?? Double(text).map(Value.double) ?? .string(text)
        }
        let execute: (String) async throws -> Frame
        if let server = url ?? env["KILN_URL"] {
            let client = try ClientOptions.client(url: server, token: token, home: home)
            execute = { try await RemoteStatements(client: client, parameters: values).execute($0) }
        } else {
            var engine = SQLEngine(catalog: Catalog(warehouse: base.appendingPathComponent("warehouse").path), parameters: values)
            if let memoryLimit {
                do { engine.memoryLimit = try MemoryLimit(parsing: memoryLimit) } catch let error as KilnError { throw CLIError("--memory-limit: \(error.message)") }
            }
            let local = engine
            execute = { try local.execute($0) }
        }
        guard let statement else { return try await shell(execute, history: base.appendingPathComponent("sql_history").path) }
        let result: Frame
        let started = Date()
        do {
            result = try await execute(statement)
        } catch let error as KilnError {
            throw CLIError("\(error.code.rawValue): \(error.message)")
        }
        if timing { FileHandle.standardError.write(Data(String(format: "Time: %.4f s\n", Date().timeIntervalSince(started)).utf8)) }
        try output(result)
    }

    /// Statements from standard input, each ended by `;`: a prompt and a history file on a terminal, a script otherwise.
    func shell(_ execute: (String) async throws -> Frame, history: String) async throws {
        let interactive = isatty(STDIN_FILENO) == 1
        if interactive { print("Kiln SQL — end statements with ';', quit with \\q or Ctrl-D. History: \(history)") }
        var buffer = ""
        var failed = false
        func prompt() {
            guard interactive else { return }
            print(buffer.isEmpty ? "kiln> " : "   -> ", terminator: "")
            fflush(nil)
        }
        prompt()
        while let line = readLine() {
            if buffer.isEmpty, ["\\q", "quit", "exit"].contains(line.trimmingCharacters(in: .whitespaces).lowercased()) { break }
            buffer += (buffer.isEmpty ? "" : "\n") + line
            for statement in Self.complete(&buffer) {
                if interactive, let handle = FileHandle(forWritingAtPath: history) ?? (FileManager.default.createFile(atPath: history, contents: nil) ? FileHandle(forWritingAtPath: history) : nil) {
                    handle.seekToEndOfFile()
                    handle.write(Data((statement + ";\n").utf8))
                    try? handle.close()
                }
                do {
                    let started = Date()
                    try output(try await execute(statement))
                    if interactive { print(String(format: "(%.3f s)", Date().timeIntervalSince(started))) }
                } catch {
                    FileHandle.standardError.write(Data("Error: \(Self.describe(error))\n".utf8))
                    failed = true
                }
            }
            prompt()
        }
        if !buffer.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            do { try output(try await execute(buffer)) } catch {
                FileHandle.standardError.write(Data("Error: \(Self.describe(error))\n".utf8))
                failed = true
            }
        }
        if failed, !interactive { throw ExitCode(1) }
    }

    /// An error as one line: `CODE: message` for Kiln's errors, the text of others (the server's words).
    static func describe(_ error: any Error) -> String {
        if let error = error as? KilnError { return "\(error.code.rawValue): \(error.message)" }
        return "\(error)"
    }

    /// Takes the complete statements (ended by `;` outside quotes and comments) off the front of `buffer`.
    static func complete(_ buffer: inout String) -> [String] {
        var statements: [String] = []
        var current = ""
        var quote: Character?
        var chars = Array(buffer)
        var i = 0
        var consumed = 0
        while i < chars.count {
            let c = chars[i]
            if let q = quote {
                if c == q { quote = nil }
                current.append(c)
            } else if c == "'" || c == "\"" || c == "`" {
                quote = c
                current.append(c)
            } else if c == "-", i + 1 < chars.count, chars[i + 1] == "-" {
                while i < chars.count, chars[i] != "\n" { i += 1 }
                continue
            } else if c == ";" {
                let text = current.trimmingCharacters(in: .whitespacesAndNewlines)
                if !text.isEmpty { statements.append(text) }
                current = ""
                consumed = i + 1
            } else {
                current.append(c)
            }
            i += 1
        }
        chars.removeFirst(consumed)
        buffer = String(chars)
        return statements
    }

    func output(_ result: Frame) throws {
        var out: [UInt8] = []
        switch format {
        case "json", "jsonl":
            var w = JSONWriter()
            func row(_ i: Int, _ w: inout JSONWriter) {
                w.object { w in
                    for (name, column) in zip(result.names, result.columns) {
                        w.key(name)
                        SQL.write(column.value(i), type: column.type, into: &w)
                    }
                }
            }
            if format == "json" {
                w.array { w in for i in 0..<result.rowCount { row(i, &w) } }
                out = w.bytes + [0x0A]
            } else {
                for i in 0..<result.rowCount {
                    var line = JSONWriter()
                    row(i, &line)
                    out += line.bytes + [0x0A]
                }
            }
        case "csv":
            func quote(_ s: String) -> String {
                s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
            }
            var text = result.names.map(quote).joined(separator: ",") + "\n"
            for i in 0..<result.rowCount {
                text += result.columns.map { $0.isNull(i) ? "" : quote($0.value(i).text) }.joined(separator: ",") + "\n"
            }
            out = Array(text.utf8)
        case "table" where result.names.isEmpty:
            print("OK")
            return
        case "table":
            let rows = (0..<result.rowCount).map { i in result.columns.map { $0.value(i).text } }
            printTable(result.names, rows)
            print("(\(result.rowCount) row\(result.rowCount == 1 ? "" : "s"))")
            return
        default:
            throw ValidationError("--format must be table, json, jsonl or csv")
        }
        FileHandle.standardOutput.write(Data(out))
    }

    /// A value as JSON: numbers as numbers, dates and timestamps as ISO text, arrays, maps and structs as JSON.
    static func write(_ value: Value, type: FrameType, into w: inout JSONWriter) {
        switch value {
        case .null: w.null()
        case .bool(let b): w.value(b)
        case .int(let n): w.value(n)
        case .double(let d): w.value(d)
        case .string(let s): w.value(s)
        case .bytes(let b): w.value(Data(b).base64EncodedString())
        case .date: w.value(value.text)
        case .timestamp: w.value(value.text.replacingOccurrences(of: " ", with: "T") + "Z")
        case .nested(let text, _): w.raw(text)
        case .decimal: w.raw(value.text)
        }
    }
}
