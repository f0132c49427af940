import Engine

/// Where a per-request or per-call decision of the simulated world is drawn.
enum DrawSite: UInt64 {
    case requestTrip = 1
    case responseTrip
    case responseLost
    case toStore
    case fromStore
    case transientError
    case replyLost
    case latencySpike
    case lostOnTheWay
    case appliedLate
    case crashBeforeReply
    case requestRandomness
}

/// Fault and delay decisions drawn from the seed and the stable identity of what they are about (a
/// user's n-th request, its k-th store call), not from one stream shared by the whole run. Removing
/// a user, or switching a fault kind off, then leaves every other decision as it was: what makes
/// `--shrink` converge on small runs instead of reshuffling the world at each step.
///
/// Faults on the timeline (restarts, rollbacks, outages, pauses, clock faults) stay on their own
/// stream (`rngFaults`), which only their own events consume.
extension Simulation {
    /// A generator for `site` and `identity`, the same in every run of this seed.
    func draw(_ site: DrawSite, _ identity: UInt64) -> SplitMix64 {
        SplitMix64(seed: SplitMix64.mix(config.seed ^ SplitMix64.mix(identity ^ (site.rawValue &* 0x9E37_79B9_7F4A_7C15))))
    }

    /// The stable identity of request `id`: its user, and its place among that user's requests.
    func identity(ofRequest id: Int) -> UInt64 {
        UInt64(requests[id].user) << 32 | UInt64(requests[id].ordinal)
    }

    /// The stable identity of a store call made for request `request` (its `ordinal`-th), or, for
    /// calls no request made (rebuilds, reconcile passes, tidying), of the instance and the moment.
    func identity(ofCallFor request: Int?, ordinal: Int, instance: Int) -> UInt64 {
        if let request { return SplitMix64.mix(identity(ofRequest: request)) ^ UInt64(ordinal) }
        return SplitMix64.mix(UInt64(instance) << 56 ^ UInt64(bitPattern: now.microseconds)) ^ UInt64(ordinal) ^ 1 << 63
    }
}
