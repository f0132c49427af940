import Simulator
import Testing

/// The clients' histories of simulator runs are checked for linearizability (docs/histories.md).
@Suite("Simulated histories")
struct HistorySimTests {
    /// Without Redis rollbacks and the heavy profile's pile of unanswered requests, every history is
    /// linearizable as far as it is decided, and its operations are recorded.
    @Test(arguments: 1...12)
    func defaultFaultRunsAreLinearizable(seed: UInt64) throws {
        var config = SimConfig(seed: seed)
        config.users = 1_000
        config.rules.itemsPerSale = 1_000
        config.instances = 2 + Int(seed % 3)
        let report = SimRunner.run(config, keepHistory: true)
        let history = try #require(report.history)
        #expect(history.linearizable, "\(report.historyViolations.first ?? "")\nreplay: \(report.replayCommand)")
        // The search may give up on a partition crowded with unanswered requests (reported as
        // undecided, never as passed): at most one of a run's thousands (seed 12 has one).
        #expect(history.undecided <= 1, "\(history.undecided) partitions undecided")
        #expect(history.operations > report.requests / 2, "the history misses requests")
    }

    @Test func theHistoryIsKeptWhenAsked() {
        var config = SimConfig(seed: 3)
        config.users = 200
        config.rules.itemsPerSale = 200
        let report = SimRunner.run(config, keepHistory: true)
        #expect(report.historyOperations.count == report.history?.operations)
        #expect(SimRunner.run(config).historyOperations.isEmpty)
    }
}
