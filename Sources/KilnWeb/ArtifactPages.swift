import Foundation
import HTTPTypes
import Hummingbird
import KilnBlob
import KilnCore
import KilnFrame
import KilnLake
import KilnParquet
import KilnTracking

/// A run's artifacts: a folder listing, a preview of one file (text, JSON, YAML, MLmodel, Markdown and code as text;
/// CSV/TSV as a table; Parquet files and Delta table folders as a grid paged 100 rows at a time; images inline;
/// HTML in a sandboxed frame), and the raw file for download. A text file over `previewLimit` is never read for a
/// page — it gets a download link only; a Parquet or Delta page reads only the row groups or files that hold it.
struct ArtifactPages: Sendable {
    let tracking: TrackingService
    let artifacts: any BlobStore
    static let previewLimit: Int64 = 1 << 20
    static let textTypes: Set<String> = ["txt", "log", "json", "yaml", "yml", "md", "py", "sql", "toml", "cfg", "ini", "xml", "r", "sh", "ipynb", "jsonl"]
    static let imageTypes: [String: String] = ["png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp", "svg": "image/svg+xml"]

    /// The run's artifact root in the store, or nil when its artifacts live outside Kiln's store.
    static func root(_ info: RunInfo) -> String? {
        let prefix = "mlflow-artifacts:/"
        guard info.artifactURI.hasPrefix(prefix) else { return nil }
        return String(info.artifactURI.dropFirst(prefix.count)).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
    }

    /// `path` inside the run's root as a store key; refuses paths that climb out of it.
    static func key(root: String, path: String) throws -> BlobKey {
        let parts = path.split(separator: "/").map(String.init)
        guard !parts.contains(".."), !parts.contains(".") else { throw KilnError.invalid("Artifact paths cannot contain '.' or '..'") }
        return try BlobKey(([root] + parts).joined(separator: "/"))
    }

    /// `/ui/experiments/ID/runs/RUN/artifacts?path=P`: a folder's entries, or a file's preview.
    func page(_ request: Request, runID: String, session: WebSession) async throws -> Response {
        let run = try await tracking.getRun(id: runID)
        let path = formFields(Substring(request.uri.query ?? ""))["path"]?.trimmingCharacters(in: CharacterSet(charactersIn: "/")) ?? ""
        let base = "/ui/experiments/\(HTML.segment(run.info.experimentID))/runs/\(HTML.segment(runID))"
        let title = path.isEmpty ? "Artifacts" : path
        guard let root = Self.root(run.info) else {
            let body = "<p>This run's artifacts are stored at <code>\(HTML.escape(run.info.artifactURI))</code>, outside Kiln's store.</p>"
            return WebUI.html(HTML.page(title: title, session: session, body: body))
        }
        let key = try Self.key(root: root, path: path)
        var crumbs = "<a href=\"\(base)\">\(HTML.escape(run.info.runName.isEmpty ? runID : run.info.runName))</a> / <a href=\"\(base)/artifacts\">artifacts</a>"
        var walked: [String] = []
        for part in path.split(separator: "/") {
            walked.append(String(part))
            crumbs += " / <a href=\"\(base)/artifacts?path=\(HTML.query(walked.joined(separator: "/")))\">\(HTML.escape(String(part)))</a>"
        }
        let nav = "<p class=\"meta\" data-testid=\"breadcrumbs\">\(crumbs)</p>"
        switch try artifacts.kind(of: key) {
        case nil:
            if path.isEmpty { return WebUI.html(HTML.page(title: title, session: session, body: nav + "<p>No artifacts logged.</p>")) }
            throw KilnError.notFound("No artifact at '\(path)'")
        case true?:
            let entries = try artifacts.list(key).sorted { ($0.isDirectory ? 0 : 1, $0.name) < ($1.isDirectory ? 0 : 1, $1.name) }
            var table = ""
            if entries.contains(where: { $0.isDirectory && $0.name == "_delta_log" }) {
                let page = Self.pageNumber(request)
                table = (try? Self.deltaGrid(store: artifacts, key: key, page: page, link: "\(base)/artifacts?path=\(HTML.query(path))&amp;page="))
                    ?? "<p class=\"hint\" data-testid=\"no-preview\">A Delta log is here, but the table could not be read.</p>"
                table = "<section><h2>Delta table</h2>\(table)</section><h2>Files</h2>"
            }
            let rows = entries.map { entry -> String in
                let child = path.isEmpty ? entry.name : path + "/" + entry.name
                return "<tr data-testid=\"artifact-row\" data-path=\"\(HTML.escape(child))\"><td><a href=\"\(base)/artifacts?path=\(HTML.query(child))\">\(HTML.escape(entry.name))\(entry.isDirectory ? "/" : "")</a></td><td class=\"num\">\(entry.size.map(HTML.size) ?? "")</td></tr>"
            }.joined()
            let body = nav + table + "<table data-testid=\"artifacts\"><thead><tr><th>Name</th><th>Size</th></tr></thead><tbody>\(rows.isEmpty ? "<tr><td colspan=\"2\">Empty folder.</td></tr>" : rows)</tbody></table>"
            return WebUI.html(HTML.page(title: title, session: session, body: body))
        case false?:
            let size = try artifacts.head(key)?.size ?? 0
            let raw = "\(base)/artifacts/raw?path=\(HTML.query(path))"
            let download = "<p><a href=\"\(raw)&amp;download=1\" data-testid=\"download\" download>Download</a> (\(HTML.size(size)))</p>"
            let link = "\(base)/artifacts?path=\(HTML.query(path))&amp;page="
            return WebUI.html(HTML.page(title: title, session: session,
                                        body: nav + download + (try preview(key: key, path: path, size: size, raw: raw, page: Self.pageNumber(request), link: link))))
        }
    }

    func preview(key: BlobKey, path: String, size: Int64, raw: String, page: Int = 0, link: String = "") throws -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let ext = name.split(separator: ".").count > 1 ? String(name.split(separator: ".").last!).lowercased() : ""
        if ext == "parquet" {
            let rows = page * Self.gridPage..<(page + 1) * Self.gridPage
            guard let (frame, total) = try? Frame.read(parquet: BlobParquetSource(store: artifacts, key: key, size: Int(size)), rows: rows) else {
                return "<p class=\"hint\" data-testid=\"no-preview\">Not a Parquet file Kiln can read: no preview.</p>"
            }
            return Self.grid(frame, total: total, page: page, link: link)
        }
        if Self.imageTypes[ext] != nil {
            guard size <= 20 * Self.previewLimit else { return Self.tooLarge }
            return "<img class=\"preview\" data-testid=\"image-preview\" alt=\"\(HTML.escape(name))\" src=\"\(raw)\">"
        }
        if ext == "html" || ext == "htm" {
            guard size <= 5 * Self.previewLimit else { return Self.tooLarge }
            return "<iframe class=\"preview\" data-testid=\"html-preview\" sandbox src=\"\(raw)\" title=\"\(HTML.escape(name))\"></iframe>"
        }
        guard size <= Self.previewLimit else { return Self.tooLarge }
        if ext == "csv" || ext == "tsv" {
            let text = String(decoding: try artifacts.read(key, range: nil), as: UTF8.self)
            return Self.table(text, separator: ext == "csv" ? "," : "\t")
        }
        guard Self.textTypes.contains(ext) || name == "MLmodel" || ext.isEmpty else {
            return "<p class=\"hint\" data-testid=\"no-preview\">No preview for this kind of file.</p>"
        }
        let bytes = try artifacts.read(key, range: nil)
        guard !bytes.contains(0) else { return "<p class=\"hint\" data-testid=\"no-preview\">A binary file: no preview.</p>" }
        var text = String(decoding: bytes, as: UTF8.self)
        if ext == "json", let object = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]),
           let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed]) {
            text = String(decoding: pretty, as: UTF8.self)
        }
        return "<pre class=\"preview\" data-testid=\"text-preview\">\(HTML.escape(text))</pre>"
    }

    static let gridPage = 100

    /// `?page=N` of a paged grid (0 when absent or not a number).
    static func pageNumber(_ request: Request) -> Int {
        max(0, formFields(Substring(request.uri.query ?? ""))["page"].flatMap { Int($0) } ?? 0)
    }

    /// A page of the Delta table whose root is `key` (its latest version).
    static func deltaGrid(store: any BlobStore, key: BlobKey, page: Int, link: String) throws -> String {
        let table = try DeltaTable.open(storage: TableStorage(store: store, root: key.path, displayPath: key.path))
        let (frame, total) = try Frame.read(table, rows: page * gridPage..<(page + 1) * gridPage)
        return grid(frame, total: total, page: page, link: link)
    }

    /// Rows of a file or table as a grid with where they sit in the whole and links to the pages around them.
    static func grid(_ frame: Frame, total: Int, page: Int, link: String) -> String {
        let from = page * gridPage
        var nav = "<span data-testid=\"grid-summary\">\(total) \(total == 1 ? "row" : "rows")\(frame.rowCount > 0 ? " · rows \(from + 1)–\(from + frame.rowCount)" : "")</span>"
        if page > 0 { nav += " <a data-testid=\"grid-prev\" href=\"\(link)\(page - 1)\">Previous \(gridPage)</a>" }
        if from + frame.rowCount < total { nav += " <a data-testid=\"grid-next\" href=\"\(link)\(page + 1)\">Next \(gridPage)</a>" }
        return "<p class=\"meta\">\(nav)</p>" + DataPages.grid(frame, testID: "grid-preview", limit: gridPage)
    }

    static let tooLarge = "<p class=\"notice\" data-testid=\"too-large\">Too large to preview — download it instead.</p>"

    /// The first 200 rows of delimited text as a table (quoted fields with separators and doubled quotes handled).
    static func table(_ text: String, separator: Character) -> String {
        var rows: [[String]] = [], field = "", row: [String] = [], quoted = false
        var chars = text.makeIterator()
        var pending: Character? = nil
        while rows.count <= 200, let c = pending ?? chars.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    if let n = chars.next() {
                        if n == "\"" { field.append("\"") } else { quoted = false; pending = n }
                    } else { quoted = false }
                } else { field.append(c) }
            } else if c == "\"" && field.isEmpty {
                quoted = true
            } else if c == separator {
                row.append(field); field = ""
            } else if c == "\n" || c == "\r\n" {
                row.append(field); field = ""; rows.append(row); row = []
            } else if c != "\r" {
                field.append(c)
            }
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        guard let header = rows.first else { return "<p>Empty file.</p>" }
        let head = header.map { "<th>\(HTML.escape($0))</th>" }.joined()
        let body = rows.dropFirst().prefix(200).map { "<tr>" + $0.map { "<td>\(HTML.escape($0))</td>" }.joined() + "</tr>" }.joined()
        return "<div class=\"scroll\"><table data-testid=\"csv-preview\"><thead><tr>\(head)</tr></thead><tbody>\(body)</tbody></table></div>"
    }

    /// `/ui/experiments/ID/runs/RUN/artifacts/raw?path=P[&download=1]`: the file itself, streamed. Served so it can
    /// never run as this site's page: `nosniff`, a sandboxing CSP, and anything but images as a download or text.
    func raw(_ request: Request, runID: String) async throws -> Response {
        let run = try await tracking.getRun(id: runID)
        let query = formFields(Substring(request.uri.query ?? ""))
        guard let root = Self.root(run.info), let path = query["path"], !path.isEmpty else { throw KilnError.notFound("No such artifact") }
        let key = try Self.key(root: root, path: path)
        guard try artifacts.kind(of: key) == false else { throw KilnError.notFound("No artifact file at '\(path)'") }
        let reader = try artifacts.openReader(for: key)
        let name = path.split(separator: "/").last.map(String.init) ?? "artifact"
        let ext = name.split(separator: ".").count > 1 ? String(name.split(separator: ".").last!).lowercased() : ""
        var headers: HTTPFields = [.xContentTypeOptions: "nosniff", .contentSecurityPolicy: "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'",
                                   .cacheControl: "private, no-store"]
        if query["download"] != nil {
            headers[.contentType] = "application/octet-stream"
            headers[HTTPField.Name("Content-Disposition")!] = "attachment; filename=\"\(name.replacingOccurrences(of: "\"", with: ""))\""
        } else if let image = Self.imageTypes[ext] {
            headers[.contentType] = image
        } else if ext == "html" || ext == "htm" {
            headers[.contentType] = "text/html; charset=utf-8"
        } else {
            headers[.contentType] = "text/plain; charset=utf-8"
        }
        let body = ResponseBody(contentLength: Int(reader.size)) { writer in
            defer { reader.close() }
            while true {
                let chunk = try reader.read(maxLength: 256 * 1024)
                if chunk.isEmpty { break }
                try await writer.write(ByteBuffer(bytes: chunk))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }
}

/// A Parquet file in the artifact store, read by ranges (the reader asks for the footer, then column chunks).
struct BlobParquetSource: ParquetSource {
    let store: any BlobStore
    let key: BlobKey
    let size: Int
    var name: String { key.path }

    func read(offset: Int, count: Int) throws -> [UInt8] {
        let bytes = try store.read(key, range: Int64(offset)..<Int64(offset + count))
        guard bytes.count == count else { throw KilnError.invalid("\(key.path) is shorter than its footer says") }
        return bytes
    }
}
