/// A FIFO lock for async code: one holder at a time, waiters resumed in arrival order (a pool of one).
public struct AsyncSerialLock: Sendable {
    private let pool = AsyncPool([()])

    public init() {}

    /// Runs `body` while holding the lock.
    public func withLock<R: Sendable>(_ body: @Sendable () async throws -> R) async throws -> R {
        try await pool.withItem { _ in try await body() }
    }
}
