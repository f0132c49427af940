import Engine

/// One simulated server instance: its own skewed clock, its own seeded randomness, and the
/// engine machines it is running. A crash throws all of it away but the clock.
struct SimInstance: Sendable {
    var alive = true
    /// Bumped by every crash, so events meant for a previous life are ignored.
    var incarnation = 0
    var clockOffset: TimeSpan
    var rng: SplitMix64
    var machines: [Int: RunningMachine] = [:]
    var rebuild: Int?
    var rebuildWaiters: [Int] = []
    var reconciling = false

    func localTime(_ trueTime: Instant) -> Instant { trueTime + clockOffset }
}

/// An engine state machine running on an instance, with the client request it serves.
enum RunningMachine: Sendable {
    case checkout(CheckoutMachine, request: Int)
    case purchase(PurchaseMachine, request: Int)
    case rebuild(RebuildMachine)
    case reconcile(ReconcileMachine)

    mutating func receive(_ reply: StoreReply, now: Instant) -> AnyStep {
        switch self {
        case .checkout(var m, let r):
            let step = m.receive(reply, now: now)
            self = .checkout(m, request: r)
            return AnyStep(step) { .checkout($0, attempt: m.attemptID, sale: m.sale, request: r) }
        case .purchase(var m, let r):
            let step = m.receive(reply, now: now)
            self = .purchase(m, request: r)
            return AnyStep(step) { .purchase($0, request: r) }
        case .rebuild(var m):
            let step = m.receive(reply, now: now)
            self = .rebuild(m)
            return AnyStep(step) { .rebuild($0) }
        case .reconcile(var m):
            let step = m.receive(reply, now: now)
            self = .reconcile(m)
            return AnyStep(step) { .reconcile($0) }
        }
    }

    mutating func resume(now: Instant) -> AnyStep {
        switch self {
        case .checkout(var m, let r):
            let step = m.resume(now: now)
            self = .checkout(m, request: r)
            return AnyStep(step) { .checkout($0, attempt: m.attemptID, sale: m.sale, request: r) }
        case .purchase(var m, let r):
            let step = m.resume(now: now)
            self = .purchase(m, request: r)
            return AnyStep(step) { .purchase($0, request: r) }
        case .rebuild(var m):
            let step = m.resume(now: now)
            self = .rebuild(m)
            return AnyStep(step) { .rebuild($0) }
        case .reconcile(var m):
            let step = m.resume(now: now)
            self = .reconcile(m)
            return AnyStep(step) { .reconcile($0) }
        }
    }

    mutating func start(now: Instant) -> AnyStep {
        switch self {
        case .checkout(var m, let r):
            let step = m.start(now: now)
            self = .checkout(m, request: r)
            return AnyStep(step) { .checkout($0, attempt: m.attemptID, sale: m.sale, request: r) }
        case .purchase(var m, let r):
            let step = m.start(now: now)
            self = .purchase(m, request: r)
            return AnyStep(step) { .purchase($0, request: r) }
        case .rebuild(var m):
            let step = m.start(now: now)
            self = .rebuild(m)
            return AnyStep(step) { .rebuild($0) }
        case .reconcile(var m):
            let step = m.start(now: now)
            self = .reconcile(m)
            return AnyStep(step) { .reconcile($0) }
        }
    }

    /// True while a checkout holds the item in the hot store but has not made the hold durable,
    /// or a purchase sold it but has not made the purchase durable: a crash here is a crash
    /// between two writes.
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
