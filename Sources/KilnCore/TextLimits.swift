/// Length limits on text a client sends, one rule everywhere: an over-long value is refused with
/// `INVALID_PARAMETER_VALUE` naming the field and its limit, before anything is written. The limits themselves are
/// listed in `docs/limits.md`; each capability keeps its own next to its validation.
public enum TextLimit {
    /// Throws when `value` is longer than `max` characters.
    public static func check(_ value: String?, _ field: String, max: Int) throws {
        guard let value, value.count > max else { return }
        throw KilnError.invalid("'\(field)' is \(value.count) characters long; the limit is \(max)")
    }

    /// The value, or a `Missing value for required parameter` error when it is absent.
    public static func required(_ value: String?, _ field: String) throws -> String {
        guard let value else { throw KilnError.invalid("Missing value for required parameter '\(field)'.") }
        return value
    }
}
