/// Realistic mistakes that can be switched on to prove the simulator catches them.
///
/// Each case names one wrong line a developer could plausibly write. They are off (`nil`) unless a
/// simulation asks for one; production configuration has no way to set them. `scripts/planted-bugs`
/// runs the simulator with each and fails if any goes unnoticed.
public enum PlantedBug: String, Sendable, CaseIterable, Hashable {
    /// The limit check lets a user reach `userLimit + 1` (`>` where `>=` belongs).
    case limitOffByOne = "limit-off-by-one"
    /// The limit counts only resolved purchases, forgetting holds and unresolved slots.
    case limitIgnoresHolds = "limit-ignores-holds"
    /// The purchase trusts the durable record of the code and sells even when the item's hot
    /// record shows the hold was taken over.
    case purchaseSkipsHoldCheck = "purchase-skips-hold-check"
    /// The purchase answers `200` and writes PostgreSQL afterwards.
    case ackBeforeDurable = "ack-before-durable"
    /// The checkout's compare-and-set does not guard the user record (a missing atomic check).
    case unguardedUserRecord = "unguarded-user-record"
    /// An expired hold is taken over the moment it expires on the taker's clock, ignoring skew.
    case noSkewAllowance = "no-skew-allowance"
    /// Durable writes carry no generation fence, so a decision made on a hot view that a rebuild
    /// replaced can still become durable.
    case unfencedDurableWrites = "unfenced-durable-writes"
    /// The purchase looks the item up in the sale current at the request's time, not the code's.
    case purchaseUsesCurrentSale = "purchase-uses-current-sale"
    /// The rebuild after Redis loses its data restores purchases but forgets live holds.
    case rebuildSkipsHolds = "rebuild-skips-holds"
    /// A retried purchase whose first attempt committed is answered `410` instead of the same `200`.
    case purchaseRetryNotIdempotent = "purchase-retry-not-idempotent"
    /// The hot store trusts the contents it came back with after a restart from an older snapshot
    /// or a failover to a lagging replica, as long as their generation is current: only a Redis
    /// that came back empty triggers a rebuild. (Planted in the simulated Redis, which then keeps
    /// its identity across a rollback, as an adapter that never checked `run_id` would.)
    case identityBlindHotStore = "identity-blind-hot-store"
    /// The purchase's compare-and-set carries no deadline: an instance paused between deciding and
    /// committing sells a code that another instance has meanwhile answered `410` for.
    case purchaseCommitIgnoresExpiry = "purchase-commit-ignores-expiry"
    /// The checkout decides on an instance clock however far it is from the store's.
    case clockCheckSkipped = "clock-check-skipped"
    /// A checkout's refusal is written without the generation it was decided under: a refusal read
    /// from a Redis that serves another database (`sold_out`, `item_sold`) is answered.
    case unfencedRefusals = "unfenced-refusals"
}
