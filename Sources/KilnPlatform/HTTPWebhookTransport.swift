import AsyncHTTPClient
import KilnCore
import NIOCore
import NIOHTTP1

/// Delivers registry and job webhooks with AsyncHTTPClient's shared client, 10 s per attempt. (Not URLSession:
/// FoundationNetworking links libcurl and its two dozen libraries into every `kiln` process, a few milliseconds of
/// start-up each time.)
struct HTTPWebhookTransport: WebhookTransport {
    func post(url: String, headers: [(String, String)], body: [UInt8]) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        // Only a prefix of the answer is kept; the rest is read and dropped.
        var kept = ByteBuffer()
        for try await part in response.body where kept.readableBytes < 4096 {
            var part = part
            kept.writeBuffer(&part)
        }
        return (Int(response.status.code), String(decoding: kept.readableBytesView.prefix(4096), as: UTF8.self))
    }
}
