import Engine
import Testing

@Suite("A sale's summary, read in bounded pieces")
struct StatusRulesTests {
    var rules: SaleRules {
        var rules = Fixture.rules
        rules.itemsPerSale = 2_500
        return rules
    }

    /// The read endpoints' protocol, which the server's handlers and the simulator both follow.
    @Test func aReadIsAnsweredRebuiltOnceOrUnavailable() {
        let snapshot = HotSnapshot(generation: Generation(3), records: [.absent])
        let ours = Generation(3)
        #expect(StatusRules.afterRead(.hotRead(.snapshot(snapshot)), rebuiltAlready: false, confirmed: ours) == .use(snapshot))
        #expect(StatusRules.afterRead(.hotRead(.uninitialized), rebuiltAlready: false, confirmed: ours) == .rebuildThenRead)
        #expect(StatusRules.afterRead(.hotRead(.uninitialized), rebuiltAlready: true, confirmed: ours) == .unavailable)
        #expect(StatusRules.afterRead(.failed(.timeout), rebuiltAlready: false, confirmed: ours) == .unavailable)
    }

    /// A snapshot of a generation PostgreSQL has not confirmed (another database's Redis, or one left
    /// behind a rebuild) is checked first, and answered only if PostgreSQL has that generation.
    @Test func anUnconfirmedGenerationIsCheckedAgainstPostgreSQL() {
        let snapshot = HotSnapshot(generation: Generation(9), records: [.absent])
        #expect(StatusRules.afterRead(.hotRead(.snapshot(snapshot)), rebuiltAlready: false, confirmed: nil) == .confirmGeneration(snapshot))
        #expect(StatusRules.afterRead(.hotRead(.snapshot(snapshot)), rebuiltAlready: false, confirmed: Generation(3)) == .confirmGeneration(snapshot))
        let durable = { (generation: Int64) in StoreReply.durableQuery(.generation(Generation(generation))) }
        #expect(StatusRules.afterGenerationCheck(durable(9), of: snapshot, rebuiltAlready: false) == .use(snapshot))
        #expect(StatusRules.afterGenerationCheck(durable(3), of: snapshot, rebuiltAlready: false) == .rebuildThenRead)
        #expect(StatusRules.afterGenerationCheck(durable(3), of: snapshot, rebuiltAlready: true) == .unavailable)
        #expect(StatusRules.afterGenerationCheck(.failed(.timeout), of: snapshot, rebuiltAlready: false) == .unavailable)
    }

    @Test func readsEveryItemOnceInBoundedReads() {
        let reads = StatusRules.summaryReads(sale: Fixture.sale, rules: rules, chunk: 1_000)
        #expect(reads.map(\.keys.count) == [1_000, 1_000, 500])
        #expect(reads.map(\.counts) == [[.sold(Fixture.sale)], [], []])
        let items = reads.flatMap(\.keys).map { key -> Int in
            if case .item(_, let item) = key { return item.rawValue }
            return 0
        }
        #expect(items == Array(1...2_500))
    }

    @Test func countsHeldAndSoldAcrossThePieces() {
        let now = Fixture.t0
        let reads = StatusRules.summaryReads(sale: Fixture.sale, rules: rules, chunk: 1_000)
        var snapshots = reads.map { read in
            HotSnapshot(generation: Generation(3), records: read.keys.map { _ in .absent }, counts: read.counts.map { _ in 7 })
        }
        let live = Fixture.hold(1, Fixture.alice, expires: now + .seconds(5))
        let expired = Fixture.hold(2, Fixture.bob, expires: now - .seconds(5))
        snapshots[0].records[0] = Versioned(value: .item(.held(live)), version: 1)
        snapshots[2].records[499] = Versioned(value: .item(.held(live)), version: 1)
        snapshots[1].records[3] = Versioned(value: .item(.held(expired)), version: 1)
        let summary = StatusRules.summary(sale: Fixture.sale, rules: rules, snapshots: snapshots, now: now)
        #expect(summary?.held == 2 && summary?.sold == 7 && summary?.total == 2_500)

        snapshots[1].generation = Generation(4)  // rebuilt between two reads
        #expect(StatusRules.summary(sale: Fixture.sale, rules: rules, snapshots: snapshots, now: now) == nil)
        #expect(StatusRules.summary(sale: Fixture.sale, rules: rules, snapshots: Array(snapshots.prefix(2)), now: now) == nil)
    }
}
