import KilnCore
import SQLKit

/// Offset paging: fetch one row more than the page holds to know whether a next page exists.
public struct Paging: Sendable {
    public let limit: Int
    public let offset: Int

    /// Validates `max_results` (1...`max`, `def` when absent) and decodes the page token.
    /// - Throws: `INVALID_PARAMETER_VALUE` for a limit out of range or a token Kiln did not issue.
    public init(maxResults: Int?, default def: Int, limit max: Int, pageToken: String?) throws {
        if let maxResults {
            guard maxResults >= 1 else { throw KilnError.invalid("Invalid value \(maxResults) for parameter 'max_results' supplied. It must be at least 1.") }
            guard maxResults <= max else { throw KilnError.invalid("Invalid value \(maxResults) for parameter 'max_results' supplied. It must be at most \(max).") }
            limit = maxResults
        } else {
            limit = def
        }
        offset = try PageToken.decode(pageToken)
    }

    /// Appends ` LIMIT <limit + 1> OFFSET <offset>`.
    public func append(to query: inout SQLQueryString) {
        query.appendLiteral(" LIMIT ")
        query.appendInterpolation(bind: limit + 1)
        query.appendLiteral(" OFFSET ")
        query.appendInterpolation(bind: offset)
    }

    /// The page of `fetched` rows (at most `limit + 1` of them).
    public func page<Item: Sendable>(_ fetched: [Item]) -> Page<Item> {
        Page(items: Array(fetched.prefix(limit)), nextPageToken: fetched.count > limit ? PageToken.encode(offset: offset + limit) : nil)
    }
}
