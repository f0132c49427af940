import Engine
import Testing

/// The checkout machine driven one step at a time through each of its states, the action at
/// every step asserted (in the manner of postgres-nio's ConnectionStateMachine tests). The
/// end-to-end paths over in-memory stores are in MachineTests.
@Suite("CheckoutMachine, state by state")
struct CheckoutMachineTests {
    let now = Fixture.t0
    let gen = Generation(1)

    func machine(guess: HotSnapshot? = nil, policy: ProtocolPolicy = ProtocolPolicy()) -> CheckoutMachine {
        var random = TestRandom()
        return CheckoutMachine(
            request: CheckoutRequest(user: Fixture.alice, item: ItemID(1)), now: now, rules: Fixture.rules, policy: policy,
            random: &random, guess: guess)
    }

    var firstRead: StoreCall {
        .hotRead(CheckoutMachine.firstRead(for: CheckoutRequest(user: Fixture.alice, item: ItemID(1)), now: now, rules: Fixture.rules))
    }

    var free: HotSnapshot { Fixture.snapshot(item: nil, user: nil) }

    /// Start, a free item read: the machine asks for the compare-and-set of a new hold.
    func committing(_ m: inout CheckoutMachine) throws -> HotCommit {
        #expect(StepKind(m.start(now: now)) == .call(firstRead))
        guard case .call(.hotCommit(let commit)) = StepKind(m.receive(.hotRead(.snapshot(free)), now: now)) else {
            throw UnexpectedStep("a free item should be committed")
        }
        #expect(commit.generation == gen)
        return commit
    }

    /// The durable attempt a step writes, and its fence.
    func attempt(_ step: Step<CheckoutResult>) throws -> (CheckoutAttempt, Generation?) {
        guard case .call(.durableWrite(.attempt(let attempt, let fence))) = StepKind(step) else {
            throw UnexpectedStep("expected the attempt's durable write, got \(step)")
        }
        return (attempt, fence)
    }

    @Test func idleReadingCommittingPersistingDone() throws {
        var m = machine()
        _ = try committing(&m)
        let (attempt, fence) = try attempt(m.receive(.hotCommit(.committed), now: now))
        #expect(attempt.outcome == .held && attempt.user == Fixture.alice && attempt.item == ItemID(1) && fence == gen)
        #expect(attempt.expiresAt == now + Fixture.rules.holdTTL)
        #expect(m.isPersistingNewHold)
        let code = try #require(attempt.code)
        let hold = Hold(code: code, user: Fixture.alice, expiresAt: now + Fixture.rules.holdTTL)
        #expect(StepKind(m.receive(.durableWrite(.written), now: now)) == .respond(.held(hold), followUp: nil))
        #expect(m.brokenInvariant == nil)
    }

    @Test func aRefusalIsPersistedBeforeItIsAnswered() throws {
        var m = machine()
        _ = m.start(now: now)
        let bobs = ItemRecord.held(Fixture.hold(1, Fixture.bob, expires: now + .seconds(30)))
        let (attempt, fence) = try attempt(m.receive(.hotRead(.snapshot(Fixture.snapshot(item: bobs, user: nil))), now: now))
        #expect(attempt.outcome == .itemHeld && attempt.code == nil && fence == gen)
        #expect(StepKind(m.receive(.durableWrite(.alreadyPresent), now: now)) == .respond(.refused(.itemHeld), followUp: nil))
    }

    @Test func aCommitWhoseReplyWasLostIsReadAgain() throws {
        var m = machine()
        _ = try committing(&m)
        #expect(StepKind(m.receive(.failed(.timeout), now: now)) == .call(firstRead))
    }

    @Test func aConflictingCommitDecidesAgainAfterAFreshRead() throws {
        var m = machine()
        _ = try committing(&m)
        #expect(StepKind(m.receive(.hotCommit(.conflict), now: now)) == .call(firstRead))
    }

    @Test func anUnavailableStoreIsRetriedAfterABackoff() throws {
        var m = machine()
        _ = m.start(now: now)
        #expect(StepKind(m.receive(.failed(.unavailable), now: now)) == .sleep)
        #expect(StepKind(m.resume(now: now)) == .call(firstRead))
    }

    @Test func anEmptyHotStoreWaitsForTheRebuildThenReadsAgain() {
        var m = machine()
        _ = m.start(now: now)
        #expect(StepKind(m.receive(.hotRead(.uninitialized), now: now)) == .awaitRebuild)
        #expect(StepKind(m.resume(now: now)) == .call(firstRead))
    }

    @Test func aFencedAttemptWaitsForTheRebuildAndDecidesAgain() throws {
        var m = machine()
        _ = try committing(&m)
        _ = try attempt(m.receive(.hotCommit(.committed), now: now))
        #expect(StepKind(m.receive(.durableWrite(.fenced), now: now)) == .awaitRebuild)
        #expect(StepKind(m.resume(now: now)) == .call(firstRead))
    }

    @Test func aFailedDurableWriteIsRetriedWithTheSameAttempt() throws {
        var m = machine()
        _ = try committing(&m)
        let (first, _) = try attempt(m.receive(.hotCommit(.committed), now: now))
        #expect(StepKind(m.receive(.failed(.timeout), now: now)) == .sleep)
        let (again, fence) = try attempt(m.resume(now: now))
        #expect(again == first && fence == gen)
    }

    @Test func aGuessCommitsBeforeAnyReadAndFallsBackToReadingOnAConflict() throws {
        var m = machine(guess: free)
        guard case .call(.hotCommit(let commit)) = StepKind(m.start(now: now)) else { throw UnexpectedStep("a guess should commit first") }
        #expect(commit.generation == gen && m.isSpeculating)
        #expect(StepKind(m.receive(.hotCommit(.conflict), now: now)) == .call(firstRead))
        #expect(!m.isSpeculating)
    }

    @Test func aStoreClockFarFromOursAnswersClockUnsafe() {
        var m = machine()
        _ = m.start(now: now)
        var snapshot = free
        snapshot.storeTime = now + .seconds(60)
        #expect(StepKind(m.receive(.hotRead(.snapshot(snapshot)), now: now)) == .respond(.clockUnsafe, followUp: nil))
    }

    @Test func theRestartBudgetEndsInUnavailable() throws {
        var policy = ProtocolPolicy()
        policy.maxRestarts = 1
        var m = machine(policy: policy)
        _ = try committing(&m)
        #expect(StepKind(m.receive(.hotCommit(.conflict), now: now)) == .call(firstRead))
        _ = m.receive(.hotRead(.snapshot(free)), now: now)
        #expect(StepKind(m.receive(.hotCommit(.conflict), now: now)) == .respond(.unavailable, followUp: nil))
        #expect(m.brokenInvariant == nil)
    }

    @Test func aReplyNeverAskedForIsABrokenInvariantAnsweredAsAUnexpectedStep() {
        var m = machine()
        _ = m.start(now: now)
        #expect(StepKind(m.receive(.durableWrite(.written), now: now)) == .respond(.unavailable, followUp: nil))
        #expect(m.brokenInvariant?.contains("unexpected reply") == true)
        var n = machine()
        _ = n.start(now: now)
        #expect(StepKind(n.resume(now: now)) == .respond(.unavailable, followUp: nil))
        #expect(n.brokenInvariant?.contains("resume") == true)
    }
}
