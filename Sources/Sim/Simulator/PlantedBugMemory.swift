import Engine
import StoreModel

/// What the simulator remembers for the planted bugs whose wrong line needs state: the codes
/// already answered, a lagging Redis replica, the durable state a rebuild read too early, and
/// the generation an unlocked fence read saw. Kept apart from the simulation's own state, and
/// filled only while such a bug is planted (`PlantedBugSeams.swift` has the stateless ones).
struct PlantedBugMemory: Sendable {
    /// `repeatCheckoutAnsweredHeld`: codes some checkout was already answered with.
    var answeredHolds: Set<Code> = []
    /// `staleReplicaReads`: the replica, a copy of the primary taken at `replicaAt`.
    var replica: HotStoreModel?
    var replicaAt: Instant?
    /// `rebuildSnapshotsBeforeBump`: the durable state each instance's last generation probe saw.
    var durableAtProbe: [Int: DurableStoreModel] = [:]
    /// `fenceReadWithoutLock`: recent generation bumps, with the generation each replaced.
    var bumps: [(at: Instant, replaced: Generation)] = []

    /// How far the replica lags at most.
    static let replicaLag = TimeSpan.milliseconds(500)
    /// How long bumps are remembered: longer than any durable call stays in flight.
    static let bumpsKept = TimeSpan.seconds(10)

    /// A checkout's first read, answered by the lagging replica.
    mutating func replicaRead(_ read: HotRead, primary: HotStoreModel, now: Instant) -> HotReadReply {
        if replica == nil || replicaAt.map({ now - $0 >= Self.replicaLag }) ?? true {
            replica = primary
            replicaAt = now
        }
        guard var copy = replica else { return primary.read(read) }
        copy.clock = now
        return copy.read(read)
    }

    /// A fenced durable write as the unlocked read lets it through: its transaction began when the
    /// call was sent and read the generation then, without a lock; a bump committed since is not
    /// seen, so a fence that matched at `began` is written under the current generation.
    func unlockedFence(_ write: DurableWrite, began: Instant, current: Generation) -> DurableWrite {
        var seen = current
        for bump in bumps.reversed() where bump.at > began { seen = bump.replaced }
        switch write {
        case .attempt(let attempt, let fence?) where fence == seen && fence != current:
            return .attempt(attempt, fence: current)
        case .purchase(let purchase, let fence?, let limit) where fence == seen && fence != current:
            return .purchase(purchase, fence: current, userLimit: limit)
        default:
            return write
        }
    }

    mutating func noteBump(replacing generation: Generation, at now: Instant) {
        bumps.removeAll { now - $0.at >= Self.bumpsKept }
        bumps.append((now, generation))
    }

    /// A rebuild's snapshot query answered from the durable state its instance's probe saw, before
    /// the bump; nil for any other call (which then runs as usual).
    mutating func snapshotBeforeBump(_ call: StoreCall, instance: Int, durable: DurableStoreModel) -> StoreReply? {
        switch call {
        case .durableQuery(.generation):
            durableAtProbe[instance] = durable
            return nil
        case .durableQuery(let query):
            guard case .snapshot = query, let seen = durableAtProbe.removeValue(forKey: instance) else { return nil }
            return .durableQuery(seen.query(query))
        default:
            return nil
        }
    }
}
