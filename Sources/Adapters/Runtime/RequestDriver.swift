import Engine

/// Runs this process's `InstanceRuntime` against real (asynchronous) stores and real time: the
/// production side of the very runtime the simulator drives. It executes actions and nothing
/// else; every decision, retry and ordering is a machine's, and the glue between the machines
/// (the cache, the shared rebuild, the reconcile pass) is the runtime's.
///
/// The calling task suspends once for a whole request: each store reply is fed to the runtime on
/// the thread it arrived on, which starts the next call from there. Only sleeps go through a task.
/// The runtime is held under a lock for the length of one step; actions are carried out after it
/// is released (the in-memory store answers inside `execute`).
public final class RequestDriver: Sendable {
    public let stores: any StorePort
    public let rules: SaleRules
    public let policy: ProtocolPolicy
    private let clock: @Sendable () -> Instant
    private let runtime: AdaptiveLock<InstanceRuntime>
    private let onNote: @Sendable (InstanceNote) -> Void

    /// - Parameters:
    ///   - clock: the wall clock in production; a test clock in tests.
    ///   - onNote: told of the runtime's notes (commits decided on a guess and how they fared,
    ///     rebuilds): for metrics.
    public init(stores: any StorePort, rules: SaleRules, policy: ProtocolPolicy = ProtocolPolicy(),
                clock: @escaping @Sendable () -> Instant, onNote: @escaping @Sendable (InstanceNote) -> Void = { _ in }) {
        self.stores = stores
        self.rules = rules
        self.policy = policy
        self.clock = clock
        self.onNote = onNote
        var seed = RequestRandom()
        self.runtime = AdaptiveLock(InstanceRuntime(rules: rules, policy: policy, seed: seed.next()))
    }

    public func checkout(_ request: CheckoutRequest) async -> CheckoutResult {
        var random = RequestRandom()  // codes must be unguessable: the OS CSPRNG (drawn before the lock)
        guard case .checkout(let result, _, _) = await ask({ runtime, slot, now in
            runtime.checkout(request, for: slot, now: now, random: &random)
        }) else { return .unavailable }
        return result
    }

    public func purchase(_ code: Code) async -> PurchaseResult {
        var random = RequestRandom()
        guard case .purchase(let result) = await ask({ runtime, slot, now in
            runtime.purchase(code, for: slot, now: now, random: &random)
        }) else { return .unavailable }
        return result
    }

    /// One reconcile pass (`.failed` when one was already running).
    public func reconcile() async -> ReconcileResult {
        guard case .reconcile(let result) = await ask({ $0.reconcile(for: $1, now: $2) }) else { return .failed }
        return result
    }

    /// Rebuilds the hot store; concurrent callers and requests in this process share one rebuild.
    public func rebuild() async -> RebuildResult {
        guard case .rebuild(let result) = await ask({ $0.rebuild(for: $1, now: $2) }) else { return .failed }
        return result
    }

    /// Machines running in this process now.
    public var running: Int { runtime.withLock { $0.running } }

    /// Starts what `begin` starts, and waits for its answer.
    private func ask(
        _ begin: (inout InstanceRuntime, ClientToken, Instant) -> [InstanceAction]
    ) async -> InstanceResponse {
        await withUnsafeContinuation { continuation in
            let token = ResponseSlot(continuation).token
            let now = clock()
            carryOut(runtime.withLock { begin(&$0, token, now) })
        }
    }

    private func carryOut(_ actions: [InstanceAction]) {
        for action in actions {
            switch action {
            case .call(let call, let machine):
                stores.execute(call) { [self] reply in
                    // The lock is held to hand the machine over and back, not while it decides.
                    let now = clock()
                    guard var hand = runtime.withLock({ $0.take(machine, reply: reply, now: now) }) else { return }
                    hand.step(reply, now: now)
                    carryOut(runtime.withLock { $0.putBack(hand, now: now) })
                }
            case .sleep(let span, let machine):
                Task { [self] in
                    try? await Task.sleep(for: span.duration)
                    let now = clock()
                    carryOut(runtime.withLock { $0.wake(machine, now: now) })
                }
            case .followUp(let call):
                stores.execute(call) { _ in }
            case .respond(let response, let token):
                ResponseSlot.answer(token, with: response)
            case .note(let note):
                onNote(note)
            }
        }
    }
}

/// Where one caller waits for its answer, carried through the runtime as a `ClientToken`: the
/// slot's address, retained until the answer. The runtime answers each client exactly once (this
/// process never calls `forgetEverything()`), so each slot is released exactly once.
final class ResponseSlot: Sendable {
    let continuation: UnsafeContinuation<InstanceResponse, Never>

    init(_ continuation: UnsafeContinuation<InstanceResponse, Never>) {
        self.continuation = continuation
    }

    /// A token for this slot, which keeps it alive until `answer(_:with:)`.
    var token: ClientToken {
        ClientToken(UInt64(UInt(bitPattern: Unmanaged.passRetained(self).toOpaque())))
    }

    /// Resumes the caller waiting on `token`, and releases its slot.
    static func answer(_ token: ClientToken, with response: InstanceResponse) {
        guard let pointer = UnsafeRawPointer(bitPattern: UInt(token.rawValue)) else { return }
        Unmanaged<ResponseSlot>.fromOpaque(pointer).takeRetainedValue().continuation.resume(returning: response)
    }
}
