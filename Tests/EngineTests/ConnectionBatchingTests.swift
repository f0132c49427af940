import Engine
import StoreModel
import Testing

/// The batching rules every store connection runs, on the server and in the simulator.
@Suite struct ConnectionBatchingTests {
    @Test("A queue leaves oldest first, at most maxBatch at a time")
    func queueOrderAndCap() {
        var queue = ConnectionQueue<Int>(maxBatch: 3)
        for job in 1...7 { queue.append(job) }
        var batch: [Int] = []
        queue.takeBatch(into: &batch)
        #expect(batch == [1, 2, 3] && queue.count == 4)
        batch.removeAll()
        queue.takeBatch(into: &batch)
        #expect(batch == [4, 5, 6])
        batch.removeAll()
        queue.takeBatch(into: &batch)
        #expect(batch == [7] && queue.isEmpty)
        batch.removeAll()
        queue.takeBatch(into: &batch)
        #expect(batch.isEmpty)
    }

    @Test("A closing connection hands back everything that waited")
    func removeAll() {
        var queue = ConnectionQueue<String>(maxBatch: 8)
        queue.append("a")
        queue.append("b")
        #expect(queue.removeAll() == ["a", "b"] && queue.isEmpty)
    }

    @Test("Calls past their deadline are answered at once and never sent; the rest keep their order")
    func dropExpired() {
        var live: [Int] = []
        var expired: [Int] = []
        BatchRules.dropExpired([5, 1, 8, 2, 9], into: &live, isExpired: { $0 < 3 }, expire: { expired.append($0) })
        #expect(live == [5, 8, 9] && expired == [1, 2])
    }

    @Test("Replies go to the calls by position; a call with no reply gets the stand-in")
    func fanOut() {
        var got: [(String, Int)] = []
        BatchRules.fanOut([10, 20], to: ["a", "b", "c"], missing: -1) { got.append(($0, $1)) }
        #expect(got.map(\.0) == ["a", "b", "c"] && got.map(\.1) == [10, 20, -1])
    }

    @Test("A call made on a connection's own thread stays there; otherwise the least queued, first on ties")
    func connectionChoice() {
        let queued = [3, 1, 1, 0]
        #expect(BatchRules.connection(current: 2, count: 4) { queued[$0] } == 2)
        #expect(BatchRules.connection(current: nil, count: 4) { queued[$0] } == 3)
        #expect(BatchRules.connection(current: nil, count: 3) { queued[$0] } == 1)
        #expect(BatchRules.connection(current: nil, count: 1) { queued[$0] } == 0)
        var asked: [Int] = []
        _ = BatchRules.connection(current: nil, count: 4) { asked.append($0); return [0, 5, 5, 5][$0] }
        #expect(asked == [0], "an idle first connection ends the search")
    }

    @Test("PostgreSQL applies attempts before purchases, in key order; equal keys keep their queue order")
    func durableWriteOrder() {
        var rng = SplitMix64(seed: 3)
        let attempt = { (id: String) in
            CheckoutAttempt(id: AttemptID(unchecked: id), sale: SaleID(1), item: ItemID(1), user: UserID(unchecked: "u"), outcome: .itemHeld,
                            code: nil, expiresAt: nil, attemptedAt: Instant(microseconds: 0))
        }
        let purchase = Purchase(code: Code.generate(sale: SaleID(1), item: ItemID(2), using: &rng), user: UserID(unchecked: "u"),
                                purchasedAt: Instant(microseconds: 0))
        let writes: [DurableWrite] = [
            .purchase(purchase, fence: nil, userLimit: 10),
            .attempt(attempt("b"), fence: nil),
            .attempt(attempt("a"), fence: Generation(1)),
            .attempt(attempt("b"), fence: Generation(2)),
        ]
        #expect(BatchRules.durableWriteOrder(writes) == [2, 1, 3, 0])
    }
}
