import KilnCore
import Testing

@Suite("JSON parsing and writing")
struct JSONTests {
    @Test("parses nested documents and keeps number text exact")
    func parsesDocuments() throws {
        let value = try JSONValue.parse(Array(#"{"a": [1, -2.5e3, "x\n\u00e9\ud83d\ude00"], "b": {"c": null, "d": true}, "big": 9007199254740993}"#.utf8))
        guard case .object(let object) = value else { Issue.record("not an object"); return }
        #expect(object["a"] == .array([.number("1"), .number("-2.5e3"), .string("x\né😀")]))
        #expect(object["b"] == .object(["c": .null, "d": .bool(true)]))
        #expect(object["big"] == .number("9007199254740993"))
    }

    @Test("malformed documents fail with INVALID_PARAMETER_VALUE and a byte offset", arguments: [
        "", "{", "{\"a\" 1}", "[1,]", "{\"a\": tru}", "\"unterminated", "{\"a\": 1} x", "01x", "\"\\ud800\"",
    ])
    func rejectsMalformed(text: String) {
        let error = #expect(throws: KilnError.self) { try JSONValue.parse(Array(text.utf8)) }
        #expect(error?.code == .invalidParameterValue)
        #expect(error?.message.contains("at byte") == true)
    }

    @Test("writes non-finite doubles as proto JSON strings and escapes text")
    func writes() throws {
        var w = JSONWriter()
        w.object { w in
            w.field("nan", Double.nan)
            w.field("inf", Double.infinity)
            w.field("ninf", -Double.infinity)
            w.field("one", 1.0)
            w.field("small", 1e-7)
            w.field("text", "a\"b\\c\n\u{01}")
            w.field("absent", nil as String?)
            w.key("list")
            w.array { w in w.value(Int64(1)); w.value(true); w.null() }
        }
        let text = String(decoding: w.bytes, as: UTF8.self)
        #expect(text == #"{"nan":"NaN","inf":"Infinity","ninf":"-Infinity","one":1.0,"small":1e-07,"text":"a\"b\\c\n\u0001","list":[1,true,null]}"#)
        // What it writes, it reads back.
        _ = try JSONValue.parse(w.bytes)
    }
}

@Suite("Errors and page tokens")
struct ErrorAndTokenTests {
    @Test("error codes map to MLflow's HTTP statuses", arguments: [
        (KilnError.Code.invalidParameterValue, 400), (.resourceAlreadyExists, 400), (.resourceDoesNotExist, 404),
        (.unauthenticated, 401), (.permissionDenied, 403), (.resourceConflict, 409), (.requestLimitExceeded, 429),
        (.internalError, 500), (.endpointNotFound, 404),
    ])
    func statuses(code: KilnError.Code, status: Int) {
        #expect(KilnError(code, "x").httpStatus() == status)
    }

    @Test("RESOURCE_ALREADY_EXISTS is 409 on Databricks routes")
    func conflictOnDatabricks() {
        #expect(KilnError(.resourceAlreadyExists, "x").httpStatus(alreadyExistsAs409: true) == 409)
    }

    @Test("page tokens round-trip and garbage is rejected")
    func pageTokens() throws {
        #expect(try PageToken.decode(PageToken.encode(offset: 1234)) == 1234)
        #expect(try PageToken.decode(nil) == 0)
        #expect(try PageToken.decode("") == 0)
        let error = #expect(throws: KilnError.self) { try PageToken.decode("not base64 !!") }
        #expect(error?.code == .invalidParameterValue)
    }
}
