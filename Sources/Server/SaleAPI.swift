import Adapters
import Engine
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// The handlers: each one parses with the engine's parsers, runs the engine (through the
/// `RequestDriver` or a raw store read interpreted by `StatusRules`), and renders the answer.
/// No business rule lives here.
final class SaleAPI: Sendable {
    let driver: RequestDriver
    /// The hot generation PostgreSQL last confirmed to the read endpoints (`StatusRules.afterRead`).
    let confirmedGeneration = ConfirmedGeneration()
    let rules: SaleRules
    let calendar: SaleCalendar
    let catalog: Catalog
    let clock: @Sendable () -> Instant
    let metrics: ServerMetrics
    let wired: WiredStores
    let summaries: SummaryCache
    let limiter: ClientLimiter
    let proxies: TrustedProxies
    let identity: IdentityVerifier
    /// Whether a shutdown is draining this instance (`/health` then answers `503 draining`).
    let drain = DrainState()
    /// When the hot store's generation last changed, for the live page.
    let generations = GenerationWatch()
    /// When this instance started, for the live page.
    let startedAt = WallClock.now()
    /// Set once the warning about an untrusted `X-Forwarded-For` has been logged.
    let warnedAboutForwardedFor = Atomic(false)

    init(wired: WiredStores, rules: SaleRules, clock: @escaping @Sendable () -> Instant, metrics: ServerMetrics,
         summaryTTL: Duration, limiter: ClientLimiter, proxies: TrustedProxies, identity: IdentityVerifier) {
        self.driver = RequestDriver(stores: InstrumentedStores(base: wired.stores, metrics: metrics), rules: rules, clock: clock, onNote: metrics.instanceNote)
        self.rules = rules
        self.calendar = SaleCalendar(saleLength: rules.saleLength)
        self.catalog = Catalog(seed: rules.catalogSeed)
        self.clock = clock
        self.metrics = metrics
        self.wired = wired
        self.limiter = limiter
        self.proxies = proxies
        self.identity = identity
        self.summaries = SummaryCache(ttl: TimeSpan(summaryTTL))
    }

    var stores: any StorePort { driver.stores }

    /// Runs a route that takes no query parameters, after refusing any (as the POST routes do).
    func withoutParameters(
        _ request: Request, _ context: SaleRequestContext, _ handler: (SaleRequestContext) async -> Response
    ) async -> Response {
        do { _ = try query(request) } catch { return fail(error, context) }
        return await handler(context)
    }

    /// Records the outcome for logs and metrics and renders the error.
    func fail(_ error: APIError, _ context: SaleRequestContext) -> Response {
        context.outcome.set(error.code)
        // After a body that was not (fully) read, the connection cannot carry another request.
        let ends = error == .requestTooLarge || error == .incompleteRequest
        return .error(error, headers: ends ? [.connection: "close"] : [:])
    }

    func ok(_ body: JSON, _ context: SaleRequestContext, outcome: String = "ok") -> Response {
        context.outcome.set(outcome)
        return .json(body)
    }

    // MARK: - Parameters, checked the same way on every route

    /// The query of a route that takes the parameters `allowed`: unknown or repeated names, bad
    /// escapes and oversized queries are the same `400`s as on `/checkout` and `/purchase`.
    func query(_ request: Request, allowed: Set<String> = []) throws(APIError) -> QueryParameters {
        try QueryParameters.parse(request.uri.query ?? "", allowed: allowed)
    }

    /// A path parameter, percent-decoded as a query value is (`/users/al%69ce` is alice).
    func pathParameter(_ name: String, _ context: SaleRequestContext) throws(APIError) -> String? {
        guard let raw = context.parameters.get(name) else { return nil }
        return try QueryParameters.decodePathSegment(raw)
    }

    // MARK: - POST /checkout

    /// Reads (and drops) the body no endpoint uses, so that a request cut off before its declared
    /// end is refused instead of acted on; a body over the limit, however it is framed
    /// (`Content-Length` is refused earlier, chunked here), is `413`.
    func awaitCompleteRequest(_ request: Request) async -> APIError? {
        // No body declared (no Transfer-Encoding, no or a zero Content-Length): the request was
        // complete with its head (RFC 9112 §6.3), so there is nothing to wait for.
        if request.headers[.transferEncoding] == nil, request.headers[.contentLength].map({ Int($0) == 0 }) ?? true {
            return nil
        }
        do {
            _ = try await request.body.collect(upTo: ServerLimits.maxBodyBytes)
            return nil
        } catch is NIOTooManyBytesError {
            return .requestTooLarge
        } catch {
            return .incompleteRequest
        }
    }

    func checkout(_ request: Request, _ context: SaleRequestContext) async -> Response {
        let parsed: CheckoutRequest
        do { parsed = try CheckoutRequest.parse(query: request.uri.query ?? "", rules: rules) } catch { return fail(error, context) }
        if let incomplete = await awaitCompleteRequest(request) { return fail(incomplete, context) }
        let verified: UserID?
        switch proveUser(parsed.user, request, context) {
        case .success(let user): verified = user
        case .failure(let refusal): return refusal.response
        }
        let client = verified.map(ClientLimits.Client.user) ?? client(of: request, context)
        let ticket: ClientLimits.Ticket
        switch limiter.admitCheckout(client, now: clock()) {
        case .success(let admitted): ticket = admitted
        case .failure(let refusal):
            context.outcome.set(refusal.error.code)
            return refusal.response
        }
        let answer = await driver.checkout(parsed)
        var held: ClientLimits.Hold?
        if case .held(let hold) = answer {
            held = ClientLimits.Hold(sale: hold.sale, item: hold.item, liveUntil: hold.expiresAt + rules.clockSkewAllowance)
        }
        limiter.settle(ticket, hold: held, now: clock())
        switch answer {
        case .held(let hold):
            return ok(
                .object([
                    ("code", .string(hold.code.text)), ("sale_id", .int(hold.sale.rawValue)), ("item_id", .int(hold.item.rawValue)),
                    ("expires_at", .string(RFC3339.format(hold.expiresAt))),
                ]), context, outcome: "held")
        case .refused(let outcome):
            return fail(APIError.refusal(outcome) ?? .internalError, context)
        case .unavailable:
            return fail(.unavailable, context)
        case .clockUnsafe:
            return fail(.clockUnsafe, context)
        }
    }

    // MARK: - Who the client is

    /// The client the per-client limits count against: the connection's peer address, or the
    /// address a trusted proxy forwarded (`X-Forwarded-For`, only from `TRUSTED_PROXIES`).
    func client(of request: Request, _ context: SaleRequestContext) -> ClientLimits.Client {
        let peer = context.peerAddress
        let trusted = peer.map(proxies.contains) ?? false
        if !trusted, !warnedAboutForwardedFor.load(ordering: .relaxed), request.headers[Self.forwardedFor] != nil,
            warnedAboutForwardedFor.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
        {
            // Behind a proxy that is not in TRUSTED_PROXIES every client shares the proxy's limits.
            context.logger.warning(
                """
                X-Forwarded-For came from a peer not in TRUSTED_PROXIES and is ignored: if this is your proxy or balancer, \
                every client behind it shares one client's abuse limits; list it in TRUSTED_PROXIES (logged once)
                """,
                metadata: ["peer": "\(peer?.description ?? "unknown")"])
        }
        let forwarded = trusted ? request.headers[values: Self.forwardedFor] : []
        guard let address = proxies.clientAddress(peer: peer, forwardedFor: forwarded) else { return .address("unknown") }
        return .address(address.description)
    }

    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!  // a valid literal name

    /// A `401` answer, recorded for logs and metrics.
    struct IdentityRefusal: Error {
        let response: Response
    }

    /// In `signed` and `gateway` modes, the request's proof must name `user`: the verified user,
    /// or the `401` to answer. In `trust` mode nil (nothing is verified).
    func proveUser(_ user: UserID, _ request: Request, _ context: SaleRequestContext) -> Result<UserID?, IdentityRefusal> {
        let error: APIError
        switch identity.verifiedUser(request, peer: context.peerAddress, now: clock()) {
        case .success(nil): return .success(nil)
        case .success(let proven?) where proven == user: return .success(proven)
        case .success: error = .identityMismatch
        case .failure(let refused): error = refused
        }
        context.outcome.set(error.code)
        return .failure(IdentityRefusal(response: identity.refusal(error)))
    }

    // MARK: - POST /purchase

    func purchase(_ request: Request, _ context: SaleRequestContext) async -> Response {
        let code: Code
        do { code = try Code.parse(query: request.uri.query ?? "") } catch { return fail(error, context) }
        if let incomplete = await awaitCompleteRequest(request) { return fail(incomplete, context) }
        switch await driver.purchase(code) {
        case .purchased(let purchase):
            // The code is the proof of a purchase; the client that held it is its user once identity is on.
            let client = identity.isOn ? .user(purchase.user) : client(of: request, context)
            limiter.release(client, sale: purchase.sale, item: purchase.item)
            return ok(
                .object([
                    ("status", .string("success")), ("sale_id", .int(purchase.sale.rawValue)), ("item_id", .int(purchase.item.rawValue)),
                    ("user_id", .string(purchase.user.rawValue)), ("purchased_at", .string(RFC3339.format(purchase.purchasedAt))),
                ]), context, outcome: "purchased")
        case .unknownCode: return fail(.unknownCode, context)
        case .codeExpired: return fail(.codeExpired, context)
        case .unavailable: return fail(.unavailable, context)
        }
    }

    // MARK: - GET /sale

    func currentSale(_ context: SaleRequestContext) async -> Response {
        let now = clock()
        guard let (summary, asOf) = await summary(now: now) else { return fail(.unavailable, context) }
        return ok(
            .object([
                ("sale_id", .int(summary.sale.rawValue)), ("starts_at", .string(RFC3339.format(summary.startsAt))),
                ("ends_at", .string(RFC3339.format(summary.endsAt))),
                ("items", .object([("total", .int(summary.total)), ("sold", .int(summary.sold)), ("held", .int(summary.held))])),
                ("as_of", .string(RFC3339.format(asOf))),
            ]), context)
    }

    /// The current sale's summary, at most the cache's TTL old; nil when the hot store cannot answer.
    func summary(now: Instant) async -> (SaleSummary, Instant)? {
        await board(now: now).map { ($0.0.summary, $0.1) }
    }

    /// The current sale's board (summary, item grid, sell-out time), at most the cache's TTL old;
    /// nil when the hot store cannot answer. Concurrent requests that find the cache stale share
    /// one refresh (it reads every item, in bounded reads).
    func board(now: Instant) async -> (SaleBoard, Instant)? {
        let sale = calendar.sale(at: now)
        switch summaries.lookup(sale: sale, now: now, refresh: { [self] in
            for _ in 0..<2 {  // a rebuild between two of the reads: read them all again, once
                var snapshots: [HotSnapshot] = []
                for read in StatusRules.summaryReads(sale: sale, rules: rules) {
                    guard let snapshot = await hotRead(read) else { return nil }
                    snapshots.append(snapshot)
                }
                if let board = SaleBoard.make(sale: sale, rules: rules, snapshots: snapshots, now: now) {
                    metrics.update(summary: board.summary)
                    return (board, now)
                }
            }
            return nil
        }) {
        case .fresh(let board, let at): return (board, at)
        case .refreshing(let task): return await task.value
        }
    }

    /// A raw hot read; when the hot store lost its data, rebuilds it and retries once
    /// (`StatusRules.afterRead`, which the simulator follows too).
    func hotRead(_ read: HotRead) async -> HotSnapshot? {
        var rebuilt = false
        while true {
            var step = StatusRules.afterRead(await stores.execute(.hotRead(read)), rebuiltAlready: rebuilt, confirmed: confirmedGeneration.value)
            if case .confirmGeneration(let snapshot) = step {
                step = StatusRules.afterGenerationCheck(await stores.execute(.durableQuery(.generation)), of: snapshot, rebuiltAlready: rebuilt)
                if case .use = step { confirmedGeneration.value = snapshot.generation }
            }
            switch step {
            case .use(let snapshot):
                return snapshot
            case .confirmGeneration:
                return nil
            case .rebuildThenRead:
                metrics.rebuilds.increment()
                _ = await driver.rebuild()
                rebuilt = true
            case .unavailable:
                return nil
            }
        }
    }

    // MARK: - GET /sales/{sale}/items/{item}

    func itemPath(_ context: SaleRequestContext) -> Result<(SaleID, ItemID), APIError> {
        do {
            guard let sale = try pathParameter("sale", context).flatMap(parseSaleID) else { return .failure(.invalidSaleID) }
            guard let item = try pathParameter("item", context).flatMap({ CheckoutRequest.parseItem($0, rules: rules) }) else {
                return .failure(.invalidItemIDPath)
            }
            return .success((sale, item))
        } catch {
            return .failure(error)
        }
    }

    func item(_ context: SaleRequestContext) async -> Response {
        let sale: SaleID, item: ItemID
        switch itemPath(context) {
        case .success(let ids): (sale, item) = ids
        case .failure(let error): return fail(error, context)
        }
        let now = clock()
        guard let snapshot = await hotRead(HotRead(keys: [.item(sale, item)])), let record = snapshot.records.first else {
            return fail(.unavailable, context)
        }
        let status = StatusRules.status(of: record.itemRecord, now: now)
        var body: [(String, JSON)] = [
            ("sale_id", .int(sale.rawValue)), ("item_id", .int(item.rawValue)), ("name", .string(catalog.name(sale: sale, item: item))),
            ("image_url", .string("/sales/\(sale.rawValue)/items/\(item.rawValue)/image.svg")), ("status", .string(status.name)),
        ]
        if case .held(let until) = status { body.append(("held_until", .string(RFC3339.format(until)))) }
        return ok(.object(body), context)
    }

    // MARK: - GET /sales/{sale}/items/{item}/image.svg

    func image(_ context: SaleRequestContext) -> Response {
        let sale: SaleID, item: ItemID
        switch itemPath(context) {
        case .success(let ids): (sale, item) = ids
        case .failure(let error): return fail(error, context)
        }
        context.outcome.set("ok")
        var headers = HTTPFields()
        headers[.contentType] = "image/svg+xml"
        headers[.cacheControl] = "public, max-age=86400, immutable"
        return Response(
            status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: catalog.imageSVG(sale: sale, item: item))))
    }

    // MARK: - GET /users/{user}/purchases?sale=

    func purchases(_ request: Request, _ context: SaleRequestContext) async -> Response {
        let user: UserID
        do {
            guard let parsed = try pathParameter("user", context).flatMap({ UserID.parse($0) }) else {
                return fail(.invalidUserIDPath, context)
            }
            user = parsed
        } catch {
            return fail(error, context)
        }
        let sale: SaleID
        do {
            let params = try query(request, allowed: ["sale"])
            if let raw = params["sale"] {
                guard let parsed = parseSaleID(raw) else { return fail(.invalidSaleID, context) }
                sale = parsed
            } else {
                sale = calendar.sale(at: clock())
            }
        } catch {
            return fail(error, context)
        }
        if case .failure(let refusal) = proveUser(user, request, context) { return refusal.response }
        guard case .durableQuery(.purchases(let purchases)) = await stores.execute(.durableQuery(.purchases(sale: sale, user: user)))
        else { return fail(.unavailable, context) }
        let items: [JSON] = purchases.sorted { $0.item < $1.item }.map { purchase in
            .object([
                ("item_id", .int(purchase.item.rawValue)), ("name", .string(catalog.name(sale: purchase.sale, item: purchase.item))),
                ("purchased_at", .string(RFC3339.format(purchase.purchasedAt))),
            ])
        }
        return ok(
            .object([("user_id", .string(user.rawValue)), ("sale_id", .int(sale.rawValue)), ("purchases", .array(items))]), context)
    }

    // MARK: - GET /health

    func health(_ context: SaleRequestContext) async -> Response {
        let report = await healthReport()
        var body = report.fields
        if report.ready {
            return ok(.object(body), context)
        }
        let error = report.refusal
        body.append(("error", .object([("code", .string(error.code)), ("message", .string(error.message))])))
        context.outcome.set(error.code)
        return .json(.object(body), status: .serviceUnavailable)
    }

    // MARK: - GET /metrics

    func metricsText(_ context: SaleRequestContext) async -> Response {
        _ = await summary(now: clock())  // refreshes the sale gauges (cached)
        context.outcome.set("ok")
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
    }
}

/// The last sale board (summary and item grid), reused for a short while: it reads every item of the sale.
final class SummaryCache: Sendable {
    typealias Refresh = Task<(SaleBoard, Instant)?, Never>

    enum Lookup {
        case fresh(SaleBoard, Instant)
        case refreshing(Refresh)
    }

    struct State {
        var entry: (board: SaleBoard, at: Instant)?
        var inFlight: (sale: SaleID, task: Refresh)?
    }

    let ttl: TimeSpan
    private let state = Mutex(State())

    init(ttl: TimeSpan) { self.ttl = ttl }

    /// The cached board when fresh; otherwise the refresh in flight for this sale, or a new one
    /// running `refresh` (whose result becomes the cached entry).
    func lookup(sale: SaleID, now: Instant, refresh: @escaping @Sendable () async -> (SaleBoard, Instant)?) -> Lookup {
        state.withLock { state in
            if let entry = state.entry, entry.board.summary.sale == sale, !(now < entry.at), now - entry.at < ttl {
                return .fresh(entry.board, entry.at)
            }
            if let inFlight = state.inFlight, inFlight.sale == sale { return .refreshing(inFlight.task) }
            let task = Refresh { [self] in
                let result = await refresh()
                self.state.withLock { state in
                    if let result { state.entry = (result.0, result.1) }
                    if state.inFlight?.sale == sale { state.inFlight = nil }
                }
                return result
            }
            state.inFlight = (sale, task)
            return .refreshing(task)
        }
    }
}
