import Engine
import Foundation
import Testing

@testable import Server

/// `GET /live` (what the operator page draws): the shared sale's counts and item grid, this
/// instance's per-second rates and latency, refusals; and the ring of per-second counts behind them.
@Suite struct LiveViewTests {
    /// The grid's two bits per item, decoded as the page decodes them.
    static func cells(_ grid: String, total: Int) throws -> [Int] {
        let bytes = try #require(Base64URL.decode(grid))
        return (0..<total).map { Int(bytes[$0 / 4] >> UInt8(6 - 2 * ($0 % 4))) & 3 }
    }

    @Test(arguments: StoreKind.available) func saleGridAndCountsFollowTheSale(kind: StoreKind) async throws {
        let clock = kind.testClock()
        try await withServer(environment: ["SALE_ITEMS": "10", "USER_LIMIT": "10"], kind: kind, clock: clock.function) { server in
            let before = try await server.get("/live")
            #expect(before.status == 200)
            let sale = try #require(before.json["sale"] as? [String: Any])
            #expect(try Self.cells(try #require(sale["grid"] as? String), total: 10) == Array(repeating: 0, count: 10))
            #expect(sale["sold_out_at"] is NSNull)

            var codes: [String] = []
            for item in 1...10 { codes.append(try #require(try await server.checkout("lena", item).string("code"))) }
            for code in codes[0..<3] { #expect(try await server.purchase(code).status == 200) }
            #expect(try await server.checkout("max", 5).errorCode == "item_held")
            clock.advance(.seconds(2))  // past the one-second cache
            let held = try #require(try await server.get("/live").json["sale"] as? [String: Any])
            #expect((held["sold"] as? Int, held["held"] as? Int, held["free"] as? Int) == (3, 7, 0))
            #expect(try Self.cells(try #require(held["grid"] as? String), total: 10) == [2, 2, 2, 1, 1, 1, 1, 1, 1, 1])
            #expect(held["sold_out_at"] is NSNull)

            for code in codes[3...] { #expect(try await server.purchase(code).status == 200) }
            clock.advance(.seconds(2))
            let live = try await server.get("/live").json
            let soldOut = try #require(live["sale"] as? [String: Any])
            #expect(soldOut["sold"] as? Int == 10)
            #expect((soldOut["sold_out_at"] as? String).map(OpenAPIContract.isDateTime) == true, "\(soldOut)")
            // This instance's rates: the checkouts and purchases, and the refusal by its reason.
            let rates = try #require(live["rates"] as? [String: Any])
            let series = try #require(rates["series"] as? [[String: Any]])
            func total(_ route: String, _ outcome: String) -> Int {
                series.filter { $0["route"] as? String == route && $0["outcome"] as? String == outcome }
                    .flatMap { $0["counts"] as? [Int] ?? [] }.reduce(0, +)
            }
            #expect(total("/checkout", "held") == 10 && total("/purchase", "purchased") == 10 && total("/checkout", "item_held") == 1)
            #expect((live["refusals"] as? [String: Int])?["item_held"] == 1)
            #expect((rates["p99_us"] as? [Any])?.contains { $0 is Int } == true)
            #expect((live["stores"] as? [String: String]) == ["hot": "up", "durable": "up"])
        }
    }

    /// Past `gridItemLimit` items the grid is left out (the counts are not).
    @Test func noGridForHugeSales() async throws {
        try await withServer(environment: ["SALE_ITEMS": String(SaleAPI.gridItemLimit + 1)]) { server in
            let sale = try #require(try await server.get("/live").json["sale"] as? [String: Any])
            #expect(sale["grid"] is NSNull)
            #expect(sale["free"] as? Int == SaleAPI.gridItemLimit + 1)
        }
    }

    @Test func ratesKeepOneSlotPerSecond() {
        let rates = RequestRates(capacity: 10)
        rates.record(route: "/checkout", outcome: "held", nanoseconds: 1_000_000, timed: true, second: 100)
        rates.record(route: "/checkout", outcome: "held", nanoseconds: 3_000_000, timed: true, second: 100)
        rates.record(route: "/health", outcome: "ok", nanoseconds: 900_000_000, timed: false, second: 102)
        rates.record(route: "/checkout", outcome: "item_held", nanoseconds: 2_000_000, timed: true, second: 103)
        let window = rates.window(endingAt: 103, seconds: 4)
        #expect(window.counts[.init(route: "/checkout", outcome: "held")] == [2, 0, 0, 0])
        #expect(window.counts[.init(route: "/health", outcome: "ok")] == [0, 0, 1, 0])
        #expect(window.counts[.init(route: "/checkout", outcome: "item_held")] == [0, 0, 0, 1])
        // Untimed requests (the health check's 900 ms) do not count towards the latency.
        #expect(window.p99Microseconds[2] == nil)
        let p50 = window.p50Microseconds[0], p99 = window.p99Microseconds[0]
        #expect(p50.map { (1_000...1_250).contains($0) } == true, "\(String(describing: p50))")
        #expect(p99.map { (3_000...3_600).contains($0) } == true, "\(String(describing: p99))")
        // Ten seconds later the slots are reused: the old counts are gone.
        rates.record(route: "/checkout", outcome: "held", nanoseconds: 1_000, timed: true, second: 110)
        #expect(rates.window(endingAt: 110, seconds: 10).counts[.init(route: "/checkout", outcome: "held")]?.reduce(0, +) == 1)
    }

    @Test func latencyBucketsAreOrderedAndBounded() {
        var previous = -1
        for microseconds in [1, 2, 3, 4, 5, 7, 8, 100, 1_000, 65_536, 1_000_000, 30_000_000, Int64.max] as [Int64] {
            let bucket = RequestRates.bucket(microseconds: microseconds)
            #expect(bucket >= previous && bucket < RequestRates.latencyBuckets)
            if microseconds < 1 << 24 { #expect(RequestRates.upperEdge(ofBucket: bucket) > microseconds, "\(microseconds)") }
            previous = bucket
        }
    }
}
