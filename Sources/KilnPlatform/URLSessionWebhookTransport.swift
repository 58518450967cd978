import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KilnCore

/// Delivers registry and job webhooks with the system HTTP client, 10 s per attempt.
struct URLSessionWebhookTransport: WebhookTransport {
    func post(url: String, headers: [(String, String)], body: [UInt8]) async throws -> (status: Int, body: String) {
        guard let endpoint = URL(string: url) else { throw URLError(.badURL) }
        var request = URLRequest(url: endpoint, timeoutInterval: 10)
        request.httpMethod = "POST"
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        request.httpBody = Data(body)
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data.prefix(4096), as: UTF8.self))
    }
}
