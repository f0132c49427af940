import Engine
import Testing

/// The reconcile pass, and its machine driven state by state with the action at every step asserted.
@Suite("The reconcile pass")
struct ReconcileMachineTests {
    var policy: ProtocolPolicy {
        var policy = ProtocolPolicy()
        policy.reconcileAfter = .zero
        return policy
    }

    func listing(_ generation: Int64, members: [[ItemID]]? = nil) -> StoreReply {
        let sales = ReconcileMachineTests.salesCount(policy: policy)
        return .hotRead(.snapshot(HotSnapshot(generation: Generation(generation), records: [],
                                              members: members ?? Array(repeating: [], count: sales))))
    }

    static func salesCount(policy: ProtocolPolicy) -> Int {
        var machine = ReconcileMachine(rules: Fixture.rules, policy: policy)
        guard case .call(.hotRead(let read)) = machine.start(now: Fixture.t0) else { return 0 }
        return read.members.count
    }

    /// A rebuild that bumped the durable generation and then failed leaves the hot store behind:
    /// every durable write decided on it would be fenced forever. The pass rebuilds it.
    @Test func rebuildsAHotStoreLeftBehindTheDurableGeneration() {
        var machine = ReconcileMachine(rules: Fixture.rules, policy: policy)
        _ = machine.start(now: Fixture.t0)
        guard case .call(.durableQuery(.generation)) = machine.receive(listing(2), now: Fixture.t0) else {
            Issue.record("the pass must compare generations")
            return
        }
        guard case .awaitRebuild = machine.receive(.durableQuery(.generation(Generation(5))), now: Fixture.t0) else {
            Issue.record("a hot store behind the durable generation must be rebuilt")
            return
        }
        // The rebuild failed too: the pass starts over once, then leaves it to the next pass.
        guard case .call(.hotRead) = machine.resume(now: Fixture.t0) else {
            Issue.record("after the rebuild the pass lists again")
            return
        }
        _ = machine.receive(listing(2), now: Fixture.t0)
        guard case .respond(.failed, _) = machine.receive(.durableQuery(.generation(Generation(6))), now: Fixture.t0) else {
            Issue.record("one rebuild per pass at most")
            return
        }
    }

    @Test func aHotStoreOnTheDurableGenerationIsNotRebuilt() {
        var machine = ReconcileMachine(rules: Fixture.rules, policy: policy)
        _ = machine.start(now: Fixture.t0)
        _ = machine.receive(listing(5), now: Fixture.t0)
        guard case .respond(.reconciled(0), _) = machine.receive(.durableQuery(.generation(Generation(5))), now: Fixture.t0) else {
            Issue.record("nothing pending, same generation: a quiet pass")
            return
        }
    }

    // State by state: listing, checking the generation, reading, writing, removing, done.

    /// The listing with item 3 pending in the current sale (the last one listed).
    var pendingThree: StoreReply {
        var members = Array(repeating: [ItemID](), count: Self.salesCount(policy: policy))
        members[members.count - 1] = [ItemID(3)]
        return listing(5, members: members)
    }

    func sold(_ item: Int, at: Instant) -> Versioned {
        Versioned(value: .item(.sold(Purchase(code: Fixture.code(item), user: Fixture.alice, purchasedAt: at))), version: 2)
    }

    @Test func aPendingPurchaseIsWrittenDurablyThenDroppedFromPending() {
        let key = HotKey.item(Fixture.sale, ItemID(3))
        let purchase = Purchase(code: Fixture.code(3), user: Fixture.alice, purchasedAt: Fixture.t0 - .seconds(1))
        var machine = ReconcileMachine(rules: Fixture.rules, policy: policy)
        _ = machine.start(now: Fixture.t0)
        #expect(StepKind(machine.receive(pendingThree, now: Fixture.t0)) == .call(.durableQuery(.generation)))
        #expect(StepKind(machine.receive(.durableQuery(.generation(Generation(5))), now: Fixture.t0)) == .call(.hotRead(HotRead(keys: [key]))))
        let read = StoreReply.hotRead(.snapshot(HotSnapshot(generation: Generation(5), records: [sold(3, at: purchase.purchasedAt)])))
        let write = StoreCall.durableWrite(.purchase(purchase, fence: Generation(5), userLimit: Fixture.rules.userLimit))
        #expect(StepKind(machine.receive(read, now: Fixture.t0)) == .call(write))
        let removal = StoreCall.hotCommit(HotCommit(generation: Generation(5), setRemoves: [.pending(Fixture.sale): [ItemID(3)]]))
        #expect(StepKind(machine.receive(.durableWrite(.alreadyPresent), now: Fixture.t0)) == .call(removal))
        #expect(StepKind(machine.receive(.hotCommit(.committed), now: Fixture.t0)) == .respond(.reconciled(1), followUp: nil))
        #expect(machine.brokenInvariant == nil)
    }

    @Test func aPurchaseYoungerThanTheDelayIsLeftToItsRequest() {
        var patient = ProtocolPolicy()
        patient.reconcileAfter = .seconds(2)
        var machine = ReconcileMachine(rules: Fixture.rules, policy: patient)
        _ = machine.start(now: Fixture.t0)
        _ = machine.receive(pendingThree, now: Fixture.t0)
        _ = machine.receive(.durableQuery(.generation(Generation(5))), now: Fixture.t0)
        let read = StoreReply.hotRead(.snapshot(HotSnapshot(generation: Generation(5), records: [sold(3, at: Fixture.t0 - .seconds(1))])))
        #expect(StepKind(machine.receive(read, now: Fixture.t0)) == .respond(.reconciled(0), followUp: nil))
    }

    @Test func anItemPendingButNotSoldIsDroppedFromPending() {
        var machine = ReconcileMachine(rules: Fixture.rules, policy: policy)
        _ = machine.start(now: Fixture.t0)
        _ = machine.receive(pendingThree, now: Fixture.t0)
        _ = machine.receive(.durableQuery(.generation(Generation(5))), now: Fixture.t0)
        let free = StoreReply.hotRead(.snapshot(HotSnapshot(generation: Generation(5), records: [Versioned(value: nil, version: 0)])))
        let removal = StoreCall.hotCommit(HotCommit(generation: Generation(5), setRemoves: [.pending(Fixture.sale): [ItemID(3)]]))
        #expect(StepKind(machine.receive(free, now: Fixture.t0)) == .call(removal))
        #expect(StepKind(machine.receive(.hotCommit(.committed), now: Fixture.t0)) == .respond(.reconciled(0), followUp: nil))
    }

    @Test func aFencedWriteEndsThePassForTheNextOne() {
        var machine = ReconcileMachine(rules: Fixture.rules, policy: policy)
        _ = machine.start(now: Fixture.t0)
        _ = machine.receive(pendingThree, now: Fixture.t0)
        _ = machine.receive(.durableQuery(.generation(Generation(5))), now: Fixture.t0)
        _ = machine.receive(.hotRead(.snapshot(HotSnapshot(generation: Generation(5), records: [sold(3, at: Fixture.t0)]))), now: Fixture.t0)
        #expect(StepKind(machine.receive(.durableWrite(.fenced), now: Fixture.t0)) == .respond(.failed, followUp: nil))
        #expect(machine.brokenInvariant == nil)
    }

    @Test func anEmptyHotStoreIsRebuiltAtOnce() {
        var machine = ReconcileMachine(rules: Fixture.rules, policy: policy)
        _ = machine.start(now: Fixture.t0)
        #expect(StepKind(machine.receive(.hotRead(.uninitialized), now: Fixture.t0)) == .awaitRebuild)
    }

    @Test func aReplyWhileAwaitingTheRebuildIsABrokenInvariant() {
        var machine = ReconcileMachine(rules: Fixture.rules, policy: policy)
        _ = machine.start(now: Fixture.t0)
        _ = machine.receive(.hotRead(.uninitialized), now: Fixture.t0)
        #expect(StepKind(machine.receive(.durableWrite(.written), now: Fixture.t0)) == .respond(.failed, followUp: nil))
        #expect(machine.brokenInvariant?.contains("unexpected reply") == true)
    }
}
