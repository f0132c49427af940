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

/// An instance paused between deciding a purchase and its compare-and-set, on the real Redis and
/// its own clock (`TIME`): once another instance has answered `410` for the code, the late commit
/// is refused by Redis, not applied.
extension LiveStoreTests {
    @Test("A purchase committed after its code expired (a paused instance) is refused by Redis's own clock")
    func latePurchaseCommitIsRefusedByRedisTime() async throws {
        let url = try #require(LiveStores.redisURL)
        let hot = RedisHotStore(url: url, keyPrefix: "p\(UInt32.random(in: 0...UInt32.max))")  // Redis's own clock
        let durable = PostgresDurableStore(url: try LiveStores.freshDatabase())
        defer {
            hot.shutdown()
            durable.shutdown()
        }
        var rules = SaleRules()
        rules.holdTTL = .seconds(1)
        rules.clockSkewAllowance = .milliseconds(500)
        let wall: @Sendable () -> Instant = { Instant(microseconds: Int64((Date().timeIntervalSince1970 * 1_000_000).rounded())) }
        let driver = RequestDriver(stores: Stores(hot: hot, durable: durable), rules: rules, clock: wall)
        guard case .held(let hold) = await driver.checkout(CheckoutRequest(user: UserID(unchecked: "paula"), item: ItemID(4))) else {
            throw LiveSale.Failure("paula's checkout")
        }
        // The paused instance read the live hold and decided to buy it...
        let key = HotKey.item(hold.sale, hold.item)
        guard case .snapshot(let snapshot) = try await hot.read(HotRead(keys: [key])), let storeTime = snapshot.storeTime,
            case .buy(_, let commit) = PurchaseRules.decide(code: hold.code, now: storeTime, key: key, record: snapshot.records[0],
                                                            generation: snapshot.generation)
        else { throw LiveSale.Failure("the paused instance's decision") }
        #expect((storeTime - wall()).microseconds.magnitude < 1_000_000, "Redis TIME and the wall clock agree")
        // ...then stopped past the code's expiry, while another instance answered 410 for it.
        try await Task.sleep(for: .milliseconds(1_300))
        #expect(await driver.purchase(hold.code) == .codeExpired)
        // It resumes and sends its compare-and-set: Redis's clock says the code has expired.
        #expect(try await hot.commit(commit) == .expired)
        guard case .snapshot(let after) = try await hot.read(HotRead(keys: [key])) else { throw LiveSale.Failure("read") }
        #expect(after.records[0].itemRecord == .held(hold), "the item was not sold")
        #expect(await driver.purchase(hold.code) == .codeExpired)
    }
}

/// A failover to a replica that lagged: the replica had the state up to some moment, the primary
/// acknowledged more, then the replica is promoted and the service is pointed at it.
extension LiveStoreTests {
    @Test("Failover to a lagging replica promoted with REPLICAOF NO ONE: every code still buys its item, nobody else gets them",
          .enabled(if: ProcessInfo.processInfo.environment["TEST_REDIS_REPLICA"] != nil, "needs TEST_REDIS_REPLICA from scripts/with-stores"))
    func failoverToALaggingReplica() async throws {
        let environment = ProcessInfo.processInfo.environment
        let replicaScript = try #require(environment["TEST_REDIS_REPLICA"])
        let replicaURL = try #require(environment["TEST_REDIS_REPLICA_URL"])
        let live = try await LiveSale.make(items: 20, userLimit: 3)
        defer { live.shutdown() }
        let seeded = try await live.seed()
        try await LiveStores.run(replicaScript)
        // The replica has everything so far...
        #expect(try await live.hot.command(["WAIT", "1", "5000"]) == .integer(1))
        let replica = RedisHotStore(url: replicaURL, keyPrefix: live.hot.keyPrefix, clock: { LiveStores.now() })
        defer { replica.shutdown() }
        _ = try await replica.command(["REPLICAOF", "NO", "ONE"])
        // ...but not what the primary acknowledges after that: the lag a failover loses.
        guard case .held(let late) = await live.checkout("carol", 4),
            case .held(let lateBought) = await live.checkout("dave", 5),
            case .purchased(let latePurchase) = await live.driver.purchase(lateBought.code),
            case .held(let third) = await live.checkout("alice", 6),
            case .held(let fourth) = await live.checkout("alice", 3)
        else { throw LiveSale.Failure("the holds after the replica's last sync") }
        #expect(await live.checkout("alice", 7) == .refused(.userLimitReached))

        // The service is pointed at the promoted replica (same PostgreSQL).
        let promoted = RequestDriver(stores: Stores(hot: replica, durable: live.durable), rules: live.rules, clock: { LiveStores.now() })
        func checkout(_ user: String, _ item: Int) async -> CheckoutResult {
            await promoted.checkout(CheckoutRequest(user: UserID(unchecked: user), item: ItemID(item)))
        }
        #expect(await checkout("eve", 4) == .refused(.itemHeld))
        #expect(await checkout("eve", 5) == .refused(.itemSold))
        #expect(await checkout("eve", 6) == .refused(.itemHeld))
        #expect(await checkout("eve", 3) == .refused(.itemHeld))
        #expect(await checkout("eve", 1) == .refused(.itemSold))
        #expect(await checkout("alice", 8) == .refused(.userLimitReached))
        #expect(await promoted.purchase(lateBought.code) == .purchased(latePurchase))
        for hold in [seeded.hold, late, third, fourth] {
            guard case .purchased(let purchase) = await promoted.purchase(hold.code) else {
                Issue.record("code \(hold.code) of \(hold.user) did not survive the failover")
                continue
            }
            #expect(purchase.user == hold.user && purchase.item == hold.item)
        }
        try await LiveStores.run(try #require(environment["TEST_REDIS_REPLICA_STOP"]))
    }
}

/// A server pointed at another PostgreSQL database (a fresh one, or one restored from a backup)
/// while Redis still holds the state built from the first: nothing is answered from it.
extension LiveStoreTests {
    @Test("A Redis that served another database is rebuilt, not believed: no sold_out, item_sold or item_held from it")
    func redisOfAnotherDatabaseIsRebuilt() async throws {
        let live = try await LiveSale.make(items: 3, userLimit: 3)
        defer { live.shutdown() }
        // The first database's sale: item 1 sold, item 2 held, item 3 sold: almost sold out.
        let seeded = try await live.seed()
        guard case .held(let third) = await live.checkout("carol", 3),
            case .purchased = await live.driver.purchase(third.code)
        else { throw LiveSale.Failure("the first database's sale") }

        // Another database, the same Redis.
        let other = PostgresDurableStore(url: try LiveStores.freshDatabase())
        defer { other.shutdown() }
        let driver = RequestDriver(stores: Stores(hot: live.hot, durable: other), rules: live.rules, clock: { LiveStores.now() })
        func checkout(_ user: String, _ item: Int) async -> CheckoutResult {
            await driver.checkout(CheckoutRequest(user: UserID(unchecked: user), item: ItemID(item)))
        }
        for item in 1...3 {
            guard case .held(let hold) = await checkout("newcomer\(item)", item) else {
                Issue.record("item \(item) was answered from the other database's state")
                continue
            }
            guard case .purchased = await driver.purchase(hold.code) else {
                Issue.record("item \(item) could not be bought")
                continue
            }
        }
        // The first database's codes mean nothing to this one.
        #expect(await driver.purchase(seeded.hold.code) == .unknownCode)
        #expect(await driver.purchase(seeded.purchase.code) == .unknownCode)
    }
}
