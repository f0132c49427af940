import Adapters
import Engine
import Foundation
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
}
