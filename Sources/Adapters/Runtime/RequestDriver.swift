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
    public func run<M: RequestStateMachine>(_ machine: M) async -> M.Response {
        var machine = machine
        var step = machine.start(now: clock())
        while true {
            switch step {
            case .call(let call):
                let reply = await stores.execute(call)
                step = machine.receive(reply, now: clock())
            case .sleep(let span):
                try? await Task.sleep(for: .microseconds(span.microseconds))
                step = machine.resume(now: clock())
            case .awaitRebuild:
                _ = await rebuild()
                step = machine.resume(now: clock())
            case .respond(let response, let followUp):
                if let followUp {
                    let stores = self.stores
                    Task { _ = await stores.execute(followUp) }
                }
                return response
            }
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
