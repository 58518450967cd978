import Hummingbird
import KilnCore
import Logging

/// Renders every error as `{"error_code", "message"}` with the status MLflow clients expect.
///
/// `KilnError`s keep their code; a route that does not exist is 404 `ENDPOINT_NOT_FOUND` (the mlflow client
/// falls back from v3 to v2 paths on it); anything else is logged with its cause and sent as a generic 500.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = KilnRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await respond(request, context: context, next: next)
        response.headers[Auditor.requestIDHeader] = context.requestID
        return response
    }

    func respond(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as KilnError {
            if error.code == .internalError {
                context.logger.error("Request failed", metadata: ["kiln.error": "\(String(describing: error.cause ?? error))"])
            }
            let conflict409 = !request.uri.path.contains("/mlflow")
            return Self.render(error, status: error.httpStatus(alreadyExistsAs409: conflict409))
        } catch let error as HTTPError {
            switch error.status {
            case .notFound:
                return Self.render(KilnError(.endpointNotFound, "No API endpoint \(request.method) \(request.uri.path)"), status: 404)
            case .methodNotAllowed:
                return Self.render(KilnError(.endpointNotFound, "Method \(request.method) is not allowed on \(request.uri.path)"), status: 405)
            case .contentTooLarge:
                return Self.render(KilnError(.invalidParameterValue, "Request body too large"), status: 413)
            default:
                let code: KilnError.Code = error.status.code < 500 ? .badRequest : .internalError
                return Self.render(KilnError(code, error.body ?? error.status.reasonPhrase), status: Int(error.status.code))
            }
        } catch {
            context.logger.error("Request failed", metadata: ["kiln.error": "\(String(describing: error))"])
            return Self.render(KilnError.internalError(error), status: 500)
        }
    }

    static func render(_ error: KilnError, status: Int) -> Response {
        var w = JSONWriter()
        w.object { w in
            w.field("error_code", error.code.rawValue)
            w.field("message", error.message)
        }
        return .json(w, status: HTTPResponse.Status(code: status))
    }
}

extension Response {
    /// A JSON response from a writer's bytes.
    static func json(_ writer: JSONWriter, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: writer.bytes))
        )
    }

    /// A JSON response of a whole value.
    static func json(value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: value.json)))
    }

    /// A JSON response written by `body`.
    static func json(status: HTTPResponse.Status = .ok, _ body: (inout JSONWriter) throws -> Void) rethrows -> Response {
        var w = JSONWriter()
        try w.object(body)
        return .json(w, status: status)
    }
}
