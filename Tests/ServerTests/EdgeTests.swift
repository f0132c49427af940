import Engine
import Foundation
import Testing

@testable import Server

/// The HTTP edges of issue 14, over a raw socket: request ids, parameters and paths checked
/// alike on every route.
@Suite struct EdgeTests {
    /// Ids are 128 random bits: distinct, fixed-length, and with no order a client could count.
    @Test func requestIDsAreRandom() async throws {
        try await withServer { server in
            var ids: [String] = []
            for _ in 0..<20 {
                let reply = try await server.get("/health")
                ids.append(try #require(reply.header("x-request-id")))
            }
            #expect(Set(ids).count == ids.count)
            #expect(ids.allSatisfy { $0.count == 22 && Base64URL.decode($0)?.count == 16 }, "\(ids)")
            // A counter, even from a random start, would leave consecutive ids a small step apart.
            let numbers = ids.map { id in (Base64URL.decode(id) ?? []).suffix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
            let steps = zip(numbers, numbers.dropFirst()).map { $1 &- $0 }
            #expect(steps.filter { $0 < 1_000_000 }.isEmpty, "ids look sequential: \(ids)")
            // Errors carry one too.
            #expect(try await server.get("/nope").header("x-request-id")?.count == 22)
        }
    }

    /// Unknown and repeated parameters are refused on the GET routes too, HEAD included.
    @Test func everyRouteChecksItsParameters() async throws {
        try await withServer { server in
            let cases: [(String, String)] = [
                ("/sale?x=1", "unknown_parameter"), ("/health?verbose", "unknown_parameter"), ("/metrics?name=a", "unknown_parameter"),
                ("/sales/1/items/1?foo=1", "unknown_parameter"), ("/sales/1/items/1/image.svg?v=2", "unknown_parameter"),
                ("/users/a/purchases?sale=1&sale=2", "duplicate_parameter"), ("/users/a/purchases?limit=5", "unknown_parameter"),
                ("/sale?%zz", "malformed_query"), ("/sale?" + String(repeating: "x", count: 3_000), "query_too_long"),
            ]
            for (target, code) in cases {
                let reply = try await server.get(target)
                #expect(reply.status == 400 && reply.errorCode == code, "\(target) → \(reply)")
                #expect(try await server.request("HEAD", target).status == 400, "HEAD \(target)")
            }
            // Without parameters they still answer.
            for target in ["/sale", "/health", "/metrics", "/sales/1/items/1", "/sales/1/items/1/image.svg", "/users/a/purchases?sale=1"] {
                #expect(try await server.get(target).status == 200, "\(target)")
            }
        }
    }

    /// A percent-escape in a path segment is decoded as in a query, then validated.
    @Test func pathSegmentsAreDecodedLikeQueries() async throws {
        try await withServer { server in
            let code = try #require(try await server.checkout("alice", 42).string("code"))
            let bought = try await server.purchase(code)
            let sale = try #require(bought.int("sale_id"))
            let mine = try await server.get("/users/al%69ce/purchases")
            #expect(mine.status == 200 && mine.string("user_id") == "alice" && (mine.json["purchases"] as? [Any])?.count == 1, "\(mine)")
            let item = try await server.get("/sales/\(sale)/items/%34%32")
            #expect(item.status == 200 && item.int("item_id") == 42 && item.string("status") == "sold", "\(item)")
            let cases: [(String, String)] = [
                ("/users/a%zz/purchases", "malformed_path"), ("/users/%FF/purchases", "malformed_path"),
                ("/users/%C3%A9/purchases", "invalid_user_id"), ("/users/a%2Fb/purchases", "invalid_user_id"),
                ("/users/a+b/purchases", "invalid_user_id"),  // '+' is a plus in a path, and not allowed in a user id
                ("/sales/1%/items/1", "malformed_path"), ("/sales/%31/items/0", "invalid_item_id"),
            ]
            for (target, code) in cases {
                let reply = try await server.get(target)
                #expect(reply.status == 400 && reply.errorCode == code, "\(target) → \(reply)")
            }
        }
    }
}
