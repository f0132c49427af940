/// One server instance between its clients and the stores: the request machines it is running,
/// what it remembers of the hot store, the one rebuild its requests share, and its reconcile pass.
///
/// It exists so that the glue around the machines is written once: the HTTP server
/// (`RequestDriver`) and the simulator drive this very type, the server with real stores and real
/// time, the simulator with its models and its event queue. It decides nothing itself (every
/// decision is a machine's); it routes inputs to machines and turns their steps into actions:
///
/// - A checkout or a purchase starts with this instance's guess of its first read
///   (`HotRecordCache`), so it may commit without reading first.
/// - Every reply to a hot-store call teaches the cache, before the machine sees it.
/// - A machine that asks for a rebuild joins the one this instance is running, or starts it; when
///   it ends, every waiter resumes.
/// - At most one reconcile pass runs at a time.
///
/// A driver executes each `InstanceAction` and feeds back what came of it: `receive` for a call's
/// reply, `wake` after a sleep. A `ClientToken` is whatever the driver needs to route an answer
/// back to whoever asked (a continuation's address, a simulated request's number).
///
/// Not generic over the client on purpose: a generic type from another module runs unspecialized
/// (every copy of a machine through value witnesses), which cost the server about 15 % of its CPU
/// per checkout when this runtime was first written that way.
public struct InstanceRuntime: Sendable {
    public typealias Client = ClientToken
    /// Names one machine of this instance, for the duration of its run. Never reused, even across
    /// `forgetEverything()`, so a reply or a wake-up meant for a machine that is gone finds nothing.
    public typealias MachineID = Int

    public let rules: SaleRules
    public let policy: ProtocolPolicy
    /// What this instance remembers of the hot store.
    public private(set) var cache: HotRecordCache
    private var machines: [MachineID: Running] = [:]
    private var lastID: MachineID = 0
    /// The rebuild in progress, and who waits for it.
    private var rebuild: (id: MachineID, waiters: [Waiter])?
    private var reconciling = false
    /// The source of rebuilds' generation strides (anything unpredictable enough not to collide).
    private var random: SplitMix64

    public init(rules: SaleRules, policy: ProtocolPolicy, seed: UInt64) {
        self.rules = rules
        self.policy = policy
        self.cache = HotRecordCache(rules: rules)
        self.random = SplitMix64(seed: seed)
    }

    // MARK: Inputs

    /// A checkout arrives at `now` (this instance's clock).
    /// - Parameter random: the source of its attempt id and code: the OS CSPRNG in production.
    public mutating func checkout(_ request: CheckoutRequest, for client: Client, now: Instant,
                                  random: inout some RandomNumberGenerator) -> [InstanceAction] {
        let guess = cache.snapshot(for: CheckoutMachine.firstRead(for: request, now: now, rules: rules))
        let machine = CheckoutMachine(request: request, now: now, rules: rules, policy: policy, random: &random, guess: guess)
        return begin(.checkout(machine, client), guessed: guess != nil, now: now)
    }

    /// A purchase arrives at `now` (this instance's clock).
    public mutating func purchase(_ code: Code, for client: Client, now: Instant,
                                  random: inout some RandomNumberGenerator) -> [InstanceAction] {
        let guess = cache.snapshot(for: PurchaseMachine.firstRead(for: code))
        let machine = PurchaseMachine(code: code, rules: rules, policy: policy, random: &random, guess: guess)
        return begin(.purchase(machine, client), guessed: guess != nil, now: now)
    }

    /// Starts a reconcile pass, unless one is running (then `client` is answered `.reconcileSkipped`).
    public mutating func reconcile(for client: Client, now: Instant) -> [InstanceAction] {
        guard !reconciling else { return [.respond(.reconcileSkipped, to: client)] }
        reconciling = true
        return begin(.reconcile(ReconcileMachine(rules: rules, policy: policy), client), guessed: false, now: now)
    }

    /// Rebuilds the hot store (or joins the rebuild under way); `client` gets `.rebuild`.
    public mutating func rebuild(for client: Client, now: Instant) -> [InstanceAction] {
        var actions: [InstanceAction] = []
        join(.client(client), now: now, into: &actions)
        return actions
    }

    /// The reply to the call machine `id` made last, received at `now`: `take`, `MachineInHand.step`
    /// and `putBack` in one go.
    public mutating func receive(_ reply: StoreReply, for id: MachineID, now: Instant) -> [InstanceAction] {
        guard var hand = take(id, reply: reply, now: now) else { return [] }
        hand.step(reply, now: now)
        return putBack(hand, now: now)
    }

    /// The first third of `receive`: learns what `reply` says of the hot store and hands over
    /// machine `id`, or nil if it awaits no reply (it is gone, or the reply is a stray).
    ///
    /// The three parts exist for a driver whose runtime is shared between threads: it holds its lock
    /// for `take` and `putBack` only, and steps the machine (the rules' decisions) outside it.
    public mutating func take(_ id: MachineID, reply: StoreReply, now: Instant) -> MachineInHand? {
        guard var running = machines.removeValue(forKey: id), let call = running.awaiting else { return nil }
        running.awaiting = nil
        var notes: [InstanceAction] = []
        if call.isHot {
            // Only a read's reply carries the store's clock to compare with ours.
            let localTime: Instant? = if case .hotRead(.snapshot) = reply { now } else { nil }
            cache.learn(call, reply, localTime: localTime)
        }
        if running.committingOnGuess {
            running.committingOnGuess = false
            notes.append(.note(.guessResolved(committed: reply == .hotCommit(.committed))))
        }
        return MachineInHand(id: id, running: running, notes: notes)
    }

    /// The last third of `receive`: the stepped machine is back, and what it asked for is done.
    public mutating func putBack(_ hand: MachineInHand, now: Instant) -> [InstanceAction] {
        var actions = hand.notes
        guard let step = hand.step else { return actions }
        machines[hand.id] = hand.running
        carryOut(step, of: hand.id, now: now, into: &actions)
        return actions
    }

    /// Machine `id` slept as asked; it carries on at `now`.
    public mutating func wake(_ id: MachineID, now: Instant) -> [InstanceAction] {
        guard machines[id] != nil else { return [] }
        var actions: [InstanceAction] = []
        resume(id, now: now, into: &actions)
        return actions
    }

    /// The instance died: every machine, every waiter and everything remembered is gone. Clients
    /// are not answered (their connections broke).
    public mutating func forgetEverything() {
        machines = [:]
        cache.forgetAll()
        rebuild = nil
        reconciling = false
    }

    // MARK: Inspection (metrics, coverage)

    /// Machines running now.
    public var running: Int { machines.count }

    /// Whom machine `id` answers (nil for a rebuild, or a machine that is gone).
    public func client(of id: MachineID) -> Client? { machines[id]?.machine.client }

    /// True while machine `id` is between two writes: a checkout holds the item in the hot store
    /// but has not made the hold durable, or a purchase sold the item but has not made the purchase
    /// durable.
    public func isBetweenWrites(_ id: MachineID) -> Bool {
        switch machines[id]?.machine {
        case .checkout(let m, _)?: m.isPersistingNewHold
        case .purchase(let m, _)?: m.isPersistingPurchase
        case .rebuild?, .reconcile?, .vacant?, nil: false
        }
    }

    // MARK: Stepping

    private mutating func begin(_ machine: Running.Machine, guessed: Bool, now: Instant) -> [InstanceAction] {
        lastID += 1
        let id = lastID
        var running = Running(machine: machine)
        let step = running.machine.step(.start, now: now)
        if guessed, case .call(.hotCommit) = step { running.committingOnGuess = true }
        machines[id] = running
        var actions: [InstanceAction] = running.committingOnGuess ? [.note(.committedOnGuess)] : []
        carryOut(step, of: id, now: now, into: &actions)
        return actions
    }

    private mutating func resume(_ id: MachineID, now: Instant, into actions: inout [InstanceAction]) {
        guard let step = machines[id]?.machine.step(.resume, now: now) else { return }
        carryOut(step, of: id, now: now, into: &actions)
    }

    private mutating func carryOut(_ step: Running.Step, of id: MachineID, now: Instant, into actions: inout [InstanceAction]) {
        switch step {
        case .call(let call):
            machines[id]?.awaiting = call
            actions.append(.call(call, machine: id))
        case .sleep(let span):
            actions.append(.sleep(span, machine: id))
        case .awaitRebuild:
            actions.append(.note(.rebuildAwaited))
            join(.machine(id), now: now, into: &actions)
        case .respond(let response, let followUp):
            let running = machines.removeValue(forKey: id)
            if let broken = running?.machine.brokenInvariant { actions.append(.note(.invariantBroken(broken))) }
            if let followUp { actions.append(.followUp(followUp)) }
            switch (response, running?.machine) {
            case (.rebuild(let result), _):
                actions.append(.note(.rebuildFinished(result)))
                let waiters = rebuild?.waiters ?? []
                rebuild = nil
                for waiter in waiters {
                    switch waiter {
                    case .machine(let waiting): resume(waiting, now: now, into: &actions)
                    case .client(let client): actions.append(.respond(.rebuild(result), to: client))
                    }
                }
            case (.reconcile, _):
                reconciling = false
                if let client = running?.machine.client { actions.append(.respond(response, to: client)) }
            case (.checkout, _), (.purchase, _), (.reconcileSkipped, _):
                if let client = running?.machine.client { actions.append(.respond(response, to: client)) }
            }
        }
    }

    private mutating func join(_ waiter: Waiter, now: Instant, into actions: inout [InstanceAction]) {
        if rebuild != nil {
            rebuild?.waiters.append(waiter)
            return
        }
        lastID += 1
        let id = lastID
        rebuild = (id, [waiter])
        var running = Running(machine: .rebuild(RebuildMachine(rules: rules, policy: policy, random: &random)))
        let step = running.machine.step(.start, now: now)
        machines[id] = running
        carryOut(step, of: id, now: now, into: &actions)
    }

    /// A machine taken out of the runtime to be stepped (`take`, `putBack`).
    public struct MachineInHand: Sendable {
        let id: MachineID
        fileprivate var running: Running
        let notes: [InstanceAction]
        fileprivate var step: Running.Step?

        fileprivate init(id: MachineID, running: Running, notes: [InstanceAction]) {
            self.id = id
            self.running = running
            self.notes = notes
        }

        /// Feeds the reply to the machine (the rules decide here).
        public mutating func step(_ reply: StoreReply, now: Instant) {
            step = running.machine.step(.reply(reply), now: now)
        }
    }

    /// Who waits for a rebuild.
    private enum Waiter: Sendable {
        case machine(MachineID)
        case client(Client)
    }

    /// A machine while it runs.
    fileprivate struct Running: Sendable {
        var machine: Machine
        /// The call it made and awaits the reply to.
        var awaiting: StoreCall?
        /// Its first call is a commit decided on a guess, not answered yet.
        var committingOnGuess = false

        init(machine: Machine) { self.machine = machine }

        enum Machine: Sendable {
            case checkout(CheckoutMachine, Client)
            case purchase(PurchaseMachine, Client)
            case rebuild(RebuildMachine)
            case reconcile(ReconcileMachine, Client)
            /// Held only while a machine is taken out to be stepped, so that the enum does not keep
            /// a second reference to its arrays (which would make every mutation copy them).
            case vacant

            var brokenInvariant: String? {
                switch self {
                case .checkout(let m, _): m.brokenInvariant
                case .purchase(let m, _): m.brokenInvariant
                case .rebuild(let m): m.brokenInvariant
                case .reconcile(let m, _): m.brokenInvariant
                case .vacant: nil
                }
            }

            var client: Client? {
                switch self {
                case .checkout(_, let client), .purchase(_, let client), .reconcile(_, let client): client
                case .rebuild, .vacant: nil
                }
            }

            enum Input {
                case start
                case reply(StoreReply)
                case resume
            }

            /// Feeds `input` to the machine, its response wrapped as an `InstanceResponse`.
            mutating func step(_ input: Input, now: Instant) -> Step {
                switch self {
                case .checkout(var m, let client):
                    self = .vacant
                    defer { self = .checkout(m, client) }
                    return Step(Self.feed(&m, input, now)) { .checkout($0, attempt: m.attemptID, sale: m.sale) }
                case .purchase(var m, let client):
                    self = .vacant
                    defer { self = .purchase(m, client) }
                    return Step(Self.feed(&m, input, now)) { .purchase($0) }
                case .rebuild(var m):
                    self = .vacant
                    defer { self = .rebuild(m) }
                    return Step(Self.feed(&m, input, now)) { .rebuild($0) }
                case .reconcile(var m, let client):
                    self = .vacant
                    defer { self = .reconcile(m, client) }
                    return Step(Self.feed(&m, input, now)) { .reconcile($0) }
                case .vacant:
                    preconditionFailure("a machine stepped while it is being stepped")
                }
            }

            static func feed<M: RequestStateMachine>(_ machine: inout M, _ input: Input, _ now: Instant) -> Engine.Step<M.Response> {
                switch input {
                case .start: machine.start(now: now)
                case .reply(let reply): machine.receive(reply, now: now)
                case .resume: machine.resume(now: now)
                }
            }
        }

        /// A machine's `Step`, its response type erased.
        enum Step {
            case call(StoreCall)
            case sleep(TimeSpan)
            case awaitRebuild
            case respond(InstanceResponse, followUp: StoreCall?)

            init<R>(_ step: Engine.Step<R>, _ wrap: (R) -> InstanceResponse) {
                switch step {
                case .call(let call): self = .call(call)
                case .sleep(let span): self = .sleep(span)
                case .awaitRebuild: self = .awaitRebuild
                case .respond(let response, let followUp): self = .respond(wrap(response), followUp: followUp)
                }
            }
        }
    }
}

/// What an `InstanceRuntime` asks its driver to do.
public enum InstanceAction: Sendable {
    /// Perform this store call; feed its reply (or its failure) to `receive(_:for:now:)`.
    case call(StoreCall, machine: InstanceRuntime.MachineID)
    /// Wait this long, then call `wake(_:now:)`.
    case sleep(TimeSpan, machine: InstanceRuntime.MachineID)
    /// Perform this call and ignore its reply: tidying after an answer, which correctness never
    /// depends on.
    case followUp(StoreCall)
    /// Answer `client`.
    case respond(InstanceResponse, to: ClientToken)
    /// Something worth counting happened (metrics, coverage).
    case note(InstanceNote)
}

/// An answer from an instance's machines.
public enum InstanceResponse: Hashable, Sendable {
    case checkout(CheckoutResult, attempt: AttemptID, sale: SaleID)
    case purchase(PurchaseResult)
    case rebuild(RebuildResult)
    case reconcile(ReconcileResult)
    /// A reconcile pass was asked for while one was running.
    case reconcileSkipped
}

/// Events of an instance's life that drivers count (metrics) or mark (simulator coverage).
public enum InstanceNote: Hashable, Sendable {
    /// A checkout or a purchase sent its compare-and-set decided on a guess, without reading.
    case committedOnGuess
    /// That compare-and-set was answered: taken, or refused (the guess was out of date) or lost.
    case guessResolved(committed: Bool)
    /// A machine found the hot store in need of a rebuild and waits for it.
    case rebuildAwaited
    /// A rebuild ended.
    case rebuildFinished(RebuildResult)
    /// A machine met a state its protocol rules out, and answered as a failure
    /// (`CheckoutMachine.brokenInvariant`): a bug, to be reported loudly.
    case invariantBroken(String)
}

/// Who asked: an opaque number the driver chooses and the runtime hands back with the answer.
public struct ClientToken: Hashable, Sendable {
    public let rawValue: UInt64

    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
}
