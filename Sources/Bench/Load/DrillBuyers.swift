// The drill scenario of sale-load: the buyers of scripts/drill (docs/drill.md).
//
// Each connection is one buyer acting, cycle after cycle, for a user drawn from a pool of --users
// users (u0000...), so that one user is often acted for on several connections and instances at
// once. A cycle checks out an item not known to be sold and purchases the code. A 503 or 5xx is
// retried (same request, backoff 50 ms doubling to 1 s, with jitter); a connection that breaks
// (an instance killed, a timeout) is replaced by one to a random instance of --ports, and the
// request in flight is sent again there; a request without a definite answer after
// --retry-seconds is given up (counted as the error `gave_up`). Every send is one operation of the
// history (--history), answered or not.
//
// For the first --pace-seconds (while the drill's faults run) the buyers think up to --think-ms
// before each cycle, abandon --abandon-p of their holds, and keep the purchases to
// --pace-fraction of the items spread over that time; a buyer ahead of the pace sends a probe
// instead (a re-purchase of a code it bought, or a checkout of an item known sold). Afterwards
// they buy every hold at once until a checkout answers 409 sold_out. --recheckout-p of the
// checkouts that hold an item are sent a second time (the answer must be the same hold: the
// history checker judges it).
import ArgumentParser
import NIOCore
import NIOHTTP1
import NIOPosix

/// Ports given as one comma-separated list: `--ports 18132,18133`.
struct PortList: ExpressibleByArgument, Sendable {
    let ports: [Int]

    init?(argument: String) {
        let ports = argument.split(separator: ",").compactMap { Int($0) }
        guard !ports.isEmpty, ports.count == argument.split(separator: ",").count, ports.allSatisfy({ (1...65_535).contains($0) })
        else { return nil }
        self.ports = ports
    }
}

/// The options of the drill scenario.
struct DrillOptions: ParsableArguments, Sendable {
    @Option(help: "Instances to spread the connections over, comma-separated (instead of --port); a broken connection goes to a random one.")
    var ports: PortList?
    @Option(help: "Drill: seconds of paced buying at the start (while the drill's faults run).") var paceSeconds = 0.0
    @Option(help: "Drill: share of the items sold during --pace-seconds.") var paceFraction = 0.8
    @Option(help: "Drill: most milliseconds a buyer thinks before each cycle while paced.") var thinkMs = 400
    @Option(help: "Drill: share of the holds abandoned while paced (left to expire).") var abandonP = 0.1
    @Option(help: "Drill: share of the holding checkouts sent twice.") var recheckoutP = 0.1
    @Option(help: "Drill: seconds of retries before a request is given up.") var retrySeconds = 40.0

    func validate(scenario: Scenario) throws {
        guard paceSeconds >= 0, (0...1).contains(paceFraction), thinkMs >= 0, (0...1).contains(abandonP), (0...1).contains(recheckoutP),
            retrySeconds > 0
        else { throw ValidationError("drill options out of range") }
        if scenario != .drill && (paceSeconds > 0) { throw ValidationError("--pace-seconds is for the drill scenario") }
    }
}

/// What the drill's buyers of one event loop know together.
struct DrillKnowledge {
    /// Purchases acknowledged per user; a user at the limit is not picked again.
    var bought: [String: Int] = [:]
    /// Items known sold, for the probes.
    var soldItems: [Int] = []
    /// A checkout answered 409 sold_out: every buyer stops.
    var soldOut = false
}

/// One drill buyer's progress, carried over to the connection that replaces a broken one.
struct DrillBuyerState {
    /// The request to send again on a new connection (in flight or waiting for its retry); nil between requests.
    var pending: String?
    /// When the pending request was first sent, for --retry-seconds.
    var firstSentAt: UInt64 = 0
    var backoffSeconds = 0.05
    /// The buyer has thought before this cycle.
    var thought = false
    /// The request is a probe: its answer changes nothing the buyer does.
    var probing = false
    /// The checkout is being sent a second time.
    var rechecking = false
    /// Codes this buyer bought, for re-purchase probes.
    var codes: [String] = []
}

extension LoopState {
    /// A random number in `0..<1`.
    func unit() -> Double { Double(random.next() >> 11) / Double(1 << 53) }

    func chance(_ probability: Double) -> Bool { unit() < probability }

    /// A user of the pool not known to be at the limit (twenty tries, then any).
    func pickUser() -> String {
        var name = ""
        for _ in 0..<20 {
            name = Self.userName(Int(random.next() % UInt64(options.users)))
            if drill.bought[name, default: 0] < options.userLimit { break }
        }
        return name
    }

    static func userName(_ number: Int) -> String {
        let digits = String(number)
        return "u" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// A new connection for the buyer of `old`, to a random instance, after a short pause; again until one connects.
    func reconnect(_ old: LoadHandler, after seconds: Double = 0.1) {
        loop.scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) { [self] in
            if nowNanoseconds() &- start > UInt64(options.maxSeconds * 1e9) { return old.finish() }
            let port = options.targets[Int(random.next() % UInt64(options.targets.count))]
            let handler = LoadHandler(state: self, index: old.index, port: port)
            handler.takeOver(from: old)
            ClientBootstrap(group: loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(5))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: options.host, port: port)
                .whenComplete { [self] result in
                    switch result {
                    case .success:
                        handler.resume()
                    case .failure:
                        error("connect_failed")
                        handler.isRetired = true
                        handlers.removeAll { $0 === handler }
                        reconnect(handler, after: min(1.0, seconds * 2))
                    }
                }
        }
    }
}

extension LoadHandler {
    /// The next request of a drill buyer.
    func drillNext() {
        guard !isFinished, !isRetired else { return }
        let options = state.options
        if state.drill.soldOut { return finish() }
        if let code { return request("/purchase?code=\(code)", .purchase) }
        let elapsed = Double(nowNanoseconds() &- state.start) / 1e9
        let paced = elapsed < options.drill.paceSeconds
        if paced && !drill.thought && options.drill.thinkMs > 0 {
            drill.thought = true
            let delay = Int64(state.unit() * Double(options.drill.thinkMs) * 1e6)
            state.loop.scheduleTask(in: .nanoseconds(delay)) { [self] in drillNext() }
            return
        }
        drill.thought = false
        if paced {
            let share = Double(state.expected) / Double(options.connections)
            let target = Double(options.items) * options.drill.paceFraction * elapsed / options.drill.paceSeconds * share
            if Double(state.measurements.purchases) >= target {
                // Ahead of the pace: a probe instead of a purchase.
                drill.probing = true
                if !drill.codes.isEmpty && state.chance(0.5) {
                    return request("/purchase?code=\(drill.codes[Int(state.random.next() % UInt64(drill.codes.count))])", .purchase)
                }
                if !state.drill.soldItems.isEmpty {
                    let sold = state.drill.soldItems[Int(state.random.next() % UInt64(state.drill.soldItems.count))]
                    return request("/checkout?user_id=\(state.pickUser())&id=\(sold)", .checkout)
                }
                drill.probing = false
                return drillNext()  // nothing to probe yet: think again
            }
        }
        user = state.pickUser()
        guard let item = state.pickItem() else { return finish() }
        self.item = item
        request("/checkout?user_id=\(user)&id=\(item)", .checkout)
    }

    /// Starts a new request (not a retry).
    func request(_ uri: String, _ endpoint: Endpoint) {
        self.endpoint = endpoint
        drill.pending = uri
        drill.firstSentAt = nowNanoseconds()
        drill.backoffSeconds = 0.05
        send(uri)
    }

    /// What a drill buyer does with an answer (the answer is already recorded).
    func drillHandle(code reply: String?, at now: UInt64) {
        if status >= 500 { return retry() }
        drill.pending = nil
        if drill.probing {
            drill.probing = false
            return drillNext()
        }
        let paced = Double(now &- state.start) / 1e9 < state.options.drill.paceSeconds
        switch (endpoint, status, reply) {
        case (.checkout, 200, let held?):
            code = held
            if !drill.rechecking && state.chance(state.options.drill.recheckoutP) {
                drill.rechecking = true
                return request(uri, .checkout)
            }
            drill.rechecking = false
            if paced && state.chance(state.options.drill.abandonP) {
                code = nil
                state.error("abandoned_hold")
            }
        case (.checkout, 409, "sold_out"):
            state.drill.soldOut = true
            if state.measurements.firstSoldOutAt == nil { state.measurements.firstSoldOutAt = now &- state.start }
            return finish()
        case (.checkout, 409, "item_sold"):
            state.taken(item)  // known sold; a held item may come back, so it stays a candidate
            if drill.rechecking { code = nil }
        case (.checkout, 409, "item_held"):
            if drill.rechecking { code = nil }  // the hold moved on (another connection of the same user bought it)
        case (.checkout, 403, "user_limit_reached"):
            state.drill.bought[user] = state.options.userLimit
            if drill.rechecking { code = nil }
        case (.purchase, 200, _):
            state.purchased(at: now)
            state.taken(item)
            state.drill.bought[user, default: 0] += 1
            state.drill.soldItems.append(item)
            if let code { drill.codes.append(code) }
            code = nil
        default:
            state.error("\(endpoint.name) \(status) \(reply ?? "")")
            code = nil
        }
        if endpoint == .checkout && drill.rechecking { drill.rechecking = false }
        drillNext()
    }

    /// Whether the pending request has been retried for --retry-seconds: then it is given up (and
    /// counted), and the buyer forgets it.
    func gaveUp() -> Bool {
        guard Double(nowNanoseconds() &- drill.firstSentAt) / 1e9 > state.options.drill.retrySeconds else { return false }
        state.error("gave_up")
        drill.pending = nil
        drill.probing = false
        code = nil
        return true
    }

    /// The same request again after a backoff, unless it has been retried for --retry-seconds.
    func retry() {
        guard let uri = drill.pending else { return drillNext() }
        if gaveUp() { return drillNext() }
        let delay = drill.backoffSeconds * (0.5 + state.unit())
        drill.backoffSeconds = min(1.0, drill.backoffSeconds * 2)
        state.loop.scheduleTask(in: .nanoseconds(Int64(delay * 1e9))) { [self] in
            guard !isFinished, !isRetired else { return }
            send(uri)
        }
    }

    /// The connection broke (closed, reset, timed out): the request in flight is unanswered, and the
    /// buyer goes on over a new connection.
    func lost(_ reason: String) {
        guard !isFinished, !isRetired else { return }
        if inFlight && state.options.history != nil { state.history.unanswered(uri: uri, client: user, invoke: invokedAt) }
        inFlight = false
        state.error(reason.hasPrefix("error:") ? "connection_error" : reason)  // (the error's text varies by socket call)
        isRetired = true
        state.handlers.removeAll { $0 === self }
        context?.close(promise: nil)
        state.reconnect(self)
    }

    /// Takes over the buyer of a broken connection.
    func takeOver(from old: LoadHandler) {
        user = old.user
        item = old.item
        code = old.code
        endpoint = old.endpoint
        drill = old.drill
        drill.backoffSeconds = min(1.0, drill.backoffSeconds * 2)
    }

    /// Goes on where the broken connection stopped: its pending request again, or the next one.
    func resume() {
        if let pending = drill.pending {
            if gaveUp() { return drillNext() }
            send(pending)
        } else {
            drillNext()
        }
    }
}
