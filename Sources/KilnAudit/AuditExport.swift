import Foundation
import KilnCore
import KilnFrame
import KilnLake

/// The audit log as a Delta table (`system.access.audit`) with the columns of Databricks' audit system table. The
/// struct and map columns there (`user_identity`, `request_params`, `response`, `identity_metadata`) are JSON text
/// here, read with `get_json_object(response, '$.status_code')`; `sequence` and `hash` tie each row to its record.
public enum AuditTable {
    public static let name = "system.access.audit"

    static let stringColumns = ["account_id", "workspace_id", "version"]
    static let schema = DeltaSchema([
        DeltaField(name: "account_id", type: .primitive("string")),
        DeltaField(name: "workspace_id", type: .primitive("string")),
        DeltaField(name: "version", type: .primitive("string")),
        DeltaField(name: "event_time", type: .primitive("timestamp")),
        DeltaField(name: "event_date", type: .primitive("date")),
        DeltaField(name: "source_ip_address", type: .primitive("string")),
        DeltaField(name: "user_agent", type: .primitive("string")),
        DeltaField(name: "session_id", type: .primitive("string")),
        DeltaField(name: "user_identity", type: .primitive("string")),
        DeltaField(name: "service_name", type: .primitive("string")),
        DeltaField(name: "action_name", type: .primitive("string")),
        DeltaField(name: "request_id", type: .primitive("string")),
        DeltaField(name: "request_params", type: .primitive("string")),
        DeltaField(name: "response", type: .primitive("string")),
        DeltaField(name: "audit_level", type: .primitive("string")),
        DeltaField(name: "event_id", type: .primitive("string")),
        DeltaField(name: "identity_metadata", type: .primitive("string")),
        DeltaField(name: "sequence", type: .primitive("long"), nullable: false),
        DeltaField(name: "hash", type: .primitive("string"), nullable: false),
    ])

    /// The rows of `records` in the table's column order.
    static func frame(_ records: [AuditRecord]) -> Frame {
        func strings(_ values: [String?]) -> Column {
            var bytes = ByteColumn()
            for v in values { bytes.append(v ?? "") }
            return Column(type: .string, values: .bytes(bytes), validity: values.map { $0 != nil })
        }
        func json(_ build: (inout JSONWriter) -> Void) -> String {
            var w = JSONWriter()
            w.object(build)
            return String(decoding: w.bytes, as: UTF8.self)
        }
        let events = records.map(\.event)
        let n = records.count
        let columns: [Column] = [
            strings(Array(repeating: "kiln", count: n)),
            strings(Array(repeating: "1", count: n)),
            strings(Array(repeating: "2.0", count: n)),
            Column(type: .timestamp, values: .int(events.map { $0.eventTime * 1000 })),
            Column(type: .date, values: .int(events.map { Int64((Double($0.eventTime) / 86_400_000).rounded(.down)) })),
            strings(events.map(\.sourceIP)),
            strings(events.map(\.userAgent)),
            strings(Array(repeating: nil, count: n)),
            strings(events.map { e in json { $0.field("email", e.userName) } }),
            strings(events.map(\.serviceName)),
            strings(events.map(\.actionName)),
            strings(events.map(\.requestID)),
            strings(events.map { AuditLog.paramsJSON($0.requestParams) }),
            strings(events.map { e in json { $0.field("status_code", Int64(e.statusCode)); $0.field("error_message", e.errorMessage) } }),
            strings(Array(repeating: "WORKSPACE_LEVEL", count: n)),
            strings(events.map(\.eventID)),
            strings(events.map { e in json { $0.field("run_by", e.userName); $0.field("run_as", e.userName) } }),
            Column(type: .int64, values: .int(records.map(\.sequence))),
            strings(records.map(\.hash)),
        ]
        return Frame(names: schema.fields.map(\.name), columns: columns)
    }

    /// The highest `sequence` already in the table, from the files' statistics (0 for no table or no rows).
    static func exported(_ table: DeltaTable) throws -> Int64 {
        var high: Int64 = 0
        for file in try table.snapshot().files {
            guard let stats = file.stats, case .object(let o)? = try? JSONValue.parse(Array(stats.utf8)),
                  case .object(let max)? = o["maxValues"], case .number(let n)? = max["sequence"], let value = Int64(n) else {
                // A file without statistics: read its sequence column instead.
                let frame = try Frame.read(table, plan: try table.plan(), columns: ["sequence"])
                if case .int(let values) = frame.columns[0].values { return max(high, values.max() ?? 0) }
                return high
            }
            high = Swift.max(high, value)
        }
        return high
    }
}

extension AuditLog {
    /// Appends the records not yet in the Delta table at `path` (the warehouse's `system/access/audit`), in one
    /// commit, creating the table when missing. Idempotent: the table's own highest sequence says where to start.
    /// - Returns: the number of rows added.
    @discardableResult
    public func export(to path: String) async throws -> Int {
        try await flush()
        return try await exporter.withLock {
            let table = DeltaTable(path: path)
            let exists = FileManager.default.fileExists(atPath: path + "/_delta_log")
            var after = exists ? try AuditTable.exported(table) : 0
            var added = 0
            var created = exists
            while true {
                let page = try await self.records(after: after, limit: 20_000)
                guard !page.isEmpty else { return added }
                let batch = try AuditTable.frame(page).lakeBatch(AuditTable.schema)
                if created {
                    _ = try table.write(batch)
                } else {
                    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                    _ = try DeltaTable.create(at: path, schema: AuditTable.schema, properties: ["delta.appendOnly": "true"], name: "audit",
                                              description: "Kiln's audit log: one row per API call, hash-chained (kiln audit verify)") { emit in
                        try emit(batch)
                    }
                    created = true
                }
                added += page.count
                after = page.last!.sequence
            }
        }
    }
}
