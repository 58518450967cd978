import Hummingbird
import KilnCore

/// One table-driven API call: method, path pattern, body limit and a handler that takes the request message
/// (query for GET, JSON body otherwise, path parameters merged in) and returns the response.
struct MessageRoute: Sendable {
    typealias Handler = @Sendable (RequestMessage) async throws -> Response

    let method: HTTPRequest.Method
    let path: String
    let bodyLimit: Int
    let handler: Handler

    init(_ method: HTTPRequest.Method, _ path: String, bodyLimit: Int = 16 * 1024 * 1024, _ handler: @escaping Handler) {
        self.method = method
        self.path = path
        self.bodyLimit = bodyLimit
        self.handler = handler
    }

    /// Registers every route under every prefix.
    static func register(_ routes: [MessageRoute], prefixes: [String], on router: Router<KilnRequestContext>) {
        for prefix in prefixes {
            for route in routes {
                let handler = route.handler
                let limit = route.bodyLimit
                let name = AccessRules.key(route.method, prefix + route.path)
                let rule = AccessRules.rule(route.method, prefix + route.path)
                if rule == nil { AccessRules.unruled.withLock { _ = $0.insert(name) } }
                router.on(RouterPath(prefix + route.path), method: route.method) { request, context in
                    var message = try await RequestMessage.read(request, context: context, limit: limit)
                    message.caller = context.caller
                    message.userAgent = request.headers[.userAgent]
                    for (key, value) in context.parameters {
                        message.fields[String(key)] = .string(String(value).removingPercentEncoding ?? String(value))
                    }
                    context.auditFields.set(message.fields)
                    try await context.authorizer?.authorize(rule, message, route: name)
                    return try await handler(message)
                }
            }
        }
    }
}
