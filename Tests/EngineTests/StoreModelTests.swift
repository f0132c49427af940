import Engine
import StoreModel
import Testing

@Suite("Store port semantics")
struct StoreModelTests {
    let key = HotKey.item(SaleID(1), ItemID(1))
    let value = HotValue.item(.held(Hold(code: Code(sale: SaleID(1), item: ItemID(1), nonce: "AAAAAAAAAAAAAAAAAAAAAA"), user: UserID(unchecked: "u"), expiresAt: .seconds(9))))

    @Test func hotStoreIsFencedUntilInstalled() {
        var hot = HotStoreModel()
        #expect(hot.read(HotRead(keys: [key])) == .uninitialized)
        #expect(hot.commit(HotCommit(generation: Generation(1), guards: [key: 0], puts: [key: value])) == .fenced)
        #expect(hot.install(HotInstall(generation: Generation(1), records: [:], sets: [:])) == .installed)
        #expect(hot.install(HotInstall(generation: Generation(1), records: [:], sets: [:])) == .superseded)
        #expect(hot.commit(HotCommit(generation: Generation(1), guards: [key: 0], puts: [key: value])) == .committed)
        #expect(hot.commit(HotCommit(generation: Generation(1), guards: [key: 0], puts: [key: value])) == .conflict)
        #expect(hot.commit(HotCommit(generation: Generation(2), guards: [key: 1], puts: [key: value])) == .fenced)
        hot.loseEverything()
        #expect(hot.read(HotRead(keys: [key])) == .uninitialized)
    }

    @Test func deletionKeepsVersionsMovingForward() {
        var hot = HotStoreModel(generation: Generation(1))
        _ = hot.commit(HotCommit(generation: Generation(1), guards: [key: 0], puts: [key: value]))
        _ = hot.commit(HotCommit(generation: Generation(1), guards: [key: 1], puts: [key: HotValue?.none]))
        #expect(hot.record(key) == Versioned(value: nil, version: 2))
        // A reader that saw version 1 can never succeed again (no ABA).
        #expect(hot.commit(HotCommit(generation: Generation(1), guards: [key: 1], puts: [key: value])) == .conflict)
    }

    @Test func setsAreIdempotent() {
        var hot = HotStoreModel(generation: Generation(1))
        let sold = HotSetKey.sold(SaleID(1))
        _ = hot.commit(HotCommit(generation: Generation(1), setAdds: [sold: [ItemID(3), ItemID(3)]]))
        _ = hot.commit(HotCommit(generation: Generation(1), setAdds: [sold: [ItemID(3)]]))
        #expect(hot.read(HotRead(keys: [], counts: [sold], members: [sold])) == .snapshot(HotSnapshot(generation: Generation(1), records: [], counts: [1], members: [[ItemID(3)]], storeTime: hot.clock)))
    }

    @Test func durableWritesAreIdempotentFencedAndConstrained() {
        var durable = DurableStoreModel()
        let code = Code(sale: SaleID(1), item: ItemID(1), nonce: "AAAAAAAAAAAAAAAAAAAAAA")
        let other = Code(sale: SaleID(1), item: ItemID(1), nonce: "BBBBBBBBBBBBBBBBBBBBBB")
        let purchase = Purchase(code: code, user: UserID(unchecked: "u"), purchasedAt: .seconds(1))
        #expect(durable.write(.purchase(purchase, fence: Generation(0), userLimit: 10)) == .written)
        #expect(durable.write(.purchase(purchase, fence: Generation(0), userLimit: 10)) == .alreadyPresent)
        #expect(durable.bumpGeneration(GenerationBump(above: Generation(0), stride: 1)) == Generation(1))
        // A committed write retried after a bump is still recognised as done.
        #expect(durable.write(.purchase(purchase, fence: Generation(0), userLimit: 10)) == .alreadyPresent)
        let second = Purchase(code: other, user: UserID(unchecked: "v"), purchasedAt: .seconds(2))
        #expect(durable.write(.purchase(second, fence: Generation(0), userLimit: 10)) == .fenced)
        #expect(durable.write(.purchase(second, fence: Generation(1), userLimit: 10)) == .rejected)
    }

    @Test func durableStoreRefusesAPurchaseBeyondTheUserLimit() {
        var durable = DurableStoreModel()
        let user = UserID(unchecked: "u")
        func purchase(_ item: Int) -> Purchase {
            Purchase(code: Code(sale: SaleID(1), item: ItemID(item), nonce: "AAAAAAAAAAAAAAAAAAAAA\(item % 10)"), user: user,
                     purchasedAt: .seconds(1))
        }
        #expect(durable.write(.purchase(purchase(1), fence: nil, userLimit: 2)) == .written)
        #expect(durable.write(.purchase(purchase(2), fence: nil, userLimit: 2)) == .written)
        #expect(durable.write(.purchase(purchase(3), fence: nil, userLimit: 2)) == .rejected)
        // The retry of a recorded purchase is still recognised (idempotency comes first).
        #expect(durable.write(.purchase(purchase(2), fence: nil, userLimit: 2)) == .alreadyPresent)
        #expect(durable.purchaseCount(sale: SaleID(1), user: user) == 2)
    }

    @Test func generationBumpsPassTheHotStoresAndDrawTheirStride() {
        var durable = DurableStoreModel()
        #expect(durable.bumpGeneration(GenerationBump(above: Generation(0), stride: 7)) == Generation(7))
        // A hot store ahead of the durable one (another database, a restored backup): bump past it.
        #expect(durable.bumpGeneration(GenerationBump(above: Generation(100), stride: 3)) == Generation(103))
        #expect(durable.bumpGeneration(GenerationBump(above: Generation(5), stride: 1)) == Generation(104))
    }

    /// Redis restarting from an older snapshot (or a replica promoted) brings back old contents
    /// on a new server: they are not served, and a rebuild's install replaces them whatever
    /// their generation.
    @Test func hotStoreServesNoContentsInstalledOnAnotherServer() {
        var hot = HotStoreModel()
        #expect(hot.install(HotInstall(generation: Generation(5), records: [key: value], sets: [:])) == .installed)
        let saved = hot
        #expect(hot.read(HotRead(keys: [key])) != .uninitialized)
        #expect(hot.commit(HotCommit(generation: Generation(5), guards: [key: 1], puts: [key: HotValue?.none])) == .committed)
        hot.restart(from: saved)
        #expect(hot.generation == Generation(5))
        #expect(hot.trustedGeneration == nil)
        #expect(hot.read(HotRead(keys: [key])) == .uninitialized)
        #expect(hot.commit(HotCommit(generation: Generation(5), guards: [key: 1], puts: [key: HotValue?.none])) == .fenced)
        #expect(hot.install(HotInstall(generation: Generation(5), records: [:], sets: [:])) == .installed)
        #expect(hot.read(HotRead(keys: [key])) == .snapshot(HotSnapshot(generation: Generation(5), records: [.absent], storeTime: hot.clock)))
        // The planted bug: the same restart, with an adapter that never compares identities.
        var blind = saved
        blind.restart(from: saved, keepingIdentity: true)
        #expect(blind.read(HotRead(keys: [key])) == .snapshot(HotSnapshot(generation: Generation(5), records: [Versioned(value: value, version: 1)], storeTime: blind.clock)))
    }

    /// A purchase's deadline and a checkout's window are judged by the store's clock, after the
    /// guards: a commit that is late (or early) changes nothing.
    @Test func commitsOutsideTheirTimeWindowAreRefused() {
        var hot = HotStoreModel(generation: Generation(1))
        hot.clock = .seconds(100)
        let late = HotCommit(generation: Generation(1), guards: [key: 0], puts: [key: value], deadline: .seconds(100))
        #expect(hot.commit(late) == .expired)
        #expect(hot.record(key) == .absent)
        let early = HotCommit(generation: Generation(1), guards: [key: 0], puts: [key: value], validFrom: .seconds(101))
        #expect(hot.commit(early) == .expired)
        // Guards first: a stale commit is a conflict, whatever its window.
        #expect(hot.commit(HotCommit(generation: Generation(1), guards: [key: 5], puts: [key: value], deadline: .seconds(1))) == .conflict)
        let inTime = HotCommit(generation: Generation(1), guards: [key: 0], puts: [key: value], validFrom: .seconds(99), deadline: .seconds(101))
        #expect(hot.commit(inTime) == .committed)
    }
}
