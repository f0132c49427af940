import Engine
import Testing

@Suite("Purchase and rebuild decisions")
struct PurchaseAndRebuildRulesTests {
    typealias F = Fixture
    let key = HotKey.item(Fixture.sale, ItemID(1))

    @Test func liveCodeOfTheHoldingRecordBuysForItsHolder() {
        let hold = F.hold(1, F.bob, expires: F.t0 + .seconds(1))
        let decision = PurchaseRules.decide(code: hold.code, now: F.t0, key: key, record: Versioned(value: .item(.held(hold)), version: 3), generation: Generation(7))
        guard case .buy(let purchase, let commit) = decision else {
            Issue.record("expected a buy")
            return
        }
        #expect(purchase.user == F.bob && purchase.code == hold.code && purchase.purchasedAt == F.t0)
        #expect(commit.generation == Generation(7))
        #expect(commit.guards == [key: 3])
        #expect(commit.setAdds[.sold(F.sale)] == [ItemID(1)])
        #expect(commit.setAdds[.pending(F.sale)] == [ItemID(1)])
    }

    @Test func codeIsExpiredAtItsExpiry() {
        let hold = F.hold(1, F.bob, expires: F.t0)
        #expect(PurchaseRules.decide(code: hold.code, now: F.t0, key: key, record: Versioned(value: .item(.held(hold)), version: 1), generation: Generation(1)) == .expired)
    }

    @Test func usedCodeAnswersTheSamePurchase() {
        let purchase = Purchase(code: F.code(1), user: F.bob, purchasedAt: F.t0)
        #expect(PurchaseRules.decide(code: purchase.code, now: F.t0 + .seconds(999), key: key, record: Versioned(value: .item(.sold(purchase)), version: 2), generation: Generation(1)) == .completed(purchase))
    }

    @Test func anotherCodeOnTheRecordSendsToTheHistory() {
        let hold = F.hold(1, F.bob, expires: F.t0 + .seconds(30))
        let foreign = F.code(1, "ZZZZZZZZZZZZZZZZZZZZZZ")
        #expect(PurchaseRules.decide(code: foreign, now: F.t0, key: key, record: Versioned(value: .item(.held(hold)), version: 1), generation: Generation(1)) == .consultHistory)
        #expect(PurchaseRules.decide(code: foreign, now: F.t0, key: key, record: .absent, generation: Generation(1)) == .consultHistory)
    }

    @Test func historyDecidesUnknownExpiredOrCompleted() {
        let hold = F.hold(1, F.bob, expires: F.t0)
        let purchase = Purchase(code: hold.code, user: F.bob, purchasedAt: F.t0)
        #expect(PurchaseRules.decide(history: CodeHistory(hold: nil, purchase: nil, generation: Generation(1))) == .unknown)
        #expect(PurchaseRules.decide(history: CodeHistory(hold: hold, purchase: nil, generation: Generation(1))) == .expired)
        #expect(PurchaseRules.decide(history: CodeHistory(hold: hold, purchase: purchase, generation: Generation(1))) == .completed(purchase))
    }

    @Test func rebuildRestoresPurchasesAndTheNewestHoldPerItem() {
        let sold = Purchase(code: F.code(1), user: F.alice, purchasedAt: F.t0)
        let staleHoldOfSold = F.hold(1, F.alice, expires: F.t0 + .seconds(5), nonce: "AAAAAAAAAAAAAAAAAAAAAA")
        let older = F.hold(2, F.bob, expires: F.t0 + .seconds(1), nonce: "OOOOOOOOOOOOOOOOOOOOOO")
        let newer = F.hold(2, F.bob, expires: F.t0 + .seconds(20), nonce: "PPPPPPPPPPPPPPPPPPPPPP")
        let (records, sets) = RebuildRules.hotState(from: DurableSnapshot(purchases: [sold], holds: [newer, staleHoldOfSold, older]))
        #expect(records[.item(F.sale, ItemID(1))] == .item(.sold(sold)))
        #expect(records[.item(F.sale, ItemID(2))] == .item(.held(newer)))
        #expect(records[.user(F.sale, F.alice)] == .user(UserRecord(purchased: [ItemID(1)])))
        #expect(records[.user(F.sale, F.bob)] == .user(UserRecord(slots: [HoldSlot(code: newer.code, expiresAt: newer.expiresAt)])))
        #expect(sets[.sold(F.sale)] == [ItemID(1)])
    }

    @Test func rebuildCoversEverySaleWhoseHoldsMayLive() {
        var rules = F.rules
        rules.saleLength = .seconds(60)
        rules.holdTTL = .seconds(60)
        let now = Instant.seconds(600 + 30)  // 30 s into sale 10
        let sales = RebuildRules.salesToRebuild(rules: rules, now: now)
        #expect(sales.first == SaleID(8) || sales.first == SaleID(9))
        #expect(sales.contains(SaleID(9)) && sales.contains(SaleID(10)))
    }
}
