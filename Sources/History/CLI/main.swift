// sale-history-check: judges a history file (docs/histories.md) with the History library.
import Foundation
import History

let usage = """
    usage: sale-history-check FILE.jsonl [--items N --limit N --hold SECONDS --sale-length SECONDS --skew-allowance-ms MS]
           [--clock-slack-ms MS] [--budget STEPS] [--max-violations N]
    The rules come from the file's first line ("op":"rules") unless given here. Exit 0 when the history
    is linearizable, 1 when it is not, 2 on a usage or format error.
    """

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("sale-history-check: \(message)\n\(usage)\n".utf8))
    exit(2)
}

var path: String?
var overrides: [String: Int64] = [:]
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "-h", "--help":
        print(usage)
        exit(0)
    case "--items", "--limit", "--hold", "--sale-length", "--skew-allowance-ms", "--clock-slack-ms", "--budget", "--max-violations":
        guard let value = arguments.next().flatMap({ Int64($0) }), value >= 0 else { fail("\(argument) needs a number") }
        overrides[argument] = value
    default:
        guard path == nil, !argument.hasPrefix("-") else { fail("unknown argument \(argument)") }
        path = argument
    }
}
guard let path else { fail("give a history file") }
guard let data = FileManager.default.contents(atPath: path) else { fail("cannot read \(path)") }

let parsed: (rules: HistoryRules?, operations: [HistoryOperation])
do {
    parsed = try HistoryFile.parse(String(decoding: data, as: UTF8.self))
} catch {
    fail("\(path): \(error)")
}
var rules = parsed.rules ?? HistoryRules(itemsPerSale: 10_000, userLimit: 10, holdTTL: 60_000_000, saleLength: 3_600_000_000,
                                         clockSkewAllowance: 2_000_000)
if let v = overrides["--items"] { rules.itemsPerSale = Int(v) }
if let v = overrides["--limit"] { rules.userLimit = Int(v) }
if let v = overrides["--hold"] { rules.holdTTL = v * 1_000_000 }
if let v = overrides["--sale-length"] { rules.saleLength = v * 1_000_000 }
if let v = overrides["--skew-allowance-ms"] {
    rules.clockSkewAllowance = v * 1_000
    rules.clockSlack = v * 1_000
}
if let v = overrides["--clock-slack-ms"] { rules.clockSlack = v * 1_000 }
guard rules.saleLength > 0 else { fail("--sale-length must be positive") }
if parsed.rules == nil && overrides.isEmpty {
    FileHandle.standardError.write(Data("sale-history-check: no rules line; assuming the server's defaults\n".utf8))
}

var checker = HistoryChecker(rules: rules)
if let budget = overrides["--budget"] { checker.budget = Int(budget) }
let clock = ContinuousClock()
let started = clock.now
let verdict = checker.check(parsed.operations)
let elapsed = clock.now - started
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
for violation in verdict.violations.prefix(Int(overrides["--max-violations"] ?? 5)) { print(violation.text) }
if !verdict.undecided.isEmpty { print("undecided partitions: \(verdict.undecided.prefix(10).joined(separator: "; "))") }
print("\(verdict.summary), checked in \(String(format: "%.3f", seconds)) s")
print("linearizable=\(verdict.isLinearizable ? "yes" : "no")")
exit(verdict.isLinearizable ? 0 : 1)
