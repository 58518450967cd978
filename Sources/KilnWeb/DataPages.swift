import Foundation
import Hummingbird
import KilnCore
import KilnFrame
import KilnSQL

/// Data: catalogs → schemas → tables, a table's columns, sample rows and Delta history (with time travel), and a
/// SQL editor. Everything runs as SQL through the statement service, as the API's statements do.
struct DataPages: Sendable {
    let statements: StatementService
    let sessions: WebSessions
    /// Feature lineage for the table pages; nil: not shown.
    var users: TableUsers?
    static let sampleRows = 50, editorPage = 100

    /// Runs `sql` (waiting up to a minute) and returns its result. - Throws: the statement's own error.
    func query(_ sql: String, session: WebSession, wait: Double = 60) async throws -> (frame: Frame, truncated: Bool) {
        let snapshot = try await statements.execute(sql, caller: session.caller, rowLimit: nil, wait: wait)
        defer { Task { await statements.close(snapshot.id) } }
        switch snapshot.state {
        case .succeeded: return (snapshot.result ?? Frame(names: [], columns: []), snapshot.truncated)
        case .failed: throw snapshot.error ?? KilnError(.internalError, "The statement failed")
        default:
            await statements.cancel(snapshot.id)
            throw KilnError.invalid("The statement did not finish within \(Int(wait)) s and was canceled")
        }
    }

    /// `name` quoted as a SQL identifier.
    static func ident(_ name: String) -> String { "`" + name.replacingOccurrences(of: "`", with: "``") + "`" }

    static func column(_ frame: Frame, _ name: String) -> [String] {
        guard let i = frame.names.firstIndex(of: name) else { return [] }
        return (0..<frame.rowCount).map { frame.columns[i].value($0).text }
    }

    /// A column's values with nulls as "" (not the word NULL).
    static func text(_ frame: Frame, _ name: String) -> [String] {
        guard let i = frame.names.firstIndex(of: name) else { return [] }
        return (0..<frame.rowCount).map { frame.columns[i].isNull($0) ? "" : frame.columns[i].value($0).text }
    }

    func catalogs(session: WebSession) async throws -> Response {
        let names = Self.column(try await query("SHOW CATALOGS", session: session).frame, "catalog")
        let items = names.map { "<li data-testid=\"catalog\"><a href=\"/ui/data/\(HTML.segment($0))\">\(HTML.escape($0))</a></li>" }.joined()
        return WebUI.html(HTML.page(title: "Data", session: session, body: "<p><a href=\"/ui/sql\" data-testid=\"sql-link\">SQL editor</a></p><h2>Catalogs</h2><ul>\(items)</ul>"))
    }

    func schemas(catalog: String, session: WebSession) async throws -> Response {
        let names = Self.column(try await query("SHOW SCHEMAS IN \(Self.ident(catalog))", session: session).frame, "databaseName")
        let items = names.map { "<li data-testid=\"schema\"><a href=\"/ui/data/\(HTML.segment(catalog))/\(HTML.segment($0))\">\(HTML.escape($0))</a></li>" }.joined()
        let body = "<p class=\"meta\"><a href=\"/ui/data\">Data</a> / \(HTML.escape(catalog))</p><h2>Schemas</h2><ul>\(items.isEmpty ? "<li>No schemas.</li>" : items)</ul>"
        return WebUI.html(HTML.page(title: catalog, session: session, body: body))
    }

    func tables(catalog: String, schema: String, session: WebSession) async throws -> Response {
        let scope = "\(Self.ident(catalog)).\(Self.ident(schema))"
        let names = Self.column(try await query("SHOW TABLES IN \(scope)", session: session).frame, "tableName")
        let volumes = Self.column(try await query("SHOW VOLUMES IN \(scope)", session: session).frame, "volume_name")
        // Functions through information_schema, which lists only what the signed-in user may see.
        let schemaLiteral = schema.replacingOccurrences(of: "'", with: "''")
        let routines = try await query("SELECT routine_name, full_data_type, routine_definition, comment FROM \(Self.ident(catalog)).information_schema.routines "
                                       + "WHERE routine_schema = '\(schemaLiteral)' ORDER BY routine_name", session: session).frame
        let (routineNames, returns, definitions, comments) = (Self.column(routines, "routine_name"), Self.column(routines, "full_data_type"),
                                                               Self.column(routines, "routine_definition"), Self.text(routines, "comment"))
        let functionItems = routineNames.indices.map { i in
            "<li data-testid=\"function\"><code>\(HTML.escape(routineNames[i]))</code> → \(HTML.escape(returns[i])): <code>\(HTML.escape(definitions[i]))</code>"
                + (comments[i].isEmpty ? "" : " — \(HTML.escape(comments[i]))") + "</li>"
        }.joined()
        let base = "/ui/data/\(HTML.segment(catalog))/\(HTML.segment(schema))"
        let items = names.map { "<li data-testid=\"table\"><a href=\"\(base)/\(HTML.segment($0))\">\(HTML.escape($0))</a></li>" }.joined()
        let volumeBase = "/ui/volumes/\(HTML.segment(catalog))/\(HTML.segment(schema))"
        let volumeItems = volumes.map { "<li data-testid=\"volume\"><a href=\"\(volumeBase)/\(HTML.segment($0))\">\(HTML.escape($0))</a></li>" }.joined()
        let body = "<p class=\"meta\"><a href=\"/ui/data\">Data</a> / <a href=\"/ui/data/\(HTML.segment(catalog))\">\(HTML.escape(catalog))</a> / \(HTML.escape(schema))</p><h2>Tables</h2><ul>\(items.isEmpty ? "<li>No tables.</li>" : items)</ul>"
            + "<h2>Volumes</h2><ul>\(volumeItems.isEmpty ? "<li>No volumes.</li>" : volumeItems)</ul>"
            + "<h2>Functions</h2><ul>\(functionItems.isEmpty ? "<li>No functions.</li>" : functionItems)</ul>"
        return WebUI.html(HTML.page(title: "\(catalog).\(schema)", session: session, body: body))
    }

    /// A volume's folder: its entries (sub-folders to open, files with size and time), read through SQL `LIST`, so
    /// it shows only what the signed-in user may read.
    func volume(catalog: String, schema: String, volume: String, folder: String, session: WebSession) async throws -> Response {
        let trimmed = folder.split(separator: "/").filter { !$0.isEmpty }.joined(separator: "/")
        let path = "/Volumes/\(catalog)/\(schema)/\(volume)" + (trimmed.isEmpty ? "" : "/" + trimmed)
        let literal = path.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "''")
        let frame = try await query("LIST '\(literal)'", session: session).frame
        let base = "/ui/volumes/\(HTML.segment(catalog))/\(HTML.segment(schema))/\(HTML.segment(volume))"
        let names = Self.column(frame, "name"), sizes = Self.column(frame, "size"), times = Self.column(frame, "modification_time")
        var rows = ""
        for (i, name) in names.enumerated() {
            let directory = name.hasSuffix("/")
            let child = (trimmed.isEmpty ? "" : trimmed + "/") + (directory ? String(name.dropLast()) : name)
            let label = directory ? "<a href=\"\(base)?path=\(HTML.query(child))\">\(HTML.escape(name))</a>" : HTML.escape(name)
            let when = Int64(times[i]).map { HTML.time($0) } ?? ""
            rows += "<tr data-testid=\"volume-entry\"><td>\(label)</td><td>\(directory ? "" : HTML.size(Int64(sizes[i]) ?? 0))</td><td>\(when)</td></tr>"
        }
        var crumbs = "<a href=\"\(base)\">\(HTML.escape(volume))</a>"
        var walked: [String] = []
        for part in trimmed.split(separator: "/") {
            walked.append(String(part))
            crumbs += " / <a href=\"\(base)?path=\(HTML.query(walked.joined(separator: "/")))\">\(HTML.escape(String(part)))</a>"
        }
        let body = "<p class=\"meta\"><a href=\"/ui/data\">Data</a> / <a href=\"/ui/data/\(HTML.segment(catalog))\">\(HTML.escape(catalog))</a> / "
            + "<a href=\"/ui/data/\(HTML.segment(catalog))/\(HTML.segment(schema))\">\(HTML.escape(schema))</a> / \(crumbs)</p>"
            + "<h2>Files</h2><table data-testid=\"volume-files\"><tr><th>Name</th><th>Size</th><th>Modified</th></tr>"
            + (rows.isEmpty ? "<tr><td colspan=\"3\">Empty.</td></tr>" : rows) + "</table>"
        return WebUI.html(HTML.page(title: "\(catalog).\(schema).\(volume)", session: session, body: body))
    }

    /// A table: columns, sample rows (at `?version=N` for time travel) and its Delta history.
    func table(_ request: Request, catalog: String, schema: String, table: String, session: WebSession) async throws -> Response {
        let name = [catalog, schema, table].map(Self.ident).joined(separator: ".")
        let version = formFields(Substring(request.uri.query ?? ""))["version"].flatMap { Int64($0) }
        let columns = try await query("DESCRIBE \(name)", session: session).frame
        let detail = try await query("DESCRIBE DETAIL \(name)", session: session).frame
        let history = try await query("DESCRIBE HISTORY \(name)", session: session).frame
        let sample = try await query("SELECT * FROM \(name)\(version.map { " VERSION AS OF \($0)" } ?? "") LIMIT \(Self.sampleRows)", session: session).frame
        let base = "/ui/data/\(HTML.segment(catalog))/\(HTML.segment(schema))/\(HTML.segment(table))"
        let versions = Self.column(history, "version")
        var historyRows = ""
        for row in 0..<history.rowCount {
            let v = versions[row]
            historyRows += "<tr data-testid=\"history-row\"><td><a href=\"\(base)?version=\(HTML.query(v))\">\(HTML.escape(v))</a></td>"
                + (1..<history.names.count).map { "<td>\(HTML.escape(history.columns[$0].value(row).text))</td>" }.joined() + "</tr>"
        }
        let usedBy = await usedBy("\(catalog).\(schema).\(table)")
        let body = """
            <p class="meta"><a href="/ui/data">Data</a> / <a href="/ui/data/\(HTML.segment(catalog))">\(HTML.escape(catalog))</a> /
            <a href="/ui/data/\(HTML.segment(catalog))/\(HTML.segment(schema))">\(HTML.escape(schema))</a> / \(HTML.escape(table))</p>
            <section><h2>Columns</h2>\(Self.grid(columns, testID: "columns"))</section>
            \(Self.details(detail))
            <section><h2>\(version.map { "Rows at version \($0)" } ?? "Sample rows") (first \(Self.sampleRows))</h2>
            \(version == nil ? "" : "<p><a href=\"\(base)\" data-testid=\"latest\">Back to the latest version</a></p>")
            \(Self.grid(sample, testID: "sample"))</section>
            \(usedBy)
            <section><h2>History</h2><div class="scroll"><table data-testid="history"><thead><tr>\(history.names.map { "<th>\(HTML.escape($0))</th>" }.joined())</tr></thead>
            <tbody>\(historyRows)</tbody></table></div></section>
            """
        return WebUI.html(HTML.page(title: "\(catalog).\(schema).\(table)", session: session, body: body))
    }

    /// A table's DESCRIBE DETAIL row as a key/value table (size in readable units, partitioning, properties).
    static func details(_ detail: Frame) -> String {
        guard detail.rowCount == 1 else { return "" }
        let row = Dictionary(uniqueKeysWithValues: zip(detail.names, detail.row(0)))
        func text(_ key: String) -> String { row[key].map { if case .null = $0 { "" } else { $0.text } } ?? "" }
        func strings(_ json: String) -> [String] {
            guard case .array(let items)? = try? JSONValue.parse(Array(json.utf8)) else { return [] }
            return items.compactMap { if case .string(let s) = $0 { s } else { nil } }
        }
        var properties: [(String, String)] = []
        if case .object(let fields)? = try? JSONValue.parse(Array(text("properties").utf8)) {
            properties = fields.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.text($0.value)) }
        }
        let partitions = strings(text("partitionColumns"))
        let bytes = Int64(text("sizeInBytes")) ?? 0
        let rows: [(String, String, String)] = [
            ("Location", "location", "<code>\(HTML.escape(text("location")))</code>"),
            ("Partitioned by", "partitioning", partitions.isEmpty ? "not partitioned" : HTML.escape(partitions.joined(separator: ", "))),
            ("Files", "num-files", HTML.escape(text("numFiles"))),
            ("Size", "size", "\(HTML.size(bytes)) <span class=\"meta\">(\(bytes) bytes)</span>"),
            ("Created", "created", HTML.escape(text("createdAt"))),
            ("Last modified", "last-modified", HTML.escape(text("lastModified"))),
            ("Protocol", "protocol", "reader \(HTML.escape(text("minReaderVersion"))), writer \(HTML.escape(text("minWriterVersion")))"),
            ("Table id", "table-id", "<code>\(HTML.escape(text("id")))</code>"),
        ]
        let body = rows.map { "<tr><th>\($0.0)</th><td data-testid=\"detail-\($0.1)\">\($0.2)</td></tr>" }.joined()
        let props = properties.map { "<tr data-testid=\"property-row\"><th>\(HTML.escape($0.0))</th><td>\(HTML.escape($0.1))</td></tr>" }.joined()
        return """
            <section><h2>Details</h2><table class="kv" data-testid="details">\(body)</table>
            <h3>Properties</h3><table class="kv" data-testid="properties">\(props.isEmpty ? "<tr><td>No properties.</td></tr>" : props)</table></section>
            """
    }

    /// The SQL editor: GET shows it with this session's recent statements; POST runs one (CSRF-checked).
    func editor(session: WebSession, sessionID: String?, text: String = "", result: String = "") async -> Response {
        var recent: [String] = []
        if let sessionID { recent = await sessions.history(sessionID) }
        let items = recent.reversed().map { "<li data-testid=\"sql-history\"><code>\(HTML.escape($0))</code></li>" }.joined()
        let body = """
            <form method="post" action="/ui/sql" class="login sql" data-testid="sql-form">
            <input type="hidden" name="csrf" value="\(HTML.escape(session.csrf))">
            <label for="statement">Statement</label>
            <textarea id="statement" name="statement" rows="6" cols="100" data-testid="sql-text" spellcheck="false">\(HTML.escape(text))</textarea>
            <button type="submit" data-testid="sql-run">Run</button></form>
            \(result)
            \(items.isEmpty ? "" : "<section><h2>Recent statements</h2><ul>\(items)</ul></section>")
            """
        return WebUI.html(HTML.page(title: "SQL editor", session: session, body: body))
    }

    /// Runs a statement from the editor and shows the first page of its result; the result stays pageable by this
    /// session (its last five results) until the statement service lets it go.
    func run(statement: String, session: WebSession, sessionID: String?) async -> Response {
        let text = statement.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { return await editor(session: session, sessionID: sessionID, result: HTML.notice("Type a statement to run.")) }
        if let sessionID { await sessions.remember(sessionID, statement: text) }
        let started = Date()
        do {
            let snapshot = try await statements.execute(text, caller: session.caller, rowLimit: nil, wait: 60)
            switch snapshot.state {
            case .succeeded: break
            case .failed:
                await statements.close(snapshot.id)
                throw snapshot.error ?? KilnError(.internalError, "The statement failed")
            default:
                await statements.cancel(snapshot.id)
                throw KilnError.invalid("The statement did not finish within 60 s and was canceled")
            }
            let frame = snapshot.result ?? Frame(names: [], columns: [])
            if let sessionID {
                for old in await sessions.keep(sessionID, result: snapshot.id, statement: text) { await statements.close(old) }
            } else {
                await statements.close(snapshot.id)
            }
            let took = String(format: "%.3f", Date().timeIntervalSince(started))
            return await editor(session: session, sessionID: sessionID, text: text,
                                result: Self.resultPage(frame, id: sessionID == nil ? nil : snapshot.id, page: 0, took: took))
        } catch let error as KilnError {
            return await editor(session: session, sessionID: sessionID, text: text, result: HTML.notice(error.message))
        } catch {
            return await editor(session: session, sessionID: sessionID, text: text, result: HTML.notice("\(error)"))
        }
    }

    /// `GET /ui/sql/results/ID?page=N`: another page of a result this session ran.
    func result(id: String, page: Int, session: WebSession, sessionID: String?) async throws -> Response {
        let gone = KilnError.notFound("That result is no longer kept (a session keeps its last five): run the statement again.")
        guard let sessionID, let text = await sessions.result(sessionID, id) else { throw gone }
        guard let snapshot = try? await statements.get(id), snapshot.state == .succeeded, let frame = snapshot.result else { throw gone }
        return await editor(session: session, sessionID: sessionID, text: text, result: Self.resultPage(frame, id: id, page: page, took: nil))
    }

    /// Rows `page × 100 ..< (page + 1) × 100` of a result, what they are of the whole, and links to the pages
    /// around them (when the result is kept: `id`).
    static func resultPage(_ frame: Frame, id: String?, page requested: Int, took: String?) -> String {
        let pages = max(1, (frame.rowCount + editorPage - 1) / editorPage)
        let page = min(max(0, requested), pages - 1)
        let rows = page * editorPage..<min(frame.rowCount, (page + 1) * editorPage)
        var summary = "\(frame.rowCount) \(frame.rowCount == 1 ? "row" : "rows")\(took.map { " in \($0) s" } ?? "")"
        if pages > 1 { summary += " · rows \(rows.lowerBound + 1)–\(rows.upperBound)" }
        var links = ""
        if let id, pages > 1 {
            let base = "/ui/sql/results/\(HTML.segment(id))?page="
            if page > 0 { links += "<a data-testid=\"sql-prev\" href=\"\(base)\(page - 1)\">Previous \(editorPage)</a> " }
            if page + 1 < pages { links += "<a data-testid=\"sql-next\" href=\"\(base)\(page + 1)\">Next \(editorPage)</a>" }
            links = "<p class=\"pager\" data-page=\"\(page)\">\(links)</p>"
        }
        return "<p class=\"meta\" data-testid=\"sql-summary\">\(summary)</p>\(links)" + grid(frame.slice(rows), testID: "sql-result", limit: editorPage)
    }

    /// A result as a table, nulls shown as `NULL`.
    static func grid(_ frame: Frame, testID: String, limit: Int = 1000) -> String {
        let head = frame.names.map { "<th>\(HTML.escape($0))</th>" }.joined()
        var rows = ""
        for row in 0..<min(frame.rowCount, limit) {
            rows += "<tr>" + frame.columns.map { column -> String in
                let value = column.value(row)
                if case .null = value { return "<td class=\"null\">NULL</td>" }
                return "<td>\(HTML.escape(value.text))</td>"
            }.joined() + "</tr>"
        }
        return "<div class=\"scroll\"><table data-testid=\"\(testID)\"><thead><tr>\(head)</tr></thead><tbody>\(rows)</tbody></table></div>"
    }
}
