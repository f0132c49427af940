import AdapterSupport
import Adapters
import Engine
import Logging
import PostgresAdapter
import RedisAdapter

/// The one place that decides which stores the server runs on.
///
/// - No `DATABASE_URL`: the embedded default, both stores in this process's memory. Nothing is
///   durable and the server says so loudly.
/// - `DATABASE_URL` and `REDIS_URL`: PostgreSQL (durable store, migrations applied at start) and
///   Redis (hot store). Both must answer at start, or the server refuses to start.
struct WiredStores: Sendable {
    let stores: Stores
    /// True when purchases survive a restart of this process.
    let durable: Bool
    /// A short description for logs and `GET /health` (never contains credentials).
    let mode: String
    /// Releases connections; called once at shutdown.
    let close: @Sendable () async -> Void
}

enum StoreWiring {
    /// - Parameter hotStoreClock: the clock the hot store's reads report and purchase deadlines are
    ///   judged by. nil in production: Redis's own `TIME`, and the wall clock for the in-memory
    ///   store. Tests that move time by hand pass their clock, which a real Redis cannot follow.
    static func connect(_ config: ServerConfiguration, logger: Logger, hotStoreClock: (@Sendable () -> Instant)? = nil)
        async throws(ConfigurationError) -> WiredStores {
        guard let databaseURL = config.databaseURL, let redisURL = config.redisURL else {
            logger.warning(
                """
                ************************************************************************
                NO DATABASE_URL: running on the in-memory store. NOTHING IS DURABLE:
                every hold, code and purchase is lost when this process stops, and
                instances cannot share state. Set DATABASE_URL and REDIS_URL for production.
                ************************************************************************
                """)
            let memory = InMemoryStores(clock: hotStoreClock ?? WallClock.now)
            return WiredStores(stores: memory.stores, durable: false, mode: "in-memory (not durable)", close: {})
        }

        // Schema first: plain SQL files applied in order and recorded, under an advisory lock so
        // that instances starting together apply each file once.
        let applied: [String]
        do {
            applied = try Migrator.apply(directory: config.migrationsDirectory, connectionString: databaseURL)
        } catch {
            throw ConfigurationError("PostgreSQL (DATABASE_URL): could not apply the migrations in '\(config.migrationsDirectory)': \(error.description)")
        }
        logger.notice("migrations", metadata: ["applied": "\(applied.isEmpty ? "none (schema up to date)" : applied.joined(separator: ", "))"])

        let durable = PostgresDurableStore(url: databaseURL, settings: PoolSettings(connections: config.postgresConnections))
        // Hot records must outlive every sale they belong to (sale, hold and skew), with a margin.
        let rules = config.rules
        let lifetime = rules.saleLength + rules.holdTTL + rules.clockSkewAllowance * 2
        let recordTTLSeconds = max(2 * 86_400, Int(lifetime.microseconds / 1_000_000) + 86_400)
        let hot = RedisHotStore(
            url: redisURL, settings: PoolSettings(connections: config.redisConnections), recordTTLSeconds: recordTTLSeconds,
            clock: hotStoreClock)
        let wired = WiredStores(
            stores: Stores(hot: hot, durable: durable), durable: true, mode: "postgresql + redis",
            close: {
                hot.shutdown()
                durable.shutdown()
            })

        // Both stores must answer now: a typo in a URL is a start-up error, not a stream of 503s.
        do {
            _ = try await hot.read(HotRead(keys: []))
        } catch {
            await wired.close()
            throw ConfigurationError("Redis (REDIS_URL): no answer from the hot store (\(error)); is it running and is the URL right?")
        }
        do {
            _ = try await durable.query(.purchases(sale: SaleID(0), user: UserID(unchecked: "_startup")))
        } catch {
            await wired.close()
            throw ConfigurationError("PostgreSQL (DATABASE_URL): no answer from the durable store (\(error))")
        }
        logger.notice("stores: PostgreSQL (durable) and Redis (hot) connected")
        return wired
    }
}
