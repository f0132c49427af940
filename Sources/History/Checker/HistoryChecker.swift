/// Judges a client-visible history of the sale: linearizable against the sale's sequential
/// specification (checked per item and per user of each sale, `ItemSpecification` and
/// `UserSpecification`), and the reads' real-time promises that no single partition sees
/// (`RealTimeChecks`). What the simulator, `sale-history-check` and the drill run on every history.
public struct HistoryChecker: Sendable {
    public let rules: HistoryRules
    /// Steps one partition's search may take before its verdict is "unknown".
    public var budget: Int

    public init(rules: HistoryRules, budget: Int = 300_000) {
        self.rules = rules
        self.budget = budget
    }

    public func check(_ operations: [HistoryOperation]) -> HistoryVerdict {
        let partitions = HistoryPartitions(operations, rules: rules)
        var verdict = HistoryVerdict(operations: operations.count, partitions: partitions.keys.count, unplaced: partitions.unplaced)
        for key in partitions.keys {
            guard let indices = partitions.members(of: key) else { continue }
            let members = indices.map { operations[$0] }
            let check = PartitionCheck(key: key, rules: rules, holders: partitions.holders, budget: budget)
            switch check.run(members) {
            case .linearizable:
                break
            case .unknown:
                verdict.undecided.append(key.description)
            case .notLinearizable:
                let witness = check.minimalWitness(members)
                verdict.violations.append(HistoryViolation(
                    subject: key.description,
                    reason: "\(members.count) operations cannot be ordered by the sale's rules; the \(witness.count) below cannot either",
                    witness: witness))
            }
        }
        verdict.violations += RealTimeChecks(rules: rules, operations: operations).violations()
        return verdict
    }
}

/// The outcome of checking one history.
public struct HistoryVerdict: Sendable {
    public var operations: Int
    public var partitions: Int
    /// Refusals that could belong to either of two sales (sent across a rollover): not judged.
    public var unplaced: Int
    /// Partitions whose search ran out of budget.
    public var undecided: [String] = []
    public var violations: [HistoryViolation] = []

    public var isLinearizable: Bool { violations.isEmpty }

    /// One line: the verdict and its figures.
    public var summary: String {
        let head = isLinearizable ? "linearizable" : "NOT linearizable (\(violations.count) violation(s))"
        return "\(head): \(operations) operations in \(partitions) partitions"
            + (undecided.isEmpty ? "" : ", \(undecided.count) undecided (budget)")
            + (unplaced == 0 ? "" : ", \(unplaced) refusals across a rollover not judged")
    }
}

/// One violation: what could not be ordered (or which promise was broken) and a minimal history
/// showing it.
public struct HistoryViolation: Sendable {
    public let subject: String
    public let reason: String
    public let witness: [HistoryOperation]

    public var text: String {
        let origin = witness.map(\.invoke).min() ?? 0
        return (["\(subject): \(reason)"] + witness.sorted { $0.invoke < $1.invoke }.map { "  " + HistoryText.describe($0, origin: origin) })
            .joined(separator: "\n")
    }
}

extension HistoryPartitions {
    func members(of key: Key) -> [Int]? { members[key] }
}
