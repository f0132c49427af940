import Engine
import Testing

/// The purchase machine driven one step at a time through each of its states, the action at
/// every step asserted. The end-to-end paths over in-memory stores are in MachineTests.
@Suite("PurchaseMachine, state by state")
struct PurchaseMachineTests {
    let now = Fixture.t0
    let gen = Generation(1)
    let hold = Fixture.hold(1, Fixture.alice, expires: Fixture.t0 + .seconds(30))
    var code: Code { hold.code }
    var key: HotKey { PurchaseRules.itemKey(for: code) }
    var firstRead: StoreCall { .hotRead(PurchaseMachine.firstRead(for: code)) }

    func machine(guess: HotSnapshot? = nil, policy: ProtocolPolicy = ProtocolPolicy()) -> PurchaseMachine {
        var random = TestRandom()
        return PurchaseMachine(code: code, rules: Fixture.rules, policy: policy, random: &random, guess: guess)
    }

    func snapshot(_ record: ItemRecord?, storeTime: Instant? = nil) -> HotSnapshot {
        HotSnapshot(generation: gen, records: [Versioned(value: record.map { .item($0) }, version: 4)], storeTime: storeTime)
    }

    /// The purchase and compare-and-set the rules make of the live hold.
    var buy: (Purchase, HotCommit) {
        get throws {
            guard case .buy(let purchase, let commit) = PurchaseRules.decide(
                code: code, now: now, key: key, record: Versioned(value: .item(.held(hold)), version: 4), generation: gen)
            else { throw UnexpectedStep("a live hold should be bought") }
            return (purchase, commit)
        }
    }

    var tidy: StoreCall { .hotCommit(HotCommit(generation: gen, setRemoves: [.pending(Fixture.sale): [ItemID(1)]])) }

    @Test func idleReadingCommittingPersistingDone() throws {
        let (purchase, commit) = try buy
        var m = machine()
        #expect(StepKind(m.start(now: now)) == .call(firstRead))
        #expect(StepKind(m.receive(.hotRead(.snapshot(snapshot(.held(hold)))), now: now)) == .call(.hotCommit(commit)))
        #expect(m.isCommitting)
        let write = StoreCall.durableWrite(.purchase(purchase, fence: gen, userLimit: Fixture.rules.userLimit))
        #expect(StepKind(m.receive(.hotCommit(.committed), now: now)) == .call(write))
        #expect(m.isPersistingPurchase)
        #expect(StepKind(m.receive(.durableWrite(.written), now: now)) == .respond(.purchased(purchase), followUp: tidy))
        #expect(m.brokenInvariant == nil)
    }

    @Test func aCodeAlreadyBoughtIsAnsweredTheSameAfterMakingItDurable() {
        let bought = Purchase(code: code, user: Fixture.alice, purchasedAt: now - .seconds(5))
        var m = machine()
        _ = m.start(now: now)
        let write = StoreCall.durableWrite(.purchase(bought, fence: gen, userLimit: Fixture.rules.userLimit))
        #expect(StepKind(m.receive(.hotRead(.snapshot(snapshot(.sold(bought)))), now: now)) == .call(write))
        #expect(StepKind(m.receive(.durableWrite(.alreadyPresent), now: now)) == .call(.durableQuery(.codeHistory(code))))
        let history = CodeHistory(hold: hold, purchase: bought, generation: gen)
        #expect(StepKind(m.receive(.durableQuery(.codeHistory(history)), now: now)) == .respond(.purchased(bought), followUp: tidy))
    }

    @Test func anExpiredHoldByTheStoresClockAnswers410() {
        var m = machine()
        _ = m.start(now: now)
        let late = snapshot(.held(hold), storeTime: hold.expiresAt)
        #expect(StepKind(m.receive(.hotRead(.snapshot(late)), now: now)) == .respond(.codeExpired, followUp: nil))
    }

    @Test func aCommitPastItsDeadlineAnswers410() throws {
        var m = machine()
        _ = m.start(now: now)
        _ = m.receive(.hotRead(.snapshot(snapshot(.held(hold)))), now: now)
        #expect(StepKind(m.receive(.hotCommit(.expired), now: now)) == .respond(.codeExpired, followUp: nil))
    }

    @Test func aCodeTheHotRecordDoesNotKnowIsLookedUpInTheDurableHistory() {
        var m = machine()
        _ = m.start(now: now)
        #expect(StepKind(m.receive(.hotRead(.snapshot(snapshot(nil))), now: now)) == .call(.durableQuery(.codeHistory(code))))
        let never = CodeHistory(hold: nil, purchase: nil, generation: gen)
        #expect(StepKind(m.receive(.durableQuery(.codeHistory(never)), now: now)) == .respond(.unknownCode, followUp: nil))
    }

    @Test func aHistoryFromAnotherGenerationWaitsForTheRebuild() {
        var m = machine()
        _ = m.start(now: now)
        _ = m.receive(.hotRead(.snapshot(snapshot(nil))), now: now)
        let newer = CodeHistory(hold: nil, purchase: nil, generation: Generation(2))
        #expect(StepKind(m.receive(.durableQuery(.codeHistory(newer)), now: now)) == .awaitRebuild)
        #expect(StepKind(m.resume(now: now)) == .call(firstRead))
    }

    @Test func aLostCommitReplyIsReadAgain() throws {
        var m = machine()
        _ = m.start(now: now)
        _ = m.receive(.hotRead(.snapshot(snapshot(.held(hold)))), now: now)
        #expect(StepKind(m.receive(.failed(.timeout), now: now)) == .call(firstRead))
    }

    @Test func aFencedPurchaseWaitsForTheRebuild() throws {
        var m = machine()
        _ = m.start(now: now)
        _ = m.receive(.hotRead(.snapshot(snapshot(.held(hold)))), now: now)
        _ = m.receive(.hotCommit(.committed), now: now)
        #expect(StepKind(m.receive(.durableWrite(.fenced), now: now)) == .awaitRebuild)
    }

    @Test func aFailedDurableWriteIsRetriedWithTheSamePurchase() throws {
        let (purchase, _) = try buy
        var m = machine()
        _ = m.start(now: now)
        _ = m.receive(.hotRead(.snapshot(snapshot(.held(hold)))), now: now)
        _ = m.receive(.hotCommit(.committed), now: now)
        #expect(StepKind(m.receive(.failed(.unavailable), now: now)) == .sleep)
        #expect(StepKind(m.resume(now: now)) == .call(.durableWrite(.purchase(purchase, fence: gen, userLimit: Fixture.rules.userLimit))))
    }

    @Test func aGuessCommitsBeforeAnyReadAndFallsBackToReadingOnAConflict() throws {
        let (_, commit) = try buy
        var m = machine(guess: snapshot(.held(hold)))
        #expect(StepKind(m.start(now: now)) == .call(.hotCommit(commit)))
        #expect(m.isSpeculating)
        #expect(StepKind(m.receive(.hotCommit(.conflict), now: now)) == .call(firstRead))
    }

    @Test func aRejectedPurchaseIsABrokenInvariantAnsweredAsAFailure() {
        var m = machine()
        _ = m.start(now: now)
        _ = m.receive(.hotRead(.snapshot(snapshot(.held(hold)))), now: now)
        _ = m.receive(.hotCommit(.committed), now: now)
        #expect(StepKind(m.receive(.durableWrite(.rejected), now: now)) == .respond(.unavailable, followUp: nil))
        #expect(m.brokenInvariant?.contains("rejected") == true)
    }

    @Test func aReplyNeverAskedForIsABrokenInvariant() {
        var m = machine()
        _ = m.start(now: now)
        #expect(StepKind(m.receive(.durableWrite(.written), now: now)) == .respond(.unavailable, followUp: nil))
        #expect(m.brokenInvariant?.contains("unexpected reply") == true)
    }
}
