/// What a request state machine asks its driver to do next.
///
/// The machines own the protocol of every request: which store is written in what order, what is
/// retried and what makes a retry idempotent. A driver only executes steps: the HTTP server with
/// real stores and real time, the simulator with simulated ones. Both run the same machines.
public enum Step<Response: Sendable>: Sendable {
    /// Perform this store call and feed its reply to `receive(_:now:)`.
    case call(StoreCall)
    /// Wait this long, then call `resume(now:)`.
    case sleep(TimeSpan)
    /// The hot store lost its data: run (or join) a `RebuildMachine`, then call `resume(now:)`.
    case awaitRebuild
    /// The request is answered. `followUp`, if any, is tidying the driver may perform after
    /// answering, ignoring its reply; correctness never depends on it.
    case respond(Response, followUp: StoreCall?)
}

/// The retry limits shared by every request machine.
public struct ProtocolPolicy: Sendable, Equatable {
    /// Store calls that may fail (timeout or unavailable) before a request answers `503`.
    public var maxFailures: Int = 6
    /// Decisions that may be invalidated (conflict, fence) before a request answers `503`.
    public var maxRestarts: Int = 32
    /// First back-off after a failure; doubles per failure, with jitter, up to `maxBackoff`.
    public var baseBackoff: TimeSpan = .milliseconds(5)
    public var maxBackoff: TimeSpan = .milliseconds(250)
    /// Pending purchases younger than this are left to the request that made them.
    public var reconcileAfter: TimeSpan = .seconds(2)
    /// How far back reconciliation looks for half-done purchases, and in how many sales at most.
    public var reconcileHorizon: TimeSpan = .seconds(24 * 3_600)
    public var maxReconciledSales = 48

    public init() {}
}

/// Counts failures and restarts of one request and spaces its retries.
struct RetryBudget: Sendable {
    let policy: ProtocolPolicy
    var failures = 0
    var restarts = 0
    var jitter: SplitMix64

    init(policy: ProtocolPolicy, seed: UInt64) {
        self.policy = policy
        self.jitter = SplitMix64(seed: seed)
    }

    /// Records a failed call; returns the back-off before retrying, or nil when the budget is spent.
    mutating func backoffAfterFailure() -> TimeSpan? {
        failures += 1
        guard failures < policy.maxFailures else { return nil }
        let exponent = Int64(min(failures - 1, 20))
        let ceiling = min(policy.maxBackoff.microseconds, policy.baseBackoff.microseconds << exponent)
        let half = max(1, ceiling / 2)
        return TimeSpan(microseconds: half + Int64(jitter.next() % UInt64(half)))
    }

    /// Records an invalidated decision; false when the budget is spent.
    mutating func allowRestart() -> Bool {
        restarts += 1
        return restarts <= policy.maxRestarts
    }
}

/// The shape every request machine shares, so one driver loop can run any of them.
public protocol RequestStateMachine: Sendable {
    associatedtype Response: Sendable
    /// The first step; called once.
    mutating func start(now: Instant) -> Step<Response>
    /// The next step, given the reply to the last `.call`.
    mutating func receive(_ reply: StoreReply, now: Instant) -> Step<Response>
    /// The next step after a `.sleep` or an `.awaitRebuild`.
    mutating func resume(now: Instant) -> Step<Response>
    /// What impossible state the machine met, if it met one (see `CheckoutMachine.brokenInvariant`).
    var brokenInvariant: String? { get }
}

extension CheckoutMachine: RequestStateMachine {}
extension PurchaseMachine: RequestStateMachine {}
extension RebuildMachine: RequestStateMachine {}
extension ReconcileMachine: RequestStateMachine {
    public mutating func resume(now: Instant) -> Step<ReconcileResult> {
        guard case .awaitingRebuild = state else {
            brokenInvariant = "reconcile: resume in state \(state)"
            return finish(.failed)
        }
        return start(now: now)
    }
}
