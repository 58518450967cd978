import ArgumentParser
import Foundation
import AsyncHTTPClient
import KilnCore
import KilnPlatform
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// Where a CLI command finds the server and its token.
struct ClientOptions: ParsableArguments {
    @Option(help: "Server URL (env KILN_URL, default http://127.0.0.1:5000).") var url: String?
    @Option(help: "Access token (env KILN_TOKEN, else the home's admin.token).") var token: String?
    @Option(help: "Home folder whose admin.token to use (env KILN_HOME, default ~/.kiln).") var home: String?
    @Flag(help: "Print JSON instead of a table.") var json = false

    /// The server URL these options name.
    var baseURL: String { url ?? ProcessInfo.processInfo.environment["KILN_URL"] ?? "http://127.0.0.1:5000" }

    func client() throws -> KilnClient { try Self.client(url: baseURL, token: token, home: home) }

    /// A client for `url` with `token`, else KILN_TOKEN, else the admin token in `home` (or KILN_HOME, ~/.kiln).
    static func client(url base: String, token: String?, home: String?) throws -> KilnClient {
        let env = ProcessInfo.processInfo.environment
        var resolved = token ?? env["KILN_TOKEN"]
        if resolved == nil {
            let homeURL = home.map { URL(fileURLWithPath: $0) } ?? KilnConfiguration.defaultHome(environment: env)
            resolved = try? String(contentsOf: homeURL.appendingPathComponent("admin.token"), encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let endpoint = URL(string: base) else { throw ValidationError("--url '\(base)' is not a URL") }
        return KilnClient(base: endpoint, token: resolved)
    }
}

/// A small blocking-free HTTP client for the CLI.
struct KilnClient {
    let base: URL
    let token: String?

    /// The answer, or nil when the server says the thing does not exist (404).
    func find(_ method: String, _ path: String, query: [(String, String)] = []) async throws -> [String: Any]? {
        let (status, object) = try await send(method, path, query: query, body: nil, timeout: 60)
        return status == 404 ? nil : object
    }

    func call(_ method: String, _ path: String, query: [(String, String)] = [], body: [String: Any]? = nil, timeout: TimeInterval = 60) async throws -> [String: Any] {
        let (status, object) = try await send(method, path, query: query, body: body, timeout: timeout)
        if status == 404 { throw ValidationError("\(object["error_code"] as? String ?? "RESOURCE_DOES_NOT_EXIST"): \(object["message"] as? String ?? path)") }
        return object
    }

    /// Sends a request; 2xx and 404 answers come back with their status, other answers throw with the server's words.
    func send(_ method: String, _ path: String, query: [(String, String)], body: [String: Any]?, timeout: TimeInterval) async throws -> (Int, [String: Any]) {
        let payload = try body.map { (bytes: [UInt8](try JSONSerialization.data(withJSONObject: $0)), contentType: "application/json") }
        let (status, data) = try await exchange(method, path, query: query, body: payload, timeout: timeout)
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        guard (200..<300).contains(status) || status == 404 && method == "GET" else { throw Self.failure(status, data) }
        return (status, object)
    }

    /// Sends raw bytes (a Parquet file) and returns the answer's bytes; any answer but 2xx throws with the server's words.
    func bytes(_ method: String, _ path: String, query: [(String, String)] = [], body: [UInt8]?, contentType: String = "application/vnd.apache.parquet",
               timeout: TimeInterval = 600) async throws -> Data {
        let (status, data) = try await exchange(method, path, query: query, body: body.map { ($0, contentType) }, timeout: timeout)
        guard (200..<300).contains(status) else { throw Self.failure(status, data) }
        return data
    }

    static func failure(_ status: Int, _ data: Data) -> ValidationError {
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        let code = object["error_code"] as? String ?? "HTTP \(status)"
        let message = object["message"] as? String ?? String(decoding: data, as: UTF8.self)
        var hint = ""
        if status == 401 { hint = " Pass --token, set KILN_TOKEN, or point --home at the server's home." }
        return ValidationError("\(code): \(message)\(hint)")
    }

    /// One HTTP exchange: the status and the body.
    func exchange(_ method: String, _ path: String, query: [(String, String)], body: (bytes: [UInt8], contentType: String)?,
                  timeout: TimeInterval) async throws -> (Int, Data) {
        var components = URLComponents(url: base.appendingPathComponent(path), resolvingAgainstBaseURL: false)!
        if !query.isEmpty { components.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) } }
        // AsyncHTTPClient, not URLSession: FoundationNetworking's URLSession keeps a core busy while it waits (a long
        // `kiln train --url` took a core from the server it waited on).
        var request = HTTPClientRequest(url: components.url!.absoluteString)
        request.method = HTTPMethod(rawValue: method)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.body = .bytes(ByteBuffer(bytes: body.bytes))
            request.headers.add(name: "Content-Type", value: body.contentType)
        }
        do {
            // The shared client's 60 s read timeout would cut long calls (training on the server): one client per
            // call, bounded by `timeout` alone.
            let client = HTTPClient(eventLoopGroupProvider: .singleton,
                                    configuration: .init(timeout: .init(connect: .seconds(10), read: .seconds(Int64(timeout)))))
            do {
                let response = try await client.execute(request, timeout: .seconds(Int64(timeout)))
                let status = Int(response.status.code)
                let data = Data(buffer: try await response.body.collect(upTo: 4 << 30))
                try await client.shutdown()
                return (status, data)
            } catch {
                try? await client.shutdown()
                throw error
            }
        } catch {
            throw ValidationError("Cannot reach Kiln at \(base.absoluteString): \(error). Start it with `kiln server` or pass --url.")
        }
    }
}

/// Prints rows as an aligned table.
func printTable(_ headers: [String], _ rows: [[String]]) {
    var widths = headers.map(\.count)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, cell in i == cells.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }
    print(line(headers))
    for row in rows { print(line(row)) }
}

func printJSON(_ object: Any) throws {
    print(try prettyJSON(object))
}

func formatTime(_ value: Any?) -> String {
    guard let ms = (value as? NSNumber)?.doubleValue else { return "" }
    let formatter = DateFormatter()
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
    formatter.timeZone = TimeZone(identifier: "UTC")
    return formatter.string(from: Date(timeIntervalSince1970: ms / 1000))
}

/// Numbers with up to 6 significant digits for tables (`0.88`, not `0.8799999999999999`); text as it is.
func formatNumber(_ value: Any) -> String {
    if let text = value as? String { return text }
    if let number = value as? NSNumber {
        let double = number.doubleValue
        if double == double.rounded(), abs(double) < 1e15 { return String(Int64(double)) }
        return String(format: "%.6g", double)
    }
    return "\(value)"
}

/// An error for people: printed as `Error: <message>` without the usage text, exit status 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// `name=value` options (`--param`, `--var`, `--option`) as a map. - Throws: naming the option and the bad item.
func keyValues(_ items: [String], option: String) throws -> [String: String] {
    var out: [String: String] = [:]
    for item in items {
        guard let eq = item.firstIndex(of: "="), eq != item.startIndex else { throw ValidationError("--\(option) takes name=value, got '\(item)'") }
        out[String(item[..<eq])] = String(item[item.index(after: eq)...])
    }
    return out
}
