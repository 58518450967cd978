import ArgumentParser
import Foundation
import KilnCore
import KilnLake
import KilnParquet

extension Parquet {
    struct Convert: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert CSV, JSON lines or Parquet into a Parquet file.",
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
                if lower.hasSuffix(".parquet") {
                    guard schema == nil else { throw ParquetError("--schema applies to CSV and JSON input; a Parquet input keeps its schema") }
                    return try ParquetConverter.fromParquet(input, to: temporary, rowGroupRows: rowGroupRows, options: options)
                }
                let parsedSchema = try schema.map(SchemaDDL.parse)
                if lower.hasSuffix(".csv") {
                    return try ParquetConverter.fromCSV(input, to: temporary, schema: parsedSchema, rowGroupRows: rowGroupRows ?? 1_048_576, options: options)
                }
                if lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") || lower.hasSuffix(".json") {
                    return try ParquetConverter.fromJSONLines(input, to: temporary, schema: parsedSchema, rowGroupRows: rowGroupRows ?? 1_048_576,
                                                              options: options)
                }
                throw ParquetError("Cannot tell the format of '\(input)'; name it .csv, .jsonl or .parquet")
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

/// Turns CSV, JSON lines and Parquet into Parquet (the engine behind `kiln parquet convert`).
enum ParquetConverter {
    static func describe(_ schema: ParquetSchema) -> String {
        schema.root.children.map { "\($0.name) \(SchemaDDL.typeName($0))\($0.repetition == .required ? " NOT NULL" : "")" }.joined(separator: ", ")
    }

    static func fromParquet(_ input: String, to output: String, rowGroupRows: Int?, options: ParquetWriterOptions) throws -> ConvertSummary {
        let reader = try ParquetFileReader(path: input)
        // Key/value metadata (Arrow's schema, Spark's row metadata) travels with the data.
        let writer = try ParquetFileWriter(path: output, schema: reader.schema, options: options, keyValueMetadata: reader.metadata.keyValueMetadata)
        var summary = ConvertSummary(schema: describe(reader.schema))
        var progress = ProgressBar(total: Int(reader.metadata.numRows), unit: "rows")
        for group in reader.metadata.rowGroups.indices {
            var clock = Date()
            let data = try reader.readRowGroup(group)
            summary.readSeconds += Date().timeIntervalSince(clock)
            clock = Date()
            let rows = Int(reader.metadata.rowGroups[group].numRows)
            let step = rowGroupRows ?? max(rows, 1)
            for start in stride(from: 0, to: max(rows, 1), by: step) {
                let piece = step >= rows ? data : data.indices.map {
                    data[$0].slice(rows: start..<min(rows, start + step), maxDefinitionLevel: reader.columns[$0].maxDefinitionLevel)
                }
                try writer.writeRowGroup(piece)
                summary.rowGroups += 1
            }
            summary.writeSeconds += Date().timeIntervalSince(clock)
            summary.rows += rows
            summary.decodedBytes += data.reduce(0) { $0 + $1.memoryBytes }
            progress.update(summary.rows)
        }
        let clock = Date()
        try writer.close()
        summary.writeSeconds += Date().timeIntervalSince(clock)
        progress.finish()
        return summary
    }

    /// Feeds rows to a writer, a row group at a time.
    struct RowSink {
        let writer: ParquetFileWriter
        var shredder: RecordShredder
        let rowGroupRows: Int
        var summary: ConvertSummary
        var progress: ProgressBar
        let totalBytes: Int

        init(output: String, schema: ParquetSchema, rowGroupRows: Int, options: ParquetWriterOptions, inputBytes: Int) throws {
            writer = try ParquetFileWriter(path: output, schema: schema, options: options)
            shredder = RecordShredder(schema: schema)
            self.rowGroupRows = rowGroupRows
            summary = ConvertSummary(schema: ParquetConverter.describe(schema))
            progress = ProgressBar(total: inputBytes, unit: "bytes")
            totalBytes = inputBytes
        }

        mutating func append(_ row: [ParquetCell], line: Int, consumed: Int) throws {
            do {
                try shredder.append(row)
            } catch let error as ParquetError {
                throw ParquetError("Row \(line): \(error.message)")
            }
            if shredder.rows >= rowGroupRows { try flush() }
            progress.update(consumed)
        }

        mutating func flush() throws {
            guard shredder.rows > 0 else { return }
            let rows = shredder.rows
            let columns = shredder.take()
            let clock = Date()
            try writer.writeRowGroup(columns)
            summary.writeSeconds += Date().timeIntervalSince(clock)
            summary.decodedBytes += columns.reduce(0) { $0 + $1.memoryBytes }
            summary.rows += rows
            summary.rowGroups += 1
        }

        mutating func finish() throws -> ConvertSummary {
            try flush()
            try writer.close()
            progress.finish()
            return summary
        }
    }

    static func fileSize(_ path: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0 }

    // MARK: CSV

    static func fromCSV(_ input: String, to output: String, schema given: ParquetSchema?, rowGroupRows: Int,
                        options: ParquetWriterOptions) throws -> ConvertSummary {
        var reader = try CSVReader(path: input)
        guard let header = try reader.next()?.map({ String(decoding: $0.bytes, as: UTF8.self) }) else {
            throw ParquetError("'\(input)' is empty; a CSV input needs a header row")
        }
        var sample: [[CSVReader.Field]] = []
        let schema: ParquetSchema
        if let given {
            schema = given
        } else {
            while sample.count < 1000, let record = try reader.next() { sample.append(record) }
            schema = ParquetSchema(header.indices.map { column in
                TextValues.infer(name: header[column], sample.lazy.compactMap { $0.count > column ? ($0[column].bytes, $0[column].quoted) : nil })
            })
        }
        let fields = schema.root.children
        for field in fields where !field.isLeaf || field.repetition == .repeated {
            throw ParquetError("CSV columns must be flat; '\(field.name)' is \(SchemaDDL.typeName(field))")
        }
        let positions = try fields.map { field -> Int in
            guard let index = header.firstIndex(of: field.name) else {
                throw ParquetError("--schema names '\(field.name)', which is not in the CSV header (\(header.joined(separator: ", ")))")
            }
            return index
        }
        var sink = try RowSink(output: output, schema: schema, rowGroupRows: rowGroupRows, options: options, inputBytes: fileSize(input))
        var line = 1
        func convert(_ record: [CSVReader.Field]) throws -> [ParquetCell] {
            guard record.count == header.count else {
                throw ParquetError("Row \(line) has \(record.count) fields; the header has \(header.count)")
            }
            return try zip(fields, positions).map { field, position in
                let value = record[position]
                if value.bytes.isEmpty, !value.quoted { return .null }
                do {
                    return try TextValues.cell(value.bytes, element: field.element)
                } catch let error as ParquetError {
                    throw ParquetError("Row \(line), column '\(field.name)': \(error.message)")
                }
            }
        }
        for record in sample {
            line += 1
            try sink.append(try convert(record), line: line, consumed: reader.consumed)
        }
        while let record = try reader.next() {
            line += 1
            try sink.append(try convert(record), line: line, consumed: reader.consumed)
        }
        return try sink.finish()
    }

    // MARK: JSON lines

    static func fromJSONLines(_ input: String, to output: String, schema given: ParquetSchema?, rowGroupRows: Int,
                              options: ParquetWriterOptions) throws -> ConvertSummary {
        var lines = try LineReader(path: input)
        var sample: [(Int, JSONValue)] = []
        var number = 0
        func nextObject() throws -> (Int, JSONValue)? {
            while let line = try lines.next() {
                number += 1
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                let value: JSONValue
                do { value = try JSONValue.parse(line) } catch { throw ParquetError("Line \(number) is not valid JSON: \(error)") }
                guard case .object = value else { throw ParquetError("Line \(number) is a JSON \(value.typeName); each line must be an object") }
                return (number, value)
            }
            return nil
        }
        let schema: ParquetSchema
        if let given {
            schema = given
        } else {
            var type = JSONType.object([:])
            while sample.count < 1000, let next = try nextObject() {
                sample.append(next)
                type = type.merged(JSONType(next.1))
            }
            guard case .object(let fields) = type, !fields.isEmpty else { throw ParquetError("'\(input)' holds no JSON objects with fields") }
            schema = ParquetSchema(fields.keys.sorted().map { fields[$0]!.node($0) })
        }
        var sink = try RowSink(output: output, schema: schema, rowGroupRows: rowGroupRows, options: options, inputBytes: fileSize(input))
        func convert(_ line: Int, _ value: JSONValue) throws -> [ParquetCell] {
            guard case .object(let object) = value else { return [] }
            do {
                return try schema.root.children.map { try JSONCells.cell(object[$0.name] ?? .null, node: $0) }
            } catch let error as ParquetError {
                throw ParquetError("Line \(line): \(error.message)")
            }
        }
        for (line, value) in sample { try sink.append(try convert(line, value), line: line, consumed: lines.consumed) }
        while let (line, value) = try nextObject() { try sink.append(try convert(line, value), line: line, consumed: lines.consumed) }
        return try sink.finish()
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

    init(path: String) throws { blocks = try BlockReader(path: path) }

    mutating func next() throws -> [Field]? {
        var fields: [Field] = []
        var field = Field(bytes: [], quoted: false)
        var inQuotes = false
        var any = false
        record += 1
        while let byte = try blocks.byte() {
            any = true
            if inQuotes {
                if byte == UInt8(ascii: "\"") {
                    inQuotes = false
                } else {
                    field.bytes.append(byte)
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                if field.quoted { field.bytes.append(byte) }  // a doubled quote inside a quoted field
                field.quoted = true
                inQuotes = true
            case UInt8(ascii: ","):
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
