/// A reservation of one item for one user until `expiresAt`, identified by its code.
public struct Hold: Hashable, Sendable {
    public let code: Code
    public let user: UserID
    public let expiresAt: Instant

    public init(code: Code, user: UserID, expiresAt: Instant) {
        self.code = code
        self.user = user
        self.expiresAt = expiresAt
    }

    public var sale: SaleID { code.sale }
    public var item: ItemID { code.item }
}

/// A completed purchase: the item of `code`, bought by `user` at `purchasedAt`.
public struct Purchase: Hashable, Sendable {
    public let code: Code
    public let user: UserID
    public let purchasedAt: Instant

    public init(code: Code, user: UserID, purchasedAt: Instant) {
        self.code = code
        self.user = user
        self.purchasedAt = purchasedAt
    }

    public var sale: SaleID { code.sale }
    public var item: ItemID { code.item }
}

/// The hot state of one item of one sale. An absent record means the item is free.
///
/// The item record is where "one holder per item" and "one sale per item" are linearized: every
/// change to it is a compare-and-set on its version.
public enum ItemRecord: Hashable, Sendable {
    case held(Hold)
    case sold(Purchase)
}

/// One reservation counted against a user's limit: the code (which names the item) and its expiry.
public struct HoldSlot: Hashable, Sendable {
    public let code: Code
    public let expiresAt: Instant

    public init(code: Code, expiresAt: Instant) {
        self.code = code
        self.expiresAt = expiresAt
    }

    public var item: ItemID { code.item }
}

/// The hot state of one user in one sale: what counts against the user limit.
///
/// `slots` are the user's holds, kept (and counted) until they are known to be either released or
/// purchased; `purchased` are items whose slots were resolved as bought. A purchase does not touch
/// this record (its slot keeps counting as one); the slot is folded into `purchased` later, when
/// the user's next checkout needs the room. The user record is where "at most `userLimit` per user"
/// is linearized: every checkout is a compare-and-set on its version.
public struct UserRecord: Hashable, Sendable {
    public var slots: [HoldSlot]
    public var purchased: [ItemID]

    public init(slots: [HoldSlot] = [], purchased: [ItemID] = []) {
        self.slots = slots
        self.purchased = purchased
    }

    /// Everything counted against the limit, before any slot is resolved.
    public var countedItems: Int { slots.count + purchased.count }
}
