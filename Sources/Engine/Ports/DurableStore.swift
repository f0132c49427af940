/// The durable store port (PostgreSQL in production): the system of record for checkout
/// attempts, codes and purchases, and the keeper of the hot store's generation.
///
/// Writes are idempotent (keyed by attempt id and by code), so a write whose reply was lost can
/// be retried safely: the retry answers `.alreadyPresent`. Writes that carry a fence commit only
/// while the durable generation still equals it; the rebuild bumps the generation first, so a
/// decision made on a hot view that is being replaced can never become durable after the
/// rebuild's snapshot was taken.

/// What a checkout attempt answered. Persisted for every attempt before its response is sent.
public enum CheckoutOutcome: String, Hashable, Sendable, CaseIterable {
    case held
    case soldOut = "sold_out"
    case itemSold = "item_sold"
    case userLimitReached = "user_limit_reached"
    case itemHeld = "item_held"
}

/// The durable record of one checkout attempt. `code` and `expiresAt` are set when the outcome
/// is `.held`.
public struct CheckoutAttempt: Hashable, Sendable {
    public let id: AttemptID
    public let sale: SaleID
    public let item: ItemID
    public let user: UserID
    public let outcome: CheckoutOutcome
    public let code: Code?
    public let expiresAt: Instant?
    public let attemptedAt: Instant

    public init(id: AttemptID, sale: SaleID, item: ItemID, user: UserID, outcome: CheckoutOutcome, code: Code?,
                expiresAt: Instant?, attemptedAt: Instant) {
        self.id = id
        self.sale = sale
        self.item = item
        self.user = user
        self.outcome = outcome
        self.code = code
        self.expiresAt = expiresAt
        self.attemptedAt = attemptedAt
    }

    /// The hold this attempt handed out, if any.
    public var hold: Hold? {
        guard outcome == .held, let code, let expiresAt else { return nil }
        return Hold(code: code, user: user, expiresAt: expiresAt)
    }
}

public enum DurableWrite: Hashable, Sendable {
    /// Records an attempt; with a fence, only while the durable generation equals it.
    case attempt(CheckoutAttempt, fence: Generation?)
    /// Records a purchase; with a fence, only while the durable generation equals it; and only if
    /// its user then owns fewer than `userLimit` purchases of its sale (the durable backstop of
    /// the user limit: the hot store decides it, the durable store refuses to record a breach).
    case purchase(Purchase, fence: Generation?, userLimit: Int)
}

/// How a rebuild asks for its new generation: strictly above both the durable store's current
/// generation and `above` (the generation the rebuilder found in the hot store, which may belong
/// to another database or a later moment), by `stride`, a random step drawn by the rebuilder.
///
/// Drawn, not counted: two databases that each bumped their generation a few times would
/// otherwise hold the same small numbers, and a Redis that served one of them would look like it
/// belongs to the other. With a random stride of up to 2^32, generations of different databases
/// meet with negligible probability, so a generation names the durable store it came from.
public struct GenerationBump: Hashable, Sendable {
    public var above: Generation
    public var stride: Int64

    public init(above: Generation, stride: Int64) {
        precondition(stride >= 1, "a bump moves the generation forward")
        self.above = above
        self.stride = stride
    }

    /// The generation a store whose current one is `current` moves to.
    public func next(after current: Generation) -> Generation {
        Generation(max(current.rawValue, above.rawValue) &+ stride)
    }
}

public enum DurableWriteReply: Hashable, Sendable {
    case written
    /// The same record (same attempt id, or same code) was already stored: a retry of a write
    /// that had committed.
    case alreadyPresent
    /// The durable generation moved on: nothing was written.
    case fenced
    /// A schema constraint refused the write (another purchase holds this item, or the user
    /// already owns `userLimit` items of the sale): the last line of defence caught a bug or an
    /// undetected loss of hot state. Nothing was written.
    case rejected
}

/// What the durable store knows of one code, and its generation when it was asked: an answer
/// drawn from the history (`404`, `410`) is only given if the hot record it complements was read
/// from that generation, so a hot store that belongs elsewhere never turns a live code away.
public struct CodeHistory: Hashable, Sendable {
    public var hold: Hold?
    public var purchase: Purchase?
    public var generation: Generation

    public init(hold: Hold?, purchase: Purchase?, generation: Generation) {
        self.hold = hold
        self.purchase = purchase
        self.generation = generation
    }
}

/// What the rebuild needs: every purchase of the given sales, and every hold handed out in them
/// that expires after the given instant.
public struct DurableSnapshot: Hashable, Sendable {
    public var purchases: [Purchase]
    public var holds: [Hold]

    public init(purchases: [Purchase], holds: [Hold]) {
        self.purchases = purchases
        self.holds = holds
    }
}

public enum DurableQuery: Hashable, Sendable {
    case codeHistory(Code)
    case snapshot(sales: [SaleID], holdsExpiringAfter: Instant)
    case purchases(sale: SaleID, user: UserID)
    /// The current generation (what `bumpGeneration` last returned), without changing it.
    case generation
}

public enum DurableQueryReply: Hashable, Sendable {
    case codeHistory(CodeHistory)
    case snapshot(DurableSnapshot)
    case purchases([Purchase])
    case generation(Generation)
}
