import Foundation
import KilnCore

/// A ceiling on how much a query may grow the process's resident memory: checked after each chunk a scan decodes
/// and after each step of a query, so a query that outgrows it stops with a clear error (RESOURCE_EXHAUSTED)
/// instead of taking the machine or being killed by it.
///
/// The measure is the growth of the process's resident set since the query started (`/proc/self/statm`): memory
/// the allocator kept from earlier work and reuses is not counted again, while other work in the same process
/// during the query is. A query can pass the limit by what one chunk or one step adds before it is stopped.
public struct MemoryLimit: Sendable, Equatable {
    /// The growth allowed, in bytes.
    public let bytes: Int
    /// The resident bytes when the query started.
    public var baseline: Int = 0

    public init(bytes: Int) {
        self.bytes = bytes
    }

    /// `"2GB"`, `"512MiB"`, `"4g"`, `"1500000000"`: a number of bytes with an optional K/M/G/T unit (powers of 1024).
    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces).uppercased()
        let digits = trimmed.prefix { $0.isNumber || $0 == "." }
        var unit = String(trimmed.dropFirst(digits.count)).trimmingCharacters(in: .whitespaces)
        for suffix in ["IB", "B"] where unit.hasSuffix(suffix) {
            unit = String(unit.dropLast(suffix.count))
            break
        }
        let scales: [String: Double] = ["": 1, "K": 1024, "M": 1_048_576, "G": 1_073_741_824, "T": 1_099_511_627_776]
        let scale = scales[unit]
        guard let number = Double(digits), let scale, number > 0, number * scale < 1e18 else {
            throw KilnError.invalid("A memory limit is a size such as 512MB, 2GB or 1500000000 (bytes), not '\(text)'")
        }
        self.init(bytes: Int(number * scale))
    }

    /// This limit for a query starting now.
    public func startingNow() -> MemoryLimit {
        var limit = self
        limit.baseline = Self.residentBytes() ?? 0
        return limit
    }

    /// The process's resident memory, in bytes (nil where `/proc` is not there).
    public static func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * sysconf(Int32(_SC_PAGESIZE))
    }

    /// Throws RESOURCE_EXHAUSTED when the query has grown the process past the limit; `doing` names the work.
    public func check(_ doing: @autoclosure () -> String) throws {
        guard let resident = Self.residentBytes(), resident - baseline > bytes else { return }
        throw KilnError(.resourceExhausted, String(format: "The query needs more memory than its limit of %@: %@ grew the process by %@. Raise the limit (kiln sql --memory-limit, or KILN_SQL_MEMORY_LIMIT), or filter or aggregate before joining and sorting.",
                                                  Self.text(bytes), doing(), Self.text(resident - baseline)))
    }

    /// `1.5 GiB`, `300.0 MiB`.
    static func text(_ bytes: Int) -> String {
        bytes >= 1 << 30 ? String(format: "%.1f GiB", Double(bytes) / Double(1 << 30)) : String(format: "%.1f MiB", Double(bytes) / Double(1 << 20))
    }
}
