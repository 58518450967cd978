/// Every error `KilnParquet` throws: what is wrong with the file and where. The library depends on nothing else
/// in Kiln; callers map it to their own error type.
public struct ParquetError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    /// Byte offset in the buffer being decoded, when known.
    public var offset: Int?

    public init(_ message: String, offset: Int? = nil) {
        self.message = message
        self.offset = offset
    }

    public var description: String { offset.map { "\(message) (at byte \($0))" } ?? message }
}
