import ArgumentParser
import Engine
import Simulator

/// `sale-sim`: runs the deterministic simulator. See SIMULATOR.md and the README.
@main
struct SaleSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sale-sim",
        abstract: "Runs the real sale engine against simulated users, crashes and store failures, checking every guarantee.")

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
    @Option(name: .customLong("skew-allowance-ms"), help: "Clock skew allowance, milliseconds (instances skew up to half).") var skewAllowanceMs: Int64?
    @Option(help: "Fault profile: none, default or heavy.") var faults: String?
    @Option(name: .customLong("fault-fraction"), help: "Fraction of the run with faults on (the rest checks liveness).") var faultFraction: Double?
    @Option(name: .customLong("planted-bug"), help: "Run with a planted bug: \(PlantedBug.allCases.map(\.rawValue).joined(separator: ", ")).")
    var plantedBug: String?
    @Flag(help: "One JSON object per seed instead of the summary.") var json = false
    @Flag(name: .customLong("self-check"), help: "Run the seed twice and compare trace hashes.") var selfCheck = false
    @Flag(name: .customLong("keep-going"), help: "Do not stop at the first violation.") var keepGoing = false

    func validate() throws {
        if seed == nil && seeds == nil { throw ValidationError("give --seed N or --seeds A..B") }
        if let faults, FaultProfile.named(faults) == nil { throw ValidationError("--faults must be none, default or heavy") }
        if let plantedBug, PlantedBug(rawValue: plantedBug) == nil { throw ValidationError("unknown --planted-bug \(plantedBug)") }
        if let users, users < 1 { throw ValidationError("--users must be at least 1") }
        if let instances, instances < 1 { throw ValidationError("--instances must be at least 1") }
        if let sales, sales < 1 { throw ValidationError("--sales must be at least 1") }
        if let faultFraction, !(0...1).contains(faultFraction) { throw ValidationError("--fault-fraction must be within 0...1") }
    }

    func seedList() throws -> [UInt64] {
        if let seeds {
            let parts = seeds.split(separator: ".", omittingEmptySubsequences: true)
            guard parts.count == 2, let a = UInt64(parts[0]), let b = UInt64(parts[1]), a <= b else {
                throw ValidationError("--seeds must look like 1..200")
            }
            return Array(a...b)
        }
        return [seed ?? 0]
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
        if let faultFraction { config.faultFraction = faultFraction }
        if let plantedBug { config.policy.plantedBug = PlantedBug(rawValue: plantedBug) }
        config.stopAtFirstViolation = !keepGoing
        do {
            try config.rules.validate()
        } catch {
            throw ValidationError(error.message)
        }
        return config
    }

    func run() throws {
        var failed: [UInt64] = []
        for seed in try seedList() {
            let config = try makeConfig(seed: seed)
            let report = SimRunner.run(config)
            if selfCheck {
                let again = SimRunner.run(config)
                if again.traceHash != report.traceHash {
                    print("self-check FAILED for seed \(seed): trace hashes \(report.traceHashHex) and \(again.traceHashHex) differ")
                    throw ExitCode(2)
                }
                if !json { print("self-check: seed \(seed) ran twice with the same trace hash \(report.traceHashHex)") }
            }
            print(json ? report.json : report.summary)
            if !report.passed { failed.append(seed) }
        }
        if !failed.isEmpty {
            if !json { print("FAILED seeds: \(failed.map(String.init).joined(separator: " "))") }
            throw ExitCode(1)
        }
    }
}
