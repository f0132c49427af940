import Engine

/// Realistic mistakes that can be switched on to prove the simulator catches them.
///
/// Each case names one wrong line a developer could plausibly write, in the server's handler, in
/// its store adapters or in its configuration. None of them is in production code: the simulator
/// plants each at the seam where such a line would sit (`PlantedBugSeams.swift`): the rules an
/// instance is configured with, a store call on its way out, a reply on its way in, a request as
/// the handler parses it, an answer as it is sent, or the simulated Redis itself.
/// `scripts/planted-bugs` runs the simulator with each and fails if any goes unnoticed.
public enum PlantedBug: String, Sendable, CaseIterable, Hashable {
    /// The limit lets a user reach `userLimit + 1` (the limit configured one too high, or `>`
    /// where `>=` belongs).
    case limitOffByOne = "limit-off-by-one"
    /// The user record is decoded without its hold slots, so the limit counts only purchases (and
    /// the next hold written drops the others).
    case limitIgnoresHolds = "limit-ignores-holds"
    /// The hot store's compare-and-set script checks its guards after writing: a conflicting
    /// commit answers `conflict` but its writes stay (a Lua guard checked after the write).
    case guardCheckedAfterWrite = "guard-checked-after-write"
    /// The purchase answers `200` as soon as the durable write is sent, not when it is done.
    case ackBeforeDurable = "ack-before-durable"
    /// The checkout's compare-and-set does not guard the user record (a missing atomic check).
    case unguardedUserRecord = "unguarded-user-record"
    /// The instances run with no clock-skew allowance: an expired hold is taken over the moment it
    /// expires on the taker's clock.
    case noSkewAllowance = "no-skew-allowance"
    /// Durable writes carry no generation fence, so a decision made on a hot view that a rebuild
    /// replaced can still become durable.
    case unfencedDurableWrites = "unfenced-durable-writes"
    /// The purchase handler takes the code's sale from the clock (the current sale), not from the
    /// code.
    case purchaseUsesCurrentSale = "purchase-uses-current-sale"
    /// The rebuild after Redis loses its data restores purchases but forgets live holds.
    case rebuildSkipsHolds = "rebuild-skips-holds"
    /// A purchase of a code already bought is answered `410` instead of the same `200`.
    case purchaseRetryNotIdempotent = "purchase-retry-not-idempotent"
    /// The hot store trusts the contents it came back with after a restart from an older snapshot
    /// or a failover to a lagging replica, as long as their generation is current: only a Redis
    /// that came back empty triggers a rebuild. (Planted in the simulated Redis, which then keeps
    /// its identity across a rollback, as an adapter that never checked `run_id` would.)
    case identityBlindHotStore = "identity-blind-hot-store"
    /// The purchase's compare-and-set carries no deadline: an instance paused between deciding and
    /// committing sells a code that another instance has meanwhile answered `410` for.
    case purchaseCommitIgnoresExpiry = "purchase-commit-ignores-expiry"
    /// The checkout decides on an instance clock however far it is from the store's: the adapter
    /// drops the store's time from reads and the commit's validity window.
    case clockCheckSkipped = "clock-check-skipped"
    /// A checkout's refusal is written without the generation it was decided under: a refusal read
    /// from a Redis that serves another database (`sold_out`, `item_sold`) is answered.
    case unfencedRefusals = "unfenced-refusals"
    /// A connection hands a batch's replies to the wrong calls: each call gets the reply of the call
    /// queued after it (replies matched to the wrong request in a pipeline).
    case batchRepliesMisrouted = "batch-replies-misrouted"
}
