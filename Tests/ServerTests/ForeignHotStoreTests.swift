import Adapters
import Engine
import Foundation
import PostgresAdapter
import RedisAdapter
import Testing

@testable import Server

/// The read endpoints write nothing, so no fence stops them from answering from a Redis that holds
/// another database's state: they answer only from a generation PostgreSQL confirmed
/// (`StatusRules.afterRead`), and rebuild the hot store otherwise. Found by the simulator's G2.
@Suite struct ForeignHotStoreTests {
    @Test("A server pointed at another database does not show the first database's sales through a shared Redis")
    func readEndpointsDoNotAnswerFromAnotherDatabase() async throws {
        let clock = WallClock.now
        let first = InMemoryStores(clock: clock)
        let second = InMemoryStores(clock: clock)
        let environment = ["SALE_ITEMS": "5", "USER_LIMIT": "3"]
        let original = try await RunningServer.start(
            environment: environment, stores: WiredStores(stores: first.stores, durable: false, mode: "first", close: {}), clock: clock)
        let held = try await original.checkout("alice", 1)
        let code = try #require(held.string("code"), "\(held)")
        let bought = try await original.purchase(code)
        let sale = try #require(bought.int("sale_id"), "\(bought)")
        #expect(try await original.get("/sales/\(sale)/items/1").string("status") == "sold")
        try await original.stop()

        // The same hot store, another durable database: nothing of the first sale is this database's.
        let shared = Stores(hot: first, durable: second)
        let pointedElsewhere = try await RunningServer.start(
            environment: environment, stores: WiredStores(stores: shared, durable: false, mode: "second", close: {}), clock: clock)
        let item = try await pointedElsewhere.get("/sales/\(sale)/items/1")
        #expect(item.status == 200 && item.string("status") == "available", "\(item)")
        let summary = try await pointedElsewhere.get("/sale")
        #expect((summary.json["items"] as? [String: Any])?["sold"] as? Int == 0, "\(summary)")
        // And its own sale works as usual.
        let fresh = try await pointedElsewhere.checkout("bob", 1)
        #expect(fresh.status == 200, "\(fresh)")
        try await pointedElsewhere.stop()
    }

    /// The same on the real stores: one Redis, two PostgreSQL databases (schemas), the second server
    /// pointed at the other one.
    @Test("The same with real Redis and PostgreSQL", .enabled(if: Self.liveStores != nil, "needs TEST_DATABASE_URL and TEST_REDIS_URL (scripts/with-stores)"))
    func readEndpointsDoNotAnswerFromAnotherDatabaseOnRealStores() async throws {
        let (databaseURL, redisURL) = try #require(Self.liveStores)
        let redis = RedisHotStore(url: redisURL, keyPrefix: "foreign\(UInt32.random(in: 0...UInt32.max))")
        let first = PostgresDurableStore(url: try Self.freshSchema(databaseURL))
        let second = PostgresDurableStore(url: try Self.freshSchema(databaseURL))
        defer {
            redis.shutdown()
            first.shutdown()
            second.shutdown()
        }
        let environment = ["SALE_ITEMS": "5", "USER_LIMIT": "3"]
        let original = try await RunningServer.start(
            environment: environment, stores: WiredStores(stores: Stores(hot: redis, durable: first), durable: true, mode: "first", close: {}),
            clock: WallClock.now)
        let code = try #require(try await original.checkout("alice", 1).string("code"))
        let bought = try await original.purchase(code)
        let sale = try #require(bought.int("sale_id"), "\(bought)")
        #expect(try await original.get("/sales/\(sale)/items/1").string("status") == "sold")
        try await original.stop()

        let pointedElsewhere = try await RunningServer.start(
            environment: environment, stores: WiredStores(stores: Stores(hot: redis, durable: second), durable: true, mode: "second", close: {}),
            clock: WallClock.now)
        let item = try await pointedElsewhere.get("/sales/\(sale)/items/1")
        #expect(item.status == 200 && item.string("status") == "available", "\(item)")
        let summary = try await pointedElsewhere.get("/sale")
        #expect((summary.json["items"] as? [String: Any])?["sold"] as? Int == 0, "\(summary)")
        try await pointedElsewhere.stop()
    }

    static var liveStores: (String, String)? {
        let environment = ProcessInfo.processInfo.environment
        guard let database = environment["TEST_DATABASE_URL"], let redis = environment["TEST_REDIS_URL"] else { return nil }
        return (database, redis)
    }

    /// A schema of its own with the migrations applied; a URL that uses it.
    static func freshSchema(_ base: String) throws -> String {
        let schema = "f_\(UInt64.random(in: 0...UInt64.max) % 1_000_000_000_000)"
        try Migrator.execute("CREATE SCHEMA \(schema)", connectionString: base)
        let url = "\(base)\(base.contains("?") ? "&" : "?")options=-csearch_path%3D\(schema)"
        let migrations = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("migrations").path
        try Migrator.apply(directory: migrations, connectionString: url)
        return url
    }
}
