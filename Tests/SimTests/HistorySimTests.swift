import Simulator
import Testing

/// The clients' histories of simulator runs are checked for linearizability (docs/histories.md).
@Suite("Simulated histories")
struct HistorySimTests {
    /// Without Redis rollbacks and the heavy profile's pile of unanswered requests, every history is
    /// linearizable, decided in full (no partition left undecided), and its operations are recorded.
    @Test(arguments: 1...12)
    func defaultFaultRunsAreLinearizable(seed: UInt64) throws {
        var config = SimConfig(seed: seed)
        config.users = 1_000
        config.rules.itemsPerSale = 1_000
        config.instances = 2 + Int(seed % 3)
        let report = SimRunner.run(config)
        let history = try #require(report.history)
        #expect(history.linearizable, "\(report.historyViolations.first ?? "")\nreplay: \(report.replayCommand)")
        #expect(history.undecided == 0)
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
