/// Sends one HTTP POST; `KilnPlatform` implements it with the system HTTP client, tests with a recorder.
public protocol WebhookTransport: Sendable {
    /// Posts `body` and returns the status code and (a prefix of) the response body.
    func post(url: String, headers: [(String, String)], body: [UInt8]) async throws -> (status: Int, body: String)
}
