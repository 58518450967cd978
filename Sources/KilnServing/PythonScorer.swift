import AsyncHTTPClient
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import KilnCore
import KilnPython
import Logging
import NIOCore

/// A model logged with a Python flavor, scored by a managed child process: `mlflow models serve` (local env
/// manager) run from a virtual environment that holds the model's `requirements.txt` on top of the system's Python
/// packages. One environment per distinct requirements file, reused. The child is health-checked (`/ping`) before it
/// takes requests and restarted when it dies; while it is down, requests get a clean 503.
public final class PythonScorer: @unchecked Sendable {
    let modelDirectory: URL
    let environments: URL
    let logger: Logger
    /// For a model logged with its feature lookups: completes each request with the looked-up features before it
    /// is forwarded (the caller sends keys; columns it sends win).
    public let features: (any FeatureServing)?
    private let lock = NSLock()
    private var process: Supervised?
    private var port = 0
    private var stopping = false
    private var restarting = false

    /// The child's process id and port, for operators (and the crash test).
    public var status: (pid: Int32, port: Int)? {
        lock.withLock { process.map { ($0.pid, port) } }
    }

    public init(modelDirectory: URL, environments: URL, logger: Logger, features: (any FeatureServing)? = nil) {
        self.modelDirectory = modelDirectory
        self.environments = environments
        self.logger = logger
        self.features = features
    }

    /// Prepares the environment and starts the child; returns when it answers `/ping`.
    /// - Throws: `INVALID_PARAMETER_VALUE` with pip's or the child's last output when either fails.
    public func start() async throws {
        let python = try await offload { try self.environment() }
        try await spawn(python: python)
    }

    /// The environment's python: one environment per distinct `requirements.txt`, created when missing.
    func environment() throws -> String {
        let requirements = (try? String(contentsOf: modelDirectory.appendingPathComponent("requirements.txt"), encoding: .utf8)) ?? ""
        return try PythonEnvironments.prepare(root: environments, requirements: requirements.split(separator: "\n").map(String.init), what: "model's").python
    }

    func spawn(python: String) async throws {
        let port = try Self.freePort()
        let log = modelDirectory.deletingLastPathComponent().appendingPathComponent(modelDirectory.lastPathComponent + ".log")
        let box = ProcessBox()
        let process = try Supervised([python, "-m", "mlflow", "models", "serve", "-m", modelDirectory.path, "--env-manager", "local",
                                      "--host", "127.0.0.1", "--port", String(port), "--workers", "1"],
                                     output: log.path) { [weak self] _ in if let finished = box.process { self?.exited(finished) } }
        box.process = process
        lock.withLock {
            self.process = process
            self.port = port
        }
        // Ready when /ping answers (model loaded), or failed when the child exits first.
        let deadline = ContinuousClock.now + .seconds(180)
        while ContinuousClock.now < deadline {
            if !process.isRunning {
                let text = (try? String(contentsOf: log, encoding: .utf8)).map { String($0.suffix(3000)) } ?? ""
                throw KilnError.invalid("The Python scoring process exited (\(await process.wait())): \(text)")
            }
            if (try? await get("/ping")) == 200 { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        process.stop()
        throw KilnError.invalid("The Python scoring process did not become healthy within 180 s; see \(log.path)")
    }

    /// Lets the exit handler name the process it belongs to (it is set before the handler can matter).
    private final class ProcessBox: @unchecked Sendable { var process: Supervised? }

    /// Restarts the child when it died on its own (not when stopped).
    private func exited(_ finished: Supervised) {
        let restart: Bool = lock.withLock {
            guard process === finished, !stopping, !restarting else { return false }
            restarting = true
            return true
        }
        guard restart else { return }
        logger.warning("Python scoring process exited; restarting", metadata: ["kiln.model": "\(modelDirectory.lastPathComponent)"])
        Task {
            defer { self.lock.withLock { self.restarting = false } }
            for attempt in 0..<5 {
                do {
                    let python = try await offload { try self.environment() }
                    try await self.spawn(python: python)
                    return
                } catch {
                    self.logger.error("Python scoring process restart failed", metadata: ["kiln.error": "\(error)"])
                    try? await Task.sleep(for: .seconds(1 << attempt))
                }
            }
        }
    }

    /// Forwards a scoring request body; returns the child's status and JSON body.
    /// - Throws: `TEMPORARILY_UNAVAILABLE` (503) while the child is down or restarting.
    func invoke(_ body: String) async throws -> (status: Int, body: String) {
        let (running, port) = lock.withLock { (process?.isRunning == true && !restarting, self.port) }
        guard running else { throw KilnError(.temporarilyUnavailable, "The Python scoring process is restarting; retry shortly") }
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/invocations")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
            let bytes = try await response.body.collect(upTo: 256 * 1024 * 1024)
            return (Int(response.status.code), String(buffer: bytes))
        } catch {
            throw KilnError(.temporarilyUnavailable, "The Python scoring process did not answer (\(error)); retry shortly")
        }
    }

    func get(_ path: String) async throws -> Int {
        let port = lock.withLock { self.port }
        let request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(2))
        _ = try await response.body.collect(upTo: 1 << 20)
        return Int(response.status.code)
    }

    /// Stops the child for good.
    func stop() {
        let running = lock.withLock { () -> Supervised? in
            stopping = true
            return process
        }
        running?.stop()
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw KilnError(.internalError, "No socket for a port") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { throw KilnError(.internalError, "Could not bind a free port") }
        withUnsafeMutablePointer(to: &address) { pointer in
            _ = pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
