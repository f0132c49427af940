/// How the hot state is rebuilt from the durable store after the hot store lost its data.
public enum RebuildRules {
    /// The sales whose hot state can still matter at `now`: any sale with a hold that may still be
    /// live or in its skew allowance, through the sale a fast clock may already be in, and one
    /// more sale on each side. The rebuilding instance's clock may be wrong (it jumped since its
    /// last read, which would have refused it as `clock_unsafe`): the extra sales keep a rebuild
    /// complete for any clock error up to a sale's length. Restoring too much is harmless.
    public static func salesToRebuild(rules: SaleRules, now: Instant) -> [SaleID] {
        let calendar = SaleCalendar(saleLength: rules.saleLength)
        let margin = rules.clockSkewAllowance * 2
        let first = calendar.sale(at: now - rules.holdTTL - margin)
        let last = calendar.sale(at: now + margin)
        return ((first.rawValue - 1)...(last.rawValue + 1)).map(SaleID.init)
    }

    /// Holds expiring after this instant may still count (live, or within the skew allowance),
    /// with a sale's length of margin for the rebuilding instance's clock (see `salesToRebuild`).
    /// An expired hold restored is harmless: its item can be taken over at once, and its slot is
    /// released when its user needs the room.
    public static func holdsExpiringAfter(rules: SaleRules, now: Instant) -> Instant {
        now - rules.clockSkewAllowance - rules.saleLength
    }

    /// Folds the durable snapshot into hot records: sold items and their buyers, the newest
    /// recorded hold of every unsold item, and each user's slots and purchases.
    /// Deterministic: the result depends only on the snapshot's contents, not its order.
    public static func hotState(from snapshot: DurableSnapshot) -> (records: [HotKey: HotValue], sets: [HotSetKey: [ItemID]]) {
        var items: [HotKey: ItemRecord] = [:]
        var users: [HotKey: UserRecord] = [:]
        var sold: [SaleID: [ItemID]] = [:]

        let purchases = snapshot.purchases.sorted { ($0.sale, $0.item, $0.code.nonce) < ($1.sale, $1.item, $1.code.nonce) }
        for purchase in purchases {
            let key = HotKey.item(purchase.sale, purchase.item)
            guard items[key] == nil else { continue }  // the schema makes this impossible
            items[key] = .sold(purchase)
            users[.user(purchase.sale, purchase.user), default: UserRecord()].purchased.append(purchase.item)
            sold[purchase.sale, default: []].append(purchase.item)
        }

        // Per item, the hold that expires last (a renewal supersedes the hold it replaced).
        var newest: [HotKey: Hold] = [:]
        for hold in snapshot.holds {
            let key = HotKey.item(hold.sale, hold.item)
            if case .sold = items[key] { continue }
            if let other = newest[key], (other.expiresAt, other.code.nonce) >= (hold.expiresAt, hold.code.nonce) { continue }
            newest[key] = hold
        }
        let chosen = newest.values.sorted { ($0.sale, $0.item) < ($1.sale, $1.item) }
        for hold in chosen {
            items[.item(hold.sale, hold.item)] = .held(hold)
            users[.user(hold.sale, hold.user), default: UserRecord()].slots.append(HoldSlot(code: hold.code, expiresAt: hold.expiresAt))
        }

        var records: [HotKey: HotValue] = [:]
        for (key, record) in items { records[key] = .item(record) }
        for (key, record) in users { records[key] = .user(record) }
        var sets: [HotSetKey: [ItemID]] = [:]
        for (sale, ids) in sold { sets[.sold(sale)] = ids.sorted() }
        return (records, sets)
    }
}
