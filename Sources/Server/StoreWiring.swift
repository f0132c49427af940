import Adapters
import Engine
import Logging

/// The one place that decides which stores the server runs on.
///
/// - No `DATABASE_URL`: the embedded default, both stores in this process's memory. Nothing is
///   durable and the server says so loudly.
/// - `DATABASE_URL` and `REDIS_URL`: PostgreSQL and Redis. Until the adapters land in this
///   branch, that is a start-up error: the server never falls back to memory silently.
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
    static func connect(_ config: ServerConfiguration, logger: Logger) async throws(ConfigurationError) -> WiredStores {
        guard config.databaseURL != nil || config.redisURL != nil else {
            logger.warning(
                """
                ************************************************************************
                NO DATABASE_URL: running on the in-memory store. NOTHING IS DURABLE:
                every hold, code and purchase is lost when this process stops, and
                instances cannot share state. Set DATABASE_URL and REDIS_URL for production.
                ************************************************************************
                """)
            let memory = InMemoryStores()
            return WiredStores(stores: memory.stores, durable: false, mode: "in-memory (not durable)", close: {})
        }
        throw ConfigurationError(
            "DATABASE_URL/REDIS_URL are set, but this build has no PostgreSQL/Redis adapters yet (not supported yet); "
                + "unset both to run on the in-memory store")
    }
}
