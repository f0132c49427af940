import ArgumentParser
import Engine
import Foundation
import History
import Simulator
import Synchronization

/// `sale-sim`: the deterministic simulator's command line. See the README ("The simulator") and docs/spec.md.
@main
struct SaleSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sale-sim",
        abstract: "Runs the real sale engine against simulated users, crashes and store failures, checking every guarantee.",
        subcommands: [Run.self, PlantedBugs.self],
        defaultSubcommand: Run.self)
}

/// One run, a sweep or a swarm.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Simulate one seed or a range of seeds (the default command).")

    @Option(help: "The seed of a single run.") var seed: UInt64?
    @Option(help: "A sweep over seeds, as A..B (inclusive).") var seeds: String?
    @Flag(help: "Draw users, instances, sales, limits, durations and faults from each seed.") var swarm = false
    @Option(help: "Simulated users.") var users: Int?
    @Option(help: "Server instances sharing the stores.") var instances: Int?
    @Option(help: "Consecutive sales to simulate.") var sales: Int?
    @Option(help: "Items per sale.") var items: Int?
    @Option(help: "Items one user may own per sale.") var limit: Int?
    @Option(help: "Hold length, seconds.") var hold: Int64?
    @Option(name: .customLong("sale-length"), help: "Sale length, seconds.") var saleLength: Int64?
    @Option(name: .customLong("skew-allowance-ms"), help: "Clock skew allowance, milliseconds (instances skew up to half).")
    var skewAllowanceMs: Int64?
    @Option(help: "Fault profile: none, default or heavy.") var faults: String?
    @Option(help: "Connections each instance opens to each store (default 2).") var connections: Int?
    @Option(name: .customLong("max-batch"), help: "The most calls a connection sends as one batch (default 8; the server's is 256).") var maxBatch: Int?
    @Option(name: .customLong("fault-fraction"), help: "Fraction of the run with faults on (the rest checks liveness).") var faultFraction: Double?
    @Option(name: .customLong("skip-faults"), help: "Leave out these timeline faults, by their place in the run's order (0, 1, …), comma-separated.")
    var skipFaults: String?
    @Option(help: "Switch off these kinds of fault, comma-separated: \(FaultKind.allCases.map(\.rawValue).joined(separator: ", ")).") var without: String?
    @Option(name: .customLong("fault-scale"), help: "Scale kinds of fault, e.g. crash=2,outage=0.5 (0 switches one off).") var faultScale: String?
    @Option(name: .customLong("planted-bug"), help: "Run with a planted bug: \(PlantedBug.allCases.map(\.rawValue).joined(separator: ", ")).")
    var plantedBug: String?
    @Flag(help: "One JSON object per seed instead of the summary.") var json = false
    @Option(help: "Print every store operation touching this item, as SALE:ITEM (diagnosis).") var watch: String?
    @Flag(name: .customLong("self-check"), help: "Run the seeds again in a second process (another hash seed) and compare trace hashes.")
    var selfCheck = false
    @Option(help: "Write the clients' history (JSON Lines, docs/histories.md) to this file (with --seed).") var history: String?
    @Flag(name: .customLong("keep-going"), help: "Do not stop a run at its first violation.") var keepGoing = false
    @Option(help: "Write a self-contained HTML report to this file: one run's timeline, or a sweep's per-seed table.")
    var report: String?
    @Flag(help: "On a failing seed, shrink the run to a small one that fails the same guarantee, and tell its story.")
    var shrink = false

    func validate() throws {
        if seed == nil && seeds == nil { throw ValidationError("give --seed N or --seeds A..B") }
        if history != nil && seeds != nil { throw ValidationError("--history writes one run's history: give --seed") }
        if let faults, FaultProfile.named(faults) == nil { throw ValidationError("--faults must be none, default or heavy") }
        if let plantedBug, PlantedBug(rawValue: plantedBug) == nil { throw ValidationError("unknown --planted-bug \(plantedBug)") }
        if let users, users < 1 { throw ValidationError("--users must be at least 1") }
        if let instances, instances < 1 { throw ValidationError("--instances must be at least 1") }
        if let sales, sales < 1 { throw ValidationError("--sales must be at least 1") }
        if let faultFraction, !(0...1).contains(faultFraction) { throw ValidationError("--fault-fraction must be within 0...1") }
        _ = try withoutKinds()
        _ = try scales()
    }

    func scales() throws -> [(FaultKind, Double)] {
        guard let faultScale else { return [] }
        return try faultScale.split(separator: ",").map { part in
            let pieces = part.split(separator: "=")
            guard pieces.count == 2, let kind = FaultKind(rawValue: String(pieces[0])), let factor = Double(pieces[1]), factor >= 0 else {
                throw ValidationError("--fault-scale takes kind=factor pairs, e.g. crash=2,outage=0")
            }
            return (kind, factor)
        }
    }

    func withoutKinds() throws -> [FaultKind] {
        try (without.map { $0.split(separator: ",").map(String.init) } ?? []).map { name in
            guard let kind = FaultKind(rawValue: name) else { throw ValidationError("unknown fault kind \(name)") }
            return kind
        }
    }

    func seedList() throws -> [UInt64] {
        guard let seeds else { return [seed ?? 0] }
        return Array(try parseRange(seeds))
    }

    func makeConfig(seed: UInt64) throws -> SimConfig {
        var config = swarm ? SimConfig.swarm(seed: seed, users: users) : SimConfig(seed: seed)
        if let users { config.users = users }
        if let instances { config.instances = instances }
        if let sales { config.sales = sales }
        if let items { config.rules.itemsPerSale = items }
        if let limit { config.rules.userLimit = limit }
        if let hold { config.rules.holdTTL = .seconds(hold) }
        if let saleLength { config.rules.saleLength = .seconds(saleLength) }
        if let skewAllowanceMs {
            config.rules.clockSkewAllowance = .milliseconds(skewAllowanceMs)
            config.maxClockSkew = .milliseconds(skewAllowanceMs / 2)
        }
        if let faults, let profile = FaultProfile.named(faults) { config.faults = profile }
        for kind in try withoutKinds() { config.faults.scale(kind, by: 0) }
        for (kind, factor) in try scales() { config.faults.scale(kind, by: factor) }
        if let faultFraction { config.faultFraction = faultFraction }
        if let connections {
            guard connections >= 1 else { throw ValidationError("--connections must be at least 1") }
            config.connectionsPerStore = connections
        }
        if let maxBatch {
            guard maxBatch >= 1 else { throw ValidationError("--max-batch must be at least 1") }
            config.maxBatch = maxBatch
        }
        if let skipFaults {
            let places = skipFaults.split(separator: ",").map { Int($0) }
            guard places.allSatisfy({ ($0 ?? -1) >= 0 }) else { throw ValidationError("--skip-faults takes places like 0,3,7") }
            config.skippedFaults = Set(places.compactMap { $0 })
        }
        if let plantedBug { config.plantedBug = PlantedBug(rawValue: plantedBug) }
        config.stopAtFirstViolation = !keepGoing
        if let watch {
            let parts = watch.split(separator: ":")
            guard parts.count == 2, let sale = Int64(parts[0]), let item = Int(parts[1]) else { throw ValidationError("--watch takes SALE:ITEM") }
            config.watch = .item(SaleID(sale), ItemID(item))
        }
        do {
            try config.rules.validate()
        } catch {
            throw ValidationError(error.message)
        }
        return config
    }

    func run() throws {
        var failed: [UInt64] = []
        let seeds = try seedList()
        var reports: [SimReport] = []
        let showProgress = seeds.count > 1 && isatty(STDERR_FILENO) != 0
        let otherProcess = selfCheck ? try SelfCheck.traceHashesFromAnotherProcess() : [:]
        for (done, seed) in seeds.enumerated() {
            if showProgress { Self.progress(done: done, of: seeds.count, failed: failed.count) }
            var config = try makeConfig(seed: seed)
            config.recordTimeline = self.report != nil && seeds.count == 1
            let report = SimRunner.run(config, keepHistory: history != nil)
            if self.report != nil { reports.append(report) }
            if selfCheck {
                guard let other = otherProcess[seed], other == report.traceHashHex else {
                    print("self-check FAILED for seed \(seed): trace hash \(report.traceHashHex) here, \(otherProcess[seed] ?? "none") in another process")
                    throw ExitCode(2)
                }
                if !json { print("self-check: seed \(seed) has the same trace hash \(report.traceHashHex) in two processes") }
            }
            if let history {
                let lines = [HistoryFile.header(SimRunner.historyRules(for: config))] + report.historyOperations.map(HistoryFile.line)
                try (lines.joined(separator: "\n") + "\n").write(toFile: history, atomically: true, encoding: .utf8)
            }
            print(json ? report.json : report.summary)
            if !report.passed { failed.append(seed) }
            if shrink && !report.passed, let shrunk = Shrinker.shrink(config, progress: { print($0) }) {
                print("shrunk from \(shrunk.originalRequests) to \(shrunk.report.requests) client requests in \(shrunk.runs) runs:")
                print(shrunk.report.summary)
            }
        }
        if showProgress { Self.progress(done: seeds.count, of: seeds.count, failed: failed.count) }
        if let path = self.report {
            let page = reports.count == 1 ? HTMLReport.page(for: reports[0]) : HTMLReport.page(forSweep: reports)
            do { try page.write(toFile: path, atomically: true, encoding: .utf8) } catch {
                throw ValidationError("could not write the report to \(path): \(error.localizedDescription)")
            }
            if !json { print("report: \(path)") }
        }
        if !json, let peak = SelfCheck.peakResidentMegabytes() { print("peak memory: \(peak) MB resident") }
        if !failed.isEmpty {
            if !json { print("FAILED seeds: \(failed.map(String.init).joined(separator: " "))") }
            throw ExitCode(1)
        }
    }
}

extension Run {
    /// A progress bar on the terminal (standard error), redrawn in place.
    static func progress(done: Int, of total: Int, failed: Int) {
        let width = 40
        let filled = total == 0 ? width : done * width / total
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandle.standardError.write(Data("\r[\(bar)] \(done)/\(total) seeds, \(failed) failed\(done == total ? "\n" : "")".utf8))
    }
}

/// The planted-bug catalogue: every bug must be caught, by a guarantee it is about.
struct PlantedBugs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "planted-bugs",
        abstract: "Run the simulator against each planted bug over a range of seeds; fail if any goes uncaught or trips another guarantee.")

    @Option(help: "Seeds to run per bug, as A..B: every one runs, for the detection rate.") var seeds: String = "1..100"
    @Option(help: "Only this bug.") var bug: String?
    @Flag(name: .customLong("no-shrink"), help: "Do not shrink the failing runs.") var noShrink = false

    func run() throws {
        let range = try parseRange(seeds)
        var bugs = PlantedBug.allCases
        if let bug {
            guard let one = PlantedBug(rawValue: bug) else { throw ValidationError("unknown bug \(bug)") }
            bugs = [one]
        }
        var caught = 0
        var largest = 0
        var failed = false
        for bug in bugs {
            let verdict = Self.hunt(bug, seeds: range)
            print(verdict.line)
            // A seed that trips another guarantee fails the catalogue, unless the same run fails
            // the same way without the bug: then it is a finding about the engine (which the
            // sweeps report), not about the bug or the checker.
            for wrong in verdict.misattributed {
                var clean = PlantedBugHunt.config(seed: wrong.seed, bug: bug)
                clean.plantedBug = nil
                let withoutTheBug = SimRunner.run(clean).violations.first.map(Shrinker.guarantee(of:))
                if withoutTheBug == wrong.guarantee {
                    print("  ENGINE FINDING seed=\(wrong.seed) (fails \(withoutTheBug ?? "") without the bug too): \((wrong.violation ?? "").prefix(200))")
                } else {
                    print("  WRONG GUARANTEE seed=\(wrong.seed): \((wrong.violation ?? "").prefix(240))")
                    failed = true
                }
                print("  replay: \(wrong.replay)")
            }
            // A bug that no seed of the range caught is hunted further, up to seed 100 past the
            // range's start (the rate stays the range's): rare bugs need more seeds than CI runs.
            var first = verdict.firstCatch
            var next = range.upperBound + 1
            while first == nil && next < range.lowerBound + 100 {
                let chunk = next...min(next + 7, range.lowerBound + 99)
                first = Self.hunt(bug, seeds: chunk).firstCatch
                next = chunk.upperBound + 1
                if let found = first { print("  first caught beyond the range, at seed=\(found.seed)") }
            }
            if first == nil { failed = true }
            guard let first, let violation = first.violation else { continue }
            caught += 1
            print("  \(violation.prefix(240))")
            print("  replay: \(first.replay)")
            if !noShrink, let shrunk = Shrinker.shrink(PlantedBugHunt.config(seed: first.seed, bug: bug)) {
                largest = max(largest, shrunk.report.requests)
                print("  shrunk: \(Shrinker.guarantee(of: violation)) in \(shrunk.report.requests) requests (from \(shrunk.originalRequests)): \(shrunk.report.replayCommand)")
            }
        }
        print("caught \(caught) of \(bugs.count)" + (noShrink ? "" : ", largest shrunk failure \(largest) requests"))
        if failed || caught < bugs.count { throw ExitCode(1) }
    }

    /// Every seed of `seeds`, on every core.
    static func hunt(_ bug: PlantedBug, seeds: ClosedRange<UInt64>) -> PlantedBugHunt.Verdict {
        let list = Array(seeds)
        let results = Mutex<[PlantedBugHunt.SeedResult]>([])
        DispatchQueue.concurrentPerform(iterations: list.count) { index in
            let result = PlantedBugHunt.run(bug, seed: list[index])
            results.withLock { $0.append(result) }
        }
        return PlantedBugHunt.Verdict(bug: bug, results: results.withLock { $0 })
    }
}

func parseRange(_ text: String) throws -> ClosedRange<UInt64> {
    let parts = text.split(separator: ".", omittingEmptySubsequences: true)
    guard parts.count == 2, let a = UInt64(parts[0]), let b = UInt64(parts[1]), a <= b else {
        throw ValidationError("a seed range looks like 1..200")
    }
    return a...b
}

// MARK: - Self-check across processes

/// Determinism across processes: the same command runs again in a child process, whose Swift
/// hash seed differs (SWIFT_DETERMINISTIC_HASHING removed from its environment), and every seed's
/// trace hash must match. A dictionary whose iteration order reached an event would differ here,
/// where two runs in one process would not see it.
enum SelfCheck {
    /// Trace hashes by seed, from `sale-sim` run again with these arguments, as JSON.
    static func traceHashesFromAnotherProcess() throws -> [UInt64: String] {
        var arguments = Array(CommandLine.arguments.dropFirst()).filter { $0 != "--self-check" }
        if let at = arguments.firstIndex(of: "--history") { arguments.removeSubrange(at...min(at + 1, arguments.count - 1)) }
        if !arguments.contains("--json") { arguments.append("--json") }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        child.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_DETERMINISTIC_HASHING"] = nil
        child.environment = environment
        let output = Pipe()
        child.standardOutput = output
        try child.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        child.waitUntilExit()
        var hashes: [UInt64: String] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard let seed = field(line, "\"seed\":").flatMap({ UInt64($0) }),
                let hash = field(line, "\"trace_hash\":\"")
            else { continue }
            hashes[seed] = hash
        }
        return hashes
    }

    /// The digits or characters after `key` up to the next delimiter.
    static func field(_ line: Substring, _ key: String) -> String? {
        guard let range = line.range(of: key) else { return nil }
        let rest = line[range.upperBound...].drop { $0 == "\"" }
        return String(rest.prefix { $0 != "," && $0 != "\"" && $0 != "}" })
    }

    /// The process's peak resident memory (Linux `ru_maxrss`, in kilobytes), in megabytes.
    static func peakResidentMegabytes() -> Int? {
        var usage = rusage()
        guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return nil }
        return Int(usage.ru_maxrss / 1024)
    }
}
