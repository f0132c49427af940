import NIOCore

/// Sends one event loop's share of an open-loop run (`--rate`): request *i* is due at
/// `start + i / rate`, whatever the answers, the way real buyers arrive. A due request takes
/// any idle connection of the loop; when none is idle it waits in the backlog with its intended
/// time, and that wait counts in its latency (wrk2's correction for coordinated omission: a
/// closed-loop generator stops sending while the server stalls, and never sees the requests that
/// would have waited). Lives on its loop only, like `LoopState`.
final class OpenLoopScheduler: @unchecked Sendable {
    let state: LoopState
    /// Nanoseconds between two intended sends.
    let interval: Double
    /// Requests this loop sends in the run.
    let total: Int
    var start: UInt64 = 0
    /// Requests whose intended time has come (sent, or waiting in the backlog).
    var due = 0
    var sent = 0
    var answered = 0
    var inFlight = 0
    /// Intended send times of due requests waiting for a free connection, oldest first.
    var backlog = CircularBuffer<UInt64>()
    var maxBacklog = 0
    var idle: [LoadHandler] = []
    var recorder = LatencyRecorder()
    var isDone = false

    init(state: LoopState, rate: Double, duration: Double) {
        self.state = state
        self.interval = 1e9 / rate
        self.total = max(1, Int((rate * duration).rounded()))
    }

    func intendedTime(_ index: Int) -> UInt64 { start + UInt64(Double(index) * interval) }

    func begin(at start: UInt64) {
        self.start = start
        idle = state.handlers.reversed()
        tick()
    }

    /// Moves every request whose time has come into the backlog, sends what the idle connections
    /// can take, and sleeps until the next request is due.
    func tick() {
        let now = nowNanoseconds()
        while due < total, intendedTime(due) <= now {
            backlog.append(intendedTime(due))
            due += 1
        }
        maxBacklog = max(maxBacklog, backlog.count)
        dispatch()
        if due < total {
            let next = intendedTime(due)
            let now = nowNanoseconds()
            let wait = next > now ? Int64(next - now) : 0
            state.loop.scheduleTask(in: .nanoseconds(wait)) { [self] in tick() }
        } else {
            finishIfDone()
        }
    }

    func dispatch() {
        while !backlog.isEmpty, let handler = idle.popLast() {
            guard !handler.isFinished else { continue }
            let intended = backlog.removeFirst()
            handler.intendedAt = intended
            handler.next()
            sent += 1
            inFlight += 1
            recorder.sent(intendedAt: intended, at: handler.sentAt)
        }
    }

    /// A response is complete: record it and give the connection the next due request.
    func answered(_ handler: LoadHandler, at now: UInt64) {
        guard !handler.isFinished else { return }  // abandoned (timed out) before: already counted by `lost()`
        inFlight -= 1
        answered += 1
        recorder.record(intendedAt: handler.intendedAt, sentAt: handler.sentAt, at: now)
        idle.append(handler)
        dispatch()
        finishIfDone()
    }

    /// A connection failed with a request in flight (counted as an error by the handler).
    func lost() {
        inFlight -= 1
        finishIfDone()
    }

    /// Every request sent and answered (or no connection left to send the rest on): close all.
    func finishIfDone() {
        guard !isDone, due == total, inFlight == 0 else { return }
        guard backlog.isEmpty || state.handlers.allSatisfy(\.isFinished) else { return }
        isDone = true
        for handler in state.handlers { handler.finish() }
    }

    var totals: OpenLoopTotals {
        OpenLoopTotals(recorder: recorder, scheduled: total, sent: sent, answered: answered, maxBacklog: maxBacklog)
    }
}

/// The open-loop figures of the whole run, summed over the event loops.
struct OpenLoopTotals: Sendable {
    var recorder = LatencyRecorder()
    var scheduled = 0
    var sent = 0
    var answered = 0
    var maxBacklog = 0

    mutating func add(_ other: OpenLoopTotals) {
        recorder.add(other.recorder)
        scheduled += other.scheduled
        sent += other.sent
        answered += other.answered
        maxBacklog += other.maxBacklog  // the loops' backlogs are separate queues
    }

    /// The `open_loop` object of the result: latency from the intended send time (corrected) at
    /// the top level, from the actual write under `service`.
    func json(rate: Double, duration: Double, elapsed: Double) -> [String: Any] {
        var result = percentiles(recorder.corrected)
        result["service"] = percentiles(recorder.service)
        result["offered_rps"] = rate
        result["duration_s"] = duration
        result["scheduled"] = scheduled
        result["sent"] = sent
        result["answered"] = answered
        result["unsent"] = scheduled - sent
        result["achieved_rps"] = (Double(answered) / elapsed).rounded()
        result["late_sends"] = recorder.lateSends
        result["max_send_delay_ms"] = Double(recorder.maxSendDelayMicros) / 1_000
        result["max_backlog"] = maxBacklog
        return result
    }

    func summaryLine(rate: Double) -> String {
        let c = recorder.corrected
        let s = recorder.service
        func ms(_ micros: UInt64) -> Double { Double(micros) / 1e3 }
        return String(
            format: "  open loop at %.0f req/s: %d of %d sent, %d answered; corrected p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms"
                + " (from the write: p99 %.2f ms); %d sent more than 1 ms late, backlog up to %d",
            rate, sent, scheduled, answered, ms(c.valueAtPercentile(50)), ms(c.valueAtPercentile(99)), ms(c.valueAtPercentile(99.9)),
            ms(c.max), ms(s.valueAtPercentile(99)), recorder.lateSends, maxBacklog)
    }
}
