import Adapters
import Engine
import StoreModel
import Synchronization
import TestSupport
import Testing


/// In-memory stores that can lose replies and refuse writes on demand, to drive the machines'
/// retry paths the way the simulator does.
final class FlakyStores: StorePort {
    let inner: InMemoryStores

    init(clock: TestClock) {
        inner = InMemoryStores(clock: { clock.now })
    }
    struct Plan {
        var loseNextCommitReply = false
        var loseNextDurableReply = false
        var refusePurchaseWrites = 0
    }
    let plan = Mutex(Plan())

    func execute(_ call: StoreCall, then complete: @escaping StoreCompletion) {
        switch call {
        case .hotCommit:
            inner.execute(call) { [self] reply in
                complete(plan.withLock { p in defer { p.loseNextCommitReply = false }; return p.loseNextCommitReply } ? .failed(.timeout) : reply)
            }
        case .durableWrite(let write):
            if case .purchase = write, plan.withLock({ p in defer { p.refusePurchaseWrites -= 1 }; return p.refusePurchaseWrites > 0 }) {
                return complete(.failed(.unavailable))
            }
            inner.execute(call) { [self] reply in
                complete(plan.withLock { p in defer { p.loseNextDurableReply = false }; return p.loseNextDurableReply } ? .failed(.timeout) : reply)
            }
        default:
            inner.execute(call, then: complete)
        }
    }
}

@Suite("Request machines over in-memory stores")
struct MachineTests {
    let clock = TestClock(Fixture.t0)
    let stores: FlakyStores

    init() {
        stores = FlakyStores(clock: clock)
    }
    var rules: SaleRules {
        var r = Fixture.rules
        r.holdTTL = .seconds(10)
        return r
    }

    func driver() -> RequestDriver {
        var policy = ProtocolPolicy()
        policy.baseBackoff = .milliseconds(1)
        policy.maxBackoff = .milliseconds(2)
        policy.reconcileAfter = .zero
        let clock = self.clock
        return RequestDriver(stores: Stores(hot: stores, durable: stores), rules: rules, policy: policy, clock: { clock.now })
    }

    func request(_ user: UserID, _ item: Int) -> CheckoutRequest { CheckoutRequest(user: user, item: ItemID(item)) }

    func currentGeneration() async throws -> Generation {
        guard case .generation(let generation) = try await stores.query(.generation) else { throw StoreFailure.unavailable }
        return generation
    }

    @Test func checkoutThenPurchaseIsDurableAndIdempotent() async throws {
        let driver = driver()
        guard case .held(let hold) = await driver.checkout(request(Fixture.alice, 3)) else {
            Issue.record("expected a hold")
            return
        }
        #expect(await driver.checkout(request(Fixture.alice, 3)) == .held(hold))
        #expect(await driver.checkout(request(Fixture.bob, 3)) == .refused(.itemHeld))
        guard case .purchased(let purchase) = await driver.purchase(hold.code) else {
            Issue.record("expected a purchase")
            return
        }
        #expect(purchase.user == Fixture.alice && purchase.item == ItemID(3))
        #expect(await driver.purchase(hold.code) == .purchased(purchase))
        let history = try await stores.query(.codeHistory(hold.code))
        #expect(history == .codeHistory(CodeHistory(hold: hold, purchase: purchase, generation: try await currentGeneration())))
        #expect(await driver.checkout(request(Fixture.bob, 3)) == .refused(.itemSold))
        #expect(await driver.purchase(Code(sale: hold.sale, item: hold.item, nonce: "ZZZZZZZZZZZZZZZZZZZZZZ")) == .unknownCode)
    }

    @Test func userLimitCountsHolds() async {
        let driver = driver()
        #expect(await driver.checkout(request(Fixture.alice, 1)) != .refused(.userLimitReached))
        #expect(await driver.checkout(request(Fixture.alice, 2)) != .refused(.userLimitReached))
        #expect(await driver.checkout(request(Fixture.alice, 3)) == .refused(.userLimitReached))
    }

    @Test func expiredHoldIsRefusedThenTakenOverAfterTheAllowance() async {
        let driver = driver()
        guard case .held(let hold) = await driver.checkout(request(Fixture.alice, 4)) else {
            Issue.record("expected a hold")
            return
        }
        clock.advance(rules.holdTTL)
        #expect(await driver.purchase(hold.code) == .codeExpired)
        #expect(await driver.checkout(request(Fixture.bob, 4)) == .refused(.itemHeld))
        clock.advance(rules.clockSkewAllowance)
        guard case .held(let bobs) = await driver.checkout(request(Fixture.bob, 4)) else {
            Issue.record("expected a takeover")
            return
        }
        #expect(bobs.user == Fixture.bob)
        #expect(await driver.purchase(hold.code) == .codeExpired)
    }

    @Test func lostCommitReplyIsResolvedByReadingAgain() async {
        let driver = driver()
        stores.plan.withLock { $0.loseNextCommitReply = true }
        guard case .held(let hold) = await driver.checkout(request(Fixture.alice, 5)) else {
            Issue.record("expected a hold despite the lost reply")
            return
        }
        stores.plan.withLock { $0.loseNextCommitReply = true }
        guard case .purchased(let purchase) = await driver.purchase(hold.code) else {
            Issue.record("expected the purchase despite the lost reply")
            return
        }
        #expect(purchase.code == hold.code)
    }

    @Test func lostDurableReplyIsRetriedIdempotently() async {
        let driver = driver()
        stores.plan.withLock { $0.loseNextDurableReply = true }
        guard case .held(let hold) = await driver.checkout(request(Fixture.alice, 6)) else {
            Issue.record("expected a hold")
            return
        }
        stores.plan.withLock { $0.loseNextDurableReply = true }
        #expect(await driver.purchase(hold.code) != .unavailable)
    }

    @Test func hotStoreLossIsRebuiltFromTheDurableStore() async {
        let driver = driver()
        guard case .held(let held) = await driver.checkout(request(Fixture.alice, 7)),
            case .held(let bought) = await driver.checkout(request(Fixture.bob, 8)),
            case .purchased = await driver.purchase(bought.code)
        else {
            Issue.record("setup failed")
            return
        }
        stores.inner.loseHotState()
        // The live hold survives: nobody else may take it, its holder may still buy it.
        #expect(await driver.checkout(request(Fixture.bob, 7)) == .refused(.itemHeld))
        #expect(await driver.checkout(request(Fixture.alice, 8)) == .refused(.itemSold))
        guard case .purchased = await driver.purchase(held.code) else {
            Issue.record("the hold did not survive the rebuild")
            return
        }
    }

    /// Redis restarting from an older snapshot: the holds and purchases made after it are gone
    /// from it, the user's record is older, but nothing of it is believed: every code handed out
    /// still buys its item, nobody else gets it, and the limit still counts everything.
    @Test func hotStoreRollbackIsRebuiltFromTheDurableStore() async {
        let driver = driver()
        guard case .held(let early) = await driver.checkout(request(Fixture.alice, 4)) else {
            Issue.record("setup failed")
            return
        }
        let snapshot = stores.inner.saveHotState()
        guard case .held(let late) = await driver.checkout(request(Fixture.alice, 5)),
            case .held(let bought) = await driver.checkout(request(Fixture.bob, 6)),
            case .purchased(let purchase) = await driver.purchase(bought.code)
        else {
            Issue.record("setup failed")
            return
        }
        stores.inner.restartHot(from: snapshot)
        #expect(await driver.checkout(request(UserID(unchecked: "carol"), 5)) == .refused(.itemHeld))
        #expect(await driver.checkout(request(UserID(unchecked: "carol"), 6)) == .refused(.itemSold))
        #expect(await driver.checkout(request(UserID(unchecked: "carol"), 4)) == .refused(.itemHeld))
        #expect(await driver.checkout(request(Fixture.alice, 7)) == .refused(.userLimitReached))
        #expect(await driver.purchase(bought.code) == .purchased(purchase))
        for hold in [early, late] {
            guard case .purchased = await driver.purchase(hold.code) else {
                Issue.record("code \(hold.code) did not survive the rollback")
                return
            }
        }
    }

    @Test func purchaseLeftHalfDoneIsRolledForward() async throws {
        let driver = driver()
        guard case .held(let hold) = await driver.checkout(request(Fixture.alice, 9)) else {
            Issue.record("expected a hold")
            return
        }
        stores.plan.withLock { $0.refusePurchaseWrites = 100 }
        #expect(await driver.purchase(hold.code) == .unavailable)
        let history = try await stores.query(.codeHistory(hold.code))
        #expect(history == .codeHistory(CodeHistory(hold: hold, purchase: nil, generation: try await currentGeneration())))
        stores.plan.withLock { $0.refusePurchaseWrites = 0 }
        #expect(await driver.reconcile() == .reconciled(1))
        guard case .codeHistory(let history) = try await stores.query(.codeHistory(hold.code)), let purchase = history.purchase else {
            Issue.record("the purchase was not rolled forward")
            return
        }
        #expect(await driver.purchase(hold.code) == .purchased(purchase))
        #expect(await driver.reconcile() == .reconciled(0))
    }
}

@Suite("Request machines, step by step")
struct MachineStepTests {
    @Test func malformedStoreRepliesAreFaultsNotCrashes() {
        var random = TestRandom()
        var checkout = CheckoutMachine(
            request: CheckoutRequest(user: Fixture.alice, item: ItemID(1)), now: Fixture.t0, rules: Fixture.rules,
            policy: ProtocolPolicy(), random: &random)
        _ = checkout.start(now: Fixture.t0)
        guard case .sleep = checkout.receive(.hotRead(.snapshot(HotSnapshot(generation: Generation(1), records: []))), now: Fixture.t0) else {
            Issue.record("a short snapshot should be retried after a back-off")
            return
        }
        var purchase = PurchaseMachine(code: Fixture.code(1), rules: Fixture.rules, policy: ProtocolPolicy(), random: &random)
        _ = purchase.start(now: Fixture.t0)
        guard case .sleep = purchase.receive(.hotRead(.snapshot(HotSnapshot(generation: Generation(1), records: []))), now: Fixture.t0) else {
            Issue.record("a short snapshot should be retried after a back-off")
            return
        }
    }

    @Test func aStoreThatStaysDownEndsInUnavailable() {
        var random = TestRandom()
        var checkout = CheckoutMachine(
            request: CheckoutRequest(user: Fixture.alice, item: ItemID(1)), now: Fixture.t0, rules: Fixture.rules,
            policy: ProtocolPolicy(), random: &random)
        var step = checkout.start(now: Fixture.t0)
        for _ in 0..<20 {
            switch step {
            case .call: step = checkout.receive(.failed(.unavailable), now: Fixture.t0)
            case .sleep: step = checkout.resume(now: Fixture.t0)
            case .respond(let result, _):
                #expect(result == .unavailable)
                return
            case .awaitRebuild: step = checkout.resume(now: Fixture.t0)
            }
        }
        Issue.record("the machine never gave up")
    }
}
