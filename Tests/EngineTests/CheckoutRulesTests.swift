import Engine
import Testing

@Suite("Checkout decision")
struct CheckoutRulesTests {
    typealias F = Fixture

    @Test func freeItemIsHeldWithGuardsOnItemAndUser() {
        guard case .hold(let hold, let commit) = F.decide(F.snapshot(item: nil, user: nil)) else {
            Issue.record("expected a hold")
            return
        }
        #expect(hold.user == F.alice)
        #expect(hold.expiresAt == F.t0 + F.rules.holdTTL)
        #expect(commit.guards[.item(F.sale, ItemID(1))] == 0)
        #expect(commit.guards[.user(F.sale, F.alice)] == 0)
        #expect(commit.puts[.user(F.sale, F.alice)] == .user(UserRecord(slots: [HoldSlot(code: hold.code, expiresAt: hold.expiresAt)])))
    }

    @Test func refusalsComeInTheSpecifiedOrder() {
        let sold = ItemRecord.sold(Purchase(code: F.code(1), user: F.bob, purchasedAt: F.t0))
        let full = UserRecord(purchased: [ItemID(5), ItemID(6)])
        // sold_out beats everything
        #expect(F.decide(F.snapshot(item: sold, user: full, sold: 10)) == .refuse(.soldOut))
        // item_sold beats the limit
        #expect(F.decide(F.snapshot(item: sold, user: full, sold: 3)) == .refuse(.itemSold))
        // the limit beats item_held
        let heldByBob = ItemRecord.held(F.hold(1, F.bob, expires: F.t0 + .seconds(30)))
        #expect(F.decide(F.snapshot(item: heldByBob, user: full)) == .refuse(.userLimitReached))
        #expect(F.decide(F.snapshot(item: heldByBob, user: nil)) == .refuse(.itemHeld))
    }

    @Test func ownLiveHoldIsHandedOutAgainEvenAtTheLimit() {
        let mine = F.hold(1, F.alice, expires: F.t0 + .seconds(30))
        let record = UserRecord(slots: [HoldSlot(code: mine.code, expiresAt: mine.expiresAt)], purchased: [ItemID(9)])
        #expect(F.decide(F.snapshot(item: .held(mine), user: record)) == .reaffirm(mine))
    }

    @Test func expiredHoldOfAnotherUserIsTakenOnlyAfterTheSkewAllowance() {
        let expiry = F.t0
        let bobs = ItemRecord.held(F.hold(1, F.bob, expires: expiry))
        #expect(F.decide(F.snapshot(item: bobs, user: nil), now: expiry) == .refuse(.itemHeld))
        #expect(F.decide(F.snapshot(item: bobs, user: nil), now: expiry + F.rules.clockSkewAllowance - .milliseconds(1)) == .refuse(.itemHeld))
        guard case .hold(let hold, _) = F.decide(F.snapshot(item: bobs, user: nil), now: expiry + F.rules.clockSkewAllowance) else {
            Issue.record("expected a takeover")
            return
        }
        #expect(hold.user == F.alice)
    }

    @Test func ownExpiredHoldIsRenewedWithANewCodeWithoutCountingTwice() {
        let mine = F.hold(1, F.alice, expires: F.t0)
        let record = UserRecord(slots: [HoldSlot(code: mine.code, expiresAt: mine.expiresAt)], purchased: [ItemID(9)])
        guard case .hold(let renewed, let commit) = F.decide(F.snapshot(item: .held(mine), user: record), now: F.t0) else {
            Issue.record("expected a renewal")
            return
        }
        #expect(renewed.code != mine.code)
        #expect(commit.puts[.user(F.sale, F.alice)] == .user(UserRecord(slots: [HoldSlot(code: renewed.code, expiresAt: renewed.expiresAt)], purchased: [ItemID(9)])))
    }

    @Test func limitCountsPurchasesAndHoldsInTheAllowance() {
        let live = HoldSlot(code: F.code(3), expiresAt: F.t0 + .seconds(5))
        let inAllowance = HoldSlot(code: F.code(4), expiresAt: F.t0 - .milliseconds(500))
        #expect(F.decide(F.snapshot(item: nil, user: UserRecord(slots: [live, inAllowance]))) == .refuse(.userLimitReached))
        #expect(F.decide(F.snapshot(item: nil, user: UserRecord(slots: [live], purchased: [ItemID(7)]))) == .refuse(.userLimitReached))
        guard case .hold = F.decide(F.snapshot(item: nil, user: UserRecord(slots: [live]))) else {
            Issue.record("one slot left: expected a hold")
            return
        }
    }

    @Test func slotsPastTheAllowanceAreResolvedFromTheirItems() {
        let old3 = HoldSlot(code: F.code(3, "CCCCCCCCCCCCCCCCCCCCCC"), expiresAt: F.t0 - .seconds(10))
        let old4 = HoldSlot(code: F.code(4, "DDDDDDDDDDDDDDDDDDDDDD"), expiresAt: F.t0 - .seconds(10))
        let snapshot = F.snapshot(item: nil, user: UserRecord(slots: [old3, old4]))
        #expect(F.decide(snapshot) == .resolveSlots([.item(F.sale, ItemID(3)), .item(F.sale, ItemID(4))]))

        // item 3 was bought with its slot's code; item 4 is still held by it (abandoned).
        let resolved: [ItemID: Versioned] = [
            ItemID(3): Versioned(value: .item(.sold(Purchase(code: old3.code, user: F.alice, purchasedAt: F.t0))), version: 2),
            ItemID(4): Versioned(value: .item(.held(Hold(code: old4.code, user: F.alice, expiresAt: old4.expiresAt))), version: 1),
        ]
        guard case .hold(let hold, let commit) = F.decide(snapshot, resolved: resolved) else {
            Issue.record("expected a hold after resolution")
            return
        }
        // The abandoned item is released (a tombstone, guarded), the bought one folded in.
        #expect(commit.puts[.item(F.sale, ItemID(4))] == .some(nil))
        #expect(commit.guards[.item(F.sale, ItemID(4))] == 1)
        #expect(commit.puts[.user(F.sale, F.alice)] == .user(UserRecord(slots: [HoldSlot(code: hold.code, expiresAt: hold.expiresAt)], purchased: [ItemID(3)])))
    }

    @Test func slotsTakenOverByOthersAreDropped() {
        let old = HoldSlot(code: F.code(3, "CCCCCCCCCCCCCCCCCCCCCC"), expiresAt: F.t0 - .seconds(10))
        let other = HoldSlot(code: F.code(5), expiresAt: F.t0 + .seconds(10))
        let snapshot = F.snapshot(item: nil, user: UserRecord(slots: [old, other]))
        let resolved: [ItemID: Versioned] = [ItemID(3): Versioned(value: .item(.held(F.hold(3, F.bob, expires: F.t0 + .seconds(50)))), version: 4)]
        guard case .hold(_, let commit) = F.decide(snapshot, resolved: resolved) else {
            Issue.record("expected a hold")
            return
        }
        #expect(commit.puts[.item(F.sale, ItemID(3))] == nil)
        guard case .user(let record)?? = commit.puts[.user(F.sale, F.alice)] else {
            Issue.record("expected a user record")
            return
        }
        #expect(record.slots.count == 2)
        #expect(!record.slots.contains(old))
    }
}
