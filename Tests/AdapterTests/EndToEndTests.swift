import Adapters
import Engine
import PostgresAdapter
import RedisAdapter
import Testing

extension LiveStoreTests {
    @Test("RequestDriver over the real adapters: checkout, purchase, retries, the user limit")
    func checkoutPurchaseAndLimit() async throws {
        let live = try await LiveSale.make(items: 20, userLimit: 3)
        defer { live.shutdown() }
        guard case .held(let hold) = await live.checkout("alice", 1) else {
            Issue.record("checkout refused")
            return
        }
        #expect(await live.checkout("alice", 1) == .held(hold))  // a retry gets the same code
        #expect(await live.checkout("bob", 1) == .refused(.itemHeld))
        guard case .purchased(let purchase) = await live.driver.purchase(hold.code) else {
            Issue.record("purchase failed")
            return
        }
        #expect(purchase.code == hold.code && purchase.user == hold.user)
        #expect(await live.driver.purchase(hold.code) == .purchased(purchase))  // idempotent
        #expect(await live.checkout("bob", 1) == .refused(.itemSold))
        #expect(try await live.durable.query(.purchases(sale: live.sale, user: hold.user)) == .purchases([purchase]))

        // The limit: one purchased + two held = 3.
        guard case .held = await live.checkout("alice", 2), case .held = await live.checkout("alice", 3) else {
            Issue.record("alice's second and third checkouts")
            return
        }
        #expect(await live.checkout("alice", 4) == .refused(.userLimitReached))
        var rng = SystemRandomNumberGenerator()
        let unknown = Code.generate(sale: live.sale, item: ItemID(5), using: &rng)
        #expect(await live.driver.purchase(unknown) == .unknownCode)
    }

    @Test("A full small sale: concurrent buyers sell every item exactly once, within the limit")
    func fullSale() async throws {
        let items = 30
        let limit = 3
        let live = try await LiveSale.make(items: items, userLimit: limit)
        defer { live.shutdown() }
        let buyers = 16
        await withTaskGroup(of: Void.self) { group in
            for buyer in 0..<buyers {
                group.addTask {
                    var bought = 0
                    var item = (buyer * 7) % items + 1
                    for _ in 0..<(items * 2) where bought < limit {
                        if case .held(let hold) = await live.checkout("buyer\(buyer)", item),
                            case .purchased = await live.driver.purchase(hold.code) {
                            bought += 1
                        }
                        item = item % items + 1
                    }
                }
            }
        }
        guard case .snapshot(let snapshot) = try await live.durable.query(
            .snapshot(sales: [live.sale], holdsExpiringAfter: LiveStores.now()))
        else {
            Issue.record("snapshot")
            return
        }
        #expect(snapshot.purchases.count == items)
        #expect(Set(snapshot.purchases.map(\.item)).count == items)
        let perUser = Dictionary(grouping: snapshot.purchases, by: \.user).mapValues(\.count)
        #expect(perUser.values.allSatisfy { $0 <= limit })
        #expect(await live.checkout("latecomer", 1) == .refused(.soldOut))
    }
}
