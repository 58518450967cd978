import Foundation
import KilnSQL

/// Everything a Kiln process is configured with, resolved once at start (flag > `KILN_*` environment > default).
public struct KilnConfiguration: Sendable {
    /// The home folder holding `kiln.db`, `artifacts/` and `admin.token`.
    public var home: URL
    /// Address to bind.
    public var host: String
    /// Port to bind; 0 picks a free one.
    public var port: Int
    /// Serve without authentication; only allowed on a loopback address.
    public var noAuth: Bool
    /// The admin token from `KILN_ADMIN_TOKEN`; when nil one is read from or generated into `home/admin.token`.
    public var adminToken: String?
    /// Seed a demo experiment with runs when the home is new.
    public var demo: Bool
    /// Registry webhook attempts before a delivery is marked failed.
    public var webhookMaxAttempts: Int = 5
    /// Delay before a webhook's second attempt, doubling after (`KILN_WEBHOOK_RETRY_BASE_MS`).
    public var webhookRetryBaseMillis: Int64 = 1000

    public init(home: URL, host: String = "127.0.0.1", port: Int = 5000, noAuth: Bool = false, adminToken: String? = nil, demo: Bool = false) {
        self.home = home
        self.host = host
        self.port = port
        self.noAuth = noAuth
        self.adminToken = adminToken
        self.demo = demo
    }

    /// A table argument's directory: a three-part name where SQL finds it (`Catalog`:
    /// `<home>/warehouse/<catalog>/<schema>/<table>`), else the argument itself (a path).
    public static func tablePath(_ table: String, home: URL) -> String {
        let parts = table.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if !table.contains("/"), parts.count == 3, parts.allSatisfy({ !$0.isEmpty }),
           let path = try? Catalog(warehouse: home.appendingPathComponent("warehouse").path).path(parts) {
            return path
        }
        return table
    }

    /// The default home: `KILN_HOME`, else `~/.kiln`.

    public static func defaultHome(environment: [String: String]) -> URL {
        if let home = environment["KILN_HOME"], !home.isEmpty { return URL(fileURLWithPath: home) }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".kiln")
    }

    /// Whether `host` is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }
}
