import Foundation
#if canImport(Glibc)
import Glibc
#endif
import KilnCore

/// A task's child process that outlives the server if the server dies: it runs in its own process group under a
/// `/bin/sh` wrapper that sends stdout and stderr to a log file (at most `logCap` bytes kept, the rest drained) and
/// writes the exit status to a file when the command ends. So a restarted server can tell a process that is still
/// running (adopt it), one that finished while it was down (read its status) and one that vanished (no status).
public struct ChildProcess: Sendable {
    /// The wrapper's pid, which is also the process group id.
    public let pid: Int32
    /// Where the exit status is written.
    public let statusFile: String

    /// Starts `arguments` (argv; `arguments[0]` found on PATH) in `directory` with `environment`.
    /// - Throws: `INVALID_PARAMETER_VALUE` when the process cannot be started.
    public static func spawn(_ arguments: [String], environment: [String: String], directory: String,
                             log: String, statusFile: String, logCap: Int) throws -> ChildProcess {
        try? FileManager.default.removeItem(atPath: statusFile)
        // The status line is written to a temporary name and renamed: a half-written status is never read.
        let script = "cd '\(directory)' || exit 126; { \"$@\"; echo $? > '\(statusFile).tmp'; mv '\(statusFile).tmp' '\(statusFile)'; } 2>&1 < /dev/null | { head -c \(logCap); cat > /dev/null; } > '\(log)'"
        let argv = ["/bin/sh", "-c", script, "sh"] + arguments
        // No blocked signals and default dispositions (not the spawning thread's), in a group of its own.
        var attributes = Supervised.cleanAttributes(newGroup: true)
        defer { posix_spawnattr_destroy(&attributes) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var pid: pid_t = 0
        let rc = Supervised.withCStrings(argv) { cArgs in
            Supervised.withCStrings(environment.map { "\($0.key)=\($0.value)" }) { cEnv in posix_spawn(&pid, "/bin/sh", &actions, &attributes, cArgs, cEnv) }
        }
        guard rc == 0 else { throw KilnError.invalid("Cannot start \(arguments.first ?? "the task"): \(String(cString: strerror(rc)))") }
        return ChildProcess(pid: pid, statusFile: statusFile)
    }

    /// Waits for a process this server started; returns its exit status (128 + signal when killed).
    public func wait() async -> Int32 {
        let pid = self.pid
        let code: Int32 = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                let exited = status & 0x7f == 0
                continuation.resume(returning: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f))
            }
        }
        return exitStatus() ?? (code == 0 ? 1 : code)
    }

    /// Waits for a process a previous server started (not our child): polls until the group is gone, then reads
    /// the status file. Nil when it vanished without writing one.
    public static func adopt(pid: Int32, statusFile: String) async -> Int32? {
        while kill(-pid, 0) == 0 || kill(pid, 0) == 0 {
            if Task.isCancelled { break }
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
        return ChildProcess(pid: pid, statusFile: statusFile).exitStatus()
    }

    /// The command's exit status from the status file, if it finished.
    public func exitStatus() -> Int32? {
        guard let text = try? String(contentsOfFile: statusFile, encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Stops the whole process group: SIGTERM, then SIGKILL after `grace` seconds.
    public static func stop(group pid: Int32, grace: Double = 2) {
        guard pid > 0 else { return }
        kill(-pid, SIGTERM)
        DispatchQueue.global().asyncAfter(deadline: .now() + grace) { kill(-pid, SIGKILL) }
    }
}
