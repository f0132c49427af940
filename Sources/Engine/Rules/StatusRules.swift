/// What the read endpoints show: an item's status and a sale's counts, as of an instant.
public enum ItemStatus: Hashable, Sendable {
    case available
    case held(until: Instant)
    case sold

    /// `available`, `held` or `sold`, as the API spells it.
    public var name: String {
        switch self {
        case .available: "available"
        case .held: "held"
        case .sold: "sold"
        }
    }
}

/// The counts `GET /sale` shows.
public struct SaleSummary: Hashable, Sendable {
    public let sale: SaleID
    public let startsAt: Instant
    public let endsAt: Instant
    public let total: Int
    public let sold: Int
    public let held: Int
}

public enum StatusRules {
    /// A hold shows as held until its expiry; after that the item is available to others (once
    /// the skew allowance has passed, which the checkout enforces).
    public static func status(of record: ItemRecord?, now: Instant) -> ItemStatus {
        switch record {
        case .sold: .sold
        case .held(let hold) where now < hold.expiresAt: .held(until: hold.expiresAt)
        case .held, nil: .available
        }
    }

    /// The keys to read for a sale's summary: every item record, and the sold set's size.
    public static func summaryRead(sale: SaleID, rules: SaleRules) -> HotRead {
        HotRead(keys: (1...rules.itemsPerSale).map { .item(sale, ItemID($0)) }, counts: [.sold(sale)])
    }

    public static func summary(sale: SaleID, rules: SaleRules, snapshot: HotSnapshot, now: Instant) -> SaleSummary {
        var held = 0
        for record in snapshot.records {
            if case .held = status(of: record.itemRecord, now: now) { held += 1 }
        }
        let calendar = SaleCalendar(saleLength: rules.saleLength)
        return SaleSummary(
            sale: sale, startsAt: calendar.start(of: sale), endsAt: calendar.end(of: sale), total: rules.itemsPerSale,
            sold: snapshot.counts.first ?? 0, held: held)
    }
}
