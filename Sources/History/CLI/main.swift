// sale-history-check: judges a history file (docs/histories.md) with the History library.
import ArgumentParser
import Foundation
import History

/// The command line of `sale-history-check`.
struct HistoryCheckOptions: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sale-history-check", abstract: "Judges a history (docs/histories.md) for linearizability.",
        discussion: "The rules come from the file's first line (\"op\":\"rules\") unless given here. Exit 0 when the "
            + "history is linearizable, 1 when it is not, 2 on a usage or format error.")

    @Argument(help: "The history, JSON Lines.") var file: String
    @Option(help: "Items per sale.") var items: Int64?
    @Option(help: "Items one user may own per sale.") var limit: Int64?
    @Option(help: "Hold length, seconds.") var hold: Int64?
    @Option(help: "Sale length, seconds.") var saleLength: Int64?
    @Option(help: "Clock skew allowance, milliseconds (also the clock slack unless --clock-slack-ms).") var skewAllowanceMs: Int64?
    @Option(help: "How far the deciding clocks may be from the history's, milliseconds.") var clockSlackMs: Int64?
    @Option(help: "Search steps per partition before it is undecided.") var budget: Int64?
    @Option(help: "Violations printed.") var maxViolations: Int64 = 5

    var overrides: [Int64?] { [items, limit, hold, saleLength, skewAllowanceMs, clockSlackMs, budget] }

    func validate() throws {
        guard overrides.allSatisfy({ ($0 ?? 0) >= 0 }), maxViolations >= 0 else { throw ValidationError("numbers must not be negative") }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("sale-history-check: \(message)\n".utf8))
    exit(2)
}

let options: HistoryCheckOptions
do {
    options = try HistoryCheckOptions.parse()
} catch {
    // A usage error exits 2 (1 means "not linearizable"); --help exits 0.
    let code = HistoryCheckOptions.exitCode(for: error)
    let message = HistoryCheckOptions.fullMessage(for: error)
    if code == .success {
        print(message)
        exit(0)
    }
    fail(message)
}
let path = options.file
guard let data = FileManager.default.contents(atPath: path) else { fail("cannot read \(path)") }

let parsed: (rules: HistoryRules?, operations: [HistoryOperation])
do {
    parsed = try HistoryFile.parse(String(decoding: data, as: UTF8.self))
} catch {
    fail("\(path): \(error)")
}
var rules = parsed.rules ?? HistoryRules(itemsPerSale: 10_000, userLimit: 10, holdTTL: 60_000_000, saleLength: 3_600_000_000,
                                         clockSkewAllowance: 2_000_000)
if let v = options.items { rules.itemsPerSale = Int(v) }
if let v = options.limit { rules.userLimit = Int(v) }
if let v = options.hold { rules.holdTTL = v * 1_000_000 }
if let v = options.saleLength { rules.saleLength = v * 1_000_000 }
if let v = options.skewAllowanceMs {
    rules.clockSkewAllowance = v * 1_000
    rules.clockSlack = v * 1_000
}
if let v = options.clockSlackMs { rules.clockSlack = v * 1_000 }
guard rules.saleLength > 0 else { fail("--sale-length must be positive") }
if parsed.rules == nil && options.overrides.allSatisfy({ $0 == nil }) {
    FileHandle.standardError.write(Data("sale-history-check: no rules line; assuming the server's defaults\n".utf8))
}

var checker = HistoryChecker(rules: rules)
if let budget = options.budget { checker.budget = Int(budget) }
let clock = ContinuousClock()
let started = clock.now
let verdict = checker.check(parsed.operations)
let elapsed = clock.now - started
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
for violation in verdict.violations.prefix(Int(options.maxViolations)) { print(violation.text) }
if !verdict.undecided.isEmpty { print("undecided partitions: \(verdict.undecided.prefix(10).joined(separator: "; "))") }
print("\(verdict.summary), checked in \(String(format: "%.3f", seconds)) s")
print("linearizable=\(verdict.isLinearizable ? "yes" : "no")")
exit(verdict.isLinearizable ? 0 : 1)
