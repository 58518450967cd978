import Foundation
#if canImport(Glibc)
import Glibc
#endif
import KilnCore

/// A long-lived Python process that answers one line of text for each line it is sent (a small line protocol over
/// its stdin and stdout, a socket pair, so a worker that died raises an error here instead of SIGPIPE). It is
/// ``Supervised``: it never outlives the server. Started on the first request, restarted on the next request after it
/// died or stopped answering; requests are served one at a time.
public final class PythonWorker: @unchecked Sendable {
    private let arguments: [String]
    private let what: String
    private let log: String
    private let lock = NSLock()
    private var process: Supervised?
    private var socket: Int32 = -1
    private var buffer: [UInt8] = []

    /// A worker running `python -c script` (`python` found on PATH); its stderr goes to `log`.
    public init(python: String = "python3", script: String, what: String, log: String) {
        arguments = [python, "-u", "-c", script]
        self.what = what
        self.log = log
    }

    deinit { stop() }

    /// Sends `line` (no newline in it) and returns the worker's one-line answer.
    /// - Throws: `INTERNAL_ERROR` when the worker cannot start, dies, or does not answer within `timeout` seconds
    ///   (it is then stopped; the next request starts a fresh one).
    public func request(_ line: String, timeout: Double) throws -> String {
        try lock.withLock {
            if process?.isRunning != true { try start() }
            do {
                try send(Array((line + "\n").utf8))
                return try receive(deadline: Date().addingTimeInterval(timeout))
            } catch {
                stopLocked()
                throw error
            }
        }
    }

    /// Stops the worker (the next request starts another).
    public func stop() { lock.withLock { stopLocked() } }

    private func stopLocked() {
        process?.stop(grace: 1)
        process = nil
        if socket >= 0 { close(socket) }
        socket = -1
        buffer = []
    }

    private func start() throws {
        stopLocked()
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else {
            throw KilnError(.internalError, "Cannot start the \(what): socketpair failed (\(String(cString: strerror(errno))))")
        }
        // Neither end is inherited as such: the child gets its end as stdin and stdout only.
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        do {
            process = try Supervised(arguments, output: log, stdio: fds[1])
        } catch {
            close(fds[0])
            close(fds[1])
            throw KilnError(.internalError, "Cannot start the \(what): \(error)")
        }
        close(fds[1])
        socket = fds[0]
    }

    private func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw KilnError(.internalError, "The \(what) stopped (\(String(cString: strerror(errno)))); see \(log)")
            }
            sent += n
        }
    }

    private func receive(deadline: Date) throws -> String {
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw KilnError(.internalError, "The \(what) did not answer in time; it was stopped") }
            var p = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, Int32(min(left * 1000, 1000).rounded(.up)))
            if ready < 0, errno != EINTR { throw KilnError(.internalError, "The \(what): poll failed") }
            guard ready > 0 else { continue }
            let n = chunk.withUnsafeMutableBytes { read(socket, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                let tail = (try? String(contentsOfFile: log, encoding: .utf8)).map { String($0.suffix(1500)) } ?? ""
                throw KilnError(.internalError, "The \(what) exited\(tail.isEmpty ? "" : ": \(tail)")")
            }
            buffer.append(contentsOf: chunk[..<n])
        }
    }
}
