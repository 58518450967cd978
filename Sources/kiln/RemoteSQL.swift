import Foundation
import KilnCore
import KilnFrame

/// Runs a statement on a server through the Statement Execution API (`/api/2.0/sql/statements`): submits it, polls
/// while it is pending or running, follows the result's chunks and rebuilds a typed frame from the manifest, so the
/// CLI prints remote results exactly as local ones.
struct RemoteStatements {
    let client: KilnClient
    let parameters: [String: Value]

    func execute(_ statement: String) async throws -> Frame {
        var body: [String: Any] = ["statement": statement, "wait_timeout": "30s", "on_wait_timeout": "CONTINUE"]
        if !parameters.isEmpty {
            body["parameters"] = parameters.sorted { $0.key < $1.key }.map { name, value -> [String: Any] in
                switch value {
                case .int(let n): ["name": name, "value": String(n), "type": "BIGINT"]
                case .double(let d): ["name": name, "value": "\(d)", "type": "DOUBLE"]
                default: ["name": name, "value": value.text, "type": "STRING"]
                }
            }
        }
        var answer = try await client.call("POST", "/api/2.0/sql/statements", body: body, timeout: 120)
        var delay: UInt64 = 50_000_000
        while let state = (answer["status"] as? [String: Any])?["state"] as? String, state == "PENDING" || state == "RUNNING" {
            try await Task.sleep(nanoseconds: delay)
            delay = min(delay * 2, 1_000_000_000)
            guard let id = answer["statement_id"] as? String else { break }
            answer = try await client.call("GET", "/api/2.0/sql/statements/\(id)")
        }
        let status = answer["status"] as? [String: Any] ?? [:]
        let state = status["state"] as? String ?? "UNKNOWN"
        guard state == "SUCCEEDED" else {
            let error = status["error"] as? [String: Any] ?? [:]
            let code = error["error_code"] as? String ?? state
            throw CLIError("\(code): \(error["message"] as? String ?? "the statement ended \(state)")")
        }
        let manifest = answer["manifest"] as? [String: Any] ?? [:]
        let columns = ((manifest["schema"] as? [String: Any])?["columns"] as? [[String: Any]]) ?? []
        var rows: [[Any]] = []
        var chunk = answer["result"] as? [String: Any]
        while let current = chunk {
            rows += current["data_array"] as? [[Any]] ?? []
            guard let link = current["next_chunk_internal_link"] as? String else { break }
            chunk = try await client.call("GET", link)
        }
        let names = columns.map { $0["name"] as? String ?? "" }
        let frameColumns = columns.enumerated().map { index, column -> Column in
            let type = Self.frameType(column)
            return Column.from(rows.map { row in index < row.count ? Self.value(row[index] as? String, type: type) : .null }, type: type)
        }
        return Frame(names: names, columns: frameColumns)
    }

    /// The frame type of a manifest column (`type_name`, with precision and scale for decimals).
    static func frameType(_ column: [String: Any]) -> FrameType {
        switch column["type_name"] as? String ?? "STRING" {
        case "BOOLEAN": .bool
        case "BYTE": .int8
        case "SHORT": .int16
        case "INT": .int32
        case "LONG": .int64
        case "FLOAT": .float32
        case "DOUBLE": .float64
        case "DATE": .date
        case "TIMESTAMP": .timestamp
        case "DECIMAL": .decimal(precision: (column["type_precision"] as? Int) ?? 38, scale: (column["type_scale"] as? Int) ?? 18)
        default: .string
        }
    }

    /// A JSON_ARRAY cell (text or null) as a value of `type`.
    static func value(_ text: String?, type: FrameType) -> Value {
        guard let text else { return .null }
        switch type {
        case .bool: return .bool(text == "true")
        case .int8, .int16, .int32, .int64: return Int64(text).map(Value.int) ?? .string(text)
        case .float32, .float64, .decimal: return Double(text).map(Value.double) ?? .string(text)
        case .date: return Dates.parseDate(text).map(Value.date) ?? .string(text)
        case .timestamp: return Dates.parseTimestamp(text).map(Value.timestamp) ?? .string(text)
        default: return .string(text)
        }
    }
}
