/// The purchase decision: given the hot record of the code's item, what happens to the code.
///
/// A code is honoured only if the item's record still holds it and it has not expired by the hot
/// store's clock (the snapshot's `storeTime`, else the instance's; and the commit's `deadline` is
/// checked by the store itself); the hold already reserved both the item and the user's limit, so
/// nothing else needs checking. Everything else is answered from the durable history.
public enum PurchaseDecision: Hashable, Sendable {
    /// The code was already used: answer the same purchase again (after making sure it is durable).
    case completed(Purchase)
    /// Buy: apply this compare-and-set, make the purchase durable, then answer.
    case buy(Purchase, HotCommit)
    case expired
    /// The hot record does not know this code: ask the durable history whether it ever existed.
    case consultHistory
}

/// What the durable history says of a code the hot record does not know.
public enum PurchaseHistoryDecision: Hashable, Sendable {
    case completed(Purchase)
    case expired
    case unknown
}

public enum PurchaseRules {
    /// The record a purchase of `code` reads.
    public static func itemKey(for code: Code) -> HotKey {
        .item(code.sale, code.item)
    }

    public static func decide(code: Code, now: Instant, key: HotKey, record: Versioned, generation: Generation) -> PurchaseDecision {
        switch record.itemRecord {
        case .sold(let purchase) where purchase.code == code:
            return .completed(purchase)
        case .held(let hold) where hold.code == code:
            guard now < hold.expiresAt else { return .expired }
            return buy(hold: hold, key: key, version: record.version, now: now, generation: generation)
        default:
            return .consultHistory
        }
    }

    static func buy(hold: Hold, key: HotKey, version: UInt64, now: Instant, generation: Generation) -> PurchaseDecision {
        let purchase = Purchase(code: hold.code, user: hold.user, purchasedAt: now)
        let commit = HotCommit(
            generation: generation, guards: [key: version], puts: [key: .item(.sold(purchase))],
            setAdds: [.sold(hold.sale): [hold.item], .pending(hold.sale): [hold.item]],
            deadline: hold.expiresAt)
        return .buy(purchase, commit)
    }

    /// Decides from the durable history of a code the hot record does not hold. A code that was
    /// handed out but is no longer the holder of its item has been taken over or released, which
    /// happens only after its expiry: it is expired.
    public static func decide(history: CodeHistory) -> PurchaseHistoryDecision {
        if let purchase = history.purchase { return .completed(purchase) }
        if history.hold != nil { return .expired }
        return .unknown
    }
}
