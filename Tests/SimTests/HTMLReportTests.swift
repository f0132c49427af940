import Engine
import Simulator
import Testing

/// `sale-sim --report`: the page shows the run, and recording it does not change the run.
@Suite struct HTMLReportTests {
    func occurrences(of needle: String, in text: String) -> Int {
        var count = 0
        var rest = Substring(text)
        while let range = rest.firstRange(of: needle) {
            count += 1
            rest = rest[range.upperBound...]
        }
        return count
    }

    static func config(seed: UInt64) -> SimConfig {
        var config = SimConfig(seed: seed)
        config.users = 300
        config.rules.itemsPerSale = 100
        config.rules.saleLength = .seconds(60)
        config.rules.holdTTL = .seconds(5)
        config.faults = .heavy
        return config
    }

    @Test func recordingTheTimelineLeavesTheRunAsItWas() {
        var recorded = Self.config(seed: 11)
        recorded.recordTimeline = true
        let plain = SimRunner.run(Self.config(seed: 11))
        let report = SimRunner.run(recorded)
        #expect(report.traceHash == plain.traceHash)
        let timeline = report.timeline
        #expect(timeline?.samples.last?.sold.first == plain.itemsSold.first?.sold)
        #expect(!(timeline?.faults.isEmpty ?? true), "heavy faults are charted")
    }

    @Test func thePageShowsTheChartsTheVerdictAndTheViolation() {
        var config = Self.config(seed: 11)
        config.recordTimeline = true
        let passing = HTMLReport.page(for: SimRunner.run(config))
        #expect(passing.contains("seed 11: passed"))
        #expect(occurrences(of: "<polyline", in: passing) > 1, "items and outcome charts")
        #expect(passing.contains("<h2>Faults</h2>") && !passing.contains("stroke=red"))
        #expect(!passing.contains("<script"), "nothing runs, nothing is fetched")

        config.plantedBug = .ackBeforeDurable
        let failing = HTMLReport.page(for: SimRunner.run(config))
        #expect(failing.contains("FAILED") && failing.contains("stroke=red") && failing.contains("S4 violated"))
    }

    @Test func aSweepGetsOneRowPerSeed() {
        let reports = [SimRunner.run(Self.config(seed: 1)), SimRunner.run(Self.config(seed: 2))]
        let page = HTMLReport.page(forSweep: reports)
        #expect(page.contains("2 seeds, 0 failed"))
        #expect(occurrences(of: "<tr", in: page) == 3, "a header and two rows")
    }
}
