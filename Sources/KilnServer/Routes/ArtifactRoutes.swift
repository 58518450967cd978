import Foundation
import Hummingbird
import KilnBlob
import KilnCore

/// The mlflow-artifacts proxy: upload, download, list and delete files under `artifacts/` of the home, streaming
/// bodies in chunks so a file of any size passes through without being held in memory.
struct ArtifactRoutes: Sendable {
    let artifacts: any BlobStore
    static let chunkSize = 256 * 1024

    func register(on router: Router<KilnRequestContext>) {
        for prefix in ["/api/2.0/mlflow-artifacts/artifacts", "/ajax-api/2.0/mlflow-artifacts/artifacts"] {
            router.get(RouterPath(prefix)) { request, context in
                try await context.authorizer?.artifact(context.caller, path: try BlobKey(Self.listedPath(request)).path, write: false)
                return try self.list(request)
            }
            router.put(RouterPath(prefix + "/**")) { request, context in
                try await context.authorizer?.artifact(context.caller, path: try Self.key(request, prefix: prefix).path, write: true)
                return try await self.upload(request, prefix: prefix)
            }
            router.get(RouterPath(prefix + "/**")) { request, context in
                try await context.authorizer?.artifact(context.caller, path: try Self.key(request, prefix: prefix).path, write: false)
                return try self.download(request, prefix: prefix)
            }
            router.delete(RouterPath(prefix + "/**")) { request, context in
                try await context.authorizer?.artifact(context.caller, path: try Self.key(request, prefix: prefix).path, write: true)
                return try self.delete(request, prefix: prefix)
            }
        }
    }

    /// The decoded artifact path after the route prefix.
    static func key(_ request: Request, prefix: String) throws -> BlobKey {
        let raw = request.uri.path.dropFirst(prefix.count + 1)
        guard let decoded = String(raw).removingPercentEncoding else {
            throw KilnError.invalid("Invalid artifact path: bad percent-encoding")
        }
        return try BlobKey(decoded)
    }

    func upload(_ request: Request, prefix: String) async throws -> Response {
        let key = try Self.key(request, prefix: prefix)
        let writer = try artifacts.makeWriter(for: key)
        do {
            for try await buffer in request.body {
                try buffer.withUnsafeReadableBytes { try writer.write($0) }
            }
            try writer.commit()
        } catch {
            writer.abort()
            throw error
        }
        return .json { _ in }
    }

    func download(_ request: Request, prefix: String) throws -> Response {
        let key = try Self.key(request, prefix: prefix)
        let reader = try artifacts.openReader(for: key)
        let body = ResponseBody(contentLength: Int(reader.size)) { writer in
            defer { reader.close() }
            while true {
                let chunk = try reader.read(maxLength: Self.chunkSize)
                if chunk.isEmpty { break }
                try await writer.write(ByteBuffer(bytes: chunk))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/octet-stream"], body: body)
    }

    func delete(_ request: Request, prefix: String) throws -> Response {
        try artifacts.delete(try Self.key(request, prefix: prefix))
        return .json { _ in }
    }

    static func listedPath(_ request: Request) -> String {
        if case .string(let p)? = RequestMessage.parseQuery(request.uri.query ?? "")["path"] { return p }
        return ""
    }

    func list(_ request: Request) throws -> Response {
        let key = try BlobKey(Self.listedPath(request))
        if try artifacts.kind(of: key) == false {
            // A file, not a folder: MLflow answers with an empty listing.
            return .json { w in w.key("files"); w.array { _ in } }
        }
        let entries = try artifacts.list(key)
        return .json { w in w.files(entries, under: "") }
    }
}
