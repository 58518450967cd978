import AsyncHTTPClient
import Crypto
import Foundation
import KilnCore
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// Where and how to reach S3 (or an S3-compatible store), configured the way AWS's own tools are.
public struct S3Configuration: Sendable {
    /// Scheme, host and port of the service; nil for AWS itself (`https://s3.<region>.amazonaws.com`).
    public var endpoint: URL?
    public var region: String
    public var accessKey: String
    public var secretKey: String
    public var sessionToken: String?
    /// `https://host/bucket/key` rather than `https://bucket.host/key` (the default with a custom endpoint).
    public var pathStyle: Bool
    /// Objects of more than two parts' size are uploaded in parts of this size (at least S3's minimum of 5 MiB).
    public var partSize = 16 << 20

    public init(endpoint: URL?, region: String, accessKey: String, secretKey: String, sessionToken: String? = nil, pathStyle: Bool? = nil) {
        self.endpoint = endpoint
        self.region = region
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.sessionToken = sessionToken
        self.pathStyle = pathStyle ?? (endpoint != nil)
    }

    /// From `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL`, `AWS_REGION`/`AWS_DEFAULT_REGION` (default us-east-1),
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `KILN_S3_PATH_STYLE` (true/false) and
    /// `KILN_S3_PART_SIZE` (bytes).
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> S3Configuration {
        guard let access = env["AWS_ACCESS_KEY_ID"], let secret = env["AWS_SECRET_ACCESS_KEY"], !access.isEmpty, !secret.isEmpty else {
            throw KilnError.invalid("S3 needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones)")
        }
        var endpoint: URL?
        if let text = env["AWS_ENDPOINT_URL_S3"] ?? env["AWS_ENDPOINT_URL"], !text.isEmpty {
            guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw KilnError.invalid("AWS_ENDPOINT_URL '\(text)' is not an http(s) URL such as http://127.0.0.1:5000")
            }
            endpoint = url
        }
        let region = env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"] ?? "us-east-1"
        var configuration = S3Configuration(endpoint: endpoint, region: region, accessKey: access, secretKey: secret,
                                            sessionToken: env["AWS_SESSION_TOKEN"], pathStyle: env["KILN_S3_PATH_STYLE"].map { $0.lowercased() == "true" })
        if let text = env["KILN_S3_PART_SIZE"] {
            guard let size = Int(text), size >= 5 << 20 else { throw KilnError.invalid("KILN_S3_PART_SIZE must be a number of bytes of at least 5242880 (S3's minimum)") }
            configuration.partSize = size
        }
        return configuration
    }
}

/// A `BlobStore` on an S3 bucket under a key prefix, spoken to with Kiln's own SigV4 client over async-http-client:
/// objects are written whole with one PUT (multipart above 16 MiB), read with ranged GETs, listed with
/// ListObjectsV2, created only-if-absent with `If-None-Match: *` (a 412 means another writer won), deleted in batches
/// with DeleteObjects, copied server-side. Folders are key prefixes, as S3 has no folders.
///
/// Calls block their thread until S3 answers (the `BlobStore` seam is synchronous); never call it on a NIO event loop.
public final class S3BlobStore: BlobStore, @unchecked Sendable {
    public let bucket: String
    /// The key prefix every object lives under (no leading or trailing `/`; empty for the bucket's root).
    public let prefix: String
    let configuration: S3Configuration
    let signer: SigV4
    let client: HTTPClient
    /// Multipart uploads start above this size; each part but the last has this many bytes.
    let partSize: Int

    /// A store at `s3://bucket/prefix`.
    public init(url: String, configuration: S3Configuration, client: HTTPClient = .shared) throws {
        guard url.hasPrefix("s3://") else { throw KilnError.invalid("'\(url)' is not an s3://bucket/prefix URL") }
        let rest = url.dropFirst(5)
        let bucket = String(rest.prefix { $0 != "/" })
        guard !bucket.isEmpty, bucket.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" || $0 == "." }) else {
            throw KilnError.invalid("'\(url)' has no valid bucket name (lower-case letters, digits, '-' and '.')")
        }
        self.bucket = bucket
        self.prefix = rest.dropFirst(bucket.count).split(separator: "/").joined(separator: "/")
        self.configuration = configuration
        self.signer = SigV4(accessKey: configuration.accessKey, secretKey: configuration.secretKey, sessionToken: configuration.sessionToken,
                            region: configuration.region)
        self.client = client
        self.partSize = max(5 << 20, configuration.partSize)
    }

    // MARK: Keys

    /// The object key of a store key.
    func objectKey(_ key: BlobKey) -> String {
        prefix.isEmpty ? key.path : key.path.isEmpty ? prefix : "\(prefix)/\(key.path)"
    }

    /// The object-key prefix of everything under a store key seen as a folder.
    func folderPrefix(_ key: BlobKey) -> String {
        let k = objectKey(key)
        return k.isEmpty ? "" : k + "/"
    }

    /// A store key path from an object key under `prefix`.
    func storePath(_ objectKey: String) -> String {
        prefix.isEmpty ? objectKey : String(objectKey.dropFirst(prefix.count + 1))
    }

    // MARK: HTTP

    struct Answer {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// Sends one signed request for the object `key` (nil: the bucket) and waits for the answer.
    func send(_ method: HTTPMethod, key: String?, query: [(String, String)] = [], headers extra: [(String, String)] = [],
              body: [UInt8] = [], timeout: TimeAmount = .seconds(120)) throws -> Answer {
        let base = configuration.endpoint ?? URL(string: "https://s3.\(configuration.region).amazonaws.com")!
        var host = base.host!
        if let port = base.port { host += ":\(port)" }
        var path = configuration.pathStyle ? "/\(bucket)" : ""
        if configuration.pathStyle == false { host = "\(bucket).\(host)" }
        if let key { path += "/" + SigV4.encode(key, keepSlash: true) }
        if path.isEmpty { path = "/" }
        let queryText = query.map { "\(SigV4.encode($0.0))=\(SigV4.encode($0.1))" }.joined(separator: "&")
        let url = "\(base.scheme!)://\(host)\(path)\(queryText.isEmpty ? "" : "?" + queryText)"
        let hash = SigV4.payloadHash(body)
        var headers = HTTPHeaders()
        let signedInput = [("host", host)] + extra
        for (name, value) in extra { headers.add(name: name, value: value) }
        for (name, value) in signer.sign(method: method.rawValue, path: path, query: query, headers: signedInput, payloadHash: hash) {
            headers.add(name: name, value: value)
        }
        do {
            let request = try HTTPClient.Request(url: url, method: method, headers: headers, body: body.isEmpty ? nil : .bytes(body))
            let response = try client.execute(request: request, deadline: .now() + timeout).wait()
            return Answer(status: Int(response.status.code), headers: response.headers, body: response.body.map { Array($0.readableBytesView) } ?? [])
        } catch let error as KilnError {
            throw error
        } catch {
            throw KilnError(.temporarilyUnavailable, "S3 at \(base.host ?? "?") did not answer \(method.rawValue) \(key ?? bucket): \(error)", cause: error)
        }
    }

    /// The answer, or the error S3 gave as a KilnError (404 → RESOURCE_DOES_NOT_EXIST, 403 names the credentials).
    func checked(_ answer: Answer, _ what: String) throws -> Answer {
        guard !(200..<300).contains(answer.status) else { return answer }
        let code = XMLText.first("Code", in: answer.text) ?? "HTTP \(answer.status)"
        let message = XMLText.first("Message", in: answer.text) ?? ""
        switch answer.status {
        case 404: throw KilnError.notFound("\(what): no such object in s3://\(bucket) (\(code))")
        case 403: throw KilnError(.permissionDenied, "\(what): S3 refused the request (\(code): \(message)); check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket's policy")
        case 500...: throw KilnError(.temporarilyUnavailable, "\(what): S3 failed (\(code): \(message))")
        default: throw KilnError(.badRequest, "\(what): S3 answered \(answer.status) (\(code): \(message))")
        }
    }

    // MARK: BlobStore

    public func makeWriter(for key: BlobKey) throws -> any BlobWriter {
        guard !key.path.isEmpty else { throw KilnError.invalid("Cannot write an object at the store's root") }
        return S3Writer(store: self, key: objectKey(key))
    }

    public func openReader(for key: BlobKey) throws -> any BlobReader {
        guard let info = try head(key) else { throw KilnError.notFound("No object at \(key.path) in s3://\(bucket)/\(prefix)") }
        return S3Reader(store: self, key: objectKey(key), size: info.size)
    }

    public func list(_ key: BlobKey) throws -> [BlobEntry] {
        let folder = folderPrefix(key)
        var entries: [BlobEntry] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", folder), ("delimiter", "/")]
            if let token { query.append(("continuation-token", token)) }
            let page = try checked(try send(.GET, key: nil, query: query), "Listing \(key.path)").text
            for block in XMLText.blocks("CommonPrefixes", in: page) {
                guard let p = XMLText.first("Prefix", in: block) else { continue }
                entries.append(BlobEntry(name: String(p.dropFirst(folder.count).dropLast()), isDirectory: true, size: nil))
            }
            for block in XMLText.blocks("Contents", in: page) {
                guard let k = XMLText.first("Key", in: block), k.count > folder.count else { continue }
                entries.append(BlobEntry(name: String(k.dropFirst(folder.count)), isDirectory: false, size: Int64(XMLText.first("Size", in: block) ?? "")))
            }
            token = XMLText.first("IsTruncated", in: page) == "true" ? XMLText.first("NextContinuationToken", in: page) : nil
        } while token != nil
        return entries.sorted { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
    }

    public func kind(of key: BlobKey) throws -> Bool? {
        if key.path.isEmpty { return true }
        if try head(key) != nil { return false }
        let page = try checked(try send(.GET, key: nil, query: [("list-type", "2"), ("prefix", folderPrefix(key)), ("max-keys", "1")]),
                               "Looking up \(key.path)").text
        return XMLText.blocks("Contents", in: page).isEmpty ? nil : true
    }

    public func delete(_ key: BlobKey) throws {
        if !key.path.isEmpty { _ = try checked(try send(.DELETE, key: objectKey(key)), "Deleting \(key.path)") }
        let under = try allObjectKeys(prefix: folderPrefix(key))
        for start in stride(from: 0, to: under.count, by: 1000) {
            var xml = "<Delete><Quiet>true</Quiet>"
            for k in under[start..<min(under.count, start + 1000)] { xml += "<Object><Key>\(XMLText.escape(k))</Key></Object>" }
            xml += "</Delete>"
            let body = Array(xml.utf8)
            let md5 = Data(Insecure.MD5.hash(data: body)).base64EncodedString()
            let answer = try checked(try send(.POST, key: nil, query: [("delete", "")], headers: [("content-md5", md5), ("content-type", "application/xml")], body: body),
                                     "Deleting under \(key.path)")
            if let failed = XMLText.blocks("Error", in: answer.text).first {
                throw KilnError(.temporarilyUnavailable, "Deleting under \(key.path): S3 kept \(XMLText.first("Key", in: failed) ?? "an object") (\(XMLText.first("Code", in: failed) ?? ""))")
            }
        }
    }

    public func read(_ key: BlobKey, range: Range<Int64>?) throws -> [UInt8] {
        guard let range else { return try checked(try send(.GET, key: objectKey(key)), "Reading \(key.path)").body }
        if range.isEmpty {
            guard try head(key) != nil else { throw KilnError.notFound("No object at \(key.path) in s3://\(bucket)/\(prefix)") }
            return []
        }
        let answer = try send(.GET, key: objectKey(key), headers: [("range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)")])
        if answer.status == 416 { return [] }  // the range starts at or after the end
        let body = try checked(answer, "Reading \(key.path)").body
        // A server that ignores Range sends the whole object.
        if answer.status == 200 { return Array(body[min(body.count, Int(range.lowerBound))..<min(body.count, Int(range.upperBound))]) }
        return body
    }

    public func putIfAbsent(_ key: BlobKey, bytes: [UInt8]) throws -> Bool {
        let object = objectKey(key)
        for attempt in 0..<8 {
            let answer: Answer
            do {
                answer = try send(.PUT, key: object, headers: [("if-none-match", "*")], body: bytes)
            } catch let error as KilnError where error.code == .temporarilyUnavailable {
                // The PUT may or may not have landed: read back what is there; our bytes mean it did.
                if let there = try? read(key, range: nil) { return there == bytes }
                if attempt == 7 { throw error }
                continue
            }
            switch answer.status {
            case 200..<300: return true
            case 412: return false
            case 409: Thread.sleep(forTimeInterval: 0.01 * Double(attempt + 1))  // a concurrent conditional write: try again
            default: _ = try checked(answer, "Creating \(key.path)")
            }
        }
        throw KilnError(.resourceConflict, "Creating \(key.path): S3 kept answering 409 to a conditional write; try again")
    }

    public func head(_ key: BlobKey) throws -> BlobObjectInfo? {
        guard !key.path.isEmpty || !prefix.isEmpty else { return nil }
        let answer = try send(.HEAD, key: objectKey(key))
        if answer.status == 404 { return nil }
        _ = try checked(answer, "Looking up \(key.path)")
        let size = Int64(answer.headers.first(name: "content-length") ?? "") ?? 0
        return BlobObjectInfo(size: size, modifiedMillis: XMLText.httpDateMillis(answer.headers.first(name: "last-modified") ?? ""))
    }

    public func listObjects(prefix wanted: String, startAfter: String?, limit: Int) throws -> BlobListing {
        guard limit > 0 else { throw KilnError.invalid("A listing page holds at least one object") }
        _ = try BlobKey.folder(ofPrefix: wanted)
        let full = prefix.isEmpty ? wanted : "\(prefix)/\(wanted)"
        var query = [("list-type", "2"), ("prefix", full), ("max-keys", String(min(limit, 1000)))]
        if let startAfter { query.append(("start-after", prefix.isEmpty ? startAfter : "\(prefix)/\(startAfter)")) }
        let page = try checked(try send(.GET, key: nil, query: query), "Listing \(wanted)").text
        let objects = XMLText.blocks("Contents", in: page).compactMap { block -> BlobObject? in
            guard let k = XMLText.first("Key", in: block) else { return nil }
            return BlobObject(key: storePath(k), size: Int64(XMLText.first("Size", in: block) ?? "") ?? 0,
                              modifiedMillis: XMLText.isoMillis(XMLText.first("LastModified", in: block) ?? ""))
        }
        let truncated = XMLText.first("IsTruncated", in: page) == "true"
        return BlobListing(objects: objects, nextStartAfter: truncated ? objects.last?.key : nil)
    }

    public func copyObject(from source: BlobKey, to destination: BlobKey) throws {
        let copySource = "/\(bucket)/" + SigV4.encode(objectKey(source), keepSlash: true)
        let answer = try checked(try send(.PUT, key: objectKey(destination), headers: [("x-amz-copy-source", copySource)]), "Copying \(source.path)")
        // A copy can fail after its 200 was sent: the error is then in the body.
        if answer.text.contains("<Error>") { _ = try checked(Answer(status: 500, headers: answer.headers, body: answer.body), "Copying \(source.path)") }
    }

    /// Every object key under an object-key prefix.
    func allObjectKeys(prefix folder: String) throws -> [String] {
        var keys: [String] = [], token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", folder)]
            if let token { query.append(("continuation-token", token)) }
            let page = try checked(try send(.GET, key: nil, query: query), "Listing \(folder)").text
            keys += XMLText.blocks("Contents", in: page).compactMap { XMLText.first("Key", in: $0) }
            token = XMLText.first("IsTruncated", in: page) == "true" ? XMLText.first("NextContinuationToken", in: page) : nil
        } while token != nil
        return keys
    }
}

/// Buffers an object and PUTs it at commit; above the part size it streams parts of a multipart upload instead.
final class S3Writer: BlobWriter, @unchecked Sendable {
    let store: S3BlobStore
    let key: String
    let lock = NSLock()
    var buffer: [UInt8] = []
    var uploadID: String?
    var parts: [String] = []  // ETags, in part order
    var done = false

    init(store: S3BlobStore, key: String) {
        self.store = store
        self.key = key
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try lock.withLock {
            guard !done else { throw KilnError.invalid("This object writer is already committed or aborted") }
            buffer.append(contentsOf: bytes)
            while buffer.count >= store.partSize * 2 { try uploadPart(Array(buffer.prefix(store.partSize))); buffer.removeFirst(store.partSize) }
        }
    }

    func uploadPart(_ bytes: [UInt8]) throws {
        if uploadID == nil {
            let answer = try store.checked(try store.send(.POST, key: key, query: [("uploads", "")]), "Starting an upload of \(key)")
            guard let id = XMLText.first("UploadId", in: answer.text) else { throw KilnError(.temporarilyUnavailable, "S3 started an upload of \(key) without an UploadId") }
            uploadID = id
        }
        let answer = try store.checked(try store.send(.PUT, key: key, query: [("partNumber", String(parts.count + 1)), ("uploadId", uploadID!)], body: bytes),
                                       "Uploading part \(parts.count + 1) of \(key)")
        parts.append(answer.headers.first(name: "etag") ?? "")
    }

    func commit() throws {
        try lock.withLock {
            guard !done else { throw KilnError.invalid("This object writer is already committed or aborted") }
            done = true
            guard uploadID != nil else {
                _ = try store.checked(try store.send(.PUT, key: key, body: buffer), "Writing \(key)")
                return
            }
            if !buffer.isEmpty { try uploadPart(buffer) }
            var xml = "<CompleteMultipartUpload>"
            for (i, etag) in parts.enumerated() { xml += "<Part><PartNumber>\(i + 1)</PartNumber><ETag>\(XMLText.escape(etag))</ETag></Part>" }
            xml += "</CompleteMultipartUpload>"
            let answer = try store.checked(try store.send(.POST, key: key, query: [("uploadId", uploadID!)], body: Array(xml.utf8)), "Completing \(key)")
            if answer.text.contains("<Error>") { _ = try store.checked(S3BlobStore.Answer(status: 500, headers: answer.headers, body: answer.body), "Completing \(key)") }
        }
    }

    func abort() {
        lock.withLock {
            guard !done else { return }
            done = true
            buffer = []
            if let uploadID { _ = try? store.send(.DELETE, key: key, query: [("uploadId", uploadID)]) }
        }
    }
}

/// Reads an object with ranged GETs.
final class S3Reader: BlobReader, @unchecked Sendable {
    let store: S3BlobStore
    let key: String
    let size: Int64
    let lock = NSLock()
    var position: Int64 = 0

    init(store: S3BlobStore, key: String, size: Int64) {
        self.store = store
        self.key = key
        self.size = size
    }

    func read(maxLength: Int) throws -> [UInt8] {
        let start = lock.withLock { position }
        let bytes = try read(at: start, count: maxLength)
        lock.withLock { position = start + Int64(bytes.count) }
        return bytes
    }

    func read(at offset: Int64, count: Int) throws -> [UInt8] {
        let end = min(size, offset + Int64(max(0, count)))
        guard offset < end else { return [] }
        let answer = try store.checked(try store.send(.GET, key: key, headers: [("range", "bytes=\(offset)-\(end - 1)")]), "Reading \(key)")
        return answer.status == 200 ? Array(answer.body[Int(offset)..<Int(end)]) : answer.body
    }

    func close() {}
}

/// Just enough XML for S3's answers: the text of elements by tag name, entities decoded.
enum XMLText {
    /// The inner text of every `<tag>...</tag>`, in order (not nested in one another).
    static func blocks(_ tag: String, in xml: String) -> [String] {
        var out: [String] = []
        var rest = xml[...]
        let open = "<\(tag)>", close = "</\(tag)>"
        while let start = rest.range(of: open), let end = rest.range(of: close, range: start.upperBound..<rest.endIndex) {
            out.append(String(rest[start.upperBound..<end.lowerBound]))
            rest = rest[end.upperBound...]
        }
        return out
    }

    /// The decoded text of the first `<tag>`.
    static func first(_ tag: String, in xml: String) -> String? { blocks(tag, in: xml).first.map(unescape) }

    static func unescape(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var out = "", rest = text[...]
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semi = rest[amp...].firstIndex(of: ";") else { break }
            let entity = rest[rest.index(after: amp)..<semi]
            switch entity {
            case "amp": out += "&"
            case "lt": out += "<"
            case "gt": out += ">"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                let number = entity.hasPrefix("#x") ? UInt32(entity.dropFirst(2), radix: 16) : entity.hasPrefix("#") ? UInt32(entity.dropFirst()) : nil
                if let number, let scalar = Unicode.Scalar(number) { out.unicodeScalars.append(scalar) } else { out += "&\(entity);" }
            }
            rest = rest[rest.index(after: semi)...]
        }
        return out + rest
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }

    // Made once, not per listed object (formatters are costly to build; parsing with them is thread-safe).
    nonisolated(unsafe) static let fractional: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
    nonisolated(unsafe) static let whole = ISO8601DateFormatter()
    nonisolated(unsafe) static let http: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter
    }()

    /// `2009-10-12T17:50:30.000Z` → milliseconds since the epoch (0 when unreadable).
    static func isoMillis(_ text: String) -> Int64 {
        let date = fractional.date(from: text) ?? whole.date(from: text)
        return date.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } ?? 0
    }

    /// `Wed, 12 Oct 2009 17:50:00 GMT` → milliseconds since the epoch (0 when unreadable).
    static func httpDateMillis(_ text: String) -> Int64 {
        http.date(from: text).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } ?? 0
    }
}
