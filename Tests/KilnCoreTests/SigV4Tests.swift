import Foundation
@testable import KilnBlob
import Testing

/// Kiln's SigV4 against the examples AWS publishes for S3 ("Signature Calculations for the Authorization Header:
/// Transferring Payload in a Single Chunk"): same keys, same requests, same signatures.
@Suite("SigV4 signing")
struct SigV4Tests {
    let signer = SigV4(accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1")
    let date = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z
    let host = ("host", "examplebucket.s3.amazonaws.com")
    let empty = SigV4.payloadHash([UInt8]())

    func authorization(_ method: String, _ path: String, _ query: [(String, String)], _ headers: [(String, String)], _ hash: String) -> String {
        signer.sign(method: method, path: path, query: query, headers: [host] + headers, payloadHash: hash, date: date)
            .first { $0.0 == "Authorization" }!.1
    }

    @Test("GET Object with a Range header")
    func getObject() {
        #expect(authorization("GET", "/test.txt", [], [("Range", "bytes=0-9")], empty)
            == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test("PUT Object with a body, a Date and a storage class; the key's $ encoded in the path")
    func putObject() {
        let hash = SigV4.payloadHash(Array("Welcome to Amazon S3.".utf8))
        #expect(hash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        #expect(authorization("PUT", "/" + SigV4.encode("test$file.text", keepSlash: true), [],
                              [("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")], hash)
            == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            + "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
            + "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    @Test("GET Bucket lifecycle: a query parameter without a value")
    func lifecycle() {
        #expect(authorization("GET", "/", [("lifecycle", "")], [], empty).hasSuffix("Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"))
    }

    @Test("GET Bucket (list objects): query parameters sorted")
    func listObjects() {
        #expect(authorization("GET", "/", [("prefix", "J"), ("max-keys", "2")], [], empty)
            .hasSuffix("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"))
    }

    @Test("encoding: unreserved characters kept, everything else as %XY, slashes only in paths")
    func encoding() {
        #expect(SigV4.encode("a b/c~d_e-f.g*h") == "a%20b%2Fc~d_e-f.g%2Ah")
        #expect(SigV4.encode("a b/é", keepSlash: true) == "a%20b/%C3%A9")
        #expect(SigV4.timestamp(Date(timeIntervalSince1970: 951_782_400)) == "20000229T000000Z")
    }
}
