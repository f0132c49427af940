import AdapterSupport
import Adapters
import Engine
import Foundation
import PostgresAdapter
import RedisAdapter
import Testing

/// The engine over the real adapters, with a small sale on the wall clock.
struct LiveSale {
    let hot: RedisHotStore
    let durable: PostgresDurableStore
    let driver: RequestDriver
    let rules: SaleRules

    static func make(items: Int = 20, userLimit: Int = 3, settings: PoolSettings = PoolSettings()) async throws -> LiveSale {
        let durable = PostgresDurableStore(url: try LiveStores.freshDatabase(), settings: settings)
        let hot = try await LiveStores.freshRedis(settings: settings)
        var rules = SaleRules()
        rules.itemsPerSale = items
        rules.userLimit = userLimit
        let driver = RequestDriver(stores: Stores(hot: hot, durable: durable), rules: rules, clock: { LiveStores.now() })
        return LiveSale(hot: hot, durable: durable, driver: driver, rules: rules)
    }

    func shutdown() {
        hot.shutdown()
        durable.shutdown()
    }

    var sale: SaleID { SaleCalendar(saleLength: rules.saleLength).sale(at: LiveStores.now()) }

    func checkout(_ user: String, _ item: Int) async -> CheckoutResult {
        await driver.checkout(CheckoutRequest(user: UserID(unchecked: user), item: ItemID(item)))
    }

    /// Some hot state: a purchase (alice, item 1) and a live hold (bob, item 2).
    func seed() async throws -> (purchase: Purchase, hold: Hold) {
        guard case .held(let first) = await checkout("alice", 1) else { throw Failure("alice's checkout") }
        guard case .purchased(let purchase) = await driver.purchase(first.code) else { throw Failure("alice's purchase") }
        guard case .held(let hold) = await checkout("bob", 2) else { throw Failure("bob's checkout") }
        return (purchase, hold)
    }

    /// After the hot store lost everything: the engine rebuilds it from PostgreSQL.
    func expectRestored(_ seeded: (purchase: Purchase, hold: Hold)) async {
        #expect(await checkout("carol", 1) == .refused(.itemSold))
        #expect(await checkout("carol", 2) == .refused(.itemHeld))
        #expect(await checkout("bob", 2) == .held(seeded.hold))
        #expect(await driver.purchase(seeded.purchase.code) == .purchased(seeded.purchase))
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}

extension LiveStoreTests {
    @Test("Redis emptied mid-sale: reads answer uninitialized, then a rebuild restores it from PostgreSQL")
    func redisFlushedThenRebuilt() async throws {
        let live = try await LiveSale.make()
        defer { live.shutdown() }
        let seeded = try await live.seed()
        _ = try await live.hot.command(["FLUSHALL"])
        #expect(try await live.hot.read(HotRead(keys: [.item(live.sale, ItemID(1))])) == .uninitialized)
        #expect(try await live.hot.commit(HotCommit(generation: Generation(1))) == .fenced)
        await live.expectRestored(seeded)
    }

    @Test("A real Redis restart (empty) mid-sale: the adapter reconnects and the engine rebuilds",
          .enabled(if: LiveStores.redisRestart != nil, "needs TEST_REDIS_RESTART from scripts/with-stores"))
    func redisRestarted() async throws {
        let live = try await LiveSale.make()
        defer { live.shutdown() }
        let seeded = try await live.seed()
        try await LiveStores.run(try #require(LiveStores.redisRestart))
        // The first calls may fail on dead connections; then the store is reachable and empty.
        var reply: HotReadReply?
        for _ in 0..<20 where reply == nil {
            reply = try? await live.hot.read(HotRead(keys: []))
            if reply == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(reply == .uninitialized)
        await live.expectRestored(seeded)
    }

    @Test("PostgreSQL restarted: calls fail, then the adapter reconnects and the data is there",
          .enabled(if: LiveStores.pgRestart != nil, "needs TEST_PG_RESTART from scripts/with-stores"))
    func postgresRestarted() async throws {
        let live = try await LiveSale.make()
        defer { live.shutdown() }
        let seeded = try await live.seed()
        try await LiveStores.run(try #require(LiveStores.pgRestart))
        var failures = 0
        var history: DurableQueryReply?
        let started = ContinuousClock.now
        while history == nil && ContinuousClock.now - started < .seconds(20) {
            do {
                history = try await live.durable.query(.codeHistory(seeded.purchase.code))
            } catch {
                failures += 1
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        #expect(failures >= 1, "the dead connection should have been reported")
        guard case .codeHistory(let found) = try #require(history) else {
            Issue.record("unexpected reply \(String(describing: history))")
            return
        }
        #expect(found.purchase == seeded.purchase)
        // And the engine works again end to end.
        guard case .held(let hold) = await live.checkout("dave", 3) else {
            Issue.record("checkout after the restart failed")
            return
        }
        guard case .purchased(let purchase) = await live.driver.purchase(hold.code) else {
            Issue.record("purchase after the restart failed")
            return
        }
        #expect(purchase.code == hold.code && purchase.user == hold.user)
    }

    @Test("Unreachable stores answer unavailable promptly, without hanging")
    func unreachable() async throws {
        let settings = PoolSettings(connections: 2, callTimeout: .seconds(3))
        let durable = PostgresDurableStore(url: "postgresql://postgres@127.0.0.1:1/postgres", settings: settings, connectTimeoutSeconds: 2)
        let hot = RedisHotStore(url: "redis://127.0.0.1:1", settings: settings, connectTimeout: .seconds(1))
        defer {
            durable.shutdown()
            hot.shutdown()
        }
        let started = ContinuousClock.now
        await #expect(throws: StoreFailure.unavailable) { try await durable.bumpGeneration(GenerationBump(above: Generation(0), stride: 1)) }
        await #expect(throws: StoreFailure.unavailable) { try await hot.read(HotRead(keys: [])) }
        // Through the engine: a definite answer, no hang.
        let driver = RequestDriver(stores: Stores(hot: hot, durable: durable), rules: SaleRules(), clock: { LiveStores.now() })
        #expect(await driver.checkout(CheckoutRequest(user: UserID(unchecked: "u"), item: ItemID(1))) == .unavailable)
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test("A call that gets no reply in time answers timeout")
    func callTimeout() async throws {
        let url = try #require(LiveStores.redisURL)
        let hot = RedisHotStore(url: url, settings: PoolSettings(connections: 1, callTimeout: .milliseconds(300)))
        let blocker = RedisHotStore(url: url, settings: PoolSettings(connections: 1, callTimeout: .seconds(5)))
        defer {
            hot.shutdown()
            blocker.shutdown()
        }
        _ = try await hot.command(["PING"])
        // DEBUG SLEEP blocks the whole server for a second.
        async let sleeping = try? blocker.command(["DEBUG", "SLEEP", "1"])
        try await Task.sleep(for: .milliseconds(100))
        let started = ContinuousClock.now
        await #expect(throws: StoreFailure.timeout) { try await hot.command(["PING"]) }
        #expect(ContinuousClock.now - started < .milliseconds(900))
        _ = await sleeping
        #expect(try await hot.command(["PING"]) == .status("PONG"))
    }
}
