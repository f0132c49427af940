import AdapterSupport
import Adapters
import Engine
import Foundation
import PostgresAdapter
import RedisAdapter
import Testing

/// Redis coming back with older data, on the real servers: the failure a packaged Redis has after
/// a crash (it loads its last RDB snapshot), and PostgreSQL's backstop of the user limit.
extension LiveStoreTests {
    @Test("Redis restarted from an older snapshot: every code handed out before and after it still buys its item, nobody else gets them, the limit holds",
          .enabled(if: LiveStores.redisRestart != nil, "needs TEST_REDIS_RESTART from scripts/with-stores"))
    func redisRestartedFromAnOlderSnapshot() async throws {
        let live = try await LiveSale.make(items: 20, userLimit: 3)
        defer { live.shutdown() }
        // Before the snapshot: alice buys item 1 and holds item 2.
        let seeded = try await live.seed()
        guard case .held(let early) = await live.checkout("alice", 3) else { throw LiveSale.Failure("alice's early hold") }
        #expect(try await live.hot.command(["SAVE"]) == .status("OK"))
        let dump = try await Self.dumpPath(live.hot)
        defer { try? FileManager.default.removeItem(atPath: dump) }  // later restarts must come back empty
        // After the snapshot: more holds, a purchase, and alice (item 1 bought, item 3 held)
        // reaching her limit of 3 with item 6.
        guard case .held(let late) = await live.checkout("carol", 4),
            case .held(let lateBought) = await live.checkout("dave", 5),
            case .purchased(let latePurchase) = await live.driver.purchase(lateBought.code),
            case .held(let third) = await live.checkout("alice", 6)
        else { throw LiveSale.Failure("the holds after the snapshot") }
        #expect(await live.checkout("alice", 7) == .refused(.userLimitReached))

        // Redis dies without saving and comes back from the older dump (same generation keys).
        try await LiveStores.run(try #require(LiveStores.redisRestart))
        try await Self.waitUntilReachable(live.hot)

        // Nothing of the older copy is believed: the engine rebuilds from PostgreSQL.
        #expect(await live.checkout("eve", 4) == .refused(.itemHeld))
        #expect(await live.checkout("eve", 5) == .refused(.itemSold))
        #expect(await live.checkout("eve", 3) == .refused(.itemHeld))
        #expect(await live.checkout("eve", 2) == .refused(.itemHeld))
        #expect(await live.checkout("eve", 6) == .refused(.itemHeld))
        #expect(await live.checkout("alice", 8) == .refused(.userLimitReached))
        #expect(await live.driver.purchase(lateBought.code) == .purchased(latePurchase))
        #expect(await live.driver.purchase(seeded.purchase.code) == .purchased(seeded.purchase))
        for hold in [seeded.hold, early, late, third] {
            guard case .purchased(let purchase) = await live.driver.purchase(hold.code) else {
                Issue.record("code \(hold.code) of \(hold.user) did not survive the rollback")
                continue
            }
            #expect(purchase.user == hold.user && purchase.item == hold.item)
        }
        #expect(await live.checkout("alice", 9) == .refused(.userLimitReached))
    }

    @Test("PostgreSQL refuses a purchase beyond the user limit, whatever the hot store said")
    func durableUserLimitBackstop() async throws {
        let durable = PostgresDurableStore(url: try LiveStores.freshDatabase())
        defer { durable.shutdown() }
        var rng = SystemRandomNumberGenerator()
        let purchases = (1...4).map { item in
            Purchase(code: Code.generate(sale: SaleID(9), item: ItemID(item), using: &rng), user: UserID(unchecked: "greedy"),
                     purchasedAt: Instant(microseconds: Int64(item)))
        }
        // Concurrent, so several of them meet in one group commit.
        let replies = await withTaskGroup(of: DurableWriteReply?.self) { group in
            for purchase in purchases { group.addTask { try? await durable.write(.purchase(purchase, fence: nil, userLimit: 3)) } }
            var replies: [DurableWriteReply?] = []
            for await reply in group { replies.append(reply) }
            return replies
        }
        #expect(replies.filter { $0 == .written }.count == 3)
        #expect(replies.filter { $0 == .rejected }.count == 1)
        guard case .purchases(let owned) = try await durable.query(.purchases(sale: SaleID(9), user: UserID(unchecked: "greedy"))) else {
            Issue.record("no purchases reply")
            return
        }
        #expect(owned.count == 3)
        // A retry of a recorded purchase is still recognised, not refused by the backstop.
        let recorded = try #require(owned.first)
        #expect(try await durable.write(.purchase(recorded, fence: nil, userLimit: 3)) == .alreadyPresent)
    }

    /// Where the Redis under test writes its RDB snapshot.
    static func dumpPath(_ hot: RedisHotStore) async throws -> String {
        guard case .array(let dir) = try await hot.command(["CONFIG", "GET", "dir"]), dir.count == 2, case .string(let path) = dir[1],
            case .array(let file) = try await hot.command(["CONFIG", "GET", "dbfilename"]), file.count == 2,
            case .string(let name) = file[1]
        else { throw LiveSale.Failure("CONFIG GET dir/dbfilename") }
        return path + "/" + name
    }

    static func waitUntilReachable(_ hot: RedisHotStore) async throws {
        for _ in 0..<50 {
            if (try? await hot.command(["PING"])) == .status("PONG") { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw LiveSale.Failure("Redis did not come back")
    }
}
