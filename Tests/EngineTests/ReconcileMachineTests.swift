import Engine
import Testing

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
}
