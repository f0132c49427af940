import Engine
import Synchronization

/// Runs engine state machines against real (asynchronous) stores: the production side of the
/// same machines the simulator drives. It executes steps and nothing else; every decision,
/// retry and ordering is the machine's.
public final class RequestDriver: Sendable {
    public let stores: Stores
    public let rules: SaleRules
    public let policy: ProtocolPolicy
    private let clock: @Sendable () -> Instant
    private let rebuilds = Mutex<Task<RebuildResult, Never>?>(nil)

    /// - Parameter clock: the wall clock in production; a test clock in tests.
    public init(stores: Stores, rules: SaleRules, policy: ProtocolPolicy = ProtocolPolicy(), clock: @escaping @Sendable () -> Instant) {
        self.stores = stores
        self.rules = rules
        self.policy = policy
        self.clock = clock
    }

    public func checkout(_ request: CheckoutRequest) async -> CheckoutResult {
        var random = SystemRandomNumberGenerator()  // codes must be unguessable: the OS CSPRNG
        let machine = CheckoutMachine(request: request, now: clock(), rules: rules, policy: policy, random: &random)
        return await run(machine)
    }

    public func purchase(_ code: Code) async -> PurchaseResult {
        var random = SystemRandomNumberGenerator()
        return await run(PurchaseMachine(code: code, rules: rules, policy: policy, random: &random))
    }

    public func reconcile() async -> ReconcileResult {
        await run(ReconcileMachine(rules: rules, policy: policy))
    }

    /// Runs `machine` to its response, then fires its follow-up without waiting for it.
    ///
    /// The calling task suspends once for the whole request: each store reply is fed to the
    /// machine on the thread it arrived on, which starts the next call from there. Only sleeps
    /// and rebuilds go through a task.
    public func run<M: RequestStateMachine>(_ machine: M) async -> M.Response {
        await withUnsafeContinuation { continuation in
            var machine = machine
            let step = machine.start(now: clock())
            advance(machine, step, continuation)
        }
    }

    /// Carries out `step` of `machine`; resumes `done` exactly once, with the response.
    private func advance<M: RequestStateMachine>(_ machine: M, _ step: Step<M.Response>, _ done: UnsafeContinuation<M.Response, Never>) {
        switch step {
        case .call(let call):
            stores.execute(call) { [self] reply in
                var machine = machine
                let next = machine.receive(reply, now: clock())
                advance(machine, next, done)
            }
        case .sleep(let span):
            Task { [self] in
                try? await Task.sleep(for: .microseconds(span.microseconds))
                var machine = machine
                let next = machine.resume(now: clock())
                advance(machine, next, done)
            }
        case .awaitRebuild:
            Task { [self] in
                _ = await rebuild()
                var machine = machine
                let next = machine.resume(now: clock())
                advance(machine, next, done)
            }
        case .respond(let response, let followUp):
            if let followUp { stores.execute(followUp) { _ in } }
            done.resume(returning: response)
        }
    }

    /// Rebuilds the hot store; concurrent callers in this process share one rebuild.
    public func rebuild() async -> RebuildResult {
        let task = rebuilds.withLock { current -> Task<RebuildResult, Never> in
            if let current { return current }
            let task = Task { [self] in
                var random = SystemRandomNumberGenerator()
                return await run(RebuildMachine(rules: rules, policy: policy, random: &random))
            }
            current = task
            return task
        }
        let result = await task.value
        rebuilds.withLock { if $0 == task { $0 = nil } }
        return result
    }
}
