import Engine
import StoreModel
import Testing

@testable import Simulator

/// The answer judgments A1–A7 and the read endpoint judgments G1–G3, each shown to fire on a
/// hand-built store history and to stay silent where the answer was right. (Clean runs, where none
/// may fire, are the sweeps in `SimulationTests`; planted bugs that each one catches are below.)
@Suite("Answer judgments")
struct AnswerJudgmentTests {
    static let sale = SaleID(100)
    static let rules = SaleRules(itemsPerSale: 2, saleLength: .seconds(600), userLimit: 2, holdTTL: .seconds(30))
    static let alice = UserID(unchecked: "alice")
    static let bob = UserID(unchecked: "bob")
    static let t0 = Instant.seconds(1_000)

    /// A checker watching a hot store this service installed at `t0`, and that store.
    struct World {
        var checker = Checker(rules: AnswerJudgmentTests.rules, maxSkew: .seconds(1), sales: [AnswerJudgmentTests.sale])
        var hot = HotStoreModel()
        var durable = DurableStoreModel()
        let generation = Generation(7)

        init() {
            hot.clock = AnswerJudgmentTests.t0
            let install = HotInstall(generation: generation, records: [:], sets: [:])
            _ = hot.install(install)
            checker.installed(hot, install: install, durableGeneration: install.generation, now: AnswerJudgmentTests.t0)
        }

        /// Commits `puts` (and the sold set) at `at`, as the simulated Redis does.
        mutating func commit(_ puts: [HotKey: HotValue?], sold: [ItemID] = [], at: Instant) {
            hot.clock = at
            let commit = HotCommit(generation: generation, puts: puts, setAdds: sold.isEmpty ? [:] : [.sold(AnswerJudgmentTests.sale): sold])
            #expect(hot.commit(commit) == .committed)
            checker.hotCommitApplied(commit, hot: hot, now: at)
        }

        /// Records `hold` as handed out in PostgreSQL at `at`.
        mutating func record(_ hold: Hold, at: Instant) {
            let attempt = CheckoutAttempt(
                id: AttemptID(unchecked: hold.code.nonce), sale: hold.sale, item: hold.item, user: hold.user, outcome: .held,
                code: hold.code, expiresAt: hold.expiresAt, attemptedAt: at)
            let write = DurableWrite.attempt(attempt, fence: nil)
            let reply = durable.write(write)
            checker.durableWriteApplied(write, reply: reply, durable: durable, now: at)
        }

        var guarantees: [String] { checker.violations.map(Shrinker.guarantee(of:)) }
    }

    static func hold(_ item: Int, _ user: UserID, expiresAt: Instant) -> Hold {
        let nonce = "n\(item)\(user.rawValue)"
        return Hold(code: Code(sale: sale, item: ItemID(item), nonce: nonce + String(repeating: "x", count: 22 - nonce.count)),
                    user: user, expiresAt: expiresAt)
    }

    static func at(_ seconds: Int64) -> Instant { t0 + .seconds(seconds) }

    @Test func itemSoldOnlyIfSoldInTheWindow() {
        var world = World()
        let hold = Self.hold(1, Self.alice, expiresAt: Self.at(30))
        world.commit([.item(Self.sale, ItemID(1)): .item(.held(hold))], at: Self.at(1))
        world.checker.judgeCheckout(.refused(.itemSold), sale: Self.sale, item: ItemID(1), user: Self.bob, window: Self.at(2)...Self.at(3))
        #expect(world.guarantees == ["A1"])
        world.commit([.item(Self.sale, ItemID(1)): .item(.sold(Purchase(code: hold.code, user: Self.alice, purchasedAt: Self.at(4))))], sold: [ItemID(1)], at: Self.at(4))
        world.checker.judgeCheckout(.refused(.itemSold), sale: Self.sale, item: ItemID(1), user: Self.bob, window: Self.at(3)...Self.at(5))
        #expect(world.guarantees == ["A1"], "sold at 4, inside the window 3...5")
    }

    @Test func itemHeldOnlyIfAnotherUserHeldItLive() {
        var world = World()
        world.commit([.item(Self.sale, ItemID(1)): .item(.held(Self.hold(1, Self.alice, expiresAt: Self.at(30))))], at: Self.at(1))
        world.checker.judgeCheckout(.refused(.itemHeld), sale: Self.sale, item: ItemID(1), user: Self.bob, window: Self.at(2)...Self.at(3))
        #expect(world.guarantees.isEmpty)
        world.checker.judgeCheckout(.refused(.itemHeld), sale: Self.sale, item: ItemID(1), user: Self.alice, window: Self.at(2)...Self.at(3))
        #expect(world.guarantees == ["A2"], "her own hold")
        // Past the expiry, the allowance and the clock check's margin: nobody's hold stands in the way.
        world.checker.judgeCheckout(.refused(.itemHeld), sale: Self.sale, item: ItemID(1), user: Self.bob, window: Self.at(40)...Self.at(41))
        #expect(world.guarantees == ["A2", "A2"])
    }

    @Test func userLimitOnlyAtTheLimit() {
        var world = World()
        world.commit([.item(Self.sale, ItemID(1)): .item(.held(Self.hold(1, Self.alice, expiresAt: Self.at(30))))], at: Self.at(1))
        world.checker.judgeCheckout(.refused(.userLimitReached), sale: Self.sale, item: ItemID(2), user: Self.alice, window: Self.at(2)...Self.at(3))
        #expect(world.guarantees == ["A3"], "one item of two")
        world.commit([.item(Self.sale, ItemID(2)): .item(.held(Self.hold(2, Self.alice, expiresAt: Self.at(31))))], at: Self.at(4))
        world.checker.judgeCheckout(.refused(.userLimitReached), sale: Self.sale, item: ItemID(2), user: Self.alice, window: Self.at(3)...Self.at(5))
        #expect(world.guarantees == ["A3"], "two of two at 4")
    }

    @Test func soldOutOnlyIfSoldOut() {
        var world = World()
        let purchase1 = Purchase(code: Self.hold(1, Self.alice, expiresAt: Self.at(30)).code, user: Self.alice, purchasedAt: Self.at(1))
        world.commit([.item(Self.sale, ItemID(1)): .item(.sold(purchase1))], sold: [ItemID(1)], at: Self.at(1))
        world.checker.judgeCheckout(.refused(.soldOut), sale: Self.sale, item: ItemID(2), user: Self.bob, window: Self.at(2)...Self.at(3))
        #expect(world.guarantees == ["A4"], "one of two sold")
        let purchase2 = Purchase(code: Self.hold(2, Self.bob, expiresAt: Self.at(30)).code, user: Self.bob, purchasedAt: Self.at(4))
        world.commit([.item(Self.sale, ItemID(2)): .item(.sold(purchase2))], sold: [ItemID(2)], at: Self.at(4))
        world.checker.judgeCheckout(.refused(.soldOut), sale: Self.sale, item: ItemID(2), user: Self.bob, window: Self.at(5)...Self.at(6))
        #expect(world.guarantees == ["A4"])
    }

    @Test func codeExpiredOnlyIfExpiredOrTakenOver() {
        var world = World()
        let hold = Self.hold(1, Self.alice, expiresAt: Self.at(30))
        world.commit([.item(Self.sale, ItemID(1)): .item(.held(hold))], at: Self.at(1))
        world.record(hold, at: Self.at(1))
        world.checker.judgePurchase(.codeExpired, code: hold.code, durable: world.durable, window: Self.at(2)...Self.at(3))
        #expect(world.guarantees == ["A5"], "live and still its item's holder")
        world.checker.judgePurchase(.codeExpired, code: hold.code, durable: world.durable, window: Self.at(29)...Self.at(30))
        #expect(world.guarantees == ["A5"], "expired at 30")
        let taker = Self.hold(1, Self.bob, expiresAt: Self.at(70))
        world.commit([.item(Self.sale, ItemID(1)): .item(.held(taker))], at: Self.at(40))
        world.checker.judgePurchase(.codeExpired, code: hold.code, durable: world.durable, window: Self.at(41)...Self.at(42))
        #expect(world.guarantees == ["A5"], "taken over")
    }

    @Test func unknownCodeOnlyForACodeNeverHandedOut() {
        var world = World()
        let hold = Self.hold(1, Self.alice, expiresAt: Self.at(30))
        world.checker.judgePurchase(.unknownCode, code: hold.code, durable: world.durable, window: Self.at(2)...Self.at(3))
        #expect(world.guarantees.isEmpty)
        world.record(hold, at: Self.at(4))
        world.checker.judgePurchase(.unknownCode, code: hold.code, durable: world.durable, window: Self.at(3)...Self.at(5))
        #expect(world.guarantees.isEmpty, "recorded only after the request was sent")
        world.checker.judgePurchase(.unknownCode, code: hold.code, durable: world.durable, window: Self.at(5)...Self.at(6))
        #expect(world.guarantees == ["A6"])
    }

    @Test func purchaseOnlyBeforeExpiry() {
        var world = World()
        let early = Self.hold(1, Self.alice, expiresAt: Self.at(30))
        let late = Self.hold(2, Self.bob, expiresAt: Self.at(30))
        for hold in [early, late] {
            world.commit([.item(Self.sale, hold.item): .item(.held(hold))], at: Self.at(1))
            world.record(hold, at: Self.at(1))
        }
        let bought = Purchase(code: early.code, user: Self.alice, purchasedAt: Self.at(29))
        world.commit([.item(Self.sale, early.item): .item(.sold(bought))], sold: [early.item], at: Self.at(29))
        world.checker.judgePurchase(.purchased(bought), code: early.code, durable: world.durable, window: Self.at(28)...Self.at(29))
        #expect(world.guarantees.isEmpty)
        let tooLate = Purchase(code: late.code, user: Self.bob, purchasedAt: Self.at(31))
        world.commit([.item(Self.sale, late.item): .item(.sold(tooLate))], sold: [late.item], at: Self.at(31))
        world.checker.judgePurchase(.purchased(tooLate), code: late.code, durable: world.durable, window: Self.at(28)...Self.at(31))
        #expect(world.guarantees.last == "A7")
    }

    @Test func readEndpointsNeverShowLessThanAcknowledged() throws {
        var world = World()
        let purchase = Purchase(code: Self.hold(1, Self.alice, expiresAt: Self.at(30)).code, user: Self.alice, purchasedAt: Self.at(1))
        world.commit([.item(Self.sale, ItemID(1)): .item(.sold(purchase))], sold: [ItemID(1)], at: Self.at(1))
        world.checker.purchaseReceived(purchase, byItsBuyer: true, at: Self.at(2))
        let nothingSold = HotSnapshot(generation: Generation(7), records: [.absent, .absent], counts: [0])
        let summary = try #require(StatusRules.summary(sale: Self.sale, rules: Self.rules, snapshots: [nothingSold], now: Self.at(3)))
        // Sent before the acknowledgement: anything goes.
        world.checker.judgeView(.sale(summary), of: Self.bob, sentAt: Self.at(1), now: Self.at(3))
        world.checker.judgeView(.item(Self.sale, ItemID(1), .available), of: Self.bob, sentAt: Self.at(1), now: Self.at(3))
        world.checker.judgeView(.purchases(Self.sale, []), of: Self.alice, sentAt: Self.at(1), now: Self.at(3))
        #expect(world.guarantees.isEmpty)
        // Sent after it.
        world.checker.judgeView(.sale(summary), of: Self.bob, sentAt: Self.at(3), now: Self.at(4))
        world.checker.judgeView(.item(Self.sale, ItemID(1), .available), of: Self.bob, sentAt: Self.at(3), now: Self.at(4))
        world.checker.judgeView(.purchases(Self.sale, []), of: Self.alice, sentAt: Self.at(3), now: Self.at(4))
        world.checker.judgeView(.purchases(Self.sale, []), of: Self.bob, sentAt: Self.at(3), now: Self.at(4))
        #expect(world.guarantees == ["G1", "G2", "G3"], "bob bought nothing")
        world.checker.judgeView(.purchases(Self.sale, [purchase]), of: Self.alice, sentAt: Self.at(3), now: Self.at(4))
        world.checker.judgeView(.item(Self.sale, ItemID(1), .sold), of: Self.bob, sentAt: Self.at(3), now: Self.at(4))
        #expect(world.guarantees.count == 3)
        // A sale a rebuild left out of the hot store shows its items available (docs/spec.md).
        let install = HotInstall(generation: world.generation, records: [:], sets: [:])
        world.hot = HotStoreModel()
        _ = world.hot.install(install)
        world.checker.installed(world.hot, install: install, durableGeneration: install.generation, now: Self.at(5))
        world.checker.judgeView(.item(Self.sale, ItemID(1), .available), of: Self.bob, sentAt: Self.at(6), now: Self.at(7))
        #expect(world.guarantees.count == 3)
    }

    /// Planted refusal bugs, each caught by the judgment it is about, in a few seeds.
    @Test(arguments: [PlantedBug.heldAnsweredAsSold, .staleReplicaReads, .soldOutOffByOne, .expiredAnsweredUnknown, .repeatCheckoutAnsweredHeld])
    func plantedRefusalBugIsJudged(bug: PlantedBug) {
        let verdict = PlantedBugHunt.hunt(bug, seeds: 1...3)
        #expect(verdict.firstCatch != nil, "\(bug.rawValue) was not caught in 3 seeds")
        #expect(verdict.misattributed.isEmpty, "\(bug.rawValue) tripped another guarantee: \(verdict.misattributed.first?.violation ?? "")")
    }
}
