import Foundation
import KilnCore

/// Server-rendered HTML: escaping, the page frame every page shares, and the small formatting helpers pages use.
/// Every value that reaches a page goes through `HTML.escape` (or `attr`); nothing user-provided is written raw.
enum HTML {
    /// `text` safe inside an element or a double-quoted attribute.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// A URL query component (`?filter=...`): everything but unreserved characters percent-encoded.
    static func query(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// A path segment (a run id, an experiment id): percent-encoded, then HTML-escaped for an attribute.
    static func segment(_ text: String) -> String { query(text) }

    /// The frame of every signed-in page: header with navigation and sign-out, then `body` under one `<h1>`.
    static func page(title: String, session: WebSession?, body: String) -> String {
        var signOut = ""
        if let session, !session.csrf.isEmpty {
            signOut = """
                <form method="post" action="/ui/logout" class="signout">
                <input type="hidden" name="csrf" value="\(escape(session.csrf))">
                <span class="who" data-testid="principal">\(escape(session.principal))</span>
                <button type="submit" data-testid="sign-out">Sign out</button></form>
                """
        }
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title)) · Kiln</title>
            <link rel="icon" href="/favicon.ico" type="image/svg+xml">
            <link rel="stylesheet" href="/ui/static/kiln.css">
            </head><body>
            <header><a class="brand" href="/ui/experiments">Kiln</a>\(session == nil ? "" : navigation)\(signOut)</header>
            <main>
            <h1>\(escape(title))</h1>
            \(body)
            </main></body></html>
            """
    }

    /// The header's links and search box (signed-in pages only).
    static let navigation = """
        <nav><a href="/ui/experiments" data-testid="nav-experiments">Experiments</a>
        <a href="/ui/models" data-testid="nav-models">Models</a>
        <a href="/ui/jobs" data-testid="nav-jobs">Jobs</a>
        <a href="/ui/endpoints" data-testid="nav-endpoints">Serving</a>
        <a href="/ui/data" data-testid="nav-data">Data</a>
        <a href="/ui/sql" data-testid="nav-sql">SQL</a></nav>
        <form method="get" action="/ui/search" class="find" role="search"><input name="q" type="search" placeholder="Search names" \
        aria-label="Search experiments, models, tables, jobs and endpoints" data-testid="global-search"></form>
        """

    /// Milliseconds since the epoch as `2026-12-06 05:27:33` (UTC), or empty.
    static func time(_ milliseconds: Int64?) -> String {
        guard let milliseconds, milliseconds > 0 else { return "" }
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec)
    }

    /// A duration in milliseconds as `1.2s`, `3m 4s`, `2h 5m`.
    static func duration(_ milliseconds: Int64) -> String {
        if milliseconds < 60_000 { return String(format: "%.1fs", Double(milliseconds) / 1000) }
        let seconds = milliseconds / 1000
        if seconds < 3600 { return "\(seconds / 60)m \(seconds % 60)s" }
        return "\(seconds / 3600)h \((seconds % 3600) / 60)m"
    }

    /// A metric value as people read it: up to 6 significant digits, `NaN`, `Infinity`.
    /// A byte count in B, KiB, MiB or GiB.
    static func size(_ bytes: Int64) -> String {
        if bytes < 1024 { return "\(bytes) B" }
        if bytes < 1 << 20 { return String(format: "%.1f KiB", Double(bytes) / 1024) }
        if bytes < 1 << 30 { return String(format: "%.1f MiB", Double(bytes) / Double(1 << 20)) }
        return String(format: "%.1f GiB", Double(bytes) / Double(1 << 30))
    }

    static func number(_ value: Double?) -> String {
        guard let value else { return "" }
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "Infinity" : "-Infinity" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(format: "%.6g", value)
    }

    /// A message box (errors in a filter, a failed sign-in).
    static func notice(_ text: String, testID: String = "error") -> String {
        "<p class=\"notice\" role=\"alert\" data-testid=\"\(testID)\">\(escape(text))</p>"
    }
}

/// `application/x-www-form-urlencoded` text (a form body or a query string) as a map; `+` is a space.
func formFields(_ text: Substring) -> [String: String] {
    var out: [String: String] = [:]
    for pair in text.split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        func decode(_ s: Substring) -> String {
            let spaced = s.replacingOccurrences(of: "+", with: " ")
            return spaced.removingPercentEncoding ?? spaced
        }
        let key = decode(parts[0])
        if out[key] == nil { out[key] = parts.count > 1 ? decode(parts[1]) : "" }
    }
    return out
}

/// Every value of `key` in form text, in order (`runs=a&runs=b`).
func formValues(_ text: Substring, _ key: String) -> [String] {
    text.split(separator: "&").compactMap { pair -> String? in
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        let name = parts[0].replacingOccurrences(of: "+", with: " ").removingPercentEncoding
        guard name == key, parts.count > 1 else { return nil }
        let value = parts[1].replacingOccurrences(of: "+", with: " ")
        return value.removingPercentEncoding ?? value
    }
}
