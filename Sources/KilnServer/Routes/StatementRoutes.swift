import Foundation
import Hummingbird
import KilnCore
import KilnFrame
import KilnSQL

/// Databricks' Statement Execution API under `/api/2.0/sql/statements`: INLINE results in JSON_ARRAY format, in
/// chunks of `chunkRows` rows, what `databricks-sdk`'s `w.statement_execution` calls.
struct StatementRoutes: Sendable {
    let statements: StatementService

    func register(on router: Router<KilnRequestContext>) {
        MessageRoute.register([
            MessageRoute(.post, "statements", execute),
            MessageRoute(.get, "statements/{statement_id}", get),
            MessageRoute(.post, "statements/{statement_id}/cancel", cancel),
            MessageRoute(.get, "statements/{statement_id}/result/chunks/{chunk_index}", chunk),
        ], prefixes: ["/api/2.0/sql/"], on: router)
    }

    func execute(_ m: RequestMessage) async throws -> Response {
        let sql = try m.requireString("statement")
        // wait_timeout: "0s", or 5s to 50s (default 10s), as Databricks accepts.
        var wait = 10.0
        if let text = try m.string("wait_timeout") {
            guard text.hasSuffix("s"), let seconds = Double(text.dropLast()), seconds == 0 || (5...50).contains(seconds) else {
                throw KilnError.invalid("wait_timeout must be 0s or between 5s and 50s (got '\(text)')")
            }
            wait = seconds
        }
        let onTimeout = try m.string("on_wait_timeout") ?? "CONTINUE"
        guard ["CONTINUE", "CANCEL"].contains(onTimeout) else { throw KilnError.invalid("on_wait_timeout must be CONTINUE or CANCEL") }
        if let disposition = try m.string("disposition"), disposition != "INLINE" {
            throw KilnError.invalid("disposition \(disposition) is not supported; Kiln returns results INLINE")
        }
        if let format = try m.string("format"), format != "JSON_ARRAY" {
            throw KilnError.invalid("format \(format) is not supported; Kiln returns JSON_ARRAY")
        }
        let parameters = try m.messages("parameters").map {
            StatementService.Parameter(name: try $0.requireString("name"), value: try $0.string("value"), type: try $0.string("type"))
        }
        var rowLimit: Int?
        if let limit = try m.int64("row_limit") {
            guard limit >= 0 else { throw KilnError.invalid("row_limit must not be negative") }
            rowLimit = Int(limit)
        }
        let snapshot = try await statements.execute(sql, parameters: parameters, catalog: try m.string("catalog"), schema: try m.string("schema"),
                                                    caller: m.caller, rowLimit: rowLimit, wait: wait, cancelOnTimeout: onTimeout == "CANCEL")
        return .json { w in Self.write(snapshot, into: &w) }
    }

    func get(_ m: RequestMessage) async throws -> Response {
        let snapshot = try await statements.get(try m.requireString("statement_id"))
        return .json { w in Self.write(snapshot, into: &w) }
    }

    func cancel(_ m: RequestMessage) async throws -> Response {
        let id = try m.requireString("statement_id")
        _ = try await statements.get(id)
        await statements.cancel(id)
        return .json { _ in }
    }

    func chunk(_ m: RequestMessage) async throws -> Response {
        let snapshot = try await statements.get(try m.requireString("statement_id"))
        guard let frame = snapshot.result, let index = Int(try m.requireString("chunk_index")),
              Self.chunks(frame.rowCount).indices.contains(index) else {
            throw KilnError.notFound("Statement \(snapshot.id) has no result chunk \(try m.requireString("chunk_index"))")
        }
        return .json { w in Self.writeChunk(frame, index: index, statement: snapshot.id, into: &w) }
    }

    // MARK: Wire

    static func write(_ s: StatementService.Snapshot, into w: inout JSONWriter) {
        w.field("statement_id", s.id)
        w.key("status")
        w.object { w in
            w.field("state", s.state.rawValue)
            if let error = s.error {
                w.key("error")
                w.object { w in
                    w.field("error_code", serviceErrorCode(error))
                    w.field("message", error.message)
                }
            }
        }
        guard s.state == .succeeded, let frame = s.result else { return }
        w.key("manifest")
        w.object { w in
            w.field("format", "JSON_ARRAY")
            w.key("schema")
            w.object { w in
                w.field("column_count", Int64(frame.names.count))
                w.key("columns")
                w.array { w in
                    for (i, (name, column)) in zip(frame.names, frame.columns).enumerated() {
                        w.object { w in
                            let (typeName, typeText) = typeNames(column.type)
                            w.field("name", name)
                            w.field("position", Int64(i))
                            w.field("type_name", typeName)
                            w.field("type_text", typeText)
                            if case .decimal(let p, let s) = column.type {
                                w.field("type_precision", Int64(p))
                                w.field("type_scale", Int64(s))
                            }
                        }
                    }
                }
            }
            let chunks = chunks(frame.rowCount)
            w.field("total_chunk_count", Int64(chunks.count))
            w.key("chunks")
            w.array { w in
                for (index, rows) in chunks.enumerated() {
                    w.object { w in
                        w.field("chunk_index", Int64(index))
                        w.field("row_offset", Int64(rows.lowerBound))
                        w.field("row_count", Int64(rows.count))
                    }
                }
            }
            w.field("total_row_count", Int64(frame.rowCount))
            w.field("truncated", s.truncated)
        }
        w.key("result")
        w.object { w in writeChunk(frame, index: 0, statement: s.id, into: &w) }
    }

    /// Rows per result chunk: long results come in several, fetched through `result/chunks/{n}`.
    static let chunkRows = 10_000

    /// The row ranges of a result's chunks; an empty result has one empty chunk.
    static func chunks(_ rowCount: Int) -> [Range<Int>] {
        rowCount == 0 ? [0..<0] : stride(from: 0, to: rowCount, by: chunkRows).map { $0..<min($0 + chunkRows, rowCount) }
    }

    static func writeChunk(_ frame: Frame, index: Int, statement: String, into w: inout JSONWriter) {
        let chunks = chunks(frame.rowCount)
        let rows = chunks[index]
        w.field("chunk_index", Int64(index))
        w.field("row_offset", Int64(rows.lowerBound))
        w.field("row_count", Int64(rows.count))
        if index + 1 < chunks.count {
            w.field("next_chunk_index", Int64(index + 1))
            w.field("next_chunk_internal_link", "/api/2.0/sql/statements/\(statement)/result/chunks/\(index + 1)")
        }
        w.key("data_array")
        w.array { w in
            for row in rows {
                w.array { w in
                    for column in frame.columns {
                        if let text = cell(column, row) { w.value(text) } else { w.null() }
                    }
                }
            }
        }
    }

    /// A value as JSON_ARRAY text: decimals with their scale, timestamps in ISO-8601 UTC.
    static func cell(_ column: Column, _ row: Int) -> String? {
        let value = column.value(row)
        switch value {
        case .null: return nil
        case .double(let d):
            if case .decimal(_, let scale) = column.type { return String(format: "%.\(scale)f", d) }
            return "\(d)"
        case .timestamp: return value.text.replacingOccurrences(of: " ", with: "T") + "Z"
        default: return value.text
        }
    }

    /// The Statement Execution API's own error codes (`ServiceErrorCode`), from Kiln's.
    static func serviceErrorCode(_ error: KilnError) -> String {
        switch error.httpStatus(alreadyExistsAs409: true) {
        case 400: "BAD_REQUEST"
        case 404: "NOT_FOUND"
        case 409: error.code == .resourceConflict ? "ABORTED" : "ALREADY_EXISTS"
        case 401: "UNAUTHENTICATED"
        case 429: "RESOURCE_EXHAUSTED"
        default: "INTERNAL_ERROR"
        }
    }

    static func typeNames(_ type: FrameType) -> (String, String) {
        switch type {
        case .bool: ("BOOLEAN", "BOOLEAN")
        case .int8: ("BYTE", "TINYINT")
        case .int16: ("SHORT", "SMALLINT")
        case .int32: ("INT", "INT")
        case .int64: ("LONG", "BIGINT")
        case .float32: ("FLOAT", "FLOAT")
        case .float64: ("DOUBLE", "DOUBLE")
        case .string: ("STRING", "STRING")
        case .binary: ("BINARY", "BINARY")
        case .date: ("DATE", "DATE")
        case .timestamp: ("TIMESTAMP", "TIMESTAMP")
        case .decimal(let p, let s): ("DECIMAL", "DECIMAL(\(p),\(s))")
        case .array: ("ARRAY", type.description)
        case .map: ("MAP", type.description)
        case .structure: ("STRUCT", type.description)
        }
    }
}
