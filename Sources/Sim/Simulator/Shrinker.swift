import Engine

/// Reduces a failing run to a small one that still fails the same guarantee: fewer users, items,
/// instances and sales, a shorter sale, fault kinds switched off, then single timeline faults
/// (a restart, a rollback, a pause…) left out one by one. Greedy: each candidate is run in
/// full, and kept if it breaks the same guarantee with no more client requests than the best so
/// far. The seed stays; the minimal run comes with its replay command and the story of the item
/// its violation is about (`CausalStory.swift`).
///
/// Removing users leaves every other user's randomness as it was (each has its own stream), and
/// each instance's too; fault draws come from one stream per run, so switching one kind off may
/// move the others. The search tolerates that: it only keeps what still fails.
public enum Shrinker {
    public struct Outcome: Sendable {
        /// The smallest failing configuration found, and its run (with the story of its item).
        public let config: SimConfig
        public let report: SimReport
        /// Client requests of the original failing run.
        public let originalRequests: Int
        /// Simulations run while shrinking.
        public let runs: Int
    }

    /// The guarantee a violation message is about: `S1`…`S7`, `A1`…`A7`, `G1`…`G3`, `L1`, `L2`, `API`,
    /// `audit`, `engine` (an invariant a machine reports broken), or its first words.
    public static func guarantee(of violation: String) -> String {
        var text = Substring(violation)
        if text.first == "[", let close = text.firstIndex(of: "]") { text = text[text.index(after: close)...].drop { $0 == " " } }
        if text.hasPrefix("engine invariant broken") { return "engine" }
        if let colon = text.firstIndex(of: ":") {
            let head = text[..<colon]
            return String(head.hasSuffix(" violated") ? head.dropLast(" violated".count) : head)
        }
        return String(text.prefix(40))
    }

    /// Shrinks `config`, which must fail; nil if it passes. At most `budget` runs.
    public static func shrink(_ config: SimConfig, budget: Int = 250, progress: (String) -> Void = { _ in }) -> Outcome? {
        var best = config
        best.stopAtFirstViolation = true
        best.watch = nil
        var bestReport = SimRunner.run(best)
        guard let first = bestReport.violations.first else { return nil }
        let target = guarantee(of: first)
        let originalRequests = bestReport.requests
        var runs = 1
        progress("shrinking: \(target) in \(bestReport.requests) requests")

        func tryCandidate(_ candidate: SimConfig, _ what: String) -> Bool {
            guard runs < budget, candidate != best, (try? candidate.rules.validate()) != nil else { return false }
            runs += 1
            let report = SimRunner.run(candidate)
            guard let violation = report.violations.first, guarantee(of: violation) == target,
                report.requests <= bestReport.requests
            else { return false }
            best = candidate
            bestReport = report
            progress("  \(what): still fails \(target), \(report.requests) requests")
            return true
        }

        for _ in 0..<2 {  // sizes and kinds, then single timeline faults; once more if those went
            var progressed = true
            while progressed && runs < budget {
                progressed = false
                if !best.faults.isNone {
                    var quiet = best
                    quiet.faults = .off
                    if tryCandidate(quiet, "no faults") { progressed = true }
                }
                for kind in FaultKind.allCases where !best.faults.isNone {
                    var candidate = best
                    candidate.faults.scale(kind, by: 0)
                    if candidate.faults != best.faults, tryCandidate(candidate, "without \(kind.rawValue)") { progressed = true }
                }
                for users in Self.smaller(than: best.users) {
                    var candidate = best
                    candidate.users = users
                    if tryCandidate(candidate, "\(users) users") { progressed = true; break }
                }
                for instances in Self.smaller(than: best.instances) {
                    var candidate = best
                    candidate.instances = instances
                    if tryCandidate(candidate, "\(instances) instance(s)") { progressed = true; break }
                }
                if best.sales > 1 {
                    var candidate = best
                    candidate.sales = 1
                    if tryCandidate(candidate, "1 sale") { progressed = true }
                }
                for items in Self.smaller(than: best.rules.itemsPerSale) {
                    var candidate = best
                    candidate.rules.itemsPerSale = items
                    if tryCandidate(candidate, "\(items) item(s)") { progressed = true; break }
                }
                for seconds in [60, 120, 300] where .seconds(Int64(seconds)) < best.rules.saleLength {
                    var candidate = best
                    candidate.rules.saleLength = .seconds(Int64(seconds))
                    if tryCandidate(candidate, "\(seconds) s sales") { progressed = true; break }
                }
            }
            // Then the timeline faults that struck before the violation, one at a time, latest
            // first (each leaves the others' times as they were, `SimConfig.skippedFaults`).
            var place = bestReport.timelineFaults - 1
            var removed = false
            while place >= 0 && runs < budget && !best.faults.isNone {
                var candidate = best
                candidate.skippedFaults.insert(place)
                if tryCandidate(candidate, "without timeline fault \(place)") { removed = true }
                place -= 1
            }
            if !removed { break }
        }

        // The story of the item the violation is about.
        var told = best
        if let violation = bestReport.violations.first, let key = Simulation.itemKey(in: violation) {
            told.watch = key
            bestReport = SimRunner.run(told)
            runs += 1
        }
        return Outcome(config: best, report: bestReport, originalRequests: originalRequests, runs: runs)
    }

    /// Candidate sizes below `n`, smallest first: 1, 2, n/8, n/4, n/2, 3n/4.
    static func smaller(than n: Int) -> [Int] {
        Array(Set([1, 2, n / 8, n / 4, n / 2, n * 3 / 4].filter { $0 >= 1 && $0 < n })).sorted()
    }
}
