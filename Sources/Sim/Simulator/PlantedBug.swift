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
    /// The checkout's reads go to a Redis replica that lags the primary by up to half a second (its
    /// commits go to the primary, guarded): a refusal is decided on what the item was a moment ago.
    case staleReplicaReads = "stale-replica-reads"
    /// A checkout that finds the user's own live hold (a duplicate sent at the same time, or a
    /// retry) is answered `item_held` instead of the same code: "already held" taken for a refusal.
    case repeatCheckoutAnsweredHeld = "repeat-checkout-answered-held"
    /// The rebuild reads the durable snapshot before it bumps the generation: a write fenced by the
    /// old generation that lands in between is accepted, and missing from the installed state.
    case rebuildSnapshotsBeforeBump = "rebuild-snapshots-before-bump"
    /// PostgreSQL's fenced write reads the generation without locking it (no `FOR SHARE`): a bump
    /// committed while the write's transaction runs is not seen, so an old-generation write lands
    /// after the bump (planted in the simulated PostgreSQL as a fence checked against the generation
    /// as of the moment the write was sent).
    case fenceReadWithoutLock = "fence-read-without-lock"
    /// The handler's error table maps `item_held` to `item_sold`.
    case heldAnsweredAsSold = "held-answered-as-sold"
    /// The handler answers `404 unknown_code` for an expired code (`410` and `404` merged into "no
    /// such hold").
    case expiredAnsweredUnknown = "expired-answered-unknown"
    /// The checkout counts the sale sold out one item early (the sold count read as one more: a
    /// `>=` against `itemsPerSale - 1`, or the pending set counted twice).
    case soldOutOffByOne = "sold-out-off-by-one"
    /// The purchase expires codes a skew allowance early, "to be safe": a code with less than the
    /// allowance left is answered `410` though it is live.
    case codesExpireEarly = "codes-expire-early"

    /// The guarantees this bug is about: the first violation of a run that catches it must name
    /// one of them (`scripts/planted-bugs` fails otherwise). The first is what it breaks most
    /// often; the others are where the same broken rule shows first in other runs (a write lost
    /// from the rebuilt hot store shows as a lost hold, a second sale of its item, or a count
    /// below what was acknowledged; holds that break can leave a sale unsold, L1). Each was seen
    /// in the 100-seed measurement of docs/simulator.md.
    public var expectedGuarantees: [String] {
        switch self {
        case .limitOffByOne, .limitIgnoresHolds, .unguardedUserRecord: ["S2"]
        case .guardCheckedAfterWrite: ["API", "S6", "S1", "S2"]
        case .ackBeforeDurable: ["S4"]
        case .rebuildSkipsHolds: ["S6", "L1"]
        case .purchaseCommitIgnoresExpiry: ["S6"]
        case .noSkewAllowance: ["S6", "A2"]
        case .clockCheckSkipped: ["S6", "A5", "A2", "L1"]
        case .unfencedDurableWrites: ["A1", "A4", "S6", "G1"]
        case .unfencedRefusals: ["A1", "A4"]
        case .purchaseUsesCurrentSale, .expiredAnsweredUnknown: ["A6"]
        case .purchaseRetryNotIdempotent, .codesExpireEarly: ["A5"]
        case .identityBlindHotStore: ["audit", "S1", "S2", "S6", "G1", "G2"]
        case .batchRepliesMisrouted: ["engine", "S5", "S6", "A1", "A2", "A3"]
        case .staleReplicaReads: ["A2", "A1"]
        case .repeatCheckoutAnsweredHeld: ["A2"]
        case .rebuildSnapshotsBeforeBump, .fenceReadWithoutLock: ["S6", "S1", "G1", "G2"]
        case .heldAnsweredAsSold: ["A1", "S5"]
        case .soldOutOffByOne: ["A4"]
        }
    }
}
