import Adapters
import Engine
import Foundation
import TestSupport
import Testing

@testable import Server

/// The checkout → purchase flow and every outcome of both endpoints, over real HTTP, on the
/// in-memory stores.
@Suite struct FlowTests {
    @Test(arguments: StoreKind.available) func checkoutThenPurchase(kind: StoreKind) async throws {
        try await withServer(kind: kind) { server in
            let held = try await server.checkout("alice", 42)
            #expect(held.status == 200, "\(held)")
            #expect(held.header("content-type")?.hasPrefix("application/json") == true)
            let code = try #require(held.string("code"))
            let sale = try #require(held.int("sale_id"))
            #expect(held.int("item_id") == 42)
            #expect(code.hasPrefix("\(sale).42."))
            #expect(Code.parse(code) != nil)
            let expiresAt = try #require(held.string("expires_at"))
            #expect(expiresAt.hasSuffix("Z") && expiresAt.count == 24)

            // Checking out the same item again while holding it hands out the same code.
            let again = try await server.checkout("alice", 42)
            #expect(again.status == 200 && again.string("code") == code && again.string("expires_at") == expiresAt)

            let item = try await server.get("/sales/\(sale)/items/42")
            #expect(item.string("status") == "held")
            #expect(item.string("held_until") == expiresAt)

            let bought = try await server.purchase(code)
            #expect(bought.status == 200, "\(bought)")
            #expect(bought.string("status") == "success")
            #expect(bought.int("sale_id") == sale && bought.int("item_id") == 42 && bought.string("user_id") == "alice")
            #expect(bought.string("purchased_at") != nil)

            // Retrying a completed purchase answers the same body.
            let retry = try await server.purchase(code)
            #expect(retry.status == 200 && retry.text == bought.text)

            // Checking the sold item out again, by anyone, is refused.
            #expect(try await server.checkout("alice", 42).errorCode == "item_sold")
            let other = try await server.checkout("bob", 42)
            #expect(other.status == 409 && other.errorCode == "item_sold")

            let after = try await server.get("/sales/\(sale)/items/42")
            #expect(after.status == 200 && after.string("status") == "sold")
            #expect(after.string("name")?.isEmpty == false)
            #expect(after.string("image_url") == "/sales/\(sale)/items/42/image.svg")

            let mine = try await server.get("/users/alice/purchases?sale=\(sale)")
            #expect(mine.status == 200)
            let purchases = try #require(mine.json["purchases"] as? [[String: Any]])
            #expect(purchases.count == 1 && (purchases.first?["item_id"] as? Int) == 42)
            let defaultSale = try await server.get("/users/alice/purchases")
            #expect(defaultSale.int("sale_id") == sale && (defaultSale.json["purchases"] as? [Any])?.count == 1)
            let bobs = try await server.get("/users/bob/purchases")
            #expect((bobs.json["purchases"] as? [Any])?.isEmpty == true)

            let summary = try await server.get("/sale")
            #expect(summary.status == 200 && summary.int("sale_id") == sale)
            let items = try #require(summary.json["items"] as? [String: Any])
            #expect(items["total"] as? Int == 10_000)
            #expect(items["sold"] as? Int == 1)
        }
    }

    @Test(arguments: StoreKind.available) func itemHeldByAnotherUser(kind: StoreKind) async throws {
        try await withServer(kind: kind) { server in
            #expect(try await server.checkout("alice", 7).status == 200)
            let refused = try await server.checkout("bob", 7)
            #expect(refused.status == 409 && refused.errorCode == "item_held", "\(refused)")
        }
    }

    @Test(arguments: StoreKind.available) func userLimit(kind: StoreKind) async throws {
        try await withServer(environment: ["USER_LIMIT": "3"], kind: kind) { server in
            var codes: [String] = []
            for item in 1...3 {
                let reply = try await server.checkout("carol", item)
                #expect(reply.status == 200)
                codes.append(try #require(reply.string("code")))
            }
            let fourth = try await server.checkout("carol", 4)
            #expect(fourth.status == 403 && fourth.errorCode == "user_limit_reached", "\(fourth)")
            // Buying what is held does not make room: purchased + held still equals the limit.
            #expect(try await server.purchase(codes[0]).status == 200)
            #expect(try await server.checkout("carol", 5).errorCode == "user_limit_reached")
            // Re-checking out an item already held is still the same code, not a refusal.
            #expect(try await server.checkout("carol", 2).string("code") == codes[1])
            // Another user is not affected.
            #expect(try await server.checkout("dave", 4).status == 200)
        }
    }

    @Test(arguments: StoreKind.available) func soldOut(kind: StoreKind) async throws {
        try await withServer(environment: ["SALE_ITEMS": "2"], kind: kind) { server in
            for (user, item) in [("u1", 1), ("u2", 2)] {
                let code = try #require(try await server.checkout(user, item).string("code"))
                #expect(try await server.purchase(code).status == 200)
            }
            let refused = try await server.checkout("u3", 1)
            #expect(refused.status == 409 && refused.errorCode == "sold_out", "\(refused)")
            #expect(try await server.checkout("u3", 3).errorCode == "invalid_item_id")
        }
    }

    @Test(arguments: StoreKind.available) func purchaseErrors(kind: StoreKind) async throws {
        try await withServer(kind: kind) { server in
            let sale = try #require(try await server.get("/sale").int("sale_id"))
            let unknown = try await server.purchase("\(sale).5.AAAAAAAAAAAAAAAAAAAAAA")
            #expect(unknown.status == 404 && unknown.errorCode == "unknown_code", "\(unknown)")
            // A forged code for an item someone really holds is still unknown.
            let real = try #require(try await server.checkout("erin", 5).string("code"))
            let forged = try await server.purchase("\(sale).5.BBBBBBBBBBBBBBBBBBBBBB")
            #expect(forged.status == 404 && forged.errorCode == "unknown_code")
            #expect(try await server.purchase(real).status == 200)
            let malformed = try await server.purchase("not-a-code")
            #expect(malformed.status == 400 && malformed.errorCode == "invalid_code")
            let missing = try await server.post("/purchase")
            #expect(missing.status == 400 && missing.errorCode == "missing_code")
        }
    }

    /// Hold expiry on a clock the test moves: the code stops buying at `expires_at`, and the
    /// item goes back to the pool once the clock-skew allowance has passed too.
    @Test(arguments: StoreKind.available) func holdExpiry(kind: StoreKind) async throws {
        let clock = kind.testClock()
        try await withServer(environment: ["HOLD_TTL": "30", "CLOCK_SKEW_ALLOWANCE_MS": "2000"], kind: kind, clock: clock.function) { server in
            let held = try await server.checkout("frank", 9)
            let code = try #require(held.string("code"))
            let sale = try #require(held.int("sale_id"))
            clock.advance(.seconds(29))
            #expect(try await server.get("/sales/\(sale)/items/9").string("status") == "held")
            #expect(try await server.checkout("gina", 9).errorCode == "item_held")
            clock.advance(.seconds(1))
            let expired = try await server.purchase(code)
            #expect(expired.status == 410 && expired.errorCode == "code_expired", "\(expired)")
            #expect(try await server.get("/sales/\(sale)/items/9").string("status") == "available")
            // Within the skew allowance the item is not yet handed to someone else.
            #expect(try await server.checkout("gina", 9).errorCode == "item_held")
            clock.advance(.seconds(2))
            let taken = try await server.checkout("gina", 9)
            #expect(taken.status == 200, "\(taken)")
            #expect(try await server.purchase(code).errorCode == "code_expired")
            #expect(try await server.purchase(try #require(taken.string("code"))).status == 200)
        }
    }

    /// The same with the real clock and the shortest settings, through the configuration.
    @Test(arguments: StoreKind.available) func holdExpiryInRealTime(kind: StoreKind) async throws {
        try await withServer(environment: ["HOLD_TTL": "1", "CLOCK_SKEW_ALLOWANCE_MS": "0"], kind: kind) { server in
            let code = try #require(try await server.checkout("hank", 3).string("code"))
            try await Task.sleep(for: .milliseconds(1_200))
            #expect(try await server.purchase(code).errorCode == "code_expired")
            #expect(try await server.checkout("ivy", 3).status == 200)
        }
    }

    /// Hour rollover between checkout and purchase: the code belongs to the old sale, the same
    /// item number of the new sale is a different item, and the old code stays purchasable
    /// until its `expires_at`.
    @Test(arguments: StoreKind.available) func saleRollover(kind: StoreKind) async throws {
        let calendar = SaleCalendar(saleLength: .seconds(3_600))
        let sale = calendar.sale(at: kind.clock())
        let clock = TestClock(calendar.end(of: sale) - .seconds(10))
        try await withServer(kind: kind, clock: clock.function) { server in
            let old = try await server.checkout("jack", 11)
            #expect(old.int("sale_id") == Int(sale.rawValue))
            let code = try #require(old.string("code"))
            clock.advance(.seconds(20))  // the next sale has started
            let summary = try await server.get("/sale")
            #expect(summary.int("sale_id") == Int(sale.rawValue) + 1)
            let items = try #require(summary.json["items"] as? [String: Any])
            #expect(items["held"] as? Int == 0)
            let new = try await server.checkout("kate", 11)
            #expect(new.status == 200 && new.int("sale_id") == Int(sale.rawValue) + 1, "\(new)")
            let bought = try await server.purchase(code)
            #expect(bought.status == 200 && bought.int("sale_id") == Int(sale.rawValue), "\(bought)")
            #expect(try await server.get("/sales/\(sale.rawValue)/items/11").string("status") == "sold")
            #expect(try await server.get("/sales/\(sale.rawValue + 1)/items/11").string("status") == "held")
        }
    }

    /// A real rollover with a 2-second sale.
    @Test(arguments: StoreKind.available) func saleRolloverInRealTime(kind: StoreKind) async throws {
        try await withServer(environment: ["SALE_LENGTH": "2"], kind: kind) { server in
            let first = try #require(try await server.get("/sale").int("sale_id"))
            try await Task.sleep(for: .milliseconds(2_100))
            let second = try #require(try await server.checkout("liam", 1).int("sale_id"))
            #expect(second > first)
        }
    }

    /// Many users racing for one item: exactly one holds it.
    @Test(arguments: StoreKind.available) func oneWinnerPerItem(kind: StoreKind) async throws {
        try await withServer(kind: kind) { server in
            let replies = try await withThrowingTaskGroup(of: HTTPReply.self) { group in
                for user in 0..<16 { group.addTask { try await server.checkout("racer\(user)", 77) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(replies.filter { $0.status == 200 }.count == 1)
            #expect(replies.filter { $0.errorCode == "item_held" }.count == 15)
        }
    }

    /// One user checking out many items at once: the limit holds.
    @Test(arguments: StoreKind.available) func limitHoldsUnderConcurrency(kind: StoreKind) async throws {
        try await withServer(environment: ["USER_LIMIT": "4"], kind: kind) { server in
            let replies = try await withThrowingTaskGroup(of: HTTPReply.self) { group in
                for item in 1...12 { group.addTask { try await server.checkout("greedy", item) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(replies.filter { $0.status == 200 }.count == 4)
            #expect(replies.allSatisfy { $0.status == 200 || $0.errorCode == "user_limit_reached" })
        }
    }
}
