import Foundation

/// Runs CPU-bound or blocking work on Dispatch's pool instead of a cooperative thread, so HTTP and other async
/// work keep their threads while a fit, a scan or a file copy runs.
public func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}
