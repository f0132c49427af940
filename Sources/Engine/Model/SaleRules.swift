/// The configurable rules of every sale: sizes, limits and durations.
///
/// Defaults follow docs/spec.md ("The sale"); every value can be changed in tests, the simulator and production.
public struct SaleRules: Sendable, Equatable {
    /// Items in each sale, ids `1…itemsPerSale`.
    public var itemsPerSale: Int = 10_000
    /// Length of one sale; sale `n` covers `[n·L, (n+1)·L)`.
    public var saleLength: TimeSpan = .seconds(3_600)
    /// Items one user may own (purchased + held) in one sale.
    public var userLimit: Int = 10
    /// How long a checkout holds its item.
    public var holdTTL: TimeSpan = .seconds(60)
    /// Seeds the generated catalog (names and pictures).
    public var catalogSeed: UInt64 = 0
    /// The most two instances' clocks may disagree. A hold stops being purchasable at its
    /// `expiresAt` on the purchasing instance's clock, but its item is only given to someone else
    /// once `expiresAt + clockSkewAllowance` has passed on the taking instance's clock; so a code
    /// one instance still honours is never handed to someone else by another.
    public var clockSkewAllowance: TimeSpan = .seconds(2)

    public init() {}

    public init(itemsPerSale: Int, saleLength: TimeSpan, userLimit: Int, holdTTL: TimeSpan, catalogSeed: UInt64 = 0,
                clockSkewAllowance: TimeSpan = .seconds(2)) {
        self.itemsPerSale = itemsPerSale
        self.saleLength = saleLength
        self.userLimit = userLimit
        self.holdTTL = holdTTL
        self.catalogSeed = catalogSeed
        self.clockSkewAllowance = clockSkewAllowance
    }

    /// Checks that the values make sense together; the message names the bad setting.
    public func validate() throws(ConfigurationError) {
        guard (1...10_000_000).contains(itemsPerSale) else {
            throw ConfigurationError("items per sale must be between 1 and 10000000, got \(itemsPerSale)")
        }
        guard saleLength >= .seconds(1) else { throw ConfigurationError("sale length must be at least 1 second") }
        guard userLimit >= 1 else { throw ConfigurationError("user limit must be at least 1, got \(userLimit)") }
        guard holdTTL >= .seconds(1) else { throw ConfigurationError("hold TTL must be at least 1 second") }
        guard clockSkewAllowance >= .zero else { throw ConfigurationError("clock skew allowance must not be negative") }
    }
}

/// A configuration value that cannot be used, with a message for the operator.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
