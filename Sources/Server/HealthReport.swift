import Engine

/// What `/health` and the live page say about this instance: each store's state, the clock
/// against the hot store's, whether it drains, and so whether a balancer should send to it.
struct HealthReport: Sendable {
    /// `ok`, `uninitialized` (reachable but without data: the next request rebuilds it) or `unavailable`.
    let hot: String
    /// `ok` or `unavailable`.
    let durable: String
    let clockSafe: Bool
    let clockOffset: TimeSpan?
    let draining: Bool
    let durableMode: Bool
    let mode: String
    let sale: SaleID
    let time: Instant

    var ready: Bool { !draining && hot != "unavailable" && durable == "ok" && clockSafe }

    /// Why it is not ready, as the error `/health` answers.
    var refusal: APIError { draining ? .draining : clockSafe ? .unavailable : .clockUnsafe }

    var status: String { ready ? "ok" : draining ? "draining" : "unavailable" }

    /// The `/health` body (without the error).
    var fields: [(String, JSON)] {
        [
            ("status", .string(status)), ("live", .bool(true)), ("ready", .bool(ready)),
            ("durable", .bool(durableMode)), ("mode", .string(mode)),
            ("stores", .object([("hot", .string(hot)), ("durable", .string(durable))])),
            ("clock", .object([("safe", .bool(clockSafe)), ("offset_ms", clockOffset.map { .int($0.microseconds / 1_000) } ?? .null)])),
            ("sale_id", .int(sale.rawValue)), ("time", .string(RFC3339.format(time))),
        ]
    }
}

extension SaleAPI {
    /// Reads each store once (a cheap hot read that also tells the store's time, a durable query)
    /// and records the clock offset in the metrics.
    func healthReport() async -> HealthReport {
        let now = clock()
        async let hot = stores.execute(.hotRead(HotRead(keys: [])))
        async let durable = stores.execute(
            .durableQuery(.purchases(sale: calendar.sale(at: now), user: UserID(unchecked: "_health"))))
        let hotReply = await hot
        let hotState: String = switch hotReply {
        case .hotRead(.snapshot): "ok"
        case .hotRead(.uninitialized): "uninitialized"  // reachable; the next request rebuilds it
        default: "unavailable"
        }
        let durableState: String = switch await durable {
        case .durableQuery: "ok"
        default: "unavailable"
        }
        // This instance's clock against the hot store's: too far, and it refuses checkouts.
        var storeTime: Instant?
        if case .hotRead(.snapshot(let snapshot)) = hotReply { storeTime = snapshot.storeTime }
        let clockOffset = storeTime.map { now - $0 }
        metrics.clockOffset(clockOffset)
        return HealthReport(
            hot: hotState, durable: durableState,
            clockSafe: storeTime.map { ClockCheck.isSafe(local: now, store: $0, rules: rules) } ?? true,
            clockOffset: clockOffset, draining: drain.isDraining, durableMode: wired.durable, mode: wired.mode,
            sale: calendar.sale(at: now), time: now)
    }
}
