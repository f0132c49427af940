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

/// What a read endpoint does with a hot read's reply (`StatusRules.afterRead`).
public enum StatusReadStep: Hashable, Sendable {
    /// Answer from this snapshot.
    case use(HotSnapshot)
    /// The snapshot is of a generation PostgreSQL has not confirmed to this instance: read the
    /// durable generation, then go on with `StatusRules.afterGenerationCheck`.
    case confirmGeneration(HotSnapshot)
    /// The hot store lost its data: rebuild it (joining any rebuild under way), then read again.
    case rebuildThenRead
    /// Answer `503`.
    case unavailable
}

public enum StatusRules {
    /// The protocol of a read endpoint's hot read, which the server's handlers and the simulator
    /// both follow: a snapshot of the generation PostgreSQL last confirmed to this instance
    /// (`confirmed`) is answered; a snapshot of any other generation is first checked against
    /// PostgreSQL's (a hot store serving another database, or left behind a rebuild, must not be
    /// answered from: the read endpoints write nothing, so no fence would stop them); an
    /// uninitialized store is rebuilt and read once more; anything else (a failure, or a store still
    /// uninitialized after its rebuild) is a `503`.
    public static func afterRead(_ reply: StoreReply, rebuiltAlready: Bool, confirmed: Generation?) -> StatusReadStep {
        switch reply {
        case .hotRead(.snapshot(let snapshot)) where snapshot.generation == confirmed: .use(snapshot)
        case .hotRead(.snapshot(let snapshot)): .confirmGeneration(snapshot)
        case .hotRead(.uninitialized) where !rebuiltAlready: .rebuildThenRead
        default: .unavailable
        }
    }

    /// After the durable generation was read for `.confirmGeneration(snapshot)`: the snapshot is
    /// answered only if it is of PostgreSQL's generation (which the caller then remembers as
    /// confirmed); a hot store of any other generation is rebuilt and read once more, and a failure
    /// is a `503`.
    public static func afterGenerationCheck(_ reply: StoreReply, of snapshot: HotSnapshot, rebuiltAlready: Bool) -> StatusReadStep {
        switch reply {
        case .durableQuery(.generation(let durable)) where durable == snapshot.generation: .use(snapshot)
        case .durableQuery(.generation) where !rebuiltAlready: .rebuildThenRead
        default: .unavailable
        }
    }

    /// A hold shows as held until its expiry; after that the item is available to others (once
    /// the skew allowance has passed, which the checkout enforces).
    public static func status(of record: ItemRecord?, now: Instant) -> ItemStatus {
        switch record {
        case .sold: .sold
        case .held(let hold) where now < hold.expiresAt: .held(until: hold.expiresAt)
        case .held, nil: .available
        }
    }

    /// The reads for a sale's summary: every item record, in reads of at most `chunk` keys, the
    /// first also asking the sold set's size. Bounded reads because the hot store runs each read
    /// atomically and serves nobody else meanwhile (one Redis script): a single read of every item
    /// of a 10,000,000-item sale kept Redis busy for seconds.
    public static func summaryReads(sale: SaleID, rules: SaleRules, chunk: Int = 1_000) -> [HotRead] {
        precondition(chunk > 0)
        return stride(from: 1, through: rules.itemsPerSale, by: chunk).enumerated().map { index, first in
            let last = min(first + chunk - 1, rules.itemsPerSale)
            return HotRead(keys: (first...last).map { .item(sale, ItemID($0)) }, counts: index == 0 ? [.sold(sale)] : [])
        }
    }

    /// The summary from the answers to `summaryReads`, in the same order; nil when they do not
    /// fit those reads or span two generations (the store was rebuilt in between: read again).
    public static func summary(sale: SaleID, rules: SaleRules, snapshots: [HotSnapshot], now: Instant) -> SaleSummary? {
        guard let first = snapshots.first, first.counts.count == 1,
            snapshots.allSatisfy({ $0.generation == first.generation }),
            snapshots.reduce(0, { $0 + $1.records.count }) == rules.itemsPerSale
        else { return nil }
        var held = 0
        for snapshot in snapshots {
            for record in snapshot.records {
                if case .held = status(of: record.itemRecord, now: now) { held += 1 }
            }
        }
        let calendar = SaleCalendar(saleLength: rules.saleLength)
        return SaleSummary(
            sale: sale, startsAt: calendar.start(of: sale), endsAt: calendar.end(of: sale), total: rules.itemsPerSale,
            sold: first.counts[0], held: held)
    }
}
