import Synchronization

/// This instance's requests over the last few minutes, one slot per second: how many of each
/// route and outcome, and the latency of the API's requests — what the live page charts. The
/// Prometheus counters only grow; a page would need two scrapes and a subtraction per point, and
/// a histogram per route to find a p99. A ring of one-second slots answers both at once.
final class RequestRates: Sendable {
    /// One line of the rate chart.
    struct Series: Hashable, Sendable {
        let route: String
        let outcome: String
    }

    /// Latency buckets: four per power of two of microseconds (each about 19 % wide), up to 2^24 µs.
    static let latencyBuckets = 100

    struct Slot {
        var second: Int64 = .min
        var counts: [Series: Int] = [:]
        var latency = [UInt32](repeating: 0, count: RequestRates.latencyBuckets)
    }

    /// What the page gets: per-second values, oldest first, the last entry the current second.
    struct Window: Sendable {
        let endSecond: Int64
        let seconds: Int
        let counts: [Series: [Int]]
        /// Per second: nil when no API request finished in that second.
        let p50Microseconds: [Int64?]
        let p99Microseconds: [Int64?]
    }

    let capacity: Int
    private let slots: Mutex<[Slot]>

    init(capacity: Int = 600) {
        precondition(capacity > 0)
        self.capacity = capacity
        slots = Mutex([Slot](repeating: Slot(), count: capacity))
    }

    /// Counts one request that ended in `second` (Unix seconds); its latency counts towards the
    /// percentiles when `timed` (the API's routes, not the health checks and pages).
    func record(route: String, outcome: String, nanoseconds: Int64, timed: Bool, second: Int64) {
        let series = Series(route: route, outcome: outcome)
        let bucket = timed ? Self.bucket(microseconds: nanoseconds / 1_000) : nil
        slots.withLock { slots in
            let index = Int(second.remainderReportingOverflow(dividingBy: Int64(capacity)).partialValue + Int64(capacity)) % capacity
            if slots[index].second != second { slots[index] = Slot(second: second) }
            slots[index].counts[series, default: 0] += 1
            if let bucket { slots[index].latency[bucket] += 1 }
        }
    }

    /// The last `seconds` seconds up to and including `endSecond`.
    func window(endingAt endSecond: Int64, seconds: Int) -> Window {
        let seconds = max(1, min(seconds, capacity))
        let copies: [Slot?] = slots.withLock { slots in
            (0..<seconds).map { offset in
                let second = endSecond - Int64(seconds - 1 - offset)
                let index = Int(second.remainderReportingOverflow(dividingBy: Int64(capacity)).partialValue + Int64(capacity)) % capacity
                return slots[index].second == second ? slots[index] : nil
            }
        }
        var counts: [Series: [Int]] = [:]
        var p50: [Int64?] = [], p99: [Int64?] = []
        for (offset, slot) in copies.enumerated() {
            for (series, count) in slot?.counts ?? [:] {
                counts[series, default: [Int](repeating: 0, count: seconds)][offset] = count
            }
            p50.append(slot.flatMap { Self.percentile(0.50, of: $0.latency) })
            p99.append(slot.flatMap { Self.percentile(0.99, of: $0.latency) })
        }
        return Window(endSecond: endSecond, seconds: seconds, counts: counts, p50Microseconds: p50, p99Microseconds: p99)
    }

    /// The bucket of a latency: `4 * floor(log2(µs))` plus the next two bits.
    static func bucket(microseconds: Int64) -> Int {
        let value = UInt64(max(1, microseconds))
        let power = 63 - value.leadingZeroBitCount
        let fraction = power >= 2 ? Int((value >> UInt64(power - 2)) & 3) : 0
        return min(latencyBuckets - 1, 4 * power + fraction)
    }

    /// The upper edge of a bucket, in microseconds (what a percentile in it is reported as).
    static func upperEdge(ofBucket bucket: Int) -> Int64 {
        let power = bucket / 4, fraction = Int64(bucket % 4)
        return power >= 2 ? (4 + fraction + 1) << Int64(power - 2) : Int64(1) << Int64(power + 1)
    }

    /// The latency at or under which `quantile` of the counted requests finished; nil for none.
    static func percentile(_ quantile: Double, of buckets: [UInt32]) -> Int64? {
        let total = buckets.reduce(0) { $0 + Int($1) }
        guard total > 0 else { return nil }
        let rank = max(1, Int((quantile * Double(total)).rounded(.up)))
        var seen = 0
        for (bucket, count) in buckets.enumerated() {
            seen += Int(count)
            if seen >= rank { return upperEdge(ofBucket: bucket) }
        }
        return nil
    }
}
