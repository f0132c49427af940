import Engine
import Logging

/// Everything the server is configured with (docs/server.md, "Configuration"): the listening address, the stores, the
/// sale rules and the log level. Built from the settings declared in `ServerSetting.all`, each an environment variable
/// and (but for a secret) the equivalent flag; a flag overrides its variable. An empty variable counts as unset. The
/// defaults are this type's initial values (and `SaleRules()`'s).
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

    /// The raw values given as flags, by the setting's environment variable (absent when the flag was not given).
    typealias Flags = [String: String]

    /// Resolves every setting of `ServerSetting.all` from `flags` (by environment-variable name) and `environment`.
    /// - Throws: `ConfigurationError` naming the bad setting and value.
    static func resolve(flags: Flags, environment: [String: String]) throws(ConfigurationError) -> ServerConfiguration {
        var config = ServerConfiguration()
        for setting in ServerSetting.all {
            if let flag = setting.flag, let text = flags[setting.variable] {
                try setting.apply(text, from: "--\(flag)", to: &config)
            } else if let text = environment[setting.variable], !text.isEmpty {
                try setting.apply(text, from: setting.variable, to: &config)
            }
        }
        switch config.identity.mode {
        case .trust:
            break
        case .signed:
            guard config.identity.secret.count >= IdentitySettings.minimumSecretBytes else {
                throw ConfigurationError(
                    "IDENTITY_MODE=signed needs IDENTITY_SECRET (environment only) of at least "
                        + "\(IdentitySettings.minimumSecretBytes) bytes, shared with the storefront that signs user ids")
            }
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
