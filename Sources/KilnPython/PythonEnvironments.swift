import Foundation
import KilnCore

/// Virtual environments over the system's Python packages, one per distinct requirements list (keyed by its
/// hash), built once and reused: what served Python models and job tasks with `libraries` run in. Builds of the same
/// environment wait for each other; a failed build leaves nothing behind and reports pip's message.
public enum PythonEnvironments {
    /// A ready environment: its python and the versions pip installed into it (`name==version`).
    public struct Environment: Sendable {
        public var python: String
        public var bin: String
        public var resolved: [String]
    }

    nonisolated(unsafe) private static var locks: [String: NSLock] = [:]
    private static let guardLock = NSLock()

    /// The environment for `requirements` (requirements-file lines: pins, wheel paths) under `root`, created when
    /// missing. - Throws: `INVALID_PARAMETER_VALUE` with pip's last output when a requirement cannot be installed.
    public static func prepare(root: URL, requirements: [String], what: String) throws -> Environment {
        let text = requirements.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: "\n")
        // FNV-1a of the requirements: the same list reuses the same environment.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let key = String(hash, radix: 16)
        let lock = guardLock.withLock { () -> NSLock in
            if let l = locks[root.path + key] { return l }
            let l = NSLock()
            locks[root.path + key] = l
            return l
        }
        lock.lock()
        defer { lock.unlock() }
        let directory = root.appendingPathComponent(key)
        let python = directory.appendingPathComponent("bin/python").path
        let ready = directory.appendingPathComponent(".ready")
        let environment = { Environment(python: python, bin: directory.appendingPathComponent("bin").path,
                                        resolved: ((try? String(contentsOf: ready, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)) }
        if FileManager.default.fileExists(atPath: ready.path) { return environment() }
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        do {
            _ = try run(["python3", "-m", "venv", "--system-site-packages", directory.path], what: "creating the \(what) virtual environment")
            var resolved = ""
            if !text.isEmpty {
                let file = directory.appendingPathComponent("requirements.txt")
                try Data((text + "\n").utf8).write(to: file)
                _ = try run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", file.path], what: "installing the \(what) requirements")
                resolved = try run([python, "-m", "pip", "list", "--local", "--format=freeze", "--disable-pip-version-check"], what: "listing the installed versions")
            }
            try Data(resolved.utf8).write(to: ready)
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
        return environment()
    }

    /// Runs a command to its end; its output, or an error with the output's tail.
    @discardableResult
    static func run(_ arguments: [String], what: String) throws -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: output) }
        let status = try Supervised(arguments, output: output.path).waitBlocking()
        let data = (try? Data(contentsOf: output)) ?? Data()
        guard status == 0 else {
            let text = String(decoding: data.suffix(3000), as: UTF8.self)
            throw KilnError.invalid("Failed \(what): \(text)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
