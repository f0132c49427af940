import Engine

/// How hostile the simulated environment is. Rates are per store operation unless said otherwise;
/// every draw comes from the run's seed.
public struct FaultProfile: Sendable, Equatable {
    public var name: String
    /// Probability that an instance crashes just before handling a store reply (between two port calls).
    public var crashPerReply: Double
    /// Probability that a store applies an operation but its reply is lost (the caller times out).
    public var lostReply: Double
    /// Probability that a store refuses an operation without applying it.
    public var transientError: Double
    /// Probability that a reply is delayed by a latency spike.
    public var latencySpike: Double
    /// Mean virtual time between Redis restarts that lose everything (0 = never).
    public var redisRestartEvery: TimeSpan
    /// Mean virtual time between Redis coming back with an older copy of its data (0 = never):
    /// a restart from the last RDB snapshot, or a failover to a replica that lagged. Copies are
    /// saved every `redisSaveEvery` on average, so the data lost ranges from milliseconds to a
    /// few tens of seconds of writes.
    public var redisRollbackEvery: TimeSpan
    public var redisSaveEvery: TimeSpan = .seconds(5)
    /// Mean virtual time between store outages (either store, 0 = never) and their length.
    public var outageEvery: TimeSpan
    public var outageLength: TimeSpan
    /// Mean virtual time between clock jumps of some instance (0 = never).
    public var clockJumpEvery: TimeSpan
    /// Clients that fail to receive a response they were sent.
    public var lostResponse: Double
    /// Mean virtual time between pauses of some instance (0 = never); a pause lasts from 10 ms to
    /// three hold TTLs, and may fall between any two steps of a machine.
    public var pauseEvery: TimeSpan = .zero
    /// Mean virtual time between partitions of one instance from one store (0 = never); each lasts
    /// about `outageLength`.
    public var partitionEvery: TimeSpan = .zero
    /// Mean virtual time between an instance's clock going outside the skew allowance (0 = never):
    /// a jump or drift of one to five allowances either way, for one to ten seconds.
    public var badClockEvery: TimeSpan = .zero
    /// Mean virtual time between Redis turning out to hold another database's state (0 = never):
    /// half the items sold to strangers and every sale marked sold out.
    public var foreignRedisEvery: TimeSpan = .zero
    /// Probability that a store call is lost on its way to the store (it never applies; the caller
    /// times out), and that one is delayed past its timeout (it applies after the caller gave up
    /// on it and, often, after its retry).
    public var lostOnTheWay: Double = 0
    public var appliedLate: Double = 0

    public static let off = FaultProfile(
        name: "none", crashPerReply: 0, lostReply: 0, transientError: 0, latencySpike: 0, redisRestartEvery: .zero,
        redisRollbackEvery: .zero, outageEvery: .zero, outageLength: .zero, clockJumpEvery: .zero, lostResponse: 0)
    public static let `default` = FaultProfile(
        name: "default", crashPerReply: 0.000_03, lostReply: 0.002, transientError: 0.002, latencySpike: 0.003,
        redisRestartEvery: .seconds(90), redisRollbackEvery: .seconds(90), outageEvery: .seconds(45), outageLength: .milliseconds(1_500),
        clockJumpEvery: .seconds(20), lostResponse: 0.001, pauseEvery: .seconds(60), partitionEvery: .seconds(45), badClockEvery: .seconds(120), foreignRedisEvery: .seconds(150), lostOnTheWay: 0.001,
        appliedLate: 0.001)
    public static let heavy = FaultProfile(
        name: "heavy", crashPerReply: 0.000_3, lostReply: 0.01, transientError: 0.01, latencySpike: 0.01,
        redisRestartEvery: .seconds(30), redisRollbackEvery: .seconds(30), outageEvery: .seconds(15), outageLength: .seconds(3),
        clockJumpEvery: .seconds(5), lostResponse: 0.005, pauseEvery: .seconds(20), partitionEvery: .seconds(15), badClockEvery: .seconds(45), foreignRedisEvery: .seconds(50), lostOnTheWay: 0.005,
        appliedLate: 0.005)

    public static func named(_ name: String) -> FaultProfile? {
        switch name {
        case "none": .off
        case "default": .default
        case "heavy": .heavy
        default: nil
        }
    }

    public var isNone: Bool { crashPerReply == 0 && lostReply == 0 && transientError == 0 && latencySpike == 0
        && redisRestartEvery == .zero && redisRollbackEvery == .zero && outageEvery == .zero && clockJumpEvery == .zero && lostResponse == 0
        && pauseEvery == .zero && partitionEvery == .zero && badClockEvery == .zero && foreignRedisEvery == .zero && lostOnTheWay == 0 && appliedLate == 0 }

    /// Scales one kind of fault (0 switches it off).
    public mutating func scale(_ kind: FaultKind, by factor: Double) {
        func span(_ s: TimeSpan) -> TimeSpan {
            factor <= 0 ? .zero : TimeSpan(microseconds: Int64(Double(s.microseconds) / factor))
        }
        switch kind {
        case .crash: crashPerReply *= factor
        case .lostReply: lostReply *= factor
        case .transient: transientError *= factor
        case .latency: latencySpike *= factor
        case .redisRestart: redisRestartEvery = span(redisRestartEvery)
        case .redisRollback: redisRollbackEvery = span(redisRollbackEvery)
        case .outage: outageEvery = span(outageEvery)
        case .clockJump: clockJumpEvery = span(clockJumpEvery)
        case .lostResponse: lostResponse *= factor
        case .pause: pauseEvery = span(pauseEvery)
        case .partition: partitionEvery = span(partitionEvery)
        case .badClock: badClockEvery = span(badClockEvery)
        case .foreignRedis: foreignRedisEvery = span(foreignRedisEvery)
        case .lostCall: lostOnTheWay *= factor
        case .lateCall: appliedLate *= factor
        }
        scales[kind] = (scales[kind] ?? 1) * factor
    }

    /// Kinds scaled away from the named profile, for the replay command (`--fault-scale`).
    public var scales: [FaultKind: Double] = [:]

    public var scaleArgument: String? {
        let changed = scales.filter { $0.value != 1 }.sorted { $0.key.rawValue < $1.key.rawValue }
        return changed.isEmpty ? nil : changed.map { "\($0.key.rawValue)=\($0.value)" }.joined(separator: ",")
    }
}

/// The kinds of fault the simulator injects, by the names the command line uses (`--without`,
/// `--fault-scale`). Each is one dial of `FaultProfile`; what each models and what keeps the
/// guarantees under it: docs/failure-model.md.
public enum FaultKind: String, Sendable, CaseIterable, Hashable {
    case crash
    case lostReply = "lost-reply"
    case transient
    case latency
    case redisRestart = "redis-restart"
    case redisRollback = "redis-rollback"
    case outage
    case clockJump = "clock-jump"
    case lostResponse = "lost-response"
    case pause
    case partition
    case badClock = "bad-clock"
    case foreignRedis = "foreign-redis"
    case lostCall = "lost-call"
    case lateCall = "late-call"
}

/// The knobs of one simulation run. One seed plus these determine the run entirely.
public struct SimConfig: Sendable, Equatable {
    public var seed: UInt64
    /// Timeline faults (restarts, rollbacks, outages, pauses, partitions, clock faults, another
    /// database) left out by their place in the run's order: each still draws what it would have,
    /// so the others keep their times (how `--shrink` removes them one by one).
    public var skippedFaults: Set<Int> = []
    public var users: Int = 10_000
    public var instances: Int = 3
    public var sales: Int = 1
    public var rules: SaleRules
    public var faults: FaultProfile = .default
    /// Faults stop after this fraction of the simulated sales; the rest is the liveness phase.
    public var faultFraction: Double = 0.5
    /// Largest offset of an instance clock from true time; at most half the skew allowance.
    public var maxClockSkew: TimeSpan
    public var policy = ProtocolPolicy()
    /// A deliberate mistake planted in the instances (`PlantedBug`), for the catalogue only.
    public var plantedBug: PlantedBug?
    /// Print every store operation that touches this item (diagnosis of a failing seed).
    public var watch: HotKey?
    /// Sample the run over time for the HTML report (`SimTimeline`).
    public var recordTimeline = false
    /// Connections each instance opens to each store (the server's `PG_CONNECTIONS`,
    /// `REDIS_CONNECTIONS`; default 2 there too).
    public var connectionsPerStore = 2
    /// The most calls one batch carries. The server sends up to 256; the simulator's default is small
    /// so that full batches, and the queue left behind them, happen in ordinary runs.
    public var maxBatch = 8
    /// Stop at the first violation (the default) or keep going to collect more.
    public var stopAtFirstViolation = true

    public init(seed: UInt64) {
        self.seed = seed
        var rules = SaleRules()
        rules.saleLength = .seconds(600)
        rules.holdTTL = .seconds(30)
        rules.catalogSeed = seed
        self.rules = rules
        self.maxClockSkew = TimeSpan(microseconds: rules.clockSkewAllowance.microseconds / 2)
    }

    /// Swarm testing: the knobs themselves drawn from the seed, so a sweep explores shapes of
    /// load (few items and many users, tiny limits, short holds, short sales) as well as schedules.
    public static func swarm(seed: UInt64, users: Int?) -> SimConfig {
        var config = SimConfig(seed: seed)
        var rng = SplitMix64(seed: seed ^ 0x5EED_5A7A_0000_0001)
        func pick<T>(_ options: [T]) -> T { options[Int(rng.next() % UInt64(options.count))] }
        config.users = users ?? pick([50, 200, 500, 1_000, 2_000])
        config.instances = pick([1, 2, 3, 4, 5])
        config.sales = pick([1, 2, 3])
        config.rules.itemsPerSale = pick([10, 50, 200, 1_000, 3_000])
        config.rules.userLimit = pick([1, 2, 3, 10])
        config.rules.holdTTL = .seconds(pick([2, 5, 15, 30, 60]))
        config.rules.saleLength = .seconds(pick([60, 120, 300, 600]))
        config.rules.clockSkewAllowance = .milliseconds(pick([200, 1_000, 2_000]))
        config.maxClockSkew = TimeSpan(microseconds: config.rules.clockSkewAllowance.microseconds / 2)
        config.faults = pick([FaultProfile.off, .default, .default, .heavy])
        // Each kind of fault on its own dial, so sweeps also meet one fault at a time.
        if !config.faults.isNone {
            for kind in FaultKind.allCases { config.faults.scale(kind, by: pick([0, 0.5, 1, 1, 2])) }
        }
        config.faultFraction = pick([0.3, 0.5, 0.7])
        config.connectionsPerStore = pick([1, 2, 2, 4])
        config.maxBatch = pick([1, 4, 8, 8, 256])
        return config
    }
}

extension SplitMix64 {
    /// A uniform double in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    mutating func chance(_ p: Double) -> Bool { p > 0 && unit() < p }

    /// Uniform in `range`.
    mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.upperBound - range.lowerBound + 1))
    }

    mutating func micros(_ low: Int64, _ high: Int64) -> Int64 { low + Int64(next() % UInt64(max(1, high - low + 1))) }

    /// Exponentially distributed with the given mean.
    mutating func exponential(mean: TimeSpan) -> TimeSpan {
        let u = max(unit(), 1e-12)
        return TimeSpan(microseconds: Int64(-Double(mean.microseconds) * log(u)))
    }

    /// A child generator whose stream is independent of this one's later draws.
    mutating func fork() -> SplitMix64 { SplitMix64(seed: SplitMix64.mix(next() ^ 0xF0F0_F0F0_F0F0_F0F0)) }
}

/// Natural logarithm without Foundation (the simulator stays free of platform libraries).
func log(_ x: Double) -> Double {
    // ln(x) = 2·atanh((x-1)/(x+1)), after scaling x into [0.5, 1) by powers of two.
    var m = x
    var k = 0.0
    while m >= 1 { m /= 2; k += 1 }
    while m < 0.5 { m *= 2; k -= 1 }
    let y = (m - 1) / (m + 1)
    let y2 = y * y
    var term = y
    var sum = 0.0
    var n = 1.0
    for _ in 0..<30 {
        sum += term / n
        term *= y2
        n += 2
    }
    return 2 * sum + k * 0.693_147_180_559_945_3
}
