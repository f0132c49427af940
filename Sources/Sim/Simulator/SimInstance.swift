import Engine

/// One simulated server instance: its own skewed clock, its own seeded randomness, and the
/// `InstanceRuntime` it runs (the very one the HTTP server runs). A crash throws the runtime's
/// state away, but not the clock.
struct SimInstance: Sendable {
    var alive = true
    /// Bumped by every crash, so events meant for a previous life are ignored.
    var incarnation = 0
    var clockOffset: TimeSpan
    var rng: SplitMix64
    /// The machines it runs, what it remembers of the hot store, its rebuild and reconcile pass.
    var runtime: InstanceRuntime
    /// The hot generation PostgreSQL last confirmed to its read endpoints (the server's
    /// `ConfirmedGeneration`); a crash forgets it.
    var confirmedGeneration: Generation?
    /// Its connections to Redis and PostgreSQL (`SimConnections.swift`).
    var pools: SimPools
    /// While paused (stop-the-world, SIGSTOP, swapped out), the instance handles nothing: every
    /// event for it waits until then. Its clock keeps running.
    var pausedUntil: Instant?
    /// What arrived for the instance while it was paused, in order: handled when it resumes.
    var deferred: [Event] = []
    /// The clock is outside the skew allowance (`FaultProfile.badClockEvery`).
    var clockBad = false
    /// A pause that begins at the instance's next machine step of a kind: right after a decision,
    /// before the store call it decided goes out (or before the answer is sent).
    var pauseAtNextStep: (length: TimeSpan, where: PausePoint)?

    /// Where an armed pause strikes.
    enum PausePoint: Sendable {
        case anyStep
        /// Between a decision and its compare-and-set.
        case beforeCommit
        /// Between the last store reply and the answer.
        case beforeResponse
    }

    func localTime(_ trueTime: Instant) -> Instant { trueTime + clockOffset }
}

/// Whom an instance's runtime answers in the simulation (carried through it as a `ClientToken`).
enum SimCaller: Sendable, Equatable {
    /// A client's request (its index in `Simulation.requests`).
    case request(Int)
    /// The instance's own reconcile timer.
    case reconcileTimer
    /// A read endpoint's request waiting for a rebuild (`SimViews.swift`).
    case view(Int)

    static let viewBit: UInt64 = 1 << 62

    var token: ClientToken {
        switch self {
        case .request(let id): ClientToken(UInt64(id))
        case .reconcileTimer: ClientToken(.max)
        case .view(let id): ClientToken(UInt64(id) | Self.viewBit)
        }
    }

    init(_ token: ClientToken) {
        if token.rawValue == .max {
            self = .reconcileTimer
        } else if token.rawValue & Self.viewBit != 0 {
            self = .view(Int(token.rawValue & ~Self.viewBit))
        } else {
            self = .request(Int(token.rawValue))
        }
    }
}
