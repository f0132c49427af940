import Engine

/// Runs the simulator against a planted bug over a range of seeds: the proof that the simulator
/// has teeth, with the measure of how sharp (the share of seeds that catch it) and whether it
/// bites for the right reason (the guarantee that fired is one the bug is about,
/// `PlantedBug.expectedGuarantees`). Configurations come from the swarm, alternating default and
/// heavy faults, so each bug meets many shapes of load.
public enum PlantedBugHunt {
    /// One seed's run with the bug planted.
    public struct SeedResult: Sendable {
        public let seed: UInt64
        /// The run's first violation, nil if it passed.
        public let violation: String?
        public let replay: String

        /// The guarantee the violation names (`Shrinker.guarantee(of:)`).
        public var guarantee: String? { violation.map(Shrinker.guarantee(of:)) }
    }

    /// A bug's results over its seeds.
    public struct Verdict: Sendable {
        public let bug: PlantedBug
        /// In seed order.
        public let results: [SeedResult]

        public init(bug: PlantedBug, results: [SeedResult]) {
            self.bug = bug
            self.results = results.sorted { $0.seed < $1.seed }
        }

        /// Seeds whose run failed with a guarantee the bug is about.
        public var caught: [SeedResult] { results.filter { $0.guarantee.map(bug.expectedGuarantees.contains) ?? false } }
        /// Seeds whose run failed with another guarantee: a false alarm of the checker, or a bug
        /// whose expected guarantees are wrong. Either way the catalogue fails.
        public var misattributed: [SeedResult] { results.filter { $0.guarantee.map { !bug.expectedGuarantees.contains($0) } ?? false } }
        public var firstCatch: SeedResult? { caught.first }
        public var passed: Bool { !caught.isEmpty && misattributed.isEmpty }

        public var line: String {
            let rate = "\(caught.count)/\(results.count) seeds"
            let expected = bug.expectedGuarantees.joined(separator: "|")
            guard let first = firstCatch else { return "\(bug.rawValue) missed (\(expected) expected, \(rate))" }
            return "\(bug.rawValue) caught by \(first.guarantee ?? "?") in \(rate) (\(expected) expected), first seed=\(first.seed)"
        }
    }

    public static func config(seed: UInt64, bug: PlantedBug) -> SimConfig {
        var config = SimConfig.swarm(seed: seed, users: nil)
        config.users = max(config.users, 500)
        config.faults = seed % 2 == 0 ? .heavy : .default
        config.plantedBug = bug
        return config
    }

    /// One seed's run, stopped at its first violation.
    public static func run(_ bug: PlantedBug, seed: UInt64) -> SeedResult {
        let report = SimRunner.run(config(seed: seed, bug: bug))
        return SeedResult(seed: seed, violation: report.violations.first, replay: report.replayCommand)
    }

    /// Every seed of `seeds`, one after the other (`sale-sim planted-bugs` runs them in parallel).
    public static func hunt(_ bug: PlantedBug, seeds: ClosedRange<UInt64>) -> Verdict {
        Verdict(bug: bug, results: seeds.map { run(bug, seed: $0) })
    }
}
