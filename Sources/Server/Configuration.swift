import Engine
import HTTPTypes
import Logging

/// Everything the server is configured with (docs/spec.md, "Configuration"): the listening address, the stores, the
/// sale rules and the log level. Built from environment variables and the equivalent flags;
/// a flag overrides its variable. An empty variable counts as unset.
struct ServerConfiguration: Sendable, Equatable {
    var host: String = "0.0.0.0"
    var port: Int = 8032
    var databaseURL: String?
    var redisURL: String?
    /// Where the SQL migrations are (applied at start when `DATABASE_URL` is set).
    var migrationsDirectory = "migrations"
    var rules = SaleRules()
    var logLevel: Logger.Level = .info
    /// Connections (each with its own thread) to PostgreSQL and to Redis.
    var postgresConnections = 2
    var redisConnections = 2
    /// How often the background reconcile pass runs.
    var reconcileInterval: Duration = .seconds(5)
    /// How long `GET /sale` and the sale gauges may be stale.
    var summaryCacheTTL: Duration = .seconds(1)
    /// Per-client abuse limits (docs/spec.md, "Identity and abuse"): checkouts per second and burst (rate `0` is off), and
    /// live holds per client (nil: the default share of a sale, `0`: off).
    var clientCheckoutRate = 10
    var clientCheckoutBurst = 40
    var clientMaxHolds: Int?
    /// Addresses of the proxies whose `X-Forwarded-For` (and, in `gateway` mode, user header) is believed.
    var trustedProxies = TrustedProxies()
    /// Who the user of a request is: `trust`, `signed` or `gateway` (docs/spec.md, "Identity and abuse").
    var identity = IdentitySettings()
    /// How long a graceful shutdown waits for requests in flight before cutting their connections.
    var shutdownGrace: Duration = .seconds(10)
    /// How long a shutdown first keeps serving while `/health` answers `503 draining` (so a balancer
    /// takes the instance out of rotation) before it stops accepting connections. 0: no drain.
    var shutdownDrain: Duration = .zero

    /// The limiter's policy for these settings.
    var clientLimitPolicy: ClientLimits.Policy {
        ClientLimits.Policy(
            interval: ClientLimits.Policy.interval(perSecond: clientCheckoutRate), burst: clientCheckoutBurst,
            maxLiveHolds: clientMaxHolds ?? ClientLimits.Policy.defaultMaxLiveHolds(rules: rules))
    }

    /// One setting: its environment variable and its flag.
    struct Setting: Sendable {
        let env: String
        let flag: String
    }

    static let host = Setting(env: "HOST", flag: "--host")
    static let port = Setting(env: "PORT", flag: "--port")
    static let databaseURL = Setting(env: "DATABASE_URL", flag: "--database-url")
    static let redisURL = Setting(env: "REDIS_URL", flag: "--redis-url")
    static let migrationsDirectory = Setting(env: "MIGRATIONS_DIR", flag: "--migrations-dir")
    static let saleItems = Setting(env: "SALE_ITEMS", flag: "--sale-items")
    static let saleLength = Setting(env: "SALE_LENGTH", flag: "--sale-length")
    static let userLimit = Setting(env: "USER_LIMIT", flag: "--user-limit")
    static let holdTTL = Setting(env: "HOLD_TTL", flag: "--hold-ttl")
    static let catalogSeed = Setting(env: "CATALOG_SEED", flag: "--catalog-seed")
    static let logLevel = Setting(env: "LOG_LEVEL", flag: "--log-level")
    static let clockSkew = Setting(env: "CLOCK_SKEW_ALLOWANCE_MS", flag: "--clock-skew-allowance-ms")
    static let postgresConnections = Setting(env: "PG_CONNECTIONS", flag: "--pg-connections")
    static let redisConnections = Setting(env: "REDIS_CONNECTIONS", flag: "--redis-connections")
    static let clientCheckoutRate = Setting(env: "CLIENT_CHECKOUT_RATE", flag: "--client-checkout-rate")
    static let clientCheckoutBurst = Setting(env: "CLIENT_CHECKOUT_BURST", flag: "--client-checkout-burst")
    static let clientMaxHolds = Setting(env: "CLIENT_MAX_HOLDS", flag: "--client-max-holds")
    static let trustedProxies = Setting(env: "TRUSTED_PROXIES", flag: "--trusted-proxies")
    static let identityMode = Setting(env: "IDENTITY_MODE", flag: "--identity-mode")
    static let identityHeader = Setting(env: "IDENTITY_HEADER", flag: "--identity-header")
    static let shutdownGrace = Setting(env: "SHUTDOWN_GRACE", flag: "--shutdown-grace")
    static let shutdownDrain = Setting(env: "SHUTDOWN_DRAIN", flag: "--shutdown-drain")
    /// Environment only: a flag would show the secret to every local user in `ps`.
    static let identitySecret = "IDENTITY_SECRET"

    /// The raw values given as flags, by setting (nil when the flag was not given).
    typealias Flags = [String: String]

    /// Resolves every setting from `flags` (by environment-variable name) and `environment`.
    /// - Throws: `ConfigurationError` naming the bad setting and value.
    static func resolve(flags: Flags, environment: [String: String]) throws(ConfigurationError) -> ServerConfiguration {
        func raw(_ setting: Setting) -> (text: String, source: String)? {
            if let value = flags[setting.env] { return (value, setting.flag) }
            if let value = environment[setting.env], !value.isEmpty { return (value, setting.env) }
            return nil
        }
        func integer(_ setting: Setting, in range: ClosedRange<Int64>, unit: String = "") throws(ConfigurationError) -> Int64? {
            guard let (text, source) = raw(setting) else { return nil }
            guard let value = Int64(text.trimmingSpaces), range.contains(value) else {
                throw ConfigurationError(
                    "\(source) must be an integer\(unit) from \(range.lowerBound) to \(range.upperBound), got '\(text)'")
            }
            return value
        }

        var config = ServerConfiguration()
        if let (text, _) = raw(host) { config.host = text }
        if let value = try integer(port, in: 0...65_535) { config.port = Int(value) }
        config.databaseURL = raw(databaseURL)?.text
        config.redisURL = raw(redisURL)?.text
        if let (text, _) = raw(migrationsDirectory) { config.migrationsDirectory = text }
        if let value = try integer(saleItems, in: 1...10_000_000) { config.rules.itemsPerSale = Int(value) }
        if let value = try integer(saleLength, in: 1...(100 * 365 * 86_400), unit: " (seconds)") {
            config.rules.saleLength = .seconds(value)
        }
        if let value = try integer(userLimit, in: 1...1_000_000) { config.rules.userLimit = Int(value) }
        if let value = try integer(holdTTL, in: 1...(365 * 86_400), unit: " (seconds)") { config.rules.holdTTL = .seconds(value) }
        if let (text, source) = raw(catalogSeed) {
            guard let seed = UInt64(text.trimmingSpaces) else {
                throw ConfigurationError("\(source) must be an unsigned 64-bit integer, got '\(text)'")
            }
            config.rules.catalogSeed = seed
        }
        if let value = try integer(clockSkew, in: 0...3_600_000, unit: " (milliseconds)") {
            config.rules.clockSkewAllowance = .milliseconds(value)
        }
        if let value = try integer(postgresConnections, in: 1...64) { config.postgresConnections = Int(value) }
        if let value = try integer(redisConnections, in: 1...64) { config.redisConnections = Int(value) }
        if let value = try integer(clientCheckoutRate, in: 0...1_000_000, unit: " (checkouts per second, 0 = off)") {
            config.clientCheckoutRate = Int(value)
        }
        if let value = try integer(clientCheckoutBurst, in: 1...1_000_000) { config.clientCheckoutBurst = Int(value) }
        if let value = try integer(clientMaxHolds, in: 0...10_000_000, unit: " (0 = off)") { config.clientMaxHolds = Int(value) }
        if let (text, source) = raw(trustedProxies) {
            do { config.trustedProxies = try TrustedProxies(list: text) } catch { throw ConfigurationError("\(source): \(error.message)") }
        }
        if let (text, source) = raw(logLevel) {
            guard let level = Logger.Level(rawValue: text.trimmingSpaces.lowercased()) else {
                let names = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
                throw ConfigurationError("\(source) must be one of \(names), got '\(text)'")
            }
            config.logLevel = level
        }
        if let value = try integer(shutdownGrace, in: 0...3_600, unit: " (seconds)") { config.shutdownGrace = .seconds(value) }
        if let value = try integer(shutdownDrain, in: 0...3_600, unit: " (seconds)") { config.shutdownDrain = .seconds(value) }
        if let (text, source) = raw(identityMode) {
            guard let mode = IdentityMode(rawValue: text.trimmingSpaces.lowercased()) else {
                throw ConfigurationError("\(source) must be one of trust, signed, gateway, got '\(text)'")
            }
            config.identity.mode = mode
        }
        if let (text, source) = raw(identityHeader) {
            let name = String(text.trimmingSpaces)
            let reserved = ["x-forwarded-for", "host", "x-user-token", "forwarded"]
            guard HTTPField.Name(name) != nil, !reserved.contains(name.lowercased()) else {
                throw ConfigurationError("\(source) must be an HTTP header name of its own, got '\(text)'")
            }
            config.identity.gatewayHeader = name
        }
        switch config.identity.mode {
        case .trust:
            break
        case .signed:
            guard let secret = environment[identitySecret], secret.utf8.count >= IdentitySettings.minimumSecretBytes else {
                throw ConfigurationError(
                    "IDENTITY_MODE=signed needs IDENTITY_SECRET (environment only) of at least "
                        + "\(IdentitySettings.minimumSecretBytes) bytes, shared with the storefront that signs user ids")
            }
            config.identity.secret = Array(secret.utf8)
        case .gateway:
            guard !config.trustedProxies.isEmpty else {
                throw ConfigurationError(
                    "IDENTITY_MODE=gateway needs TRUSTED_PROXIES: the gateway's addresses, the only peers whose user header is believed")
            }
        }
        try config.rules.validate()
        if config.redisURL != nil && config.databaseURL == nil {
            throw ConfigurationError("REDIS_URL is set without DATABASE_URL: the hot store needs the durable store; set both or neither")
        }
        if config.databaseURL != nil && config.redisURL == nil {
            throw ConfigurationError("DATABASE_URL is set without REDIS_URL: set both (PostgreSQL and Redis) or neither (in-memory)")
        }
        return config
    }
}

extension String {
    var trimmingSpaces: Substring {
        var s = self[...]
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}
