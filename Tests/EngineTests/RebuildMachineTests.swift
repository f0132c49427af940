import Engine
import Testing

/// The rebuild machine driven one step at a time: probe, bump, snapshot, install, with the action at
/// every step asserted. Rebuilds over stores are in MachineTests and ReconcileMachineTests.
@Suite("RebuildMachine, state by state")
struct RebuildMachineTests {
    let now = Fixture.t0
    let probeHot = StoreCall.hotRead(HotRead(keys: []))
    let probeDurable = StoreCall.durableQuery(.generation)
    var snapshotQuery: StoreCall {
        .durableQuery(.snapshot(
            sales: RebuildRules.salesToRebuild(rules: Fixture.rules, now: now),
            holdsExpiringAfter: RebuildRules.holdsExpiringAfter(rules: Fixture.rules, now: now)))
    }

    func machine() -> RebuildMachine {
        var random = TestRandom()
        return RebuildMachine(rules: Fixture.rules, policy: ProtocolPolicy(), random: &random)
    }

    /// The bump a step asks for.
    func bump(_ step: Step<RebuildResult>) throws -> GenerationBump {
        guard case .call(.durableBumpGeneration(let bump)) = StepKind(step) else { throw UnexpectedStep("expected a bump, got \(step)") }
        return bump
    }

    @Test func anEmptyHotStoreIsBumpedSnapshottedAndInstalled() throws {
        var m = machine()
        #expect(StepKind(m.start(now: now)) == .call(probeHot))
        #expect(StepKind(m.receive(.hotRead(.uninitialized), now: now)) == .call(probeDurable))
        let bump = try bump(m.receive(.durableQuery(.generation(Generation(5))), now: now))
        #expect(bump.above == Generation(5) && bump.stride >= 1)
        #expect(StepKind(m.receive(.durableGeneration(Generation(9)), now: now)) == .call(snapshotQuery))
        let sold = Purchase(code: Fixture.code(2), user: Fixture.bob, purchasedAt: now - .seconds(1))
        let durable = DurableSnapshot(purchases: [sold], holds: [])
        let (records, sets) = RebuildRules.hotState(from: durable)
        let install = HotInstall(generation: Generation(9), records: records, sets: sets)
        #expect(StepKind(m.receive(.durableQuery(.snapshot(durable)), now: now)) == .call(.hotInstall(install)))
        #expect(StepKind(m.receive(.hotInstall(.installed), now: now)) == .respond(.done(Generation(9)), followUp: nil))
        #expect(m.brokenInvariant == nil)
    }

    @Test func aHotStoreOnTheDurableGenerationIsAlreadyRebuilt() {
        var m = machine()
        _ = m.start(now: now)
        let hot = HotSnapshot(generation: Generation(7), records: [])
        #expect(StepKind(m.receive(.hotRead(.snapshot(hot)), now: now)) == .call(probeDurable))
        #expect(StepKind(m.receive(.durableQuery(.generation(Generation(7))), now: now)) == .respond(.done(Generation(7)), followUp: nil))
    }

    @Test func aHotStoreAheadOfTheDurableOneIsBumpedPastBoth() throws {
        var m = machine()
        _ = m.start(now: now)
        _ = m.receive(.hotRead(.snapshot(HotSnapshot(generation: Generation(12), records: []))), now: now)
        #expect(try bump(m.receive(.durableQuery(.generation(Generation(7))), now: now)).above == Generation(12))
    }

    @Test func aNewerInstallElsewhereStillEndsThisRebuild() throws {
        var m = machine()
        _ = m.start(now: now)
        _ = m.receive(.hotRead(.uninitialized), now: now)
        _ = m.receive(.durableQuery(.generation(Generation(1))), now: now)
        _ = m.receive(.durableGeneration(Generation(3)), now: now)
        _ = m.receive(.durableQuery(.snapshot(DurableSnapshot(purchases: [], holds: []))), now: now)
        #expect(StepKind(m.receive(.hotInstall(.superseded), now: now)) == .respond(.done(Generation(3)), followUp: nil))
    }

    @Test func eachFailedStepIsRetriedAfterABackoff() throws {
        var m = machine()
        _ = m.start(now: now)
        #expect(StepKind(m.receive(.failed(.timeout), now: now)) == .sleep)
        #expect(StepKind(m.resume(now: now)) == .call(probeHot))
        _ = m.receive(.hotRead(.uninitialized), now: now)
        let first = try bump(m.receive(.durableQuery(.generation(Generation(1))), now: now))
        #expect(StepKind(m.receive(.failed(.unavailable), now: now)) == .sleep)
        #expect(try bump(m.resume(now: now)) == first)  // the same bump: retried, never a second generation
        _ = m.receive(.durableGeneration(Generation(4)), now: now)
        #expect(StepKind(m.receive(.failed(.timeout), now: now)) == .sleep)
        #expect(StepKind(m.resume(now: now)) == .call(snapshotQuery))
        _ = m.receive(.durableQuery(.snapshot(DurableSnapshot(purchases: [], holds: []))), now: now)
        #expect(StepKind(m.receive(.failed(.timeout), now: now)) == .sleep)
        #expect(StepKind(m.resume(now: now)) == .call(.hotInstall(HotInstall(generation: Generation(4), records: [:], sets: [:]))))
    }

    @Test func aReplyNeverAskedForIsABrokenInvariant() {
        var m = machine()
        _ = m.start(now: now)
        #expect(StepKind(m.receive(.durableWrite(.written), now: now)) == .respond(.failed, followUp: nil))
        #expect(m.brokenInvariant?.contains("unexpected reply") == true)
    }
}
