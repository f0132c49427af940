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
            Every option can also be set by its environment variable (in brackets); an option given on the \
            command line overrides the variable. With no DATABASE_URL the server runs on the in-memory store \
            and nothing is durable. IDENTITY_SECRET is read from the environment only. The same list, as a \
            table: docs/server.md, "Configuration".
            """)

    // One option per flag of `ServerSetting.all`, named and explained by its declaration; `flags` below pairs each
    // with its setting (ServerSettingsTests checks that every declared flag is here and reaches its setting).
    @Option(name: .setting(.host), help: .setting(.host)) var host: String?
    @Option(name: .setting(.port), help: .setting(.port)) var port: String?
    @Option(name: .setting(.databaseURL), help: .setting(.databaseURL)) var databaseURL: String?
    @Option(name: .setting(.redisURL), help: .setting(.redisURL)) var redisURL: String?
    @Option(name: .setting(.migrationsDirectory), help: .setting(.migrationsDirectory)) var migrationsDirectory: String?
    @Option(name: .setting(.saleItems), help: .setting(.saleItems)) var saleItems: String?
    @Option(name: .setting(.saleLength), help: .setting(.saleLength)) var saleLength: String?
    @Option(name: .setting(.userLimit), help: .setting(.userLimit)) var userLimit: String?
    @Option(name: .setting(.holdTTL), help: .setting(.holdTTL)) var holdTTL: String?
    @Option(name: .setting(.catalogSeed), help: .setting(.catalogSeed)) var catalogSeed: String?
    @Option(name: .setting(.logLevel), help: .setting(.logLevel)) var logLevel: String?
    @Option(name: .setting(.clockSkewAllowance), help: .setting(.clockSkewAllowance)) var clockSkewAllowance: String?
    @Option(name: .setting(.postgresConnections), help: .setting(.postgresConnections)) var postgresConnections: String?
    @Option(name: .setting(.redisConnections), help: .setting(.redisConnections)) var redisConnections: String?
    @Option(name: .setting(.clientCheckoutRate), help: .setting(.clientCheckoutRate)) var clientCheckoutRate: String?
    @Option(name: .setting(.clientCheckoutBurst), help: .setting(.clientCheckoutBurst)) var clientCheckoutBurst: String?
    @Option(name: .setting(.clientMaxHolds), help: .setting(.clientMaxHolds)) var clientMaxHolds: String?
    @Option(name: .setting(.trustedProxies), help: .setting(.trustedProxies)) var trustedProxies: String?
    @Option(name: .setting(.identityMode), help: .setting(.identityMode)) var identityMode: String?
    @Option(name: .setting(.identityHeader), help: .setting(.identityHeader)) var identityHeader: String?
    @Option(name: .setting(.shutdownGrace), help: .setting(.shutdownGrace)) var shutdownGrace: String?
    @Option(name: .setting(.shutdownDrain), help: .setting(.shutdownDrain)) var shutdownDrain: String?

    /// The flags given, by their settings' environment variables.
    var flags: ServerConfiguration.Flags {
        let given: [(ServerSetting, String?)] = [
            (.host, host), (.port, port), (.databaseURL, databaseURL), (.redisURL, redisURL), (.migrationsDirectory,
            migrationsDirectory), (.saleItems, saleItems), (.saleLength, saleLength), (.userLimit, userLimit), (.holdTTL, holdTTL),
            (.catalogSeed, catalogSeed), (.logLevel, logLevel), (.clockSkewAllowance, clockSkewAllowance), (.postgresConnections,
            postgresConnections), (.redisConnections, redisConnections), (.clientCheckoutRate, clientCheckoutRate),
            (.clientCheckoutBurst, clientCheckoutBurst), (.clientMaxHolds, clientMaxHolds), (.trustedProxies, trustedProxies),
            (.identityMode, identityMode), (.identityHeader, identityHeader), (.shutdownGrace, shutdownGrace), (.shutdownDrain,
            shutdownDrain)
        ]
        var flags: ServerConfiguration.Flags = [:]
        for (setting, value) in given { if let value { flags[setting.variable] = value } }
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

extension NameSpecification {
    /// The long flag a setting declares.
    static func setting(_ setting: ServerSetting) -> NameSpecification { .customLong(setting.flag ?? setting.variable) }
}

extension ArgumentHelp {
    /// The help line a setting declares.
    static func setting(_ setting: ServerSetting) -> ArgumentHelp { ArgumentHelp(setting.help) }
}
