// adapter-bench: the engine (RequestDriver) over the real adapters, without HTTP.
//
// N concurrent simulated buyers check out every item of a fresh sale, then buy every held item;
// prints checkouts/s and purchases/s, and baselines measured in the same run against the same
// servers: redis-benchmark SET (plain and -P 16) and pgbench -N.
//
//   scripts/bench-adapters [--items 10000] [--buyers 64] [--connections 4]
//
// Reads DATABASE_URL / REDIS_URL (or TEST_DATABASE_URL / TEST_REDIS_URL).
import AdapterSupport
import Adapters
import ArgumentParser
import Engine
import Foundation
import PostgresAdapter
import RedisAdapter
import Synchronization

/// The command line of `adapter-bench`.
struct Options: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapter-bench", abstract: "The engine over the real adapters, without HTTP (DATABASE_URL, REDIS_URL).")

    @Option(help: "Items of the fresh sale.") var items = 10_000
    @Option(help: "Concurrent simulated buyers.") var buyers = 64
    @Option(help: "Connections to each store.") var connections = 4
    @Option(help: "Seconds of each baseline (redis-benchmark, pgbench).") var baselineSeconds = 5
    @Option(help: "Folder of the SQL migrations.") var migrations = "migrations"

    func validate() throws {
        guard items > 0, buyers > 0, connections > 0, baselineSeconds > 0 else { throw ValidationError("values must be positive") }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("adapter-bench: \(message)\n".utf8))
    exit(2)
}

/// Runs a shell command to completion; returns its combined output.
func shell(_ command: String) -> String {
    let output = NSTemporaryDirectory() + "adapter-bench-\(getpid()).out"
    var pid: pid_t = 0
    let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), strdup("-c"), strdup("\(command) >\(output) 2>&1"), nil]
    defer { for arg in argv { free(arg) } }
    guard posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ) == 0 else { return "" }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    defer { unlink(output) }
    return (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
}

/// The first number after `marker` in `text`.
func number(after marker: String, in text: String) -> Double? {
    guard let range = text.range(of: marker, options: .backwards) else { return nil }
    let rest = text[range.upperBound...].drop { $0 == " " || $0 == "=" || $0 == ":" }
    return Double(rest.prefix { $0.isNumber || $0 == "." })
}

func wallClock() -> Instant { Instant(microseconds: Int64((Date().timeIntervalSince1970 * 1_000_000).rounded())) }

func format(_ value: Double) -> String { String(format: "%10.0f", value) }

let environment = ProcessInfo.processInfo.environment
let options = Options.parseOrExit()
guard let baseURL = environment["DATABASE_URL"] ?? environment["TEST_DATABASE_URL"],
    let redisURL = environment["REDIS_URL"] ?? environment["TEST_REDIS_URL"],
    let endpoint = RedisEndpoint.parse(redisURL)
else { fail("set DATABASE_URL and REDIS_URL (or run under scripts/with-stores)") }

// A fresh schema and an empty Redis: a fresh sale.
let schema = "bench_\(UInt32.random(in: 0...UInt32.max))"
do {
    try Migrator.execute("CREATE SCHEMA \(schema)", connectionString: baseURL)
    let url = "\(baseURL)\(baseURL.contains("?") ? "&" : "?")options=-csearch_path%3D\(schema)"
    try Migrator.apply(directory: options.migrations, connectionString: url)
    setenv("BENCH_SCHEMA_URL", url, 1)
} catch {
    fail("\(error)")
}
let settings = PoolSettings(connections: options.connections, callTimeout: .seconds(30))
let durable = PostgresDurableStore(url: String(cString: getenv("BENCH_SCHEMA_URL")),
                                   settings: settings)
let hot = RedisHotStore(url: redisURL, settings: settings)
_ = try? await hot.command(["FLUSHALL"])

var rules = SaleRules()
rules.itemsPerSale = options.items
rules.userLimit = 10
rules.holdTTL = .seconds(600)
let driver = RequestDriver(stores: Stores(hot: hot, durable: durable), rules: rules, clock: wallClock)
_ = await driver.rebuild()

print("adapter-bench: \(options.items) items, \(options.buyers) concurrent buyers, \(options.connections) connections per store")

// Phase 1: every item checked out. Item i goes to user u<i mod (items/10)>: ten items each, so
// nobody hits the limit, and buyers working on neighbouring items are different users (the same
// user checking out concurrently would contend on one user record, by design).
let nextItem = Atomic<Int>(0)
let holds = Mutex<[Hold]>([])
let refusals = Atomic<Int>(0)
var started = ContinuousClock.now
await withTaskGroup(of: Void.self) { group in
    for _ in 0..<options.buyers {
        group.addTask {
            while true {
                let item = nextItem.add(1, ordering: .relaxed).newValue
                guard item <= options.items else { return }
                let user = UserID(unchecked: "u\((item - 1) % max(1, options.items / 10))")
                switch await driver.checkout(CheckoutRequest(user: user, item: ItemID(item))) {
                case .held(let hold): holds.withLock { $0.append(hold) }
                default: refusals.add(1, ordering: .relaxed)
                }
            }
        }
    }
}
let checkoutTime = ContinuousClock.now - started
let held = holds.withLock { $0 }

// Phase 2: every hold bought.
let nextHold = Atomic<Int>(0)
let bought = Atomic<Int>(0)
started = ContinuousClock.now
await withTaskGroup(of: Void.self) { group in
    for _ in 0..<options.buyers {
        group.addTask {
            while true {
                let index = nextHold.add(1, ordering: .relaxed).newValue - 1
                guard index < held.count else { return }
                if case .purchased = await driver.purchase(held[index].code) { bought.add(1, ordering: .relaxed) }
            }
        }
    }
}
let purchaseTime = ContinuousClock.now - started

let checkoutsPerSecond = Double(options.items) / checkoutTime.inSeconds
let purchasesPerSecond = Double(held.count) / purchaseTime.inSeconds
let sold = await driver.checkout(CheckoutRequest(user: UserID(unchecked: "late"), item: ItemID(1)))
hot.shutdown()
durable.shutdown()

print("checkouts:  \(format(checkoutsPerSecond))/s  (\(held.count) held, \(refusals.load(ordering: .relaxed)) refused, \(String(format: "%.2f", checkoutTime.inSeconds)) s)")
print("purchases:  \(format(purchasesPerSecond))/s  (\(bought.load(ordering: .relaxed)) bought, \(String(format: "%.2f", purchaseTime.inSeconds)) s)")
print("afterwards: a new checkout answers \(sold)")

// Baselines, same servers, same run.
let pgBin = environment["PG_BIN"] ?? "/usr/lib/postgresql/15/bin"
let redisTarget = "-h \(endpoint.host) -p \(endpoint.port)"
let setPlain = number(after: "SET:", in: shell("redis-benchmark \(redisTarget) -q -n 100000 -t set"))
let setPipelined = number(after: "SET:", in: shell("redis-benchmark \(redisTarget) -q -n 100000 -t set -P 16"))
_ = shell("\(pgBin)/pgbench -i -q -s 1 '\(baseURL)'")
let pgbenchOutput = shell("\(pgBin)/pgbench -N -c 8 -j 2 -T \(options.baselineSeconds) '\(baseURL)'")
let pgbenchTPS = number(after: "tps =", in: pgbenchOutput)
_ = try? Migrator.execute("SET client_min_messages = warning; DROP SCHEMA \(schema) CASCADE", connectionString: baseURL)

print("baseline redis-benchmark SET:          \(setPlain.map(format) ?? "n/a")/s")
print("baseline redis-benchmark SET -P 16:    \(setPipelined.map(format) ?? "n/a")/s")
print("baseline pgbench -N (8 clients, \(options.baselineSeconds) s): \(pgbenchTPS.map(format) ?? "n/a") tps")
if let setPlain, let setPipelined {
    print(String(format: "ratio checkouts / redis SET:        %.3f", checkoutsPerSecond / setPlain))
    print(String(format: "ratio checkouts / redis SET -P 16:  %.3f", checkoutsPerSecond / setPipelined))
}
if let pgbenchTPS {
    print(String(format: "ratio checkouts / pgbench -N tps:   %.2f", checkoutsPerSecond / pgbenchTPS))
    print(String(format: "ratio purchases / pgbench -N tps:   %.2f", purchasesPerSecond / pgbenchTPS))
}
