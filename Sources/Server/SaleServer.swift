import ArgumentParser
import Engine
import Hummingbird
import Logging
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `sale-server`: the production HTTP server of the flash sale (started by `main.swift`).
struct SaleServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sale-server",
        abstract: "Serves the flash-sale HTTP API (docs/spec.md).",
        discussion: """
            Every option can also be set by its environment variable (in brackets); an option given on the
            command line overrides the variable. With no DATABASE_URL the server runs on the in-memory store
            and nothing is durable.
            """)

    @Option(help: "Address to listen on [HOST] (default 0.0.0.0).") var host: String?
    @Option(help: "Port to listen on, 0 for any free port [PORT] (default 8032).") var port: String?
    @Option(help: "PostgreSQL URL [DATABASE_URL]; unset: in-memory, not durable.") var databaseURL: String?
    @Option(help: "Redis URL [REDIS_URL]; required with --database-url.") var redisURL: String?
    @Option(help: "Folder of the SQL migrations applied at start [MIGRATIONS_DIR] (default migrations).")
    var migrationsDir: String?
    @Option(help: "Items per sale [SALE_ITEMS] (default 10000).") var saleItems: String?
    @Option(help: "Sale length in seconds [SALE_LENGTH] (default 3600).") var saleLength: String?
    @Option(help: "Items one user may own per sale [USER_LIMIT] (default 10).") var userLimit: String?
    @Option(help: "How long a checkout holds its item, in seconds [HOLD_TTL] (default 60).") var holdTTL: String?
    @Option(help: "Seed of the generated catalog [CATALOG_SEED] (default 0).") var catalogSeed: String?
    @Option(help: "trace, debug, info, notice, warning, error or critical [LOG_LEVEL] (default info).") var logLevel: String?
    @Option(help: "Largest clock difference between instances, in ms [CLOCK_SKEW_ALLOWANCE_MS] (default 2000).")
    var clockSkewAllowanceMs: String?
    @Option(help: "Connections to PostgreSQL, one thread each [PG_CONNECTIONS] (default 2).") var pgConnections: String?
    @Option(help: "Connections to Redis, one thread each [REDIS_CONNECTIONS] (default 2).") var redisConnections: String?
    @Option(help: "Checkouts per second per client once the burst is spent, 0 = off [CLIENT_CHECKOUT_RATE] (default 10).")
    var clientCheckoutRate: String?
    @Option(help: "Checkouts a quiet client may make at once [CLIENT_CHECKOUT_BURST] (default 40).") var clientCheckoutBurst: String?
    @Option(help: "Unexpired holds per client, 0 = off [CLIENT_MAX_HOLDS] (default max(USER_LIMIT, 1% of SALE_ITEMS)).")
    var clientMaxHolds: String?
    @Option(help: "Proxies whose X-Forwarded-For is believed: addresses or CIDR ranges, comma-separated [TRUSTED_PROXIES] (default none).")
    var trustedProxies: String?
    @Option(help: "Who the user is: trust, signed (X-User-Token; IDENTITY_SECRET from the environment) or gateway [IDENTITY_MODE].")
    var identityMode: String?
    @Option(help: "The header a trusted gateway names the user in [IDENTITY_HEADER] (default X-Authenticated-User).")
    var identityHeader: String?
    @Option(help: "Seconds a shutdown lets requests in flight finish before cutting them [SHUTDOWN_GRACE] (default 10).")
    var shutdownGrace: String?
    @Option(help: "Seconds a shutdown first answers /health 503 draining, for a balancer to stop sending [SHUTDOWN_DRAIN] (default 0).")
    var shutdownDrain: String?

    var flags: ServerConfiguration.Flags {
        var flags: ServerConfiguration.Flags = [:]
        let pairs: [(ServerConfiguration.Setting, String?)] = [
            (ServerConfiguration.host, host), (ServerConfiguration.port, port), (ServerConfiguration.databaseURL, databaseURL),
            (ServerConfiguration.redisURL, redisURL), (ServerConfiguration.migrationsDirectory, migrationsDir),
            (ServerConfiguration.saleItems, saleItems),
            (ServerConfiguration.saleLength, saleLength), (ServerConfiguration.userLimit, userLimit),
            (ServerConfiguration.holdTTL, holdTTL), (ServerConfiguration.catalogSeed, catalogSeed),
            (ServerConfiguration.logLevel, logLevel), (ServerConfiguration.clockSkew, clockSkewAllowanceMs),
            (ServerConfiguration.postgresConnections, pgConnections), (ServerConfiguration.redisConnections, redisConnections),
            (ServerConfiguration.clientCheckoutRate, clientCheckoutRate), (ServerConfiguration.clientCheckoutBurst, clientCheckoutBurst),
            (ServerConfiguration.clientMaxHolds, clientMaxHolds), (ServerConfiguration.trustedProxies, trustedProxies),
            (ServerConfiguration.identityMode, identityMode), (ServerConfiguration.identityHeader, identityHeader),
            (ServerConfiguration.shutdownGrace, shutdownGrace), (ServerConfiguration.shutdownDrain, shutdownDrain),
        ]
        for (setting, value) in pairs { if let value { flags[setting.env] = value } }
        return flags
    }

    func run() async throws {
        try await serve()
    }

    /// Runs the server until SIGTERM or SIGINT. (`main.swift` calls it directly: from top-level
    /// code the compiler picks `ParsableCommand`'s synchronous `run`, which only prints usage.)
    func serve() async throws {
        let config: ServerConfiguration
        do {
            config = try ServerConfiguration.resolve(flags: flags, environment: ProcessInfoEnvironment.current)
        } catch {
            printError("sale-server: configuration error: \(error.message)")
            throw ExitCode(78)  // EX_CONFIG
        }
        LoggingSystem.bootstrap { label in
            var handler = LazyMetadataLogHandler(label: label)
            handler.logLevel = config.logLevel
            return handler
        }
        var logger = Logger(label: "sale-server")
        logger.logLevel = config.logLevel

        let wired: WiredStores
        do {
            wired = try await StoreWiring.connect(config, logger: logger)
        } catch {
            printError("sale-server: store configuration error: \(error.message)")
            throw ExitCode(78)
        }
        let rules = config.rules
        logger.notice(
            "sale-server starting",
            metadata: [
                "address": "\(config.host):\(config.port)", "stores": "\(wired.mode)", "sale_items": "\(rules.itemsPerSale)",
                "sale_length_s": "\(rules.saleLength.seconds)", "user_limit": "\(rules.userLimit)",
                "hold_ttl_s": "\(rules.holdTTL.seconds)", "catalog_seed": "\(rules.catalogSeed)",
                "clock_skew_allowance_ms": "\(rules.clockSkewAllowance.microseconds / 1_000)",
                "client_checkout_rate": "\(config.clientCheckoutRate == 0 ? "off" : "\(config.clientCheckoutRate)/s")",
                "client_checkout_burst": "\(config.clientCheckoutBurst)",
                "client_max_holds": "\(config.clientLimitPolicy.maxLiveHolds == 0 ? "off" : "\(config.clientLimitPolicy.maxLiveHolds)")",
                "trusted_proxies": "\(config.trustedProxies.isEmpty ? "none" : "\(config.trustedProxies.ranges.count) ranges")",
                "identity_mode": "\(config.identity.mode.rawValue)",
            ])
        if config.identity.mode == .trust {
            logger.warning(
                """
                ************************************************************************
                IDENTITY_MODE=trust: user_id is believed as given. ANYONE CAN ACT AS ANY
                USER: check out in their name, use up their limit, read their purchases.
                Per-client limits count addresses only. For a public sale set
                IDENTITY_MODE=signed (with IDENTITY_SECRET) or IDENTITY_MODE=gateway.
                ************************************************************************
                """)
        }
        let startupLogger = logger
        let (app, api) = SaleApplication.make(
            config: config, wired: wired, logger: logger,
            onServerRunning: { port in startupLogger.notice("sale-server listening", metadata: ["port": "\(port)"]) })
        let group = SaleApplication.serviceGroup(
            app: app, config: config, logger: logger, signals: [.sigterm, .sigint], drain: api.drain)
        do {
            try await group.run()  // graceful shutdown on SIGTERM and SIGINT, bounded by SHUTDOWN_GRACE
        } catch {
            await wired.close()
            logger.critical("sale-server stopped on an error", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        await wired.close()
        logger.notice("sale-server stopped")
    }

    func printError(_ message: String) {
        let line = message + "\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
    }
}

/// The process environment, without Foundation.
enum ProcessInfoEnvironment {
    static var current: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                result[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            pointer += 1
        }
        return result
    }
}
