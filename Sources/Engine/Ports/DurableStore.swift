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
    /// Records a purchase; with a fence, only while the durable generation equals it.
    case purchase(Purchase, fence: Generation?)
}

public enum DurableWriteReply: Hashable, Sendable {
    case written
    /// The same record (same attempt id, or same code) was already stored: a retry of a write
    /// that had committed.
    case alreadyPresent
    /// The durable generation moved on: nothing was written.
    case fenced
    /// A schema constraint refused the write (another purchase holds this item): the last line of
    /// defence caught a bug. Nothing was written.
    case rejected
}

/// What the durable store knows of one code.
public struct CodeHistory: Hashable, Sendable {
    public var hold: Hold?
    public var purchase: Purchase?

    public init(hold: Hold?, purchase: Purchase?) {
        self.hold = hold
        self.purchase = purchase
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
