import Foundation
import KilnCore
import KilnParquet

/// How CSV text is read (Spark's option names): `sep`/`delimiter`, `quote`, `escape`, `header`, and `mode` for rows
/// whose values do not fit: PERMISSIVE (kept, nulls, raw text in `_rescued_data` when rescuing), DROPMALFORMED
/// (dropped) or FAILFAST (an error).
public struct CSVOptions: Sendable, Equatable {
    public enum Mode: String, Sendable { case permissive = "PERMISSIVE", dropMalformed = "DROPMALFORMED", failFast = "FAILFAST" }

    public var delimiter = UInt8(ascii: ",")
    public var quote = UInt8(ascii: "\"")
    public var escape: UInt8? = UInt8(ascii: "\\")
    public var header = true
    public var mode = Mode.permissive

    public init() {}

    /// Options by name (case-insensitive keys); unknown names are refused so typos do not pass silently.
    public init(_ options: [String: String]) throws {
        for (key, value) in options {
            func byte() throws -> UInt8 {
                let text = value == "\\t" ? "\t" : value
                guard text.utf8.count == 1, let b = text.utf8.first else { throw KilnError.invalid("CSV option \(key) takes one character, got '\(value)'") }
                return b
            }
            switch key.lowercased() {
            case "sep", "delimiter": delimiter = try byte()
            case "quote": quote = try byte()
            case "escape": escape = value.isEmpty ? nil : try byte()
            case "header":
                guard let b = Bool(value.lowercased()) else { throw KilnError.invalid("CSV option header takes true or false") }
                header = b
            case "mode":
                guard let m = Mode(rawValue: value.uppercased()) else { throw KilnError.invalid("CSV mode must be PERMISSIVE, DROPMALFORMED or FAILFAST") }
                mode = m
            case "mergeschema", "inferschema", "rescueddatacolumn", "force", "format": continue
            default: throw KilnError.invalid("Unknown CSV option '\(key)'; Kiln knows sep, quote, escape, header and mode")
            }
        }
    }
}

/// Reads CSV, JSON lines or Parquet as batches of leaf columns (the front half of `kiln parquet convert` and
/// `kiln table write`). CSV and JSON rows are typed by a schema (given or inferred) and shredded into columns;
/// Parquet row groups pass through as they are decoded.
public struct InputSource {
    public enum Format: Sendable { case csv, jsonLines, parquet }

    public let path: String
    public let format: Format
    /// The schema of the batches (known after `init`: given, inferred from a sample, or the Parquet file's).
    public private(set) var schema: ParquetSchema
    let batchRows: Int?
    public var keyValueMetadata: [(key: String, value: String)] = []
    private var parquet: ParquetFileReader?
    private var csvHeader: [String] = []
    private var csvOptions = CSVOptions()
    /// Rows DROPMALFORMED left out.
    public private(set) var droppedRows = 0
    private var csvSample: [[CSVReader.Field]] = []
    private var csv: CSVReader?
    private var lines: LineReader?
    private var jsonSample: [(Int, JSONValue)] = []
    private var lineNumber = 0

    /// Text inputs only: values that do not fit their column's type become null and are kept, as a JSON object of
    /// column → raw text, in an extra `_rescued_data` column (Auto Loader's rescued data).
    private(set) var rescue = false

    /// For ingestion: inferred text columns named in `overrides` take those nodes (an existing table's types), and
    /// with `rescue`, values that do not fit go to `_rescued_data` instead of failing the load.
    public mutating func adapt(overrides: [String: SchemaNode], rescue: Bool) {
        guard format != .parquet else { return }
        var children = schema.root.children.map { overrides[$0.name.lowercased()] ?? $0 }
        if rescue, !children.contains(where: { $0.name == "_rescued_data" }) {
            children.append(.leaf("_rescued_data", .byteArray, .optional, logical: .string))
        }
        schema = ParquetSchema(children)
        self.rescue = rescue
    }

    /// Opens `path`; `schema` is DDL (`a BIGINT, b STRING`) for text inputs, or a ready Parquet schema.
    public init(path: String, schema ddl: String? = nil, parquetSchema: ParquetSchema? = nil, batchRows: Int?, csv options: CSVOptions = CSVOptions()) throws {
        self.path = path
        self.batchRows = batchRows
        csvOptions = options
        let lower = path.lowercased()
        guard FileManager.default.fileExists(atPath: path) else { throw ParquetError("No file '\(path)'") }
        if lower.hasSuffix(".parquet") {
            guard ddl == nil else { throw ParquetError("--schema applies to CSV and JSON input; a Parquet input keeps its schema") }
            format = .parquet
            let reader = try ParquetFileReader(path: path)
            parquet = reader
            schema = reader.schema
            // Key/value metadata (Arrow's schema, Spark's row metadata) travels with the data.
            keyValueMetadata = reader.metadata.keyValueMetadata
            return
        }
        let given = try parquetSchema ?? ddl.map(SchemaDDL.parse)
        if lower.hasSuffix(".csv") {
            format = .csv
            var reader = try CSVReader(path: path, options: options)
            let header: [String]
            if options.header {
                guard let names = try reader.next()?.map({ String(decoding: $0.bytes, as: UTF8.self) }) else {
                    throw ParquetError("'\(path)' is empty; a CSV input needs a header row (or header = false)")
                }
                header = names
            } else {
                // No header: columns are _c0, _c1, ... and the first record is data.
                guard let first = try reader.next() else { throw ParquetError("'\(path)' is empty") }
                csvSample.append(first)
                header = first.indices.map { "_c\($0)" }
            }
            csvHeader = header
            if let given {
                schema = given
            } else {
                while csvSample.count < 1000, let record = try reader.next() { csvSample.append(record) }
                let sample = csvSample
                schema = ParquetSchema(header.indices.map { column in
                    TextValues.infer(name: header[column], sample.lazy.compactMap { $0.count > column ? ($0[column].bytes, $0[column].quoted) : nil })
                })
            }
            csv = reader
            for field in schema.root.children where !field.isLeaf || field.repetition == .repeated {
                throw ParquetError("CSV columns must be flat; '\(field.name)' is \(SchemaDDL.typeName(field))")
            }
            return
        }
        if lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") || lower.hasSuffix(".json") {
            format = .jsonLines
            lines = try LineReader(path: path)
            schema = given ?? ParquetSchema([])
            if given == nil {
                var type = JSONType.object([:])
                while jsonSample.count < 1000, let next = try nextObject() {
                    jsonSample.append(next)
                    type = type.merged(JSONType(next.1))
                }
                guard case .object(let fields) = type, !fields.isEmpty else { throw ParquetError("'\(path)' holds no JSON objects with fields") }
                schema = ParquetSchema(fields.keys.sorted().map { fields[$0]!.node($0) })
            }
            return
        }
        throw ParquetError("Cannot tell the format of '\(path)'; name it .csv, .jsonl or .parquet")
    }

    public static func describe(_ schema: ParquetSchema) -> String {
        schema.root.children.map { "\($0.name) \(SchemaDDL.typeName($0))\($0.repetition == .required ? " NOT NULL" : "")" }.joined(separator: ", ")
    }

    public var totalBytes: Int { (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0 }

    private mutating func nextObject() throws -> (Int, JSONValue)? {
        while let line = try lines!.next() {
            lineNumber += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let value: JSONValue
            do { value = try JSONValue.parse(line) } catch { throw ParquetError("Line \(lineNumber) is not valid JSON: \(error)") }
            guard case .object = value else { throw ParquetError("Line \(lineNumber) is a JSON \(value.typeName); each line must be an object") }
            return (lineNumber, value)
        }
        return nil
    }

    /// How much there is to read, for progress: rows of a Parquet file, bytes of a text file.
    public var progressTotal: (count: Int, unit: String) {
        format == .parquet ? (Int(parquet!.metadata.numRows), "rows") : (totalBytes, "bytes")
    }

    /// Emits every batch: `emit(schema, columns)`; `progress` hears how far it got (in `progressTotal`'s unit).
    public mutating func batches(progress report: (Int) -> Void = { _ in }, _ emit: (ParquetSchema, [ColumnData]) throws -> Void) throws {
        func update(_ n: Int) { report(n) }
        switch format {
        case .parquet:
            let reader = parquet!
            var done = 0
            for group in reader.metadata.rowGroups.indices {
                let data = try reader.readRowGroup(group)
                let rows = Int(reader.metadata.rowGroups[group].numRows)
                let step = batchRows ?? max(rows, 1)
                for start in stride(from: 0, to: max(rows, 1), by: step) {
                    try emit(schema, step >= rows ? data : data.indices.map {
                        data[$0].slice(rows: start..<min(rows, start + step), maxDefinitionLevel: reader.columns[$0].maxDefinitionLevel)
                    })
                }
                done += rows
                update(done)
            }
        case .csv:
            var shredder = RecordShredder(schema: schema)
            let fields = schema.root.children
            let header = csvHeader
            let rescue = self.rescue
            let positions = try fields.map { field -> Int in
                if rescue, field.name == "_rescued_data" { return -1 }
                guard let index = header.firstIndex(of: field.name) else {
                    if rescue { return -1 }
                    throw ParquetError("The schema names '\(field.name)', which is not in the CSV header (\(header.joined(separator: ", ")))")
                }
                return index
            }
            var line = csvOptions.header ? 1 : 0
            let mode = csvOptions.mode
            let rescueValues = rescue && mode == .permissive
            var dropped = 0
            defer { droppedRows += dropped }
            struct Malformed: Error {}
            func convert(_ record: [CSVReader.Field]) throws -> [ParquetCell] {
                let rescue = rescueValues
                if record.count != header.count, !rescue {
                    if mode == .dropMalformed { throw Malformed() }
                    throw ParquetError("Row \(line) has \(record.count) fields; the header has \(header.count)")
                }
                var rescued: [String: JSONValue] = [:]
                var cells = try zip(fields, positions).map { field, position -> ParquetCell in
                    if position < 0 { return .null }
                    guard position < record.count else { return .null }
                    let value = record[position]
                    if value.bytes.isEmpty, !value.quoted { return .null }
                    do {
                        return try TextValues.cell(value.bytes, element: field.element)
                    } catch let error as ParquetError {
                        if mode == .dropMalformed { throw Malformed() }
                        guard rescue else { throw ParquetError("Row \(line), column '\(field.name)': \(error.message)") }
                        rescued[field.name] = .string(String(decoding: value.bytes, as: UTF8.self))
                        return .null
                    }
                }
                if self.rescue {
                    for extra in record.indices where extra >= header.count && rescue { rescued["_c\(extra)"] = .string(String(decoding: record[extra].bytes, as: UTF8.self)) }
                    cells[cells.count - 1] = rescued.isEmpty ? .null : .bytes(Array(JSONText.string(.object(rescued)).utf8))
                }
                return cells
            }
            let limit = batchRows ?? 1_048_576
            func add(_ record: [CSVReader.Field]) throws {
                line += 1
                let cells: [ParquetCell]
                do { cells = try convert(record) } catch is Malformed { dropped += 1; return }
                try shredder.append(cells)
                if shredder.rows >= limit { try emit(schema, shredder.take()) }
                update(csv!.consumed)
            }
            for record in csvSample { try add(record) }
            while let record = try csv!.next() { try add(record) }
            if shredder.rows > 0 { try emit(schema, shredder.take()) }
        case .jsonLines:
            var shredder = RecordShredder(schema: schema)
            let fields = schema.root.children
            let limit = batchRows ?? 1_048_576
            func add(_ line: Int, _ value: JSONValue) throws {
                guard case .object(let object) = value else { return }
                do {
                    if rescue {
                        var rescued: [String: JSONValue] = [:]
                        var cells = fields.map { field -> ParquetCell in
                            guard field.name != "_rescued_data", let value = object[field.name] else { return .null }
                            if let cell = try? JSONCells.cell(value, node: field) { return cell }
                            rescued[field.name] = value
                            return .null
                        }
                        for (key, value) in object where !fields.contains(where: { $0.name == key }) { rescued[key] = value }
                        cells[cells.count - 1] = rescued.isEmpty ? .null : .bytes(Array(JSONText.string(.object(rescued)).utf8))
                        try shredder.append(cells)
                    } else {
                        try shredder.append(try fields.map { try JSONCells.cell(object[$0.name] ?? .null, node: $0) })
                    }
                } catch let error as ParquetError {
                    throw ParquetError("Line \(line): \(error.message)")
                }
                if shredder.rows >= limit { try emit(schema, shredder.take()) }
                update(lines!.consumed)
            }
            for (line, value) in jsonSample { try add(line, value) }
            while let (line, value) = try nextObject() { try add(line, value) }
            if shredder.rows > 0 { try emit(schema, shredder.take()) }
        }
    }
}

/// Reads a file in 1 MiB blocks.
struct BlockReader {
    let handle: FileHandle
    var buffer: [UInt8] = []
    var position = 0
    var consumed = 0
    var atEnd = false

    init(path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ParquetError("Cannot open '\(path)'") }
        self.handle = handle
    }

    /// The next byte, or nil at the end of the file.
    mutating func byte() throws -> UInt8? {
        if position == buffer.count {
            guard !atEnd else { return nil }
            buffer = [UInt8](try handle.read(upToCount: 1 << 20) ?? Data())
            position = 0
            if buffer.isEmpty {
                atEnd = true
                return nil
            }
        }
        defer {
            position += 1
            consumed += 1
        }
        return buffer[position]
    }
}

/// Lines of a file, without their line endings.
struct LineReader {
    var blocks: BlockReader
    var consumed: Int { blocks.consumed }

    init(path: String) throws { blocks = try BlockReader(path: path) }

    mutating func next() throws -> [UInt8]? {
        var line: [UInt8] = []
        var any = false
        while let byte = try blocks.byte() {
            any = true
            if byte == 0x0A { return line }
            line.append(byte)
        }
        return any ? line : nil
    }
}

/// RFC 4180 CSV records: quoted fields may hold commas, doubled quotes and line breaks.
struct CSVReader {
    struct Field {
        var bytes: [UInt8]
        var quoted: Bool
    }

    var blocks: BlockReader
    var consumed: Int { blocks.consumed }
    var record = 0

    let options: CSVOptions

    init(path: String, options: CSVOptions = CSVOptions()) throws {
        blocks = try BlockReader(path: path)
        self.options = options
    }

    mutating func next() throws -> [Field]? {
        var fields: [Field] = []
        var field = Field(bytes: [], quoted: false)
        var inQuotes = false
        var any = false
        let quote = options.quote, delimiter = options.delimiter, escape = options.escape
        record += 1
        while let byte = try blocks.byte() {
            any = true
            if inQuotes {
                if let escape, byte == escape, escape != quote {
                    // An escaped character inside quotes (\" by default) is taken as it is.
                    if let next = try blocks.byte() { field.bytes.append(next) }
                } else if byte == quote {
                    inQuotes = false
                } else {
                    field.bytes.append(byte)
                }
                continue
            }
            switch byte {
            case quote:
                if field.quoted { field.bytes.append(byte) }  // a doubled quote inside a quoted field
                field.quoted = true
                inQuotes = true
            case delimiter:
                fields.append(field)
                field = Field(bytes: [], quoted: false)
            case 0x0A:
                if field.bytes.last == 0x0D, !field.quoted { field.bytes.removeLast() }
                fields.append(field)
                if fields.count == 1, fields[0].bytes.isEmpty, !fields[0].quoted {  // a blank line
                    fields = []
                    continue
                }
                return fields
            default:
                if field.quoted, byte != 0x0D { throw ParquetError("CSV record \(record): text after a closing quote") }
                if byte != 0x0D || !field.quoted { field.bytes.append(byte) }
            }
        }
        guard !inQuotes else { throw ParquetError("CSV record \(record): a quoted field is not closed before the end of the file") }
        guard any else { return nil }
        fields.append(field)
        if fields.count == 1, fields[0].bytes.isEmpty, !fields[0].quoted { return nil }
        return fields
    }
}

/// What an ingestion run loaded.
public struct IngestResult: Sendable {
    /// The commit, or nil when there was nothing new.
    public var version: Int64?
    public var files: [String]
    public var rows: Int
}

extension DeltaTable {
    /// The names of the data files of `directory` that `format` (csv, json, parquet; nil: all three) reads, sorted;
    /// hidden and `_`-prefixed names are skipped. - Throws: for an unknown format or a directory that cannot be listed.
    public static func dataFiles(in directory: String, format: String?) throws -> [String] {
        let extensions: Set<String>
        switch format?.lowercased() {
        case nil: extensions = ["csv", "json", "jsonl", "ndjson", "parquet"]
        case "csv": extensions = ["csv"]
        case "json": extensions = ["json", "jsonl", "ndjson"]
        case "parquet": extensions = ["parquet"]
        default: throw KilnError.invalid("The file format must be CSV, JSON or PARQUET (got '\(format!)')")
        }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw KilnError.invalid("Cannot list \(directory); the source must be a directory")
        }
        return names.filter { !$0.hasPrefix(".") && !$0.hasPrefix("_") && extensions.contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
    }

    /// Loads the files of `directory` (of `format`; all known formats when nil) that earlier ingestions did not load
    /// into the table at `path` (created from the first file when there is none), as one COPY INTO commit that
    /// records their names: exactly once across crashes. Known columns keep the table's types, new ones are added,
    /// CSV/JSON values that do not fit go to `_rescued_data`.
    public static func ingest(directory: String, into path: String, format: String? = nil, csv: CSVOptions = CSVOptions(),
                              progress: (_ file: String, _ done: Int, _ total: Int) -> Void = { _, _, _ in }) throws -> IngestResult {
        let source = URL(fileURLWithPath: directory).standardizedFileURL.path
        let candidates = try dataFiles(in: source, format: format)
        let table = try? DeltaTable.open(path)
        let loaded = try table?.ingestedFiles(source: source) ?? []
        let fresh = candidates.filter { !loaded.contains($0) }
        guard !fresh.isEmpty else { return IngestResult(version: nil, files: [], rows: 0) }
        var schema: DeltaSchema
        if let table {
            schema = try table.snapshot().schema
        } else {
            var first = try InputSource(path: source + "/" + fresh[0], batchRows: nil, csv: csv)
            first.adapt(overrides: [:], rescue: csv.mode == .permissive)
            schema = try DeltaSchema(parquet: first.schema)
        }
        var overrides: [String: SchemaNode] = [:]
        for node in try schema.parquetSchema().root.children { overrides[node.name.lowercased()] = node }
        let parameters: [String: JSONValue] = ["source": .string(source), "files": .string(JSONText.string(.array(fresh.map(JSONValue.string))))]
        let load: ((LakeBatch) throws -> Void) throws -> Void = { emit in
            for (k, name) in fresh.enumerated() {
                var input = try InputSource(path: source + "/" + name, batchRows: nil, csv: csv)
                input.adapt(overrides: overrides, rescue: csv.mode == .permissive)
                try input.batches { schema, columns in try emit(LakeBatch(schema: schema, columns: columns)) }
                progress(name, k + 1, fresh.count)
            }
        }
        let written: WriteResult
        if let table {
            written = try table.write(mode: .append, mergeSchema: true, operation: "COPY INTO", parameters: parameters, batches: load)
        } else {
            // A new table: its first load is version 0, metadata and rows together.
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            written = try DeltaTable.create(at: path, schema: schema, mergeSchema: true, operation: "COPY INTO", parameters: parameters, batches: load)
        }
        return IngestResult(version: written.version, files: fresh, rows: written.rowsWritten)
    }
}
