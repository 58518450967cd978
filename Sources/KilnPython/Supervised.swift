import Foundation
#if canImport(Glibc)
import Glibc
#endif
import KilnCore

/// A child process that never outlives the server: scorers and pip installs (job tasks that a restarted server adopts
/// use `ChildProcess` instead). It starts with no blocked signals and default dispositions (a spawning thread's mask
/// would otherwise be inherited, and a plain `kill` would not stop it), in its own process group, under a small
/// supervisor — `kiln supervise` — that holds the read end of a pipe whose write end only the server holds. When the
/// server dies, even by SIGKILL, the pipe reads end-of-file and the supervisor stops the whole group (SIGTERM, then
/// SIGKILL); when the server is alive it stops the group itself. Without a supervisor executable (library tests) the
/// command runs directly in its own group.
public final class Supervised: @unchecked Sendable {
    /// The supervisor's pid, which is also the process group id of everything it runs.
    public let pid: Int32
    private let lock = NSLock()
    private var status: Int32?
    private var waiters: [CheckedContinuation<Int32, Never>] = []
    private var onExit: (@Sendable (Int32) -> Void)?
    private let exited = NSCondition()

    /// The executable that implements `kiln supervise`; set by `configure` (the `kiln` binary, at start).
    nonisolated(unsafe) public private(set) static var supervisor: String?

    /// Names the supervisor executable and opens the lifeline; call once at start, before anything is spawned.
    public static func configure(supervisor path: String) {
        _ = lifeline
        supervisor = path
    }

    /// Starts `arguments` (argv; `arguments[0]` is found on PATH) with stdout and stderr appended to `output`, or,
    /// given `stdio` (a socket or pipe), with stdin and stdout on it and only stderr in `output`.
    /// `onExit` runs once with the exit status (128 + signal when killed), after the group is gone.
    /// - Throws: `INVALID_PARAMETER_VALUE` when it cannot be started.
    public init(_ arguments: [String], environment: [String: String]? = nil, output: String, stdio: Int32? = nil,
                onExit: (@Sendable (Int32) -> Void)? = nil) throws {
        let argv = Self.supervisor.map { [$0, "supervise", "--"] + arguments } ?? arguments
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdio {
            posix_spawn_file_actions_adddup2(&actions, stdio, 0)
            posix_spawn_file_actions_adddup2(&actions, stdio, 1)
            posix_spawn_file_actions_addopen(&actions, 2, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        if Self.supervisor != nil { posix_spawn_file_actions_adddup2(&actions, Self.lifeline, 3) }
        var attributes = Self.cleanAttributes(newGroup: true)
        defer { posix_spawnattr_destroy(&attributes) }
        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let rc = Self.withCStrings(argv) { cArgs in
            Self.withCStrings(env) { cEnv in posix_spawnp(&pid, argv[0], &actions, &attributes, cArgs, cEnv) }
        }
        guard rc == 0 else { throw KilnError.invalid("Cannot start \(arguments.first ?? "the process"): \(String(cString: strerror(rc)))") }
        self.pid = pid
        self.onExit = onExit
        let this = self
        Thread.detachNewThread { this.reap() }
    }

    /// Whether it has not exited yet.
    public var isRunning: Bool { lock.withLock { status == nil } }

    /// The exit status, waiting for it.
    public func wait() async -> Int32 {
        await withCheckedContinuation { continuation in
            let done: Int32? = lock.withLock {
                if let status { return status }
                waiters.append(continuation)
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    /// The exit status, blocking the calling thread (for synchronous callers such as pip installs).
    public func waitBlocking() -> Int32 {
        exited.lock()
        defer { exited.unlock() }
        while true {
            if let status = lock.withLock({ status }) { return status }
            exited.wait()
        }
    }

    /// Stops the group: SIGTERM, then SIGKILL after `grace` seconds if anything in it is still alive.
    public func stop(grace: Double = 3) {
        let group = pid
        kill(-group, SIGTERM)
        DispatchQueue.global().asyncAfter(deadline: .now() + grace) { kill(-group, SIGKILL) }
    }

    private func reap() {
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        let code = raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        // Whatever the supervisor left (it was killed itself) goes with it.
        kill(-pid, SIGKILL)
        let (waiting, handler): ([CheckedContinuation<Int32, Never>], (@Sendable (Int32) -> Void)?) = lock.withLock {
            status = code
            defer { waiters = []; onExit = nil }
            return (waiters, onExit)
        }
        exited.lock()
        exited.broadcast()
        exited.unlock()
        waiting.forEach { $0.resume(returning: code) }
        handler?(code)
    }


    /// The read end of the server's lifeline: the write end stays open (close-on-exec, so no child holds it) until
    /// the server process ends.
    private static let lifeline: Int32 = {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return -1 }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        return fds[0]
    }()

    /// Spawn attributes that reset the signal mask and every catchable signal's disposition; optionally a new group.
    static func cleanAttributes(newGroup: Bool) -> posix_spawnattr_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        var flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
        if newGroup {
            flags |= POSIX_SPAWN_SETPGROUP
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        return attributes
    }

    static func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
        let pointers = strings.map { strdup($0) } + [nil]
        defer { pointers.forEach { free($0) } }
        return body(pointers)
    }

    // MARK: - The supervisor process (`kiln supervise -- COMMAND...`)

    /// Runs `arguments` in this process group and exits with its status; fd 3 is the server's lifeline. SIGTERM,
    /// SIGINT and SIGHUP are passed on to the group; when the lifeline ends (the server died) the group gets SIGTERM
    /// and, after 3 s, SIGKILL; when the command exits, whatever it left in the group is killed too.
    public static func superviseMain(_ arguments: [String]) -> Never {
        guard !arguments.isEmpty else {
            FileHandle.standardError.write(Data("usage: kiln supervise -- COMMAND [ARG...]\n".utf8))
            exit(2)
        }
        var forwarded = sigset_t()
        sigemptyset(&forwarded)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&forwarded, signal) }
        sigprocmask(SIG_BLOCK, &forwarded, nil)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_addclose(&actions, 3)
        var attributes = cleanAttributes(newGroup: false)
        var child: pid_t = 0
        let rc = withCStrings(arguments) { cArgs in posix_spawnp(&child, arguments[0], &actions, &attributes, cArgs, environ) }
        guard rc == 0 else {
            FileHandle.standardError.write(Data("kiln supervise: cannot start \(arguments[0]): \(String(cString: strerror(rc)))\n".utf8))
            exit(127)
        }
        let group = getpgrp()
        var lifelineOpen = fcntl(3, F_GETFD) >= 0
        var killAt: Date?
        var timeout = timespec(tv_sec: 0, tv_nsec: 100_000_000)
        while true {
            var raw: Int32 = 0
            if waitpid(child, &raw, WNOHANG) == child {
                killOthers(in: group)
                exit(raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f))
            }
            let signal = sigtimedwait(&forwarded, nil, &timeout)
            // A signal sent to the whole group reaches the command twice (harmless); one sent to us reaches it once.
            if signal > 0, killAt == nil { kill(child, signal) }
            if lifelineOpen {
                var fd = pollfd(fd: 3, events: Int16(POLLIN), revents: 0)
                if poll(&fd, 1, 0) > 0 {
                    var byte: UInt8 = 0
                    if read(3, &byte, 1) <= 0 {
                        lifelineOpen = false
                        killAt = Date().addingTimeInterval(3)
                        kill(-group, SIGTERM)
                    }
                }
            }
            if let deadline = killAt, Date() > deadline {
                killOthers(in: group)
                exit(137)
            }
        }
    }

    /// SIGKILL to every process in `group` but this one (found through /proc).
    static func killOthers(in group: pid_t) {
        let me = getpid()
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return }
        for entry in entries {
            guard let pid = Int32(entry), pid != me,
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // Fields after "(comm)": state ppid pgrp ...
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 2, Int32(fields[2]) == group { kill(pid, SIGKILL) }
        }
    }
}
