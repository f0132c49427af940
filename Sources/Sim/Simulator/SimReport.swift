import Engine
import History

/// The verdict and the figures of one run.
public struct SimReport: Sendable {
    public var config: SimConfig
    public var traceHash: UInt64
    public var violations: [String]
    /// The events that led to the first violation, oldest first.
    public var lastEvents: [String]
    public var itemsSold: [(sale: Int64, sold: Int)]
    public var requests: Int
    public var outcomes: [String: Int]
    public var coverage: [String: Int]
    public var faults: [String: Int]
    public var events: Int
    public var simulatedSeconds: Double
    public var wallSeconds: Double = 0
    /// What happened to the watched item, in order (`CausalStory.swift`).
    public var story: [String] = []
    /// The run over time, when it was recorded.
    public var timeline: SimTimeline?
    /// The linearizability check of the clients' history (SimRunner).
    public var history: HistoryFigures?
    /// What the linearizability check found, each with its minimal history.
    public var historyViolations: [String] = []
    /// The history itself, when asked for (`sale-sim --history FILE`).
    public var historyOperations: [HistoryOperation] = []
    /// Timeline faults that struck (the ones `SimConfig.skippedFaults` can name).
    public var timelineFaults = 0

    /// What checking the history found and cost.
    public struct HistoryFigures: Sendable {
        public var operations: Int
        public var partitions: Int
        public var undecided: Int
        public var linearizable: Bool
        public var checkSeconds: Double

        var line: String {
            "history: \(operations) operations in \(partitions) partitions, "
                + (linearizable ? "linearizable" : "NOT linearizable") + (undecided > 0 ? " (\(undecided) undecided)" : "")
                + ", checked in \(String(Int((checkSeconds * 1000).rounded()))) ms"
        }
    }

    public var passed: Bool { violations.isEmpty }

    /// The command that replays this run exactly.
    public var replayCommand: String {
        let c = config
        return "swift run -c release sale-sim --seed \(c.seed) --users \(c.users) --instances \(c.instances) --sales \(c.sales) "
            + "--items \(c.rules.itemsPerSale) --limit \(c.rules.userLimit) --hold \(c.rules.holdTTL.microseconds / 1_000_000) "
            + "--sale-length \(c.rules.saleLength.microseconds / 1_000_000) --skew-allowance-ms \(c.rules.clockSkewAllowance.microseconds / 1_000) "
            + "--faults \(c.faults.name) --fault-fraction \(c.faultFraction) --connections \(c.connectionsPerStore) --max-batch \(c.maxBatch)"
            + (c.faults.scaleArgument.map { " --fault-scale \($0)" } ?? "")
            + (c.skippedFaults.isEmpty ? "" : " --skip-faults \(c.skippedFaults.sorted().map(String.init).joined(separator: ","))")
            + (c.plantedBug.map { " --planted-bug \($0.rawValue)" } ?? "")
    }

    public var traceHashHex: String {
        let hex = String(traceHash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// One JSON object (a line), for scripts and benchmarks.
    public var json: String {
        var o = JSONObject()
        o.add("seed", config.seed)
        o.add("trace_hash", traceHashHex)
        o.add("passed", passed)
        o.add("violations", violations)
        o.add("items_sold", itemsSold.reduce(0) { $0 + $1.sold })
        o.add("items_sold_per_sale", JSONObject(itemsSold.map { (String($0.sale), .int(Int64($0.sold))) }))
        o.add("items_per_sale", config.rules.itemsPerSale)
        o.add("requests", requests)
        o.add("users", config.users)
        o.add("instances", config.instances)
        o.add("sales", config.sales)
        o.add("faults_profile", config.faults.name)
        o.add("planted_bug", config.plantedBug?.rawValue ?? "")
        o.add("events", events)
        o.add("wall_seconds", wallSeconds)
        o.add("simulated_seconds", simulatedSeconds)
        o.add("requests_by_outcome", JSONObject(outcomes.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) }))
        o.add("faults", JSONObject(faults.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) }))
        o.add("coverage", JSONObject(coverage.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) }))
        if let history {
            o.add("history_operations", history.operations)
            o.add("history_partitions", history.partitions)
            o.add("history_undecided", history.undecided)
            o.add("linearizable", history.linearizable)
            o.add("history_check_seconds", history.checkSeconds)
            o.add("history_violations", historyViolations)
        }
        o.add("replay", replayCommand)
        return o.rendered
    }

    /// The human summary.
    public var summary: String {
        var lines: [String] = []
        let c = config
        lines.append("seed \(c.seed): \(c.users) users, \(c.instances) instances, \(c.sales) sale(s) of \(c.rules.itemsPerSale) items, limit \(c.rules.userLimit), hold \(c.rules.holdTTL), faults \(c.faults.name)\(c.faults.scaleArgument.map { " (\($0))" } ?? "")\(c.plantedBug.map { ", planted bug \($0.rawValue)" } ?? "")")
        lines.append("simulated \(fmt(simulatedSeconds)) s in \(fmt(wallSeconds)) s wall, \(events) events, \(requests) requests")
        lines.append("requests by outcome: " + outcomes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
        lines.append("items sold: " + itemsSold.map { "sale \($0.sale): \($0.sold)/\(c.rules.itemsPerSale)" }.joined(separator: ", "))
        lines.append("faults injected: " + (faults.isEmpty ? "none" : faults.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")))
        lines.append("coverage: " + coverage.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
        if let history { lines.append(history.line) }
        if let first = historyViolations.first { lines.append(first + (historyViolations.count > 1 ? "\n(\(historyViolations.count - 1) more)" : "")) }
        if passed {
            lines.append("invariants: S1-S7 held after every event; L1-L2 held; auditor agrees")
        } else {
            lines.append("VIOLATION: \(violations[0])")
            if violations.count > 1 { lines.append("(\(violations.count - 1) more)") }
            lines.append("last events before it:")
            lines += lastEvents.map { "  \($0)" }
            lines.append("replay: \(replayCommand)")
        }
        if let watch = config.watch, !story.isEmpty {
            lines.append("story of \(watch), \(story.count) step(s):")
            lines += story.map { "  \($0)" }
        }
        lines.append("trace hash: \(traceHashHex)")
        return lines.joined(separator: "\n")
    }

    func fmt(_ x: Double) -> String {
        let scaled = Int64((x * 1000).rounded())
        let frac = String(scaled % 1000)
        return "\(scaled / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac)"
    }
}

extension Simulation {
    /// The liveness phase's verdicts and the auditor, once the run is over.
    mutating func finalChecks() {
        let settledAfter = faultsEnd + Self.settle
        let eagerBuyers = users.filter { $0.behaviour.isEagerBuyer && $0.behaviour != .straggler }.count
        // L1 is judged where it is achievable: demand well above supply, and a sale long enough for
        // abandoned holds to expire and be bought again (and for buyers' back-off) before it ends.
        let rules = config.rules
        let demandSuffices = eagerBuyers * rules.userLimit >= rules.itemsPerSale * 2
            && rules.saleLength >= .seconds(60) + (rules.holdTTL + rules.clockSkewAllowance) * 3
        for sale in sales {
            let saleEnd = calendar.end(of: sale)
            guard demandSuffices else { continue }
            if let at = soldOutAt[sale] {
                if at > saleEnd { checker.fail("L1 violated: sale \(sale) sold out only at \(at), after it ended", at: now) }
            } else {
                let left = unsold[sale].map { " (unsold: " + $0.first(10).map(String.init(describing:)).joined(separator: ", ") + ")" } ?? ""
                checker.fail("L1 violated: sale \(sale) sold \(durableSold[sale] ?? 0) of \(config.rules.itemsPerSale) items though \(eagerBuyers) eager buyers wanted more\(left)", at: now)
            }
        }
        for request in requests where request.sentAt >= settledAfter {
            if !request.answered {
                checker.fail("L2 violated: request \(request.id) (\(request.query)) sent at \(request.sentAt), after faults stopped, got no answer", at: now)
                break
            }
        }
        if unavailableAfterSettle > 0 {
            checker.fail("L2 violated: \(unavailableAfterSettle) requests answered 503 after faults stopped", at: now)
        }
        for index in instances.indices where instances[index].runtime.running > 0 {
            checker.fail("L2 violated: instance \(index) still runs \(instances[index].runtime.running) machine(s) at the end", at: now)
        }
        // A rebuild leaves out sales whose holds are all dead by its (skewed) clock.
        let horizon = config.rules.holdTTL + config.rules.clockSkewAllowance * 2
        let lastInstall = lastInstallAt.map { $0 + config.maxClockSkew }
        let calendar = self.calendar
        checker.audit(
            hot: hot, durable: durable, sales: [SaleID(firstSale.rawValue - 1)] + sales,
            forgotten: { sale in lastInstall.map { calendar.end(of: sale) + horizon < $0 } ?? false }, now: now)
    }

    func report() -> SimReport {
        SimReport(
            config: config, traceHash: trace.value, violations: checker.violations,
            lastEvents: (recent[recentNext...] + recent[..<recentNext]).map { "[\($0.0)] \($0.1)" },
            itemsSold: sales.map { ($0.rawValue, durableSold[$0] ?? 0) },
            requests: requests.count, outcomes: outcomes, coverage: coverage, faults: faultCounts, events: events,
            simulatedSeconds: (now - start).seconds, story: story, timeline: config.recordTimeline ? timeline : nil,
            timelineFaults: timelineFaultsStruck)
    }
}

/// A tiny JSON writer (the simulator stays free of Foundation).
struct JSONObject {
    indirect enum Value {
        case int(Int64)
        case double(Double)
        case string(String)
        case bool(Bool)
        case strings([String])
        case object(JSONObject)
    }

    var fields: [(String, Value)] = []

    init() {}
    init(_ fields: [(String, Value)]) { self.fields = fields }

    /// A number when it fits JSON's safe integers, else a string, so no reader loses precision.
    mutating func add(_ key: String, _ value: UInt64) {
        fields.append((key, value < 1 << 53 ? .int(Int64(value)) : .string(String(value))))
    }
    mutating func add(_ key: String, _ value: Int) { fields.append((key, .int(Int64(value)))) }
    mutating func add(_ key: String, _ value: Double) { fields.append((key, .double(value))) }
    mutating func add(_ key: String, _ value: String) { fields.append((key, .string(value))) }
    mutating func add(_ key: String, _ value: Bool) { fields.append((key, .bool(value))) }
    mutating func add(_ key: String, _ value: [String]) { fields.append((key, .strings(value))) }
    mutating func add(_ key: String, _ value: JSONObject) { fields.append((key, .object(value))) }

    var rendered: String {
        "{" + fields.map { "\(Self.quote($0.0)):\(Self.render($0.1))" }.joined(separator: ",") + "}"
    }

    static func render(_ value: Value) -> String {
        switch value {
        case .int(let i): String(i)
        case .double(let d): d.isFinite ? String(d) : "null"
        case .string(let s): quote(s)
        case .bool(let b): b ? "true" : "false"
        case .strings(let a): "[" + a.map(quote).joined(separator: ",") + "]"
        case .object(let o): o.rendered
        }
    }

    static func quote(_ s: String) -> String { JSONText.quoted(s) }
}
