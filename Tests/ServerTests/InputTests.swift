import Engine
import Foundation
import Testing

@testable import Server

/// Malformed input of every kind gets a precise `400` in the error shape, never a `500`;
/// unknown routes `404`, wrong methods `405`.
@Suite struct InputTests {
    static let longUser = String(repeating: "u", count: 65)
    static let maxUser = String(repeating: "u", count: 64)

    static let badCheckouts: [(query: String, code: String)] = [
        ("", "missing_user_id"),
        ("?", "missing_user_id"),
        ("?id=1", "missing_user_id"),
        ("?user_id=a", "missing_item_id"),
        ("?user_id=a&id=1&user_id=b", "duplicate_parameter"),
        ("?user_id=a&id=1&id=1", "duplicate_parameter"),
        ("?user_id=a&id=1&color=red", "unknown_parameter"),
        ("?user_id=a&id=1&%FF=1", "malformed_query"),
        ("?user_id=\(longUser)&id=1", "invalid_user_id"),
        ("?user_id=&id=1", "invalid_user_id"),
        ("?user_id=a%20b&id=1", "invalid_user_id"),
        ("?user_id=a/b&id=1", "invalid_user_id"),
        ("?user_id=%C3%A9&id=1", "invalid_user_id"),
        ("?user_id=a&id=0", "invalid_item_id"),
        ("?user_id=a&id=10001", "invalid_item_id"),
        ("?user_id=a&id=-1", "invalid_item_id"),
        ("?user_id=a&id=01", "invalid_item_id"),
        ("?user_id=a&id=1.5", "invalid_item_id"),
        ("?user_id=a&id=abc", "invalid_item_id"),
        ("?user_id=a&id=", "invalid_item_id"),
        ("?user_id=a&id=99999999999999999999999", "invalid_item_id"),
        ("?user_id=%FF&id=1", "malformed_query"),
        ("?user_id=%C3%28&id=1", "malformed_query"),
        ("?user_id=%zz&id=1", "malformed_query"),
        ("?user_id=a&id=1%", "malformed_query"),
        ("?user_id=a&id=%00", "invalid_item_id"),
        ("?user_id=" + String(repeating: "x", count: 10 * 1024) + "&id=1", "query_too_long"),
        ("?user_id=a&id=1&" + String(repeating: "y", count: 20 * 1024), "uri_too_long"),
    ]

    @Test func malformedCheckouts() async throws {
        try await withServer { server in
            for (query, code) in Self.badCheckouts {
                let reply = try await server.post("/checkout" + query)
                #expect(reply.status == (code == "uri_too_long" ? 414 : 400) && reply.errorCode == code, "\(query.prefix(80)) → \(reply)")
            }
            let longest = try await server.checkout(Self.maxUser, 1)
            #expect(longest.status == 200, "\(longest)")
            // Percent-encoded valid characters are decoded before validation.
            #expect(try await server.post("/checkout?user_id=%61bc&id=%32").status == 200)
        }
    }

    static let badPurchases: [(query: String, code: String)] = [
        ("", "missing_code"),
        ("?code=", "invalid_code"),
        ("?code=abc", "invalid_code"),
        ("?code=1.2.tooshort", "invalid_code"),
        ("?code=1.0.AAAAAAAAAAAAAAAAAAAAAA", "invalid_code"),
        ("?code=1.2.AAAAAAAAAAAAAAAAAAAAA%21", "invalid_code"),
        ("?code=1.2.AAAAAAAAAAAAAAAAAAAAAA&code=1.2.AAAAAAAAAAAAAAAAAAAAAA", "duplicate_parameter"),
        ("?code=1.2.AAAAAAAAAAAAAAAAAAAAAA&user_id=a", "unknown_parameter"),
        ("?code=%FF", "malformed_query"),
        ("?code=" + String(repeating: "z", count: 10 * 1024), "query_too_long"),
    ]

    @Test func malformedPurchases() async throws {
        try await withServer { server in
            for (query, code) in Self.badPurchases {
                let reply = try await server.post("/purchase" + query)
                #expect(reply.status == 400 && reply.errorCode == code, "\(query.prefix(80)) → \(reply)")
            }
        }
    }

    @Test func malformedReads() async throws {
        try await withServer { server in
            let cases: [(String, String)] = [
                ("/sales/abc/items/1", "invalid_sale_id"),
                ("/sales/-1/items/1", "invalid_sale_id"),
                ("/sales/0123/items/1", "invalid_sale_id"),
                ("/sales/9999999999999999999/items/1", "invalid_sale_id"),
                ("/sales/1/items/0", "invalid_item_id"),
                ("/sales/1/items/10001", "invalid_item_id"),
                ("/sales/1/items/x/image.svg", "invalid_item_id"),
                ("/users/\(Self.longUser)/purchases", "invalid_user_id"),
                ("/users/a%20b/purchases", "invalid_user_id"),
                ("/users/a/purchases?sale=x", "invalid_sale_id"),
                ("/users/a/purchases?sale=1&sale=2", "duplicate_parameter"),
                ("/users/a/purchases?user=a", "unknown_parameter"),
                ("/users/a/purchases?sale=%FF", "malformed_query"),
            ]
            for (target, code) in cases {
                let reply = try await server.get(target)
                #expect(reply.status == 400 && reply.errorCode == code, "\(target) → \(reply)")
            }
        }
    }

    @Test func oversizedRequests() async throws {
        try await withServer { server in
            let body = [UInt8](repeating: UInt8(ascii: "b"), count: 100 * 1024)
            let big = try await server.request("POST", "/checkout?user_id=a&id=1", body: body)
            #expect(big.status == 413 && big.errorCode == "request_too_large", "\(big)")
            #expect(big.header("connection") == "close")
            // A small body is ignored: no endpoint takes one.
            let small = try await server.request("POST", "/checkout?user_id=a&id=1", body: Array("hello".utf8))
            #expect(small.status == 200, "\(small)")
            // A request line beyond what the HTTP decoder accepts is refused without a 5xx (or the
            // connection is closed).
            let huge = "/checkout?user_id=a&id=1&" + String(repeating: "q", count: 200 * 1024)
            if let reply = try? await server.post(huge) {
                #expect(reply.status < 500, "\(reply)")
            }
            // The server is still healthy after all that.
            #expect(try await server.get("/health").status == 200)
        }
    }

    /// A request cut off before its declared body ends is not acted on: the checkout holds nothing.
    @Test func truncatedRequestsDoNothing() async throws {
        try await withServer { server in
            let head = "POST /checkout?user_id=cutoff&id=7 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nab"
            let port = server.port
            let answer = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8], any Error>) in
                Thread { continuation.resume(with: Result { try RawHTTP.sendTruncated(port: port, bytes: Array(head.utf8)) }) }.start()
            }
            #expect(!String(decoding: answer, as: UTF8.self).hasPrefix("HTTP/1.1 200"), "\(String(decoding: answer, as: UTF8.self))")
            let other = try await server.checkout("someone", 7)
            #expect(other.status == 200, "the cut-off checkout held the item: \(other)")
        }
    }

    @Test func unknownRoutesAndWrongMethods() async throws {
        try await withServer { server in
            for target in ["/nope", "/checkout/extra", "/sales/1/items", "/sales/1/items/1/other", "/users/a"] {
                let reply = try await server.get(target)
                #expect(reply.status == 404 && reply.errorCode == "not_found", "\(target) → \(reply)")
            }
            let wrong: [(String, String, String)] = [
                ("GET", "/checkout?user_id=a&id=1", "POST"), ("PUT", "/purchase", "POST"), ("POST", "/sale", "GET, HEAD"),
                ("DELETE", "/sales/1/items/1", "GET, HEAD"), ("PATCH", "/health", "GET, HEAD"), ("POST", "/metrics", "GET, HEAD"),
                ("POST", "/users/a/purchases", "GET, HEAD"), ("OPTIONS", "/sales/1/items/1/image.svg", "GET, HEAD"),
                ("POST", "/", "GET, HEAD"), ("PUT", "/live", "GET, HEAD"), ("DELETE", "/openapi.yaml", "GET, HEAD"),
            ]
            for (method, target, allow) in wrong {
                let reply = try await server.request(method, target)
                #expect(reply.status == 405 && reply.errorCode == "method_not_allowed", "\(method) \(target) → \(reply)")
                #expect(reply.header("allow") == allow)
            }
            // The refused GET did not check anything out.
            #expect(try await server.checkout("zed", 1).status == 200)
        }
    }
}
