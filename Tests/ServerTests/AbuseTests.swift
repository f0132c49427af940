import Engine
import Foundation
import Testing

@testable import Server

/// The lock-the-sale attack of issue 14 (one client, 50 made-up user ids, 10 checkouts each),
/// replayed over real HTTP against the per-client limits at their defaults: the attacker holds at
/// most its share, and real buyers still check out and buy.
@Suite struct AbuseTests {
    /// One attacking request: where it connects from and the `X-Forwarded-For` it carries.
    struct Origin: Sendable {
        let peer: String
        let forwardedFor: String?

        var headers: [(String, String)] { forwardedFor.map { [("X-Forwarded-For", $0)] } ?? [] }
    }

    /// 50 made-up users × 10 checkouts of distinct items, 16 at a time, each request from
    /// `origin(n)`. Returns every reply.
    static func lockTheSale(_ server: RunningServer, origin: @escaping @Sendable (Int) -> Origin) async throws -> [HTTPReply] {
        let requests = (0..<500).map { n in (user: "bot\(n / 10)", item: n + 1, origin: origin(n)) }
        return try await withThrowingTaskGroup(of: [HTTPReply].self) { group in
            for worker in 0..<16 {
                group.addTask {
                    var replies: [HTTPReply] = []
                    for request in requests.enumerated().filter({ $0.offset % 16 == worker }).map(\.element) {
                        replies.append(
                            try await server.request(
                                "POST", "/checkout?user_id=\(request.user)&id=\(request.item)", headers: request.origin.headers,
                                from: request.origin.peer))
                    }
                    return replies
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
    }

    /// Checks the attack's replies: only holds and `429`s (with `Retry-After` and a limit code),
    /// exactly `cap` holds per attacking address, both limits seen, and the refusals on `/metrics`.
    static func expectAttackContained(_ replies: [HTTPReply], server: RunningServer, cap: Int, addresses: Int) async throws {
        #expect(replies.count == 500)
        #expect(replies.allSatisfy { $0.status < 500 }, "a 5xx under attack")
        let held = replies.filter { $0.status == 200 }.count
        #expect(held == cap * addresses, "the attacker got \(held) holds; its share is \(cap) per address")
        let refused = replies.filter { $0.status == 429 }
        #expect(held + refused.count == 500, "\(replies.filter { $0.status != 200 && $0.status != 429 }.prefix(3))")
        var byReason: [String: Int] = [:]
        for reply in refused {
            let code = reply.errorCode ?? "none"
            byReason[code, default: 0] += 1
            let wait = Int(reply.header("retry-after") ?? "") ?? 0
            // Rate: a token comes back every 100 ms. Holds: the earliest frees at expiry + skew (62 s).
            let bound = code == "rate_limited" ? 1 : 62
            #expect((1...bound).contains(wait), "\(code) with Retry-After \(reply.header("retry-after") ?? "none")")
        }
        #expect(Set(byReason.keys) == ["rate_limited", "too_many_holds"], "\(byReason)")

        let summary = try await server.get("/sale")
        let items = try #require(summary.json["items"] as? [String: Any])
        #expect(items["held"] as? Int == cap * addresses, "\(summary)")

        let metrics = try await server.get("/metrics").text
        for (reason, count) in byReason {
            #expect(metrics.contains(#"sale_client_limit_refusals_total{reason="\#(reason)"} \#(count)"#), "\(reason): \(count)")
            #expect(metrics.contains(#"status="429",outcome="\#(reason)"} \#(count)"#))
        }
    }

    /// Real buyers, each its own client: each checks out the first free item from its own start
    /// on (skipping what the attacker holds) and buys it.
    static func realBuyersBuy(_ server: RunningServer, count: Int, origin: (Int) -> Origin) async throws {
        for buyer in 0..<count {
            let from = origin(buyer)
            var code: String?
            for item in stride(from: 1 + buyer * 20, to: 500, by: 1) {
                let reply = try await server.request(
                    "POST", "/checkout?user_id=buyer\(buyer)&id=\(item)", headers: from.headers, from: from.peer)
                if reply.status == 200 {
                    code = reply.string("code")
                    break
                }
                // Held by the attacker, or already bought by an earlier buyer: try the next one.
                let skip = reply.errorCode == "item_held" || reply.errorCode == "item_sold"
                #expect(skip, "buyer \(buyer): \(reply)")
                if !skip { break }
            }
            let held = try #require(code, "buyer \(buyer) could not hold an item")
            let bought = try await server.request("POST", "/purchase?code=\(held)", from: from.peer)
            #expect(bought.status == 200 && bought.string("user_id") == "buyer\(buyer)", "\(bought)")
            let sale = try #require(bought.int("sale_id")), item = try #require(bought.int("item_id"))
            #expect(try await server.get("/sales/\(sale)/items/\(item)").string("status") == "sold")
        }
    }

    /// From one address (spoofing `X-Forwarded-For`, which no trusted proxy vouches for): ten holds,
    /// the default share of a 500-item sale (the user limit, above 1 % of 500).
    @Test(arguments: StoreKind.available) func oneAddressCannotLockTheSale(kind: StoreKind) async throws {
        try await withServer(environment: ["SALE_ITEMS": "500", "CLIENT_CHECKOUT_RATE": "10", "CLIENT_MAX_HOLDS": ""], kind: kind) { server in
            #expect(server.api.limiter.policy == ClientLimits.Policy(interval: .milliseconds(100), burst: 40, maxLiveHolds: 10))
            let replies = try await Self.lockTheSale(server) { n in Origin(peer: "127.0.0.2", forwardedFor: "10.\(n % 200).0.\(n % 7 + 1)") }
            try await Self.expectAttackContained(replies, server: server, cap: 10, addresses: 1)
            try await Self.realBuyersBuy(server, count: 20) { buyer in Origin(peer: "127.0.0.\(10 + buyer)", forwardedFor: nil) }
        }
    }

    /// From three addresses behind a trusted proxy (127.0.0.1), each request carrying a forged
    /// address to the left of the one the proxy appended: three shares, and real buyers behind the
    /// same proxy still buy.
    @Test(arguments: StoreKind.available) func fewAddressesBehindATrustedProxy(kind: StoreKind) async throws {
        let environment = ["SALE_ITEMS": "500", "TRUSTED_PROXIES": "127.0.0.1", "CLIENT_CHECKOUT_RATE": "", "CLIENT_MAX_HOLDS": ""]
        try await withServer(environment: environment, kind: kind) { server in
            let replies = try await Self.lockTheSale(server) { n in
                Origin(peer: "127.0.0.1", forwardedFor: "198.18.\(n % 250).\(n % 9), 203.0.113.\(n % 3 + 1)")
            }
            try await Self.expectAttackContained(replies, server: server, cap: 10, addresses: 3)
            try await Self.realBuyersBuy(server, count: 20) { buyer in Origin(peer: "127.0.0.1", forwardedFor: "192.0.2.\(10 + buyer)") }
        }
    }

    /// Buying frees the slot, so a client at its share can go on after paying; a client at its
    /// share is refused whatever user id it claims.
    @Test func purchasesFreeTheClientsSlots() async throws {
        try await withServer(environment: ["CLIENT_MAX_HOLDS": "2", "CLIENT_CHECKOUT_RATE": "10"]) { server in
            let first = try #require(try await server.checkout("ann", 1).string("code"))
            #expect(try await server.checkout("ann", 2).status == 200)
            let third = try await server.checkout("ann", 3)
            #expect(third.status == 429 && third.errorCode == "too_many_holds", "\(third)")
            #expect(try await server.checkout("someone-else", 3).errorCode == "too_many_holds")
            #expect(try await server.checkout("ann", 2).errorCode == "too_many_holds")  // at the cap: even a repeat waits
            #expect(try await server.purchase(first).status == 200)
            #expect(try await server.checkout("ann", 3).status == 200)
            // A client on another address has its own share.
            #expect(try await server.request("POST", "/checkout?user_id=bo&id=4", from: "127.0.0.3").status == 200)
        }
    }

    /// On by default, and on `/metrics` at zero from the start.
    @Test func limitsAreOnByDefaultAndOnMetrics() async throws {
        let config = try ServerConfiguration.resolve(flags: [:], environment: [:])
        #expect(config.clientLimitPolicy == ClientLimits.Policy(interval: .milliseconds(100), burst: 40, maxLiveHolds: 100))
        #expect(config.trustedProxies.isEmpty)
        try await withServer { server in
            let metrics = try await server.get("/metrics").text
            #expect(metrics.contains(#"sale_client_limit_refusals_total{reason="rate_limited"} 0"#), "\(metrics)")
            #expect(metrics.contains(#"sale_client_limit_refusals_total{reason="too_many_holds"} 0"#))
            #expect(metrics.contains("sale_client_limit_untracked_total 0"))
            #expect(metrics.contains("sale_client_limit_tracked_clients 0"))
        }
    }

    @Test func settings() throws {
        let config = try ServerConfiguration.resolve(
            flags: ["CLIENT_MAX_HOLDS": "7"],
            environment: [
                "CLIENT_CHECKOUT_RATE": "4", "CLIENT_CHECKOUT_BURST": "8", "CLIENT_MAX_HOLDS": "3",
                "TRUSTED_PROXIES": "10.0.0.0/8, ::1,192.0.2.7",
            ])
        #expect(config.clientLimitPolicy == ClientLimits.Policy(interval: .milliseconds(250), burst: 8, maxLiveHolds: 7))
        #expect(config.trustedProxies.contains(IPAddress("10.200.3.4")!))
        #expect(config.trustedProxies.contains(IPAddress("::1")!))
        #expect(config.trustedProxies.contains(IPAddress("192.0.2.7")!))
        #expect(!config.trustedProxies.contains(IPAddress("192.0.2.8")!))
        #expect(!config.trustedProxies.contains(IPAddress("11.0.0.1")!))
        let off = try ServerConfiguration.resolve(flags: [:], environment: ["CLIENT_CHECKOUT_RATE": "0", "CLIENT_MAX_HOLDS": "0"])
        #expect(off.clientLimitPolicy.interval == .zero && off.clientLimitPolicy.maxLiveHolds == 0)
    }

    @Test(arguments: [
        ("CLIENT_CHECKOUT_RATE", "-1"), ("CLIENT_CHECKOUT_RATE", "fast"), ("CLIENT_CHECKOUT_BURST", "0"), ("CLIENT_MAX_HOLDS", "-2"),
        ("TRUSTED_PROXIES", "proxy.internal"), ("TRUSTED_PROXIES", "10.0.0.0/33"), ("TRUSTED_PROXIES", "10.0.0.1/8/2"),
        ("TRUSTED_PROXIES", "::1/129"),
    ])
    func badSettings(name: String, value: String) {
        do {
            _ = try ServerConfiguration.resolve(flags: [:], environment: [name: value])
            Issue.record("\(name)=\(value) was accepted")
        } catch {
            #expect(error.message.contains(name), "\(error.message)")
        }
    }

    /// Whose address counts: the peer's, unless the peer is a trusted proxy; then the nearest
    /// untrusted address in `X-Forwarded-For`, read from the right.
    @Test func forwardedForIsBelievedOnlyFromTrustedProxies() throws {
        let proxies = try TrustedProxies(list: "127.0.0.1, 10.0.0.0/8")
        func client(_ peer: String, _ values: [String]) -> String? {
            proxies.clientAddress(peer: IPAddress(peer), forwardedFor: values)?.description
        }
        #expect(client("203.0.113.5", ["1.2.3.4"]) == "203.0.113.5")  // not a proxy: the header is ignored
        #expect(client("127.0.0.1", []) == "127.0.0.1")
        #expect(client("127.0.0.1", ["1.2.3.4"]) == "1.2.3.4")
        #expect(client("127.0.0.1", ["6.6.6.6, 1.2.3.4"]) == "1.2.3.4")  // the client wrote 6.6.6.6 itself
        #expect(client("127.0.0.1", ["1.2.3.4, 10.1.1.1"]) == "1.2.3.4")  // through two proxies
        #expect(client("127.0.0.1", ["1.2.3.4", "10.1.1.1"]) == "1.2.3.4")  // the same, as two header lines
        #expect(client("127.0.0.1", ["10.9.9.9, 10.1.1.1"]) == "10.9.9.9")  // all proxies: the farthest one
        #expect(client("127.0.0.1", ["1.2.3.4, garbage"]) == "127.0.0.1")  // a bad entry stops the walk
        #expect(client("127.0.0.1", ["1.2.3.4:5678"]) == "1.2.3.4")
        #expect(client("127.0.0.1", ["[2001:db8::1]:443"]) == "2001:db8::1")
        #expect(client("127.0.0.1", [" 2001:DB8:0::1 "]) == "2001:db8::1")  // canonical form: one client, one key
        #expect(client("::ffff:127.0.0.1", ["1.2.3.4"]) == "1.2.3.4")  // a dual-stack listener's view of 127.0.0.1
    }
}
