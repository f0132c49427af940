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
    /// What this instance remembers of the hot store, so a checkout or purchase can commit on a
    /// guess instead of reading first (`HotRecordCache`).
    private let hotCache: Mutex<HotRecordCache>
    private let onGuessedCommit: @Sendable (Bool) -> Void

    /// - Parameters:
    ///   - clock: the wall clock in production; a test clock in tests.
    ///   - onGuessedCommit: told of every commit decided on a guess: true when the store took it,
    ///     false when the guess was out of date (or the reply was lost). For metrics.
    public init(stores: Stores, rules: SaleRules, policy: ProtocolPolicy = ProtocolPolicy(), clock: @escaping @Sendable () -> Instant,
                onGuessedCommit: @escaping @Sendable (Bool) -> Void = { _ in }) {
        self.stores = stores
        self.rules = rules
        self.policy = policy
        self.clock = clock
        self.onGuessedCommit = onGuessedCommit
        self.hotCache = Mutex(HotRecordCache(rules: rules))
    }

    public func checkout(_ request: CheckoutRequest) async -> CheckoutResult {
        var random = RequestRandom()  // codes must be unguessable: the OS CSPRNG
        let now = clock()
        let read = CheckoutMachine.firstRead(for: request, now: now, rules: rules)
        let guess = hotCache.withLock { $0.snapshot(for: read) }
        return await run(CheckoutMachine(request: request, now: now, rules: rules, policy: policy, random: &random, guess: guess),
                         guessed: guess != nil)
    }

    public func purchase(_ code: Code) async -> PurchaseResult {
        var random = RequestRandom()
        let read = PurchaseMachine.firstRead(for: code, now: clock(), rules: rules, policy: policy)
        let guess = hotCache.withLock { $0.snapshot(for: read) }
        return await run(PurchaseMachine(code: code, rules: rules, policy: policy, random: &random, guess: guess), guessed: guess != nil)
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
        await run(machine, guessed: false)
    }

    /// - Parameter guessed: the machine was given a guess; a commit as its first step was
    ///   decided on it.
    private func run<M: RequestStateMachine>(_ machine: M, guessed: Bool) async -> M.Response {
        await withUnsafeContinuation { continuation in
            let request = RunningRequest(machine: machine, done: continuation)
            let step = request.machine.start(now: clock())
            if guessed, case .call(.hotCommit) = step { request.committingOnGuess = true }
            advance(request, step)
        }
    }

    /// Carries out `step` of `request`; at `.respond`, resumes its task (exactly once).
    private func advance<M: RequestStateMachine>(_ request: RunningRequest<M>, _ step: Step<M.Response>) {
        switch step {
        case .call(let call):
            stores.execute(call) { [self] reply in
                if call.isHot {
                    // Only a read's reply carries the store's clock to compare with ours.
                    let now: Instant? = if case .hotRead(.snapshot) = reply { clock() } else { nil }
                    hotCache.withLock { $0.learn(call, reply, localTime: now) }
                }
                if request.committingOnGuess {
                    request.committingOnGuess = false
                    onGuessedCommit(reply == .hotCommit(.committed))
                }
                let next = request.machine.receive(reply, now: clock())
                advance(request, next)
            }
        case .sleep(let span):
            Task { [self] in
                try? await Task.sleep(for: .microseconds(span.microseconds))
                let next = request.machine.resume(now: clock())
                advance(request, next)
            }
        case .awaitRebuild:
            Task { [self] in
                _ = await rebuild()
                let next = request.machine.resume(now: clock())
                advance(request, next)
            }
        case .respond(let response, let followUp):
            if let followUp { stores.execute(followUp) { _ in } }
            request.done.resume(returning: response)
        }
    }

    /// Rebuilds the hot store; concurrent callers in this process share one rebuild.
    public func rebuild() async -> RebuildResult {
        let task = rebuilds.withLock { current -> Task<RebuildResult, Never> in
            if let current { return current }
            let task = Task { [self] in
                var random = RequestRandom()
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

/// One request's state machine while it runs, boxed so that each step mutates it in place instead
/// of copying it into the next completion.
///
/// `@unchecked Sendable`: the machine is touched by one step at a time, and the next step starts
/// only from the completion of the store call the previous step issued (a hand-off through the
/// store's queue, which orders the two).
private final class RunningRequest<M: RequestStateMachine>: @unchecked Sendable {
    var machine: M
    let done: UnsafeContinuation<M.Response, Never>
    /// Its first call is a commit decided on a guess, not answered yet.
    var committingOnGuess = false

    init(machine: M, done: UnsafeContinuation<M.Response, Never>) {
        self.machine = machine
        self.done = done
    }
}
