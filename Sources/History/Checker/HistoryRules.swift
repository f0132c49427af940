/// The sale's rules as the history checker needs them, in microseconds: the specification is
/// parameterised by them, and a history file carries them in its first line (docs/histories.md).
public struct HistoryRules: Hashable, Sendable {
    public var itemsPerSale: Int
    public var userLimit: Int
    public var holdTTL: Int64
    public var saleLength: Int64
    public var clockSkewAllowance: Int64
    /// How far any clock that decided something (an instance's, the hot store's) may be from the
    /// clock that stamped the history's times. Every time condition of the specification is
    /// widened by it, so that a clock difference never reads as a violation. Defaults to the
    /// allowance: an instance further than that refuses checkouts (`clock_unsafe`).
    public var clockSlack: Int64

    public init(itemsPerSale: Int, userLimit: Int, holdTTL: Int64, saleLength: Int64, clockSkewAllowance: Int64, clockSlack: Int64? = nil) {
        self.itemsPerSale = itemsPerSale
        self.userLimit = userLimit
        self.holdTTL = holdTTL
        self.saleLength = saleLength
        self.clockSkewAllowance = clockSkewAllowance
        self.clockSlack = clockSlack ?? clockSkewAllowance
    }

    /// The sale current at `time` (sale `n` covers `[n·L, (n+1)·L)`).
    func sale(at time: Int64) -> Int64 {
        let q = time / saleLength
        return time % saleLength != 0 && time < 0 ? q - 1 : q
    }
}
