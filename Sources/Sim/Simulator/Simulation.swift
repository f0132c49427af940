import Engine
import StoreModel

/// One deterministic simulation run: several instances of the real engine, simulated
/// PostgreSQL and Redis with fault injection, thousands of simulated users, and the checker
/// watching every step. Single-threaded; the event queue is the only source of order.
public struct Simulation: Sendable {
    public let config: SimConfig
    let calendar: SaleCalendar
    let firstSale: SaleID
    let start: Instant
    let end: Instant
    let faultsEnd: Instant

    var now: Instant
    var queue = EventQueue()
    var trace = TraceHash()
    var events = 0
    /// The last 40 events, a ring: `recentNext` is where the next one goes (the oldest, once full).
    var recent: [(Instant, Event)] = []
    var recentNext = 0
    /// What happened to the watched item (`CausalStory.swift`).
    var story: [String] = []
    /// The run over time, when `config.recordTimeline` (`SimTimeline.swift`).
    var timeline = SimTimeline()

    var hot = HotStoreModel()
    /// The last copy Redis saved (its RDB snapshot, or what a replica holds).
    var savedHot: HotStoreModel?
    var durable = DurableStoreModel()
    var hotDown = false
    var durableDown = false
    /// (instance, is hot) pairs cut off from each other.
    var partitioned: Set<Partition> = []

    struct Partition: Hashable, Sendable {
        let instance: Int
        let hot: Bool
    }
    var faultsActive: Bool

    var instances: [SimInstance] = []
    var users: [SimUser] = []
    var requests: [ClientRequest] = []
    var respondedAt: [Int: Instant] = [:]
    /// Purchases that found their code already bought when they arrived (planted bug
    /// `purchaseRetryNotIdempotent`).
    var arrivedBought: Set<Int> = []
    /// What the planted bugs that need state remember (`PlantedBugMemory.swift`).
    var bugMemory = PlantedBugMemory()
    /// Timeline faults that came due so far (their places, for `SimConfig.skippedFaults`).
    var timelineFaultsStruck = 0
    /// Read endpoint requests in progress on their instances (`SimViews.swift`).
    var views: [Int: ViewState] = [:]
    var firstAnswers: [Int: SimResponse] = [:]
    /// What every client was answered, and when: the run's history (SimHistory.swift).
    var history = SimHistory()
    var leaked: [Hold] = []

    var calls: [Int: PendingCall] = [:]
    var nextCall = 0
    /// Calls sent together on a connection (`SimConnections.swift`).
    var batches: [Int: SimBatch] = [:]
    var nextBatch = 0
    /// The connection whose replies are being handed out: a call made meanwhile queues on it.
    var currentConnection: ConnectionAddress?

    var rngFaults: SplitMix64

    var checker: Checker
    var coverage: [String: Int] = [:]
    var outcomes: [String: Int] = [:]
    var faultCounts: [String: Int] = [:]
    var soldOutAt: [SaleID: Instant] = [:]
    var durableSold: [SaleID: Int] = [:]
    var unavailableAfterSettle = 0
    var lastInstallAt: Instant?
    var unsold: [SaleID: UnsoldItems] = [:]

    struct PendingCall: Sendable {
        let instance: Int
        let incarnation: Int
        /// nil for fire-and-forget follow-ups.
        let machine: Int?
        let call: StoreCall
        /// When the caller stops waiting for it.
        var deadline: Instant
        var waiting = true
        /// The store has applied it (or refused it).
        var received = false
        /// It never reaches the store (its batch was lost on the way).
        var lostOnTheWay = false
        /// Its stable identity, from which its faults and delays are drawn (`StableDraws.swift`).
        var identity: UInt64 = 0
        /// The read endpoint request it is for, if any (`SimViews.swift`).
        var view: Int?
    }

    static let clientTimeout = TimeSpan.seconds(3)
    static let hotTimeout = TimeSpan.milliseconds(150)
    static let durableTimeout = TimeSpan.milliseconds(500)
    static let reconcileEvery = TimeSpan.seconds(5)
    static let settle = TimeSpan.seconds(15)

    public init(config: SimConfig) {
        self.config = config
        calendar = SaleCalendar(saleLength: config.rules.saleLength)
        // 2026-01-01T00:00:00Z, rounded up to a sale boundary, minus a little warm-up.
        firstSale = calendar.sale(at: .seconds(1_767_225_600 - 1) + config.rules.saleLength)
        let saleStart = calendar.start(of: firstSale)
        start = saleStart - .seconds(2)
        let lastEnd = calendar.end(of: SaleID(firstSale.rawValue + Int64(config.sales) - 1))
        end = lastEnd + config.rules.holdTTL + config.rules.clockSkewAllowance * 2 + Self.settle
        let span = lastEnd - saleStart
        faultsEnd = saleStart + TimeSpan(microseconds: Int64(Double(span.microseconds) * config.faultFraction))
        now = start
        faultsActive = !config.faults.isNone
        var root = SplitMix64(seed: config.seed)
        rngFaults = root.fork()
        let first = firstSale
        checker = Checker(rules: config.rules, maxSkew: config.maxClockSkew, sales: (0..<config.sales).map { SaleID(first.rawValue + Int64($0)) })
        for _ in 0..<config.instances {
            var rng = root.fork()
            let offset = TimeSpan(microseconds: rng.micros(-config.maxClockSkew.microseconds, config.maxClockSkew.microseconds))
            let rules = config.plantedBug?.instanceRules(config.rules) ?? config.rules
            let runtime = InstanceRuntime(rules: rules, policy: config.policy, seed: rng.next())
            let pools = SimPools(connections: config.connectionsPerStore, maxBatch: config.maxBatch)
            instances.append(SimInstance(clockOffset: offset, rng: rng, runtime: runtime, pools: pools))
        }
        for index in 0..<config.users {
            var rng = root.fork()
            users.append(SimUser(index: index, behaviour: Behaviour.draw(&rng), rng: rng))
        }
    }

    var sales: [SaleID] { (0..<config.sales).map { SaleID(firstSale.rawValue + Int64($0)) } }

    // MARK: Running

    /// Runs to the end and returns the verdict.
    public mutating func run() -> SimReport {
        schedulePopulation()
        while let scheduled = queue.next() {
            guard scheduled.time <= end else { break }
            now = scheduled.time
            sampleTimelineIfDue()
            events += 1
            trace.mix(UInt64(bitPattern: now.microseconds))
            trace.mix(scheduled.event.kind << 56 | scheduled.event.subject)
            trace.mixContents(of: scheduled.event)
            if recent.count < 40 { recent.append((now, scheduled.event)) } else { recent[recentNext] = (now, scheduled.event) }
            recentNext = (recentNext + 1) % 40
            if let index = pausedInstance(for: scheduled.event) {
                // The instance is stopped: whatever is for it (or still in its send buffer) waits.
                instances[index].deferred.append(scheduled.event)
                continue
            }
            handle(scheduled.event)
            if config.stopAtFirstViolation && !checker.violations.isEmpty { break }
        }
        if checker.violations.isEmpty || !config.stopAtFirstViolation { finalChecks() }
        return report()
    }

    mutating func schedulePopulation() {
        let saleStart = calendar.start(of: firstSale)
        for index in users.indices {
            queue.schedule(.userActs(user: index), at: arrival(of: index, saleStart: saleStart))
        }
        for index in instances.indices {
            queue.schedule(.reconcileTick(instance: index), at: start + .milliseconds(Int64(index) * 997))
        }
        if !config.faults.isNone {
            let f = config.faults
            if f.redisRestartEvery > .zero { queue.schedule(.redisRestart, at: saleStart + rngFaults.exponential(mean: f.redisRestartEvery)) }
            if f.redisRollbackEvery > .zero {
                queue.schedule(.redisSave, at: saleStart + rngFaults.exponential(mean: f.redisSaveEvery))
                queue.schedule(.redisRollback, at: saleStart + rngFaults.exponential(mean: f.redisRollbackEvery))
            }
            if f.outageEvery > .zero { queue.schedule(.outageStarts(hot: rngFaults.chance(0.5)), at: saleStart + rngFaults.exponential(mean: f.outageEvery)) }
            if f.foreignRedisEvery > .zero {
                queue.schedule(.redisServesAnotherDatabase, at: saleStart + rngFaults.exponential(mean: f.foreignRedisEvery))
            }
            if f.badClockEvery > .zero {
                queue.schedule(.clockGoesBad(instance: rngFaults.int(0...(config.instances - 1))), at: saleStart + rngFaults.exponential(mean: f.badClockEvery))
            }
            if f.partitionEvery > .zero {
                queue.schedule(.partitionStarts(instance: rngFaults.int(0...(config.instances - 1)), hot: rngFaults.chance(0.5)),
                               at: saleStart + rngFaults.exponential(mean: f.partitionEvery))
            }
            if f.pauseEvery > .zero {
                queue.schedule(.pause(instance: rngFaults.int(0...(config.instances - 1))), at: saleStart + rngFaults.exponential(mean: f.pauseEvery))
            }
            if f.clockJumpEvery > .zero {
                queue.schedule(.clockJump(instance: rngFaults.int(0...(config.instances - 1))), at: saleStart + rngFaults.exponential(mean: f.clockJumpEvery))
            }
            queue.schedule(.faultsEnd, at: faultsEnd)
        }
    }

    /// When a user first shows up in a sale: most in its first seconds (the drop), some hammering
    /// already in the last seconds before it (their requests straddle the rollover), stragglers in
    /// its last seconds.
    mutating func arrival(of index: Int, saleStart: Instant) -> Instant {
        if users[index].behaviour == .straggler {
            let back = users[index].rng.micros(0, 20_000_000)
            return saleStart + config.rules.saleLength - TimeSpan(microseconds: back)
        }
        if users[index].rng.chance(0.1) { return saleStart - TimeSpan(microseconds: users[index].rng.micros(0, 1_500_000)) }
        return saleStart + TimeSpan(microseconds: users[index].rng.micros(0, 15_000_000))
    }

    mutating func handle(_ event: Event) {
        switch event {
        case .userActs(let user): userActs(user)
        case .requestArrives(let request): requestArrives(request)
        case .responseArrives(let request, let response): responseArrives(request, response)
        case .clientTimeout(let request): clientTimeout(request)
        case .batchReachesStore(let batch): batchReachesStore(batch)
        case .batchReplyArrives(let batch, let replies): batchReplyArrives(batch, replies)
        case .batchGivesUp(let batch): batchGivesUp(batch)
        case .callTimeout(let call): callTimedOut(call)
        case .wake(let instance, let incarnation, let machine):
            guard instances[instance].alive, instances[instance].incarnation == incarnation else { return }
            carryOut(instances[instance].runtime.wake(machine, now: instances[instance].localTime(now)), on: instance)
        case .restart(let instance): restart(instance)
        case .redisRestart: redisRestart()
        case .redisSave: redisSave()
        case .redisRollback: redisRollback()
        case .redisServesAnotherDatabase: redisServesAnotherDatabase()
        case .outageStarts(let isHot): outageStarts(hot: isHot)
        case .outageEnds(let isHot): outageEnds(hot: isHot)
        case .clockJump(let instance): clockJump(instance)
        case .pause(let instance): pause(instance)
        case .resume(let instance): resume(instance)
        case .clockGoesBad(let instance): clockGoesBad(instance)
        case .clockRecovers(let instance): clockRecovers(instance)
        case .partitionStarts(let instance, let isHot): partitionStarts(instance, hot: isHot)
        case .partitionEnds(let instance, let isHot): partitioned.remove(Partition(instance: instance, hot: isHot))
        case .reconcileTick(let instance): reconcileTick(instance)
        case .faultsEnd:
            faultsActive = false
            for index in instances.indices {  // no fault outlives the fault phase
                instances[index].pauseAtNextStep = nil
                resume(index)
                if instances[index].clockBad { clockRecovers(index) }
            }
            hotDown = false
            durableDown = false
            partitioned = []
        }
    }

    /// Whether the timeline fault coming due now strikes, or is one the configuration leaves out
    /// (called once its draws are made, right before its effect).
    mutating func strikes() -> Bool {
        timelineFaultsStruck += 1
        return !config.skippedFaults.contains(timelineFaultsStruck - 1)
    }

    mutating func mark(_ name: String) { coverage[name, default: 0] += 1 }
    mutating func count(_ outcome: String) { outcomes[outcome, default: 0] += 1 }
    mutating func fault(_ name: String) {
        faultCounts[name, default: 0] += 1
        if config.recordTimeline && !Self.chartedAsSpans.contains(name) { chart(name, lane: Self.lane(of: name)) }
        if config.watch != nil { tell("fault: \(name)") }
    }
}
