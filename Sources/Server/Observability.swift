import Adapters
import Engine
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Prometheus
import Synchronization

/// The request context: Hummingbird's core storage plus a box in which the handler leaves the
/// request's outcome (an error code, or "ok") for the logging and metrics middleware.
struct SaleRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let outcome = OutcomeBox()
    /// The connection's peer (a client, or a proxy in front of it).
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The peer's IP address, nil for a peer that has none (a Unix socket).
    var peerAddress: IPAddress? { remoteAddress?.ipAddress.flatMap { IPAddress($0) } }

    /// Requests never carry bodies we decode.
    var maxUploadSize: Int { ServerLimits.maxBodyBytes }
}

final class OutcomeBox: Sendable {
    private let value = Mutex<String?>(nil)
    func set(_ outcome: String) { value.withLock { $0 = outcome } }
    func get() -> String? { value.withLock { $0 } }
}

enum ServerLimits {
    /// The longest request target (path and query) accepted; longer is `400 request_too_large`.
    /// The engine's own limit on the query (2 KiB) is lower, so its precise code answers first.
    static let maxTargetBytes = 16 * 1024
    /// No endpoint takes a body; a larger one than this is refused.
    static let maxBodyBytes = 64 * 1024
    /// The HTTP decoder's limit on the request head; beyond it the connection is answered with a
    /// bare `400` by the HTTP layer, before any route runs.
    static let maxHeadBytes = 64 * 1024
    /// The most header fields in one request.
    static let maxHeaderFields = 100
}

/// Every metric of one server instance, in its own Prometheus registry, made directly in the
/// registry so that every family has a `# HELP` line. Every series that does not depend on what
/// clients send exists from the start, at zero, so alert rules always have something to match.
final class ServerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let itemsHeld: Gauge
    let itemsSold: Gauge
    let items: Gauge
    let currentSale: Gauge
    let rebuilds: Counter
    let reconciled: Counter
    let guessesCommitted: Counter
    let guessesRefused: Counter
    let invariantViolations: Counter
    let clientLimitRefusals: [ClientLimits.Refusal: Counter]
    let clientLimitsTracked: Gauge
    let clientLimitsUntracked: Counter
    let clockOffsetSeconds: Gauge
    let reconcileRuns: [String: Counter]
    let storeErrors: [StoreErrorLabels: Counter]
    /// The last minutes' requests per second, for the live page.
    let rates = RequestRates()

    /// The help text of every family, by name (also what the conventions test checks).
    static let help: [String: String] = [
        "http_requests_total": "HTTP requests answered, by route template, method, status and outcome (error code or ok).",
        "http_request_duration_seconds": "Time from a request's head to its answer, by route template and outcome.",
        "sale_items": "Items in the current sale.",
        "sale_items_sold": "Items of the current sale sold (at most 1 s old).",
        "sale_items_held": "Items of the current sale held by an unexpired checkout (at most 1 s old).",
        "sale_current_id": "The id of the current sale.",
        "sale_store_errors_total": "Store calls that failed, by store (hot, durable), operation and kind (timeout, unavailable).",
        "sale_reconcile_runs_total": "Background reconcile passes, by result (ok, failed).",
        "sale_reconciled_purchases_total": "Purchases the reconcile pass rolled forward after a crash left them half done.",
        "sale_hot_store_rebuilds_total": "Rebuilds of the hot store from the durable store started by this instance.",
        "sale_invariant_violations_total": "Requests whose engine machine met a state its protocol rules out (a bug; each is logged as an error).",
        "sale_guessed_commits_total": "Checkouts and purchases that committed on what this instance remembered, by result (committed, refused).",
        "sale_client_limit_refusals_total": "Checkouts refused by the per-client abuse limits, by reason (rate_limited, too_many_holds).",
        "sale_client_limit_tracked_clients": "Clients the per-client limiter currently remembers.",
        "sale_client_limit_untracked_total": "Checkouts let through untracked because the limiter's table was full.",
        "sale_clock_offset_seconds": "This instance's clock minus Redis's, as /health last measured it; past 3/4 of the skew allowance checkouts answer clock_unsafe.",
    ]

    /// A family's name and help (the full name as the metric name, so the registry adds nothing).
    static func descriptor(_ name: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help[name] ?? "")
    }

    /// The labels of one store-error series.
    struct StoreErrorLabels: Hashable {
        let store: String
        let operation: String
        let kind: String
    }

    static let storeOperations: [(store: String, operations: [String])] = [
        ("hot", ["read", "commit", "install"]), ("durable", ["write", "query", "bump_generation"]),
    ]

    static let durationBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        func counter(_ name: String, _ labels: [(String, String)] = []) -> Counter {
            registry.makeCounter(descriptor: Self.descriptor(name), labels: labels)
        }
        func gauge(_ name: String) -> Gauge {
            registry.makeGauge(descriptor: Self.descriptor(name), labels: [])
        }
        items = gauge("sale_items")
        itemsSold = gauge("sale_items_sold")
        itemsHeld = gauge("sale_items_held")
        currentSale = gauge("sale_current_id")
        rebuilds = counter("sale_hot_store_rebuilds_total")
        reconciled = counter("sale_reconciled_purchases_total")
        guessesCommitted = counter("sale_guessed_commits_total", [("result", "committed")])
        guessesRefused = counter("sale_guessed_commits_total", [("result", "refused")])
        invariantViolations = counter("sale_invariant_violations_total")
        clientLimitRefusals = Dictionary(uniqueKeysWithValues: ClientLimits.Refusal.allCases.map { reason in
            (reason, counter("sale_client_limit_refusals_total", [("reason", reason.rawValue)]))
        })
        clientLimitsTracked = gauge("sale_client_limit_tracked_clients")
        clientLimitsUntracked = counter("sale_client_limit_untracked_total")
        clockOffsetSeconds = gauge("sale_clock_offset_seconds")
        reconcileRuns = Dictionary(uniqueKeysWithValues: ["ok", "failed"].map { result in
            (result, counter("sale_reconcile_runs_total", [("result", result)]))
        })
        var storeErrors: [StoreErrorLabels: Counter] = [:]
        for (store, operations) in Self.storeOperations {
            for operation in operations {
                for kind in ["timeout", "unavailable"] {
                    storeErrors[StoreErrorLabels(store: store, operation: operation, kind: kind)] = counter(
                        "sale_store_errors_total", [("store", store), ("operation", operation), ("kind", kind)])
                }
            }
        }
        self.storeErrors = storeErrors
    }

    /// A checkout refused by the per-client limits.
    func clientLimitRefusal(_ reason: ClientLimits.Refusal) {
        clientLimitRefusals[reason]?.increment()
    }

    /// The labels of one kind of request, the key of its cached counter and histogram.
    struct RequestLabels: Hashable {
        let route: String
        let method: String
        let status: Int
        let outcome: String
    }

    /// Counters and histograms already made, so a request costs one dictionary lookup instead of
    /// the registry's (labels are bounded: known routes, methods, statuses, outcomes).
    private let requestMetrics = Mutex<[RequestLabels: (Counter, DurationHistogram)]>([:])

    func request(route: String, method: String, status: Int, outcome: String, nanoseconds: Int64) {
        let labels = RequestLabels(route: route, method: method, status: status, outcome: outcome)
        let (counter, histogram) = requestMetrics.withLock { cache in
            if let made = cache[labels] { return made }
            let made = (
                registry.makeCounter(
                    descriptor: Self.descriptor("http_requests_total"),
                    labels: [("route", route), ("method", method), ("status", String(status)), ("outcome", outcome)]),
                registry.makeDurationHistogram(
                    descriptor: Self.descriptor("http_request_duration_seconds"), labels: [("route", route), ("outcome", outcome)],
                    buckets: Self.durationBuckets)
            )
            cache[labels] = made
            return made
        }
        counter.increment()
        histogram.recordNanoseconds(nanoseconds)
    }

    func storeError(store: String, operation: String, failure: StoreFailure) {
        let kind = switch failure {
        case .timeout: "timeout"
        case .unavailable: "unavailable"
        }
        storeErrors[StoreErrorLabels(store: store, operation: operation, kind: kind)]?.increment()
    }

    /// A checkout or purchase committed on what this instance remembered (`HotRecordCache`):
    /// taken, or refused because the guess was out of date (the request then read first).
    /// Counts what the instance runtime reports: how commits decided on a guess fared.
    @Sendable func instanceNote(_ note: InstanceNote) {
        switch note {
        case .guessResolved(let committed):
            (committed ? guessesCommitted : guessesRefused).increment()
        case .invariantBroken(let message):
            invariantViolations.increment()
            Logger(label: "sale-server").error("engine invariant broken (the request answered 503): \(message)")
        case .committedOnGuess, .rebuildAwaited, .rebuildFinished:
            break
        }
    }

    /// The offset `/health` measured (nil when the hot store did not tell).
    func clockOffset(_ offset: TimeSpan?) {
        guard let offset else { return }
        clockOffsetSeconds.record(Double(offset.microseconds) / 1_000_000)
    }

    func reconcileRun(_ result: String) {
        reconcileRuns[result]?.increment()
    }

    func update(summary: SaleSummary) {
        itemsHeld.record(Int64(summary.held))
        itemsSold.record(Int64(summary.sold))
        items.record(Int64(summary.total))
        currentSale.record(summary.sale.rawValue)
    }

    /// The Prometheus text exposition.
    func render() -> String {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}

/// Logs every request (id, method, route, status, outcome, duration), counts it and times it,
/// turns every error that escaped a handler into the error shape, and enforces the size limits.
struct ObservabilityMiddleware: RouterMiddleware {
    typealias Context = SaleRequestContext
    let metrics: ServerMetrics
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        // Hummingbird's ids count up from a random start, which tells any client how many
        // requests the server saw in between: replace them with random ones.
        var context = context
        let requestID = RequestIDs.random()
        context.logger[metadataKey: "hb.request.id"] = .string(requestID)
        var response: Response
        var routeLabel: String?
        if request.uri.string.utf8.count > ServerLimits.maxTargetBytes {
            context.outcome.set(APIError.targetTooLong.code)
            response = .error(.targetTooLong, headers: [.connection: "close"])
        } else if (request.headers[.contentLength].flatMap { Int($0) } ?? 0) > ServerLimits.maxBodyBytes {
            // The body is not read: the connection ends after this answer (HTTPEdgeHandler).
            context.outcome.set(APIError.requestTooLarge.code)
            response = .error(.requestTooLarge, headers: [.connection: "close"])
        } else {
            do {
                response = try await next(request, context)
            } catch let error as HTTPError where error.status == .notFound {
                (response, routeLabel) = notFoundOrMethodNotAllowed(request, context)
            } catch let error as any HTTPResponseError {
                // Hummingbird's own errors (none expected on these routes), in the error shape.
                let status = Int(error.status.code)
                let api = (400..<500).contains(status)
                    ? APIError(status: status, code: APIError.badRequest.code, message: error.status.reasonPhrase)
                    : APIError.internalError
                context.outcome.set(api.code)
                response = .error(api)
            } catch {
                context.logger.error("unhandled error", metadata: ["error": "\(error)"])
                context.outcome.set(APIError.internalError.code)
                response = .error(.internalError)
            }
        }
        let elapsed = ContinuousClock.now - start
        let nanoseconds = elapsed.wholeNanoseconds
        let route = routeLabel ?? context.endpointPath.flatMap { $0 == "NotFound" ? nil : $0 } ?? "unmatched"
        let outcome = context.outcome.get() ?? (response.status.code < 400 ? "ok" : "http_\(response.status.code)")
        // Labels stay bounded whatever clients send: known methods only.
        let method = Self.knownMethods.contains(request.method.rawValue) ? request.method.rawValue : "other"
        metrics.request(
            route: route, method: method, status: Int(response.status.code), outcome: outcome, nanoseconds: nanoseconds)
        metrics.rates.record(
            route: route, outcome: outcome, nanoseconds: nanoseconds, timed: routes.isTimed(route),
            second: WallClock.now().microseconds / 1_000_000)
        context.logger.info(
            "request",
            metadata: [
                "method": .string(request.method.rawValue), "route": .string(route), "status": .stringConvertible(response.status.code),
                "outcome": .string(outcome), "duration_ms": .string(String(Double(nanoseconds / 1_000) / 1_000)),
            ])
        response.headers[RequestIDs.header] = requestID
        return response
    }

    /// `405` (with `Allow`) when the path is a route's, `404` otherwise; and the route label.
    static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]

    func notFoundOrMethodNotAllowed(_ request: Request, _ context: Context) -> (Response, String?) {
        if let route = routes.match(path: request.uri.path) {
            context.outcome.set(APIError.methodNotAllowed.code)
            var headers = HTTPFields()
            headers[.allow] = route.allowHeader
            return (.error(.methodNotAllowed, headers: headers), route.template)
        }
        context.outcome.set(APIError.notFound.code)
        return (.error(.notFound), nil)
    }
}

/// Counts the stores' failures, for `sale_store_errors_total`.
struct InstrumentedStores: StorePort {
    let base: any StorePort
    let metrics: ServerMetrics

    func execute(_ call: StoreCall, then complete: @escaping StoreCompletion) {
        base.execute(call) { [metrics] reply in
            if case .failed(let failure) = reply {
                metrics.storeError(store: call.isHot ? "hot" : "durable", operation: call.operationName, failure: failure)
            }
            complete(reply)
        }
    }
}

/// Request ids: 128 random bits (22 URL-safe characters), so they reveal nothing about the
/// server's volume or order, and are unique without coordination between instances.
enum RequestIDs {
    static let header = HTTPField.Name("X-Request-Id")!  // a valid literal name

    static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64URL.encode(generator.next(), generator.next())
    }
}
