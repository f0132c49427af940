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
        #expect(hot.read(HotRead(keys: [], counts: [sold], members: [sold])) == .snapshot(HotSnapshot(generation: Generation(1), records: [], counts: [1], members: [[ItemID(3)]])))
    }

    @Test func durableWritesAreIdempotentFencedAndConstrained() {
        var durable = DurableStoreModel()
        let code = Code(sale: SaleID(1), item: ItemID(1), nonce: "AAAAAAAAAAAAAAAAAAAAAA")
        let other = Code(sale: SaleID(1), item: ItemID(1), nonce: "BBBBBBBBBBBBBBBBBBBBBB")
        let purchase = Purchase(code: code, user: UserID(unchecked: "u"), purchasedAt: .seconds(1))
        #expect(durable.write(.purchase(purchase, fence: Generation(0))) == .written)
        #expect(durable.write(.purchase(purchase, fence: Generation(0))) == .alreadyPresent)
        #expect(durable.bumpGeneration() == Generation(1))
        // A committed write retried after a bump is still recognised as done.
        #expect(durable.write(.purchase(purchase, fence: Generation(0))) == .alreadyPresent)
        let second = Purchase(code: other, user: UserID(unchecked: "v"), purchasedAt: .seconds(2))
        #expect(durable.write(.purchase(second, fence: Generation(0))) == .fenced)
        #expect(durable.write(.purchase(second, fence: Generation(1))) == .rejected)
    }
}
