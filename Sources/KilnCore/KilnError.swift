/// The one error type Kiln's libraries throw across their public API.
///
/// `code` is the wire string clients see (`error_code`); `message` is sent to clients and so never holds SQL,
/// paths under `KILN_HOME` or secrets; `cause` is only logged.
public struct KilnError: Error, Sendable, CustomStringConvertible {
    /// An extensible error code whose raw value is the MLflow/Databricks `error_code` string.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
    }

    public var code: Code
    public var message: String
    public var cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// Shorthand for `INVALID_PARAMETER_VALUE`.
    public static func invalid(_ message: String) -> KilnError { KilnError(.invalidParameterValue, message) }
    /// Shorthand for `RESOURCE_DOES_NOT_EXIST`.
    public static func notFound(_ message: String) -> KilnError { KilnError(.resourceDoesNotExist, message) }
    /// Shorthand for `RESOURCE_ALREADY_EXISTS`.
    public static func alreadyExists(_ message: String) -> KilnError { KilnError(.resourceAlreadyExists, message) }
    /// Shorthand for `INTERNAL_ERROR` with a generic message; the cause is kept for the log.
    public static func internalError(_ cause: (any Error)?) -> KilnError {
        KilnError(.internalError, "Internal error; see the server log.", cause: cause)
    }
}

extension KilnError.Code {
    public static let invalidParameterValue = Self(rawValue: "INVALID_PARAMETER_VALUE")
    public static let badRequest = Self(rawValue: "BAD_REQUEST")
    public static let resourceDoesNotExist = Self(rawValue: "RESOURCE_DOES_NOT_EXIST")
    public static let resourceAlreadyExists = Self(rawValue: "RESOURCE_ALREADY_EXISTS")
    public static let resourceConflict = Self(rawValue: "RESOURCE_CONFLICT")
    public static let invalidState = Self(rawValue: "INVALID_STATE")
    public static let permissionDenied = Self(rawValue: "PERMISSION_DENIED")
    public static let unauthenticated = Self(rawValue: "UNAUTHENTICATED")
    public static let requestLimitExceeded = Self(rawValue: "REQUEST_LIMIT_EXCEEDED")
    /// A query or job outgrew a limit set on it (memory).
    public static let resourceExhausted = Self(rawValue: "RESOURCE_EXHAUSTED")
    public static let endpointNotFound = Self(rawValue: "ENDPOINT_NOT_FOUND")
    /// The Files API's spelling of a missing path (what the mlflow client's presigned-URL repository looks for).
    public static let notFound = Self(rawValue: "NOT_FOUND")
    public static let temporarilyUnavailable = Self(rawValue: "TEMPORARILY_UNAVAILABLE")
    public static let internalError = Self(rawValue: "INTERNAL_ERROR")
}

extension KilnError {
    /// HTTP status for this error as MLflow routes send it (`mlflow/exceptions.py`).
    ///
    /// - Parameter conflictAs409: Databricks and Unity Catalog routes send `RESOURCE_ALREADY_EXISTS` as 409.
    public func httpStatus(alreadyExistsAs409 conflictAs409: Bool = false) -> Int {
        switch code {
        case .invalidParameterValue, .badRequest: return 400
        case .resourceAlreadyExists: return conflictAs409 ? 409 : 400
        case .resourceDoesNotExist, .endpointNotFound, .notFound: return 404
        case .resourceConflict: return 409
        case .permissionDenied: return 403
        case .unauthenticated: return 401
        case .requestLimitExceeded, .resourceExhausted: return 429
        case .temporarilyUnavailable: return 503
        default: return 500
        }
    }
}
