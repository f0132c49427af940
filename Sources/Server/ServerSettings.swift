import Engine
import HTTPTypes
import Logging

/// Every setting of `sale-server`, in the order docs/server.md lists them. A new setting is one more
/// declaration here, a field of `ServerConfiguration` and an `@Option` of `SaleServerCommand` named
/// after it (`ServerSettingsTests` fails until all three and the docs' table agree).
extension ServerSetting {
    static let port = ServerSetting("PORT", flag: "port", .integer(0...65_535), into: \.port, meaning: "TCP port; `0` picks a free one")
    static let host = ServerSetting(
        "HOST", flag: "host", .text("an address or host name"), into: \.host, meaning: "address to listen on")
    static let databaseURL = ServerSetting(
        "DATABASE_URL", flag: "database-url", .text("a libpq URL or connection string"), into: \.databaseURL,
        meaning: "PostgreSQL; unset = in-memory, not durable", defaultText: "unset")
    static let redisURL = ServerSetting(
        "REDIS_URL", flag: "redis-url", .text("`redis://host[:port][/db]`"), into: \.redisURL,
        meaning: "Redis; required with `DATABASE_URL` (both or neither)", defaultText: "unset")
    static let migrationsDirectory = ServerSetting(
        "MIGRATIONS_DIR", flag: "migrations-dir", .text("a folder"), into: \.migrationsDirectory,
        meaning: "SQL migrations applied at start (with `DATABASE_URL`)")
    static let saleItems = ServerSetting(
        "SALE_ITEMS", flag: "sale-items", .integer(1...10_000_000), into: \.rules.itemsPerSale,
        meaning: "items per sale, ids `1…SALE_ITEMS`")
    static let saleLength = ServerSetting(
        "SALE_LENGTH", flag: "sale-length", .seconds(1...(100 * 365 * 86_400)), into: \.rules.saleLength,
        meaning: "sale length in seconds; sale `n` covers `[n·L, (n+1)·L)`")
    static let userLimit = ServerSetting(
        "USER_LIMIT", flag: "user-limit", .integer(1...1_000_000), into: \.rules.userLimit,
        meaning: "items one user may own (bought + held) per sale")
    static let holdTTL = ServerSetting(
        "HOLD_TTL", flag: "hold-ttl", .seconds(1...(365 * 86_400)), into: \.rules.holdTTL, meaning: "seconds a checkout holds its item")
    static let catalogSeed = ServerSetting(
        "CATALOG_SEED", flag: "catalog-seed",
        SettingValue(
            allowed: "0–18,446,744,073,709,551,615", requirement: "an unsigned 64-bit integer",
            parse: { UInt64($0.trimmingSpaces) }, show: { "\($0)" }),
        into: \.rules.catalogSeed, meaning: "seed of the generated names and pictures")
    static let logLevel = ServerSetting("LOG_LEVEL", flag: "log-level", .oneOf, into: \.logLevel, meaning: "log level")
    static let clockSkewAllowance = ServerSetting(
        "CLOCK_SKEW_ALLOWANCE_MS", flag: "clock-skew-allowance-ms",
        .milliseconds(0...3_600_000), into: \.rules.clockSkewAllowance,
        meaning: "largest clock difference between instances; an expired hold's item goes to someone else only this long "
            + "after `expires_at`. An instance whose clock is more than ¾ of it away from Redis's answers checkouts "
            + "`503 clock_unsafe` until it is back (`0` turns that check off: you vouch for the clocks)")
    static let postgresConnections = ServerSetting(
        "PG_CONNECTIONS", flag: "pg-connections", .integer(1...64), into: \.postgresConnections,
        meaning: "connections to PostgreSQL, one thread each; every write queued meanwhile joins the next group commit")
    static let redisConnections = ServerSetting(
        "REDIS_CONNECTIONS", flag: "redis-connections", .integer(1...64), into: \.redisConnections,
        meaning: "connections to Redis, one thread each, each pipelining its queue")
    static let clientCheckoutRate = ServerSetting(
        "CLIENT_CHECKOUT_RATE", flag: "client-checkout-rate", .integer(0...1_000_000, unit: "checkouts per second, 0 = off"),
        into: \.clientCheckoutRate,
        meaning: "checkouts per second one client may sustain once its burst is spent; `0` turns the rate limit off "
            + "([abuse limits](#abuse-limits))")
    static let clientCheckoutBurst = ServerSetting(
        "CLIENT_CHECKOUT_BURST", flag: "client-checkout-burst", .integer(1...1_000_000), into: \.clientCheckoutBurst,
        meaning: "checkouts a client that has been quiet may make at once")
    static let clientMaxHolds = ServerSetting(
        "CLIENT_MAX_HOLDS", flag: "client-max-holds", .integer(0...10_000_000, unit: "0 = off"), into: \.clientMaxHolds,
        meaning: "unexpired holds one client may have at once; `0` turns the limit off",
        defaultText: "larger of `USER_LIMIT` and 1 % of `SALE_ITEMS`")
    static let trustedProxies = ServerSetting(
        "TRUSTED_PROXIES", flag: "trusted-proxies",
        SettingValue(
            allowed: "comma-separated addresses and CIDR ranges (`10.0.0.0/8, ::1`)",
            requirement: "comma-separated addresses and CIDR ranges",
            parse: { (text: String) throws(ConfigurationError) -> TrustedProxies? in try TrustedProxies(list: text) },
            show: { $0.isEmpty ? "none" : "\($0.ranges.count) ranges" }),
        meaning: "the proxies whose `X-Forwarded-For` (and, in `gateway` mode, user header) is believed", defaultText: "none"
    ) { $0.trustedProxies = $1 }
    static let shutdownGrace = ServerSetting(
        "SHUTDOWN_GRACE", flag: "shutdown-grace", .seconds(0...3_600), into: \.shutdownGrace,
        meaning: "seconds a shutdown lets requests in flight finish before their connections are cut")
    static let shutdownDrain = ServerSetting(
        "SHUTDOWN_DRAIN", flag: "shutdown-drain", .seconds(0...3_600), into: \.shutdownDrain,
        meaning: "seconds a shutdown first keeps serving with `/health` at `503 draining` and `Connection: close` on every "
            + "answer, so a balancer stops sending before the server stops accepting "
            + "([operations](operations.md#rolling-out-a-new-version))")
    static let identityMode = ServerSetting(
        "IDENTITY_MODE", flag: "identity-mode", .oneOf, into: \.identity.mode,
        meaning: "who the user is ([identity](#user-identity)); `signed` needs `IDENTITY_SECRET`, `gateway` needs `TRUSTED_PROXIES`")
    static let identitySecret = ServerSetting(
        "IDENTITY_SECRET", flag: nil,
        SettingValue(
            allowed: "at least 32 bytes", requirement: "at least 32 bytes", parse: { Array($0.utf8) }, show: { _ in "set" }),
        meaning: "the HMAC key shared with the storefront; required by `signed`. Environment only: a flag would show it to "
            + "every local user in `ps`",
        defaultText: "unset"
    ) { $0.identity.secret = $1 }
    static let identityHeader = ServerSetting(
        "IDENTITY_HEADER", flag: "identity-header",
        SettingValue(
            allowed: "an HTTP header name other than `Host`, `Forwarded`, `X-Forwarded-For`, `X-User-Token`",
            requirement: "an HTTP header name of its own",
            parse: { text in
                let name = String(text.trimmingSpaces)
                let reserved = ["x-forwarded-for", "host", "x-user-token", "forwarded"]
                return HTTPField.Name(name) != nil && !reserved.contains(name.lowercased()) ? name : nil
            },
            show: { $0 }),
        into: \.identity.gatewayHeader, meaning: "the header a trusted gateway names the user in (`gateway` mode)")

    /// Every setting, in the order of docs/server.md's table.
    static let all: [ServerSetting] = [
        port, host, databaseURL, redisURL, migrationsDirectory, saleItems, saleLength, userLimit, holdTTL, catalogSeed, logLevel,
        clockSkewAllowance, postgresConnections, redisConnections, clientCheckoutRate, clientCheckoutBurst, clientMaxHolds,
        trustedProxies, shutdownGrace, shutdownDrain, identityMode, identitySecret, identityHeader,
    ]

    /// The configuration table of docs/server.md, as the declarations say it.
    static var markdownTable: String {
        var lines = ["| Variable | Flag | Default | Allowed values | Meaning |", "|---|---|---|---|---|"]
        for setting in all {
            let flag = setting.flag.map { "`--\($0)`" } ?? "(none)"
            lines.append("| `\(setting.variable)` | \(flag) | \(setting.defaultText) | \(setting.allowed) | \(setting.meaning) |")
        }
        return lines.joined(separator: "\n")
    }
}
