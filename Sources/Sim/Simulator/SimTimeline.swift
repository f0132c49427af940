import Engine

/// What a run looked like over simulated time, for the HTML report (`HTMLReport.swift`): items
/// sold and held per sale and answers by outcome, sampled at a fixed interval, and the faults as
/// moments or spans. Collected only when asked (`SimConfig.recordTimeline`); it reads the
/// simulation and never changes it, so a run's trace is the same with or without it.
public struct SimTimeline: Sendable {
    /// One sample.
    public struct Sample: Sendable {
        public let at: Double
        /// Per simulated sale, in order: items sold (PostgreSQL) and items held by a live hold (Redis).
        public let sold: [Int]
        public let held: [Int]
        /// Answers clients received so far, by outcome.
        public let outcomes: [String: Int]
    }

    /// A fault: a moment (`until == nil`) or a span, on a lane (an instance, a store, the clients).
    public struct Fault: Sendable {
        public let name: String
        public let lane: String
        public let from: Double
        public let until: Double?
    }

    public var samples: [Sample] = []
    public var faults: [Fault] = []
    /// The sample interval in which each kind of moment was last charted (one per interval is enough
    /// to see it, and keeps the page small under heavy faults).
    var lastMoment: [String: Int] = [:]
    /// Seconds between samples.
    public var interval: Double = 1
}

extension Simulation {
    /// Seconds since the run's start.
    var elapsed: Double { (now - start).seconds }

    mutating func sampleTimelineIfDue() {
        guard config.recordTimeline, elapsed >= Double(timeline.samples.count) * timeline.interval else { return }
        var sold: [Int] = []
        var held: [Int] = []
        for sale in sales {
            sold.append(durableSold[sale] ?? 0)
            var live = 0
            for item in 1...config.rules.itemsPerSale {
                if case .held(let hold)? = hot.record(.item(sale, ItemID(item))).itemRecord, hold.expiresAt > now { live += 1 }
            }
            held.append(live)
        }
        timeline.samples.append(SimTimeline.Sample(at: elapsed, sold: sold, held: held, outcomes: outcomes))
    }

    /// Records a fault on the timeline (`lane`: which instance or store it struck).
    mutating func chart(_ name: String, lane: String, lasting length: TimeSpan? = nil) {
        guard config.recordTimeline else { return }
        if length == nil {
            let slot = Int(elapsed / timeline.interval)
            guard timeline.lastMoment[name + "|" + lane] != slot else { return }
            timeline.lastMoment[name + "|" + lane] = slot
        }
        timeline.faults.append(SimTimeline.Fault(name: name, lane: lane, from: elapsed, until: length.map { elapsed + $0.seconds }))
    }
}

extension Simulation {
    /// Faults charted as spans where they start (pauses, outages, partitions) or by their own
    /// call (crashes), not as moments when counted.
    static let chartedAsSpans: Set<String> = [
        "instance_pause", "redis_outage", "postgres_outage", "partition_from_redis", "partition_from_postgres", "instance_crash",
    ]

    /// The lane a counted fault belongs to.
    static func lane(of fault: String) -> String {
        if fault.hasPrefix("redis") || fault.hasPrefix("hot") { return "redis" }
        if fault.hasPrefix("postgres") || fault.hasPrefix("durable") { return "postgresql" }
        if fault.hasPrefix("response") { return "clients" }
        if fault.hasPrefix("clock") { return "clocks" }
        return "store calls"
    }
}
