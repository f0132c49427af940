import Engine

/// Runs the simulator against each planted bug until a seed catches it: the proof that the
/// simulator has teeth. Configurations come from the swarm, alternating default and heavy
/// faults, so each bug meets many shapes of load.
public enum PlantedBugHunt {
    public struct Verdict: Sendable {
        public let bug: PlantedBug
        /// The seed whose run caught the bug, nil if none within the budget.
        public let caughtBy: UInt64?
        public let seedsTried: Int
        public let violation: String?
        public let replay: String?

        public var line: String {
            if let caughtBy { "\(bug.rawValue) caught seed=\(caughtBy) after \(seedsTried) seed(s)" } else { "\(bug.rawValue) missed" }
        }
    }

    public static func config(seed: UInt64, bug: PlantedBug) -> SimConfig {
        var config = SimConfig.swarm(seed: seed, users: nil)
        config.users = max(config.users, 500)
        config.faults = seed % 2 == 0 ? .heavy : .default
        config.plantedBug = bug
        return config
    }

    public static func hunt(_ bug: PlantedBug, seeds: ClosedRange<UInt64>) -> Verdict {
        var tried = 0
        for seed in seeds {
            tried += 1
            let report = SimRunner.run(config(seed: seed, bug: bug))
            if !report.passed {
                return Verdict(bug: bug, caughtBy: seed, seedsTried: tried, violation: report.violations.first, replay: report.replayCommand)
            }
        }
        return Verdict(bug: bug, caughtBy: nil, seedsTried: tried, violation: nil, replay: nil)
    }
}
