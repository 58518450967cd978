import Foundation

/// Wall-clock time in milliseconds since the Unix epoch, injectable so tests need no sleeps.
public protocol KilnClock: Sendable {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    func nowMillis() -> Int64
}

/// The system clock.
public struct SystemClock: KilnClock {
    public init() {}
    public func nowMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
}

/// The system clock shifted by an offset that tests set (`kiln server` with `KILN_TEST_CLOCK=1`): time keeps
/// running, from wherever it was put.
public final class AdjustableClock: KilnClock, @unchecked Sendable {
    private let lock = NSLock()
    private var offset: Int64 = 0

    public init() {}

    public func nowMillis() -> Int64 {
        lock.lock()
        defer { lock.unlock() }
        return SystemClock().nowMillis() + offset
    }

    /// Makes now be `millis`.
    public func set(_ millis: Int64) {
        lock.lock()
        defer { lock.unlock() }
        offset = millis - SystemClock().nowMillis()
    }
}
