import Dispatch
import Hummingbird
import Metrics

/// Counts requests and times them per route pattern, method and status:
/// `kiln_http_requests_total` and `kiln_http_request_duration_seconds`.
struct KilnMetricsMiddleware: RouterMiddleware {
    typealias Context = KilnRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        let response = try await next(request, context)
        let route = context.endpointPath ?? "unmatched"
        let method = request.method.rawValue
        // Streamed bodies are timed to their first byte: the handler's work, not the client's download speed.
        Counter(label: "kiln_http_requests_total", dimensions: [("route", route), ("method", method), ("status", String(response.status.code))])
            .increment()
        Metrics.Timer(label: "kiln_http_request_duration_seconds", dimensions: [("route", route), ("method", method)],
                      preferredDisplayUnit: .seconds)
            .recordNanoseconds(DispatchTime.now().uptimeNanoseconds - start)
        return response
    }
}
