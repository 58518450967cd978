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
