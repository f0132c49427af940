// sale-load: the load generator of scripts/bench (issue 5).
//
// A client of its own, built on SwiftNIO's HTTP/1.1 client codec: none of the server's code path is
// involved. N keep-alive connections are opened first (in waves, so the server's accept backlog
// never drops a SYN), then all of them start at once, each running its own closed request loop.
// Latencies (write of the request to the end of the response) go into one HdrHistogram per
// endpoint, and into a time series of 100 ms buckets (requests and latency percentiles per
// endpoint). The result is one JSON object (--out) and a short human summary on stdout.
//
// Scenarios:
//   sellout  each connection is one buyer (b<i>): checkout a random item it does not know to be
//            taken, purchase it with the code, repeat; stops on 409 sold_out or once it owns
//            --user-limit items. Reports when the last purchase was acknowledged.
//   flood    each connection sends POST /checkout for random users u1..u<users> and random items
//            1..<items> for --duration seconds (requests in flight at the end are awaited).
//            With --rate R it is open loop instead: R requests/s on a fixed timetable, latency from
//            each request's intended send time (OpenLoopScheduler.swift, LatencyRecorder.swift).
//   hot      each connection is one buyer (h<i>) racing for items 1..<hot-items> only: checkout
//            one not known to be sold, purchase it when held; stops once every one is known sold.
//   drill    the buyers of scripts/drill (DrillBuyers.swift): sellout over a pool of --users users
//            (u0000...), on every instance of --ports, retrying through crashes and 503s, paced
//            while the drill's faults run, with probes; stops at 409 sold_out.
import ArgumentParser
import Foundation
import Histogram
import NIOCore
import NIOHTTP1
import NIOPosix

// MARK: - Options

enum Scenario: String, CaseIterable, ExpressibleByArgument {
    case sellout, flood, hot, drill
}

/// The command line of `sale-load` (swift-argument-parser, like every other command of the package).
struct Options: ParsableCommand, Sendable {
    static let configuration = CommandConfiguration(
        commandName: "sale-load", abstract: "Loads a sale-server with one of three scenarios and reports latency and throughput.")

    @Option(help: "The shape of the load (described at the top of main.swift).") var scenario = Scenario.flood
    @Option(help: "The server's address.") var host = "127.0.0.1"
    @Option(help: "The server's port.") var port = 8032
    @Option(help: "Keep-alive connections (one buyer each in sellout and hot).") var connections = 1000
    @Option(help: "Seconds of the flood.") var duration = 10.0
    @Option(help: "Items of the sale (sellout, flood).") var items = 10_000
    @Option(help: "Items 1...N the hot scenario races for.") var hotItems = 10
    @Option(help: "Users u1...uN of the flood.") var users = 1_000_000
    @Option(help: "Items one buyer stops at (sellout, hot).") var userLimit = 10
    @Option(help: "Event-loop threads.") var threads = 1
    @Option(help: "Write the result as JSON here.") var out: String?
    @Option(help: "The result's name (default: the scenario).") var label: String?
    @Option(help: "Seconds before a request without an answer is abandoned.") var requestTimeout = 30.0
    @Option(help: "Seconds before the whole run is cut.") var maxSeconds = 300.0
    @Option(help: "Connections opened at once while connecting.") var connectWave = 100
    @Option(help: "Flood only: open loop at R requests/s for --duration, latency from the intended send time.")
    var rate: Double?
    @Option(help: "Write every request and answer as a history (docs/histories.md) here.") var history: String?
    @OptionGroup(title: "Drill") var drill: DrillOptions

    /// Where the connections go: every port of --ports, or --port.
    var targets: [Int] { drill.ports?.ports ?? [port] }

    func validate() throws {
        for (name, value) in [
            ("--port", port), ("--connections", connections), ("--items", items), ("--hot-items", hotItems), ("--users", users),
            ("--user-limit", userLimit), ("--threads", threads), ("--connect-wave", connectWave),
        ] where value <= 0 {
            throw ValidationError("\(name) must be a positive integer")
        }
        for (name, value) in [("--duration", duration), ("--request-timeout", requestTimeout), ("--max-seconds", maxSeconds)]
        where !(value > 0) {
            throw ValidationError("\(name) must be a positive number")
        }
        if let rate, !(rate > 0) { throw ValidationError("--rate must be a positive number") }
        if rate != nil && scenario != .flood { throw ValidationError("--rate is for the flood scenario") }
        try drill.validate(scenario: scenario)
    }
}

// MARK: - Measurements

enum Endpoint: Int, CaseIterable {
    case checkout = 0, purchase = 1
    var name: String { self == .checkout ? "checkout" : "purchase" }
}

/// Latencies in microseconds, up to a minute, three significant digits.
func makeHistogram(_ digits: SignificantDigits = .three) -> Histogram<UInt64> {
    Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: digits)
}

/// One 100 ms slice of the run, per endpoint.
struct SeriesBucket: Sendable {
    var histograms: [Histogram<UInt64>] = Endpoint.allCases.map { _ in makeHistogram(.two) }
    var purchased = 0

    mutating func add(_ other: SeriesBucket) {
        for index in histograms.indices { histograms[index].add(other.histograms[index]) }
        purchased += other.purchased
    }
}

/// Everything one event loop measured; merged across loops at the end.
struct Measurements: Sendable {
    var histograms: [Histogram<UInt64>] = Endpoint.allCases.map { _ in makeHistogram() }
    var outcomes: [[String: Int]] = Endpoint.allCases.map { _ in [:] }
    var series: [SeriesBucket] = []
    var purchases = 0
    /// Nanoseconds after the start at which the last purchase was acknowledged.
    var lastPurchaseAt: UInt64 = 0
    var firstSoldOutAt: UInt64?
    var lastResponseAt: UInt64 = 0
    var errors: [String: Int] = [:]
    var finishedConnections = 0

    mutating func add(_ other: Measurements) {
        for index in histograms.indices { histograms[index].add(other.histograms[index]) }
        for index in outcomes.indices { outcomes[index].merge(other.outcomes[index], uniquingKeysWith: +) }
        if other.series.count > series.count { series += Array(repeating: SeriesBucket(), count: other.series.count - series.count) }
        for (index, bucket) in other.series.enumerated() { series[index].add(bucket) }
        purchases += other.purchases
        lastPurchaseAt = max(lastPurchaseAt, other.lastPurchaseAt)
        if let at = other.firstSoldOutAt { firstSoldOutAt = min(firstSoldOutAt ?? at, at) }
        lastResponseAt = max(lastResponseAt, other.lastResponseAt)
        errors.merge(other.errors, uniquingKeysWith: +)
        finishedConnections += other.finishedConnections
    }
}

/// A fast, non-cryptographic generator (SplitMix64): the load generator's own CPU matters.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@inline(__always) func nowNanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

// MARK: - One event loop's state

/// Lives on one event loop and is only touched there (hence `@unchecked Sendable`): the
/// connections of that loop, their shared knowledge of taken items, and the measurements.
final class LoopState: @unchecked Sendable {
    let loop: any EventLoop
    let options: Options
    let expected: Int
    let done: EventLoopPromise<Void>
    var handlers: [LoadHandler] = []
    var measurements = Measurements()
    var random: SplitMix64
    var start: UInt64 = 0
    var stopAt: UInt64 = .max
    var finished = 0
    var history = HistoryRecorder()
    /// Items not yet known to be held or sold (sellout, hot): swap-remove array plus positions.
    var candidates: [Int32] = []
    var position: [Int32] = []
    var openLoop: OpenLoopScheduler?
    /// The drill scenario's shared knowledge (DrillBuyers.swift).
    var drill = DrillKnowledge()

    init(loop: any EventLoop, options: Options, expected: Int, seed: UInt64) {
        self.loop = loop
        self.options = options
        self.expected = expected
        self.done = loop.makePromise()
        self.random = SplitMix64(state: seed)
        let pool = options.scenario == .hot ? options.hotItems : options.items
        if options.scenario != .flood {
            candidates = (1...pool).map { Int32($0) }
            position = [-1] + (0..<pool).map { Int32($0) }
        }
        if expected == 0 { done.succeed(()) }
    }

    func pickItem() -> Int? {
        if !candidates.isEmpty { return Int(candidates[Int(random.next() % UInt64(candidates.count))]) }
        if options.scenario == .hot { return nil }
        return Int(random.next() % UInt64(options.items)) + 1  // none known free: try any
    }

    func taken(_ item: Int) {
        guard item < position.count else { return }
        let at = Int(position[item])
        guard at >= 0 else { return }
        let last = candidates.removeLast()
        if at < candidates.count {
            candidates[at] = last
            position[Int(last)] = Int32(at)
        }
        position[item] = -1
    }

    func record(_ endpoint: Endpoint, outcome: String, sentAt: UInt64, at now: UInt64) {
        let micros = max(1, (now &- sentAt) / 1_000)
        measurements.histograms[endpoint.rawValue].record(micros)
        measurements.outcomes[endpoint.rawValue][outcome, default: 0] += 1
        let slot = Int((now &- start) / 100_000_000)
        if slot >= measurements.series.count {
            measurements.series += Array(repeating: SeriesBucket(), count: slot + 1 - measurements.series.count)
        }
        measurements.series[slot].histograms[endpoint.rawValue].record(micros)
        measurements.lastResponseAt = max(measurements.lastResponseAt, now &- start)
    }

    func purchased(at now: UInt64) {
        measurements.purchases += 1
        measurements.lastPurchaseAt = max(measurements.lastPurchaseAt, now &- start)
        let slot = Int((now &- start) / 100_000_000)
        if slot < measurements.series.count { measurements.series[slot].purchased += 1 }
    }

    func error(_ kind: String) { measurements.errors[kind, default: 0] += 1 }

    func connectionFinished() {
        finished += 1
        measurements.finishedConnections += 1
        if finished == expected { done.succeed(()) }
    }

    /// Starts every connection of this loop, and a watchdog for requests that never answer.
    func startAll(at start: UInt64) {
        self.start = start
        if let rate = options.rate {
            let scheduler = OpenLoopScheduler(state: self, rate: rate * Double(expected) / Double(options.connections), duration: options.duration)
            openLoop = scheduler
            scheduler.begin(at: start)
        } else {
            if options.scenario == .flood { stopAt = start + UInt64(options.duration * 1e9) }
            for handler in handlers { handler.next() }
        }
        loop.scheduleRepeatedTask(initialDelay: .milliseconds(500), delay: .milliseconds(500)) { [self] task in
            let now = nowNanoseconds()
            let limit = UInt64(options.requestTimeout * 1e9)
            let overall = now &- start > UInt64(options.maxSeconds * 1e9)
            for handler in handlers where !handler.isFinished {
                if overall || (handler.inFlight && now &- handler.sentAt > limit) { handler.abandon(overall ? "run_time_limit" : "timeout") }
            }
            if finished == expected { task.cancel() }
        }
    }
}

// MARK: - One connection

/// Lives on its loop only, like `LoopState` (hence `@unchecked Sendable`: a drill buyer's new connection is made from a callback).
final class LoadHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let state: LoopState
    let index: Int
    var user: String
    var context: ChannelHandlerContext?
    var headers: HTTPHeaders
    var sentAt: UInt64 = 0
    /// When the request was meant to leave: its send time in closed loop, the timetable's in open loop.
    var intendedAt: UInt64 = 0
    var inFlight = false
    var isFinished = false
    var endpoint = Endpoint.checkout
    var status = 0
    var body: ByteBuffer?
    var item = 0
    var code: String?
    var owned = 0
    /// The request in flight and when it was sent, for --history.
    var uri = ""
    var invokedAt: Int64 = 0
    /// The drill scenario's state of this buyer (DrillBuyers.swift).
    var drill = DrillBuyerState()
    /// Replaced by a new connection (drill): this one's events no longer count.
    var isRetired = false

    init(state: LoopState, index: Int, port: Int) {
        self.state = state
        self.index = index
        self.user = (state.options.scenario == .hot ? "h" : "b") + String(index + 1)
        self.headers = HTTPHeaders([("Host", "\(state.options.host):\(port)"), ("Content-Length", "0")])
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        state.handlers.append(self)
    }

    func next() {
        guard !isFinished, context != nil else { return }
        let options = state.options
        var uri: String
        switch options.scenario {
        case .flood:
            if nowNanoseconds() >= state.stopAt { return finish() }
            let user = state.random.next() % UInt64(options.users) + 1
            let item = state.random.next() % UInt64(options.items) + 1
            uri = "/checkout?user_id=u\(user)&id=\(item)"
            endpoint = .checkout
        case .drill:
            return drillNext()
        case .sellout, .hot:
            if let code {
                uri = "/purchase?code=\(code)"
                endpoint = .purchase
            } else {
                if owned >= options.userLimit { return finish() }
                guard let item = state.pickItem() else { return finish() }
                self.item = item
                uri = "/checkout?user_id=\(user)&id=\(item)"
                endpoint = .checkout
            }
        }
        send(uri)
    }

    /// Sends `uri` as a POST on this connection.
    func send(_ uri: String) {
        guard let context else { return }
        status = 0
        body?.clear()
        inFlight = true
        sentAt = nowNanoseconds()
        if state.openLoop == nil { intendedAt = sentAt }
        self.uri = uri
        if state.options.history != nil { invokedAt = HistoryRecorder.now() }
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: uri, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body(var part):
            if body == nil { body = part } else { body!.writeBuffer(&part) }
        case .end:
            inFlight = false
            let now = nowNanoseconds()
            if state.options.history != nil && !isFinished {
                state.history.answered(uri: uri, client: user, invoke: invokedAt, complete: HistoryRecorder.now(), status: status, body: body)
            }
            let code = errorOrCode()
            let outcome = status == 200 ? "200" : "\(status) \(code ?? "")"
            state.record(endpoint, outcome: outcome, sentAt: intendedAt, at: now)
            handle(code: code, at: now)
        }
    }

    /// The first `"code":"…"` of the body: the hold's code on a 200 checkout, the error code otherwise.
    func errorOrCode() -> String? {
        guard let body, body.readableBytes > 0 else { return nil }
        return body.withUnsafeReadableBytes { raw -> String? in
            let bytes = raw.bindMemory(to: UInt8.self)
            let needle = Array("\"code\":\"".utf8)
            guard bytes.count > needle.count else { return nil }
            var i = 0
            while i + needle.count < bytes.count {
                var match = true
                for j in 0..<needle.count where bytes[i + j] != needle[j] {
                    match = false
                    break
                }
                if match {
                    let from = i + needle.count
                    var to = from
                    while to < bytes.count && bytes[to] != UInt8(ascii: "\"") { to += 1 }
                    return String(decoding: UnsafeBufferPointer(rebasing: bytes[from..<to]), as: UTF8.self)
                }
                i += 1
            }
            return nil
        }
    }

    func handle(code reply: String?, at now: UInt64) {
        switch (state.options.scenario, endpoint) {
        case (.drill, _):
            drillHandle(code: reply, at: now)
        case (.flood, _):
            if let openLoop = state.openLoop { openLoop.answered(self, at: now) } else { next() }
        case (_, .checkout):
            switch (status, reply) {
            case (200, let held?):
                state.taken(item)
                code = held
            case (409, "item_held"), (409, "item_sold"):
                state.taken(item)
            case (409, "sold_out"):
                if state.measurements.firstSoldOutAt == nil { state.measurements.firstSoldOutAt = now &- state.start }
                return finish()
            case (403, "user_limit_reached"):
                return finish()
            case (503, _):
                break  // the store was unavailable: try again
            default:
                state.error("checkout \(status) \(reply ?? "")")
                return finish()
            }
            next()
        case (_, .purchase):
            switch status {
            case 200:
                owned += 1
                code = nil
                state.purchased(at: now)
            case 503:
                break  // retry the same code
            default:
                state.error("purchase \(status) \(reply ?? "")")
                code = nil
            }
            next()
        }
    }

    func finish() {
        guard !isFinished else { return }
        isFinished = true
        state.connectionFinished()
        context?.close(promise: nil)
    }

    func abandon(_ reason: String) {
        if state.options.scenario == .drill && reason != "run_time_limit" { return lost(reason) }
        if inFlight && state.options.history != nil { state.history.unanswered(uri: uri, client: user, invoke: invokedAt) }
        state.error(reason)
        if inFlight {
            inFlight = false
            state.openLoop?.lost()
        }
        finish()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !isFinished && !isRetired { abandon(inFlight ? "closed_with_request_in_flight" : "closed_by_server") }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !isFinished && !isRetired { abandon("error: \(error)") }
        context.close(promise: nil)
    }
}

// MARK: - Running

func percentiles(_ histogram: Histogram<UInt64>) -> [String: Any] {
    func ms(_ micros: UInt64) -> Double { (Double(micros) / 1_000 * 1_000).rounded() / 1_000 }
    guard histogram.totalCount > 0 else { return ["count": 0] }
    return [
        "count": histogram.totalCount, "p50_ms": ms(histogram.valueAtPercentile(50)), "p90_ms": ms(histogram.valueAtPercentile(90)),
        "p99_ms": ms(histogram.valueAtPercentile(99)), "p999_ms": ms(histogram.valueAtPercentile(99.9)),
        "max_ms": ms(histogram.max), "mean_ms": (histogram.mean / 1_000 * 1_000).rounded() / 1_000,
    ]
}

func run(_ options: Options) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
    var loops: [any EventLoop] = []
    var iterator = group.makeIterator()
    while let loop = iterator.next() { loops.append(loop) }
    let states = loops.enumerated().map { index, loop in
        LoopState(
            loop: loop, options: options,
            expected: options.connections / loops.count + (index < options.connections % loops.count ? 1 : 0),
            seed: UInt64(index + 1) &* 0x2545_F491_4F6C_DD1D ^ nowNanoseconds())
    }

    // Connect everyone first, in waves, then start all request loops at the same instant.
    let connectStart = nowNanoseconds()
    var channels: [any Channel] = []
    var index = 0
    while index < options.connections {
        let wave = min(options.connectWave, options.connections - index)
        var futures: [EventLoopFuture<any Channel>] = []
        for offset in 0..<wave {
            let connection = index + offset
            let state = states[connection % states.count]
            let port = options.targets[connection % options.targets.count]
            let bootstrap = ClientBootstrap(group: state.loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(LoadHandler(state: state, index: connection, port: port))
                    }
                }
            futures.append(bootstrap.connect(host: options.host, port: port))
        }
        for future in futures { channels.append(try await future.get()) }
        index += wave
    }
    let connectSeconds = Double(nowNanoseconds() - connectStart) / 1e9

    let start = nowNanoseconds()
    for state in states { state.loop.execute { state.startAll(at: start) } }
    for state in states { try await state.done.futureResult.get() }
    let wall = Double(nowNanoseconds() - start) / 1e9

    var total = Measurements()
    var openLoop = OpenLoopTotals()
    for state in states {
        let part = try await state.loop.submit { state.measurements }.get()
        total.add(part)
        if let totals = try await state.loop.submit({ state.openLoop?.totals }).get() { openLoop.add(totals) }
    }
    if let path = options.history {
        var lines: [String] = []
        for state in states { lines += try await state.loop.submit { state.history.lines }.get() }
        try HistoryRecorder.write(lines, to: path)
    }
    for channel in channels { try? await channel.close() }
    try await group.shutdownGracefully()

    // Report.
    let elapsed = max(Double(total.lastResponseAt) / 1e9, 1e-9)
    let requests = total.histograms.reduce(0) { $0 + Int($1.totalCount) }
    var endpoints: [String: Any] = [:]
    for endpoint in Endpoint.allCases where total.histograms[endpoint.rawValue].totalCount > 0 {
        var entry = percentiles(total.histograms[endpoint.rawValue])
        entry["rps"] = (Double(total.histograms[endpoint.rawValue].totalCount) / elapsed).rounded()
        entry["outcomes"] = total.outcomes[endpoint.rawValue]
        endpoints[endpoint.name] = entry
    }
    var series: [[String: Any]] = []
    var all = makeHistogram(.two)
    for (slot, bucket) in total.series.enumerated() {
        var row: [String: Any] = ["t_s": Double(slot + 1) / 10]
        all.reset()
        for endpoint in Endpoint.allCases {
            let histogram = bucket.histograms[endpoint.rawValue]
            all.add(histogram)
            guard histogram.totalCount > 0 || options.scenario != .flood || endpoint == .checkout else { continue }
            row[endpoint.name] = [
                "rps": Double(histogram.totalCount) * 10, "p50_ms": Double(histogram.valueAtPercentile(50)) / 1_000,
                "p99_ms": Double(histogram.valueAtPercentile(99)) / 1_000,
            ]
        }
        row["rps"] = Double(all.totalCount) * 10
        row["p50_ms"] = Double(all.valueAtPercentile(50)) / 1_000
        row["p99_ms"] = Double(all.valueAtPercentile(99)) / 1_000
        row["purchases_per_s"] = Double(bucket.purchased) * 10
        series.append(row)
    }
    let checkoutOutcomes = total.outcomes[Endpoint.checkout.rawValue]
    let answeredNon503 = checkoutOutcomes.filter { !$0.key.hasPrefix("503") }.values.reduce(0, +)
    var result: [String: Any] = [
        "scenario": options.scenario.rawValue, "label": options.label ?? options.scenario.rawValue,
        "target": options.targets.map { "\(options.host):\($0)" }.joined(separator: ","), "connections": options.connections, "threads": options.threads,
        "connect_s": connectSeconds, "elapsed_s": elapsed, "wall_s": wall, "requests": requests,
        "rps": (Double(requests) / elapsed).rounded(), "endpoints": endpoints, "series": series, "errors": total.errors,
        "checkouts_answered_non_503": answeredNon503, "finished_connections": total.finishedConnections,
    ]
    if options.scenario != .flood {
        result["purchases"] = total.purchases
        result["last_purchase_s"] = Double(total.lastPurchaseAt) / 1e9
        if let at = total.firstSoldOutAt { result["first_sold_out_s"] = Double(at) / 1e9 }
    }
    if options.scenario == .flood { result["duration_s"] = options.duration; result["users"] = options.users }
    result["items"] = options.scenario == .hot ? options.hotItems : options.items
    if let rate = options.rate { result["open_loop"] = openLoop.json(rate: rate, duration: options.duration, elapsed: elapsed) }

    let json = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
    if let out = options.out {
        try json.write(to: URL(fileURLWithPath: out))
    }
    var lines = ["\(options.label ?? options.scenario.rawValue): \(requests) requests in \(String(format: "%.2f", elapsed)) s = \(Int(Double(requests) / elapsed)) req/s over \(options.connections) connections"]
    for endpoint in Endpoint.allCases where total.histograms[endpoint.rawValue].totalCount > 0 {
        let h = total.histograms[endpoint.rawValue]
        lines.append(String(format: "  %@: %d  p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms", endpoint.name, Int(h.totalCount),
                            Double(h.valueAtPercentile(50)) / 1e3, Double(h.valueAtPercentile(99)) / 1e3,
                            Double(h.valueAtPercentile(99.9)) / 1e3, Double(h.max) / 1e3))
        let outcomes = total.outcomes[endpoint.rawValue].sorted { $0.value > $1.value }.map { "\($0.key)=\($0.value)" }
        lines.append("    " + outcomes.joined(separator: " "))
    }
    if options.scenario != .flood {
        lines.append(String(format: "  purchases acknowledged: %d, last at %.3f s", total.purchases, Double(total.lastPurchaseAt) / 1e9))
    }
    if let rate = options.rate { lines.append(openLoop.summaryLine(rate: rate)) }
    if !total.errors.isEmpty { lines.append("  errors: \(total.errors)") }
    print(lines.joined(separator: "\n"))
}

let options = Options.parseOrExit()
do {
    try await run(options)
} catch {
    // A server that is not there (refused, reset) is an answer to report, not a crash.
    FileHandle.standardError.write(Data("sale-load: \(error)\n".utf8))
    exit(1)
}
