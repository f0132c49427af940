import Engine

/// One simulated server instance: its own skewed clock, its own seeded randomness, and the
/// engine machines it is running. A crash throws all of it away but the clock.
struct SimInstance: Sendable {
    var alive = true
    /// Bumped by every crash, so events meant for a previous life are ignored.
    var incarnation = 0
    var clockOffset: TimeSpan
    var rng: SplitMix64
    /// What this instance remembers of the hot store (production: `RequestDriver`'s cache).
    var hotCache: HotRecordCache
    var machines: [Int: RunningMachine] = [:]
    var rebuild: Int?
    var rebuildWaiters: [Int] = []
    var reconciling = false
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

/// An engine state machine running on an instance, with the client request it serves.
enum RunningMachine: Sendable {
    case checkout(CheckoutMachine, request: Int)
    case purchase(PurchaseMachine, request: Int)
    case rebuild(RebuildMachine)
    case reconcile(ReconcileMachine)

    /// What to feed a machine next.
    enum Input: Sendable {
        case start
        case reply(StoreReply)
        case resume
    }

    /// Feeds `input` to the machine and returns its next step, response type erased.
    mutating func advance(_ input: Input, now: Instant) -> AnyStep {
        switch self {
        case .checkout(var m, let r):
            defer { self = .checkout(m, request: r) }
            return AnyStep(Self.feed(&m, input, now)) { .checkout($0, attempt: m.attemptID, sale: m.sale, request: r) }
        case .purchase(var m, let r):
            defer { self = .purchase(m, request: r) }
            return AnyStep(Self.feed(&m, input, now)) { .purchase($0, request: r) }
        case .rebuild(var m):
            defer { self = .rebuild(m) }
            return AnyStep(Self.feed(&m, input, now)) { .rebuild($0) }
        case .reconcile(var m):
            defer { self = .reconcile(m) }
            return AnyStep(Self.feed(&m, input, now)) { .reconcile($0) }
        }
    }

    static func feed<M: RequestStateMachine>(_ machine: inout M, _ input: Input, _ now: Instant) -> Step<M.Response> {
        switch input {
        case .start: machine.start(now: now)
        case .reply(let reply): machine.receive(reply, now: now)
        case .resume: machine.resume(now: now)
        }
    }

    /// True while a checkout or a purchase has a commit decided on a guess in flight.
    var isSpeculating: Bool {
        switch self {
        case .checkout(let m, _): m.isSpeculating
        case .purchase(let m, _): m.isSpeculating
        case .rebuild, .reconcile: false
        }
    }

    /// True while a checkout holds the item in the hot store but has not made the hold durable,
    /// or a purchase sold it but has not made the purchase durable: a crash here is a crash
    /// between two writes.
    /// A purchase's compare-and-set to sold is decided and in flight.
    var isCommittingPurchase: Bool {
        if case .purchase(let m, _) = self { return m.isCommitting }
        return false
    }

    var isBetweenWrites: Bool {
        switch self {
        case .checkout(let m, _): m.isPersistingNewHold
        case .purchase(let m, _): m.isPersistingPurchase
        case .rebuild, .reconcile: false
        }
    }
}

/// The response of any machine, with what the simulator needs to route it.
enum MachineResponse: Sendable {
    case checkout(CheckoutResult, attempt: AttemptID, sale: SaleID, request: Int)
    case purchase(PurchaseResult, request: Int)
    case rebuild(RebuildResult)
    case reconcile(ReconcileResult)
}

/// A `Step` with its response type erased.
enum AnyStep: Sendable {
    case call(StoreCall)
    case sleep(TimeSpan)
    case awaitRebuild
    case respond(MachineResponse, followUp: StoreCall?)

    init<R>(_ step: Step<R>, _ wrap: (R) -> MachineResponse) {
        switch step {
        case .call(let call): self = .call(call)
        case .sleep(let span): self = .sleep(span)
        case .awaitRebuild: self = .awaitRebuild
        case .respond(let response, let followUp): self = .respond(wrap(response), followUp: followUp)
        }
    }
}
