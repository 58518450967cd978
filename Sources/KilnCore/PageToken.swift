import Foundation

/// An opaque page token: base64 of `{"offset": N}`, the form MLflow uses.
public enum PageToken {
    /// Encodes an offset into a token.
    public static func encode(offset: Int) -> String {
        Data("{\"offset\": \(offset)}".utf8).base64EncodedString()
    }

    /// Decodes a token into an offset; an empty or missing token is offset 0.
    /// - Throws: `INVALID_PARAMETER_VALUE` when the token is not one Kiln issued.
    public static func decode(_ token: String?) throws -> Int {
        guard let token, !token.isEmpty else { return 0 }
        guard let data = Data(base64Encoded: token),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let offset = (object["offset"] as? NSNumber)?.intValue, offset >= 0
        else {
            throw KilnError.invalid("Invalid page token, could not base64-decode")
        }
        return offset
    }
}
