import Engine
import History

/// Runs a simulation and measures its wall time (the only wall-clock reading, outside the
/// simulated path), then checks the history its clients saw for linearizability, timed apart.
public enum SimRunner {
    /// - Parameter keepHistory: keep the history's operations in the report (`sale-sim --history`).
    public static func run(_ config: SimConfig, keepHistory: Bool = false) -> SimReport {
        var simulation = Simulation(config: config)
        let wallClock = ContinuousClock()
        let wallStart = wallClock.now
        var report = simulation.run()
        let wall = wallClock.now - wallStart
        report.wallSeconds = wall.inSeconds
        let operations = simulation.historyOperations
        let checkStart = wallClock.now
        let verdict = HistoryChecker(rules: simulation.historyRules).check(operations)
        report.history = SimReport.HistoryFigures(
            operations: verdict.operations, partitions: verdict.partitions, undecided: verdict.undecided.count,
            linearizable: verdict.isLinearizable, checkSeconds: (wallClock.now - checkStart).inSeconds)
        // Reported apart from S1–S7: under Redis rollbacks the service can answer a refusal from the
        // older data before it notices (a stale read the guarantees allow), which is a finding, not a failed run.
        report.historyViolations = verdict.violations.map { "linearizability: " + $0.text }
        if keepHistory { report.historyOperations = operations }
        return report
    }

    /// The rules a run's history is judged by.
    public static func historyRules(for config: SimConfig) -> HistoryRules { SimHistory.rules(config.rules) }
}
