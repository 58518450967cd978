import Foundation
import Hummingbird
import KilnCatalog
import KilnCore

/// The Files API on volumes (`/api/2.0/fs/files/Volumes/...`, `/api/2.0/fs/directories/Volumes/...`) as
/// databricks-sdk's `w.files` calls it: upload (raw body, `overwrite`), download, metadata (HEAD), delete, make and
/// list directories (paged). Reading takes `READ_VOLUME`, writing `WRITE_VOLUME`. Uploads stream to a temporary
/// file renamed into place, so a reader never sees half a file.
struct FilesRoutes: Sendable {
    let catalog: UnityCatalog
    /// Unity Catalog model versions' folders (`/Models/...`).
    let models: UCModelFiles

    func register(on router: Router<KilnRequestContext>) {
        let files = RouterPath("/api/2.0/fs/files/**"), directories = RouterPath("/api/2.0/fs/directories/**")
        router.put(files) { request, context in try await upload(request, context) }
        router.get(files) { request, context in try await download(request, context, body: true) }
        router.head(files) { request, context in try await download(request, context, body: false) }
        router.delete(files) { request, context in try await deleteFile(request, context) }
        router.put(directories) { request, context in try await makeDirectory(request, context) }
        router.get(directories) { request, context in try await list(request, context) }
        router.head(directories) { request, context in try await directoryExists(request, context) }
        router.delete(directories) { request, context in try await deleteDirectory(request, context) }
    }

    /// The volume path after the route's prefix, percent-decoded.
    static func path(_ request: Request, prefix: String) -> String {
        let raw = String(request.uri.path.dropFirst(prefix.count))
        return "/" + (raw.removingPercentEncoding ?? raw)
    }

    func upload(_ request: Request, _ context: KilnRequestContext) async throws -> Response {
        let (file, _) = try await catalog.volumeFile(Self.path(request, prefix: "/api/2.0/fs/files/"), write: true, caller: context.caller)
        let overwrite = request.uri.queryParameters.get("overwrite").map { $0.lowercased() == "true" } ?? false
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) {
            if isDirectory.boolValue { throw KilnError.invalid("A directory is at that path") }
            if !overwrite { throw KilnError(.resourceAlreadyExists, "The file already exists; upload with overwrite=true to replace it") }
        }
        let folder = (file as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let temporary = folder + "/._upload-" + UUID().uuidString
        guard FileManager.default.createFile(atPath: temporary, contents: nil), let handle = FileHandle(forWritingAtPath: temporary) else {
            throw KilnError.internalError(nil)
        }
        do {
            for try await buffer in request.body { try handle.write(contentsOf: Data(buffer.readableBytesView)) }
            try handle.synchronize()
            try handle.close()
            if FileManager.default.fileExists(atPath: file) { try FileManager.default.removeItem(atPath: file) }
            try FileManager.default.moveItem(atPath: temporary, toPath: file)
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        return Response(status: .noContent)
    }

    func download(_ request: Request, _ context: KilnRequestContext, body: Bool) async throws -> Response {
        let (file, _) = try await catalog.volumeFile(Self.path(request, prefix: "/api/2.0/fs/files/"), write: false, caller: context.caller)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw KilnError.notFound("The file does not exist")
        }
        let attributes = try FileManager.default.attributesOfItem(atPath: file)
        let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
        var headers: HTTPFields = [.contentType: "application/octet-stream", .contentLength: String(size)]
        if let modified = attributes[.modificationDate] as? Date { headers[.lastModified] = Self.httpDate(modified) }
        guard body else { return Response(status: .ok, headers: headers) }
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    func deleteFile(_ request: Request, _ context: KilnRequestContext) async throws -> Response {
        let (file, _) = try await catalog.volumeFile(Self.path(request, prefix: "/api/2.0/fs/files/"), write: true, caller: context.caller)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw KilnError.notFound("The file does not exist")
        }
        try FileManager.default.removeItem(atPath: file)
        return Response(status: .noContent)
    }

    func makeDirectory(_ request: Request, _ context: KilnRequestContext) async throws -> Response {
        let (folder, _) = try await catalog.volumeFile(Self.path(request, prefix: "/api/2.0/fs/directories/"), write: true, caller: context.caller)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return Response(status: .noContent)
    }

    func directoryExists(_ request: Request, _ context: KilnRequestContext) async throws -> Response {
        let (folder, _) = try await catalog.volumeFile(Self.path(request, prefix: "/api/2.0/fs/directories/"), write: false, caller: context.caller)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw KilnError.notFound("The directory does not exist")
        }
        return Response(status: .ok)
    }

    func deleteDirectory(_ request: Request, _ context: KilnRequestContext) async throws -> Response {
        let (folder, root) = try await catalog.volumeFile(Self.path(request, prefix: "/api/2.0/fs/directories/"), write: true, caller: context.caller)
        guard folder != root else { throw KilnError.invalid("A volume's root cannot be deleted through the Files API; delete the volume") }
        let entries = try? FileManager.default.contentsOfDirectory(atPath: folder)
        guard let entries else { throw KilnError.notFound("The directory does not exist") }
        guard entries.isEmpty else { throw KilnError(.badRequest, "The directory is not empty") }
        try FileManager.default.removeItem(atPath: folder)
        return Response(status: .noContent)
    }

    /// `{contents: [{path, name, is_directory, file_size, last_modified}], next_page_token}`, sorted by name.
    func list(_ request: Request, _ context: KilnRequestContext) async throws -> Response {
        let volumePath = Self.path(request, prefix: "/api/2.0/fs/directories/")
        if volumePath.hasPrefix("/Models/") { return try await models.list(volumePath, caller: context.caller) }
        let (folder, _) = try await catalog.volumeFile(volumePath, write: false, caller: context.caller)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
            throw KilnError.notFound("The directory does not exist")
        }
        let pageSize = request.uri.queryParameters.get("page_size").flatMap { Int($0) } ?? 1000
        guard pageSize > 0 else { throw KilnError.invalid("page_size must be positive") }
        let after = request.uri.queryParameters.get("page_token").map { String($0) }
        let sorted = names.filter { !$0.hasPrefix("._upload-") }.sorted().filter { after == nil || $0 > after! }
        let page = Array(sorted.prefix(pageSize))
        let base = volumePath.hasSuffix("/") ? String(volumePath.dropLast()) : volumePath
        return .json { w in
            w.key("contents")
            w.array { w in
                for name in page {
                    let attributes = (try? FileManager.default.attributesOfItem(atPath: folder + "/" + name)) ?? [:]
                    let directory = (attributes[.type] as? FileAttributeType) == .typeDirectory
                    w.object { w in
                        w.field("path", base + "/" + name + (directory ? "/" : ""))
                        w.field("name", name)
                        w.field("is_directory", directory)
                        if !directory { w.field("file_size", (attributes[.size] as? NSNumber)?.int64Value) }
                        if let modified = attributes[.modificationDate] as? Date { w.field("last_modified", Int64(modified.timeIntervalSince1970 * 1000)) }
                    }
                }
            }
            if sorted.count > page.count { w.field("next_page_token", page.last) }
        }
    }

    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }
}
