import Foundation
#if canImport(Glibc)
import Glibc
#endif
import KilnCore

/// Plain SMTP delivery (no TLS, no AUTH: a relay on the local network, as `KILN_SMTP_HOST`/`KILN_SMTP_PORT`
/// configure it) for job email notifications. Blocking; call it off the cooperative pool.
enum SMTPMailer {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static func send(host: String, port: Int, from: String, to: [String], subject: String, body: String) throws {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var info: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &info) == 0, let first = info else { throw Failure(description: "cannot resolve \(host)") }
        defer { freeaddrinfo(info) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { throw Failure(description: "cannot open a socket") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else { throw Failure(description: "cannot connect to \(host):\(port)") }
        var buffer: [UInt8] = []
        func reply() throws -> Int {
            while true {
                if let end = buffer.firstIndex(of: 0x0A) {
                    let line = String(decoding: buffer[..<end], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                    buffer.removeSubrange(...end)
                    let chars = Array(line)
                    if chars.count >= 4, chars[3] == "-" { continue }  // a continued multi-line reply
                    guard let code = Int(String(chars.prefix(3))) else { throw Failure(description: "bad SMTP reply '\(line)'") }
                    return code
                }
                var chunk = [UInt8](repeating: 0, count: 1024)
                let n = recv(fd, &chunk, chunk.count, 0)
                guard n > 0 else { throw Failure(description: "the SMTP server closed the connection") }
                buffer += chunk[..<n]
            }
        }
        func say(_ text: String, expect: Set<Int>) throws {
            let bytes = Array((text + "\r\n").utf8)
            var sent = 0
            while sent < bytes.count {
                let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard n > 0 else { throw Failure(description: "cannot write to the SMTP server") }
                sent += n
            }
            let code = try reply()
            guard expect.contains(code) else { throw Failure(description: "the SMTP server answered \(code) to \(text.prefix(20))") }
        }
        guard try reply() == 220 else { throw Failure(description: "the SMTP server did not greet") }
        try say("EHLO kiln", expect: [250])
        try say("MAIL FROM:<\(from)>", expect: [250])
        for address in to { try say("RCPT TO:<\(address)>", expect: [250, 251]) }
        try say("DATA", expect: [354])
        let date = DateFormatter()
        date.locale = Locale(identifier: "en_US_POSIX")
        date.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        let lines = ["From: \(from)", "To: \(to.joined(separator: ", "))", "Subject: \(subject)", "Date: \(date.string(from: Date()))",
                     "Content-Type: text/plain; charset=utf-8", ""] + body.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasPrefix(".") ? "." + $0 : String($0) }
        try say(lines.joined(separator: "\r\n") + "\r\n.", expect: [250])
        try? say("QUIT", expect: [221])
    }
}
