import Engine
import Hummingbird
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `GET /live`: everything the operator page (`GET /`) draws, in one compact answer it polls once
/// a second. The sale (counts, sell-out time, every item's state two bits each) comes from the
/// shared hot store through the same one-second cache as `/sale`, so any number of pages and
/// instances add at most one full read of the sale per instance per second; the rates, latency and
/// refusals are this instance's own (`RequestRates`); health is this instance's view of the stores.
extension SaleAPI {
    /// Seconds of history in each answer (the page's charts span them).
    static let liveWindowSeconds = 300
    /// The largest sale whose item grid `/live` sends (62.5 KB of bits, about 83 KB of base64);
    /// past it the grid is null and the page shows the counts only.
    static let gridItemLimit = 250_000
    /// Outcomes that are not refusals.
    static let successOutcomes: Set<String> = ["ok", "held", "purchased"]

    func live(_ context: SaleRequestContext) async -> Response {
        let now = clock()
        async let health = healthReport()
        let board = await board(now: now)
        let report = await health
        let second = WallClock.now().microseconds / 1_000_000
        let window = metrics.rates.window(endingAt: second, seconds: Self.liveWindowSeconds)
        var body: [(String, JSON)] = [
            ("time", .string(RFC3339.format(now))),
            ("instance", .object([("id", .string(LiveInstance.id)), ("started_at", .string(RFC3339.format(startedAt)))])),
            ("health", .object(report.fields)),
            ("stores", .object([
                ("hot", .string(hotState(report, board: board?.0))), ("durable", .string(report.durable == "ok" ? "up" : "down")),
            ])),
        ]
        if let (board, asOf) = board {
            let summary = board.summary
            body.append(("sale", .object([
                ("sale_id", .int(summary.sale.rawValue)), ("starts_at", .string(RFC3339.format(summary.startsAt))),
                ("ends_at", .string(RFC3339.format(summary.endsAt))), ("total", .int(summary.total)), ("sold", .int(summary.sold)),
                ("held", .int(summary.held)), ("free", .int(summary.total - summary.sold - summary.held)),
                ("sold_out_at", board.soldOutAt.map { .string(RFC3339.format($0)) } ?? .null),
                ("generation", .int(board.generation.rawValue)), ("as_of", .string(RFC3339.format(asOf))),
                ("grid", summary.total <= Self.gridItemLimit ? .string(Base64URL.encode(board.grid)) : .null),
            ])))
        } else {
            body.append(("sale", .null))
        }
        let series = window.counts.sorted { ($0.key.route, $0.key.outcome) < ($1.key.route, $1.key.outcome) }
        var refusals: [String: Int] = [:]
        for (key, counts) in window.counts where !Self.successOutcomes.contains(key.outcome) && key.route != "unmatched" {
            refusals[key.outcome, default: 0] += counts.reduce(0, +)
        }
        body.append(("rates", .object([
            ("end", .int(window.endSecond)), ("seconds", .int(window.seconds)),
            ("series", .array(series.map { key, counts in
                .object([("route", .string(key.route)), ("outcome", .string(key.outcome)), ("counts", .array(counts.map { .int($0) }))])
            })),
            ("p50_us", .array(window.p50Microseconds.map { $0.map { .int($0) } ?? .null })),
            ("p99_us", .array(window.p99Microseconds.map { $0.map { .int($0) } ?? .null })),
        ])))
        body.append(("refusals", .object(refusals.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { ($0.key, .int($0.value)) })))
        return ok(.object(body), context)
    }

    /// The hot store as the page shows it: `up`; `rebuilding` (reachable but without data: the
    /// next request rebuilds it); `fenced` (rebuilt in the last minute: a commit made under the
    /// previous generation is refused, and its request reads again); or `down`.
    func hotState(_ report: HealthReport, board: SaleBoard?) -> String {
        switch report.hot {
        case "unavailable": return "down"
        case "uninitialized": return "rebuilding"
        default:
            guard let board else { return "up" }
            let changed = generations.observe(board.generation, at: report.time)
            return changed.map { report.time - $0 < .seconds(60) } == true ? "fenced" : "up"
        }
    }
}

/// When the hot store's generation last changed, as this instance's page reads saw it.
final class GenerationWatch: Sendable {
    private let state = Mutex<(generation: Generation, changedAt: Instant?)?>(nil)

    /// Records `generation` as seen at `now`; returns when it last changed (nil: never seen to change).
    func observe(_ generation: Generation, at now: Instant) -> Instant? {
        state.withLock { state in
            guard let seen = state else {
                state = (generation, nil)
                return nil
            }
            if seen.generation != generation { state = (generation, now) }
            return state?.changedAt
        }
    }
}

/// This process, as the page names it.
enum LiveInstance {
    static let id: String = {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count - 1) == 0 else { return "pid \(getpid())" }
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return "\(host) pid \(getpid())"
    }()
}

