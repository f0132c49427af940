import Histogram

/// The open-loop run's latencies, both ways, so the coordinated omission it corrects is visible.
///
/// `corrected` is what a user sees: from the moment the timetable meant the request to leave to
/// the end of its response, so the time a request waits for a free connection or for a late
/// generator counts (wrk2's correction). `service` is from the actual write to the end of the
/// response, what a closed-loop generator would report. Microseconds, three significant digits.
struct LatencyRecorder: Sendable {
    var corrected = makeHistogram()
    var service = makeHistogram()
    /// Requests written later than their intended time by more than `lateThreshold`.
    var lateSends = 0
    /// The longest a request waited between its intended time and its write, in microseconds.
    var maxSendDelayMicros: UInt64 = 0

    static let lateThreshold: UInt64 = 1_000_000  // 1 ms, in nanoseconds

    mutating func record(intendedAt: UInt64, sentAt: UInt64, at now: UInt64) {
        corrected.record(max(1, (now &- intendedAt) / 1_000))
        service.record(max(1, (now &- sentAt) / 1_000))
    }

    mutating func sent(intendedAt: UInt64, at sentAt: UInt64) {
        let delay = sentAt &- intendedAt
        if delay > Self.lateThreshold { lateSends += 1 }
        maxSendDelayMicros = max(maxSendDelayMicros, delay / 1_000)
    }

    mutating func add(_ other: LatencyRecorder) {
        corrected.add(other.corrected)
        service.add(other.service)
        lateSends += other.lateSends
        maxSendDelayMicros = max(maxSendDelayMicros, other.maxSendDelayMicros)
    }
}
