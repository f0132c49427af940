import Adapters
import Engine
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds the HTTP application: router, middleware, handlers and background services.
enum SaleApplication {
    typealias App = Application<RouterResponder<SaleRequestContext>>

    /// - Parameters:
    ///   - clock: the wall clock in production; tests may pass a controllable one.
    ///   - onServerRunning: called with the bound port once the server listens.
    static func make(
        config: ServerConfiguration, wired: WiredStores, logger: Logger,
        clock: @escaping @Sendable () -> Instant = WallClock.now,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> (app: App, api: SaleAPI) {
        let metrics = ServerMetrics()
        let limiter = ClientLimiter(policy: config.clientLimitPolicy, metrics: metrics)
        let api = SaleAPI(
            wired: wired, rules: config.rules, clock: clock, metrics: metrics, summaryTTL: config.summaryCacheTTL, limiter: limiter,
            proxies: config.trustedProxies, identity: IdentityVerifier(settings: config.identity, proxies: config.trustedProxies))
        let router = Router(context: SaleRequestContext.self, options: [.autoGenerateHeadEndpoints])
        router.add(middleware: ObservabilityMiddleware(metrics: metrics, routes: .server))
        router.add(middleware: DrainMiddleware(state: api.drain))
        RouteTable.server.register(on: router, api: api)
        let rejections = EdgeRejections(metrics: metrics, logger: logger)
        let reconcile = ReconcileService(driver: api.driver, interval: config.reconcileInterval, metrics: metrics, logger: logger)
        var app = Application(
            router: router,
            server: HTTPServerBuilder { responder in
                SaleHTTP1Channel(responder: responder, rejections: rejections, idleTimeout: .seconds(75))
            },
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: nil),
            services: [reconcile],
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? config.port) },
            logger: logger
        )
        app.beforeServerStarts {
            // Make sure the hot store has a generation before serving (a fresh or emptied Redis
            // is rebuilt from the durable store); requests would do it anyway, this just does it first.
            if case .hotRead(.uninitialized) = await api.stores.execute(.hotRead(HotRead(keys: []))) {
                logger.notice("hot store has no generation: rebuilding it from the durable store")
                metrics.rebuilds.increment()
                if case .failed = await api.driver.rebuild() {
                    logger.warning("hot store rebuild failed at start-up; requests will retry it")
                }
            }
        }
        return (app, api)
    }
}

extension SaleApplication {
    /// The service group the server runs in (the binary and the tests alike): the application,
    /// and a notice on shutdown. A graceful shutdown (SIGTERM, SIGINT) stops accepting
    /// connections and lets requests in flight finish for at most `SHUTDOWN_GRACE`; then the
    /// group is cancelled, which closes the remaining connections' input, so a stalled upload
    /// cannot hold the process.
    ///
    /// With `SHUTDOWN_DRAIN`, the shutdown first drains (`ShutdownDrain`): services are shut down
    /// in reverse order, one after the other, so the drain (listed after the application) ends
    /// before the application stops accepting.
    static func serviceGroup(
        app: App, config: ServerConfiguration, logger: Logger, signals: [UnixSignal], drain: DrainState
    ) -> ServiceGroup {
        var configuration = ServiceGroupConfiguration(
            services: [
                .init(service: app),
                .init(
                    service: ShutdownDrain(state: drain, delay: config.shutdownDrain, logger: logger),
                    successTerminationBehavior: .ignore),
                .init(service: ShutdownNotice(grace: config.shutdownGrace, logger: logger), successTerminationBehavior: .ignore),
            ],
            gracefulShutdownSignals: signals, logger: logger)
        configuration.maximumGracefulShutdownDuration = config.shutdownDrain + config.shutdownGrace
        configuration.maximumCancellationDuration = .seconds(5)
        return ServiceGroup(configuration: configuration)
    }
}

/// Says, when it happens, that a shutdown began and how long requests in flight have: without
/// it, nothing was logged until the drain ended.
struct ShutdownNotice: Service {
    let grace: Duration
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.notice(
            """
            shutting down: after the drain (if any), no new connections; requests in flight have until the grace ends, \
            then their connections are cut
            """,
            metadata: ["grace_s": "\(grace.components.seconds)"])
    }
}

/// The wall clock, in the engine's units.
enum WallClock {
    @Sendable static func now() -> Instant {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Instant(microseconds: Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1_000)
    }
}
