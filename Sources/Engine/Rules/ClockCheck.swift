/// Whether an instance's clock is close enough to the hot store's for the time-based rules.
///
/// A purchase is judged by the store's clock (a code buys while the store's clock is before its
/// `expiresAt`), and a code's item goes to someone else only once `expiresAt + clockSkewAllowance`
/// has passed on the taking instance's clock. So a live code is safe as long as every instance's
/// clock is within the allowance of the store's. Every hot read reports the store's clock
/// (`HotSnapshot.storeTime`); an instance further than `maximumOffset` from it (a clock that jumped
/// or drifted: a bad NTP step, a VM resumed from suspend) refuses checkouts (`503 clock_unsafe`)
/// until it is back, instead of breaking S6; and the store refuses a checkout's commit outside the
/// same window around the deciding instance's clock (`HotCommit.validFrom`/`deadline`).
public enum ClockCheck {
    /// Three quarters of the allowance: the quarter left is for the error of the measurement (the
    /// time a reply travels), and the instances' expected skew (half the allowance) stays inside.
    public static func maximumOffset(rules: SaleRules) -> TimeSpan {
        TimeSpan(microseconds: rules.clockSkewAllowance.microseconds * 3 / 4)
    }

    /// With an allowance of zero the operator vouches that the clocks agree: nothing is checked.
    public static func isEnabled(rules: SaleRules) -> Bool { rules.clockSkewAllowance > .zero }

    public static func isSafe(local: Instant, store: Instant, rules: SaleRules) -> Bool {
        !isEnabled(rules: rules) || (local - store).microseconds.magnitude <= UInt64(maximumOffset(rules: rules).microseconds)
    }
}
