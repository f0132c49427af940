import Engine

/// The current sale as the live page shows it, read from the shared hot store (so every instance
/// shows the same sale): the counts, every item's state packed two bits per item (10,000 items
/// are 2,500 bytes, not 10,000 JSON objects), and when it sold out. Made from the same bounded
/// reads as the summary `/sale` answers, and cached with it.
struct SaleBoard: Sendable {
    /// An item's state in the grid, as its two bits.
    enum Cell: UInt8 {
        case free = 0
        case held = 1
        case sold = 2
    }

    let summary: SaleSummary
    /// Item `i` (1-based) is in byte `(i-1)/4`, bits `6-2*((i-1)%4)` and up: the first item in the
    /// high bits, as a page reading the bytes left to right expects.
    let grid: [UInt8]
    /// The last purchase's time once every item is sold; nil before.
    let soldOutAt: Instant?
    /// The hot store's generation when read: a change means it was rebuilt, and commits made under
    /// the old one are fenced.
    let generation: Generation

    /// The board from the answers to `StatusRules.summaryReads`, in order; nil when the summary
    /// rules refuse them (they do not fit, or span two generations).
    static func make(sale: SaleID, rules: SaleRules, snapshots: [HotSnapshot], now: Instant) -> SaleBoard? {
        guard let summary = StatusRules.summary(sale: sale, rules: rules, snapshots: snapshots, now: now),
            let generation = snapshots.first?.generation
        else { return nil }
        var grid = [UInt8](repeating: 0, count: (rules.itemsPerSale + 3) / 4)
        var lastPurchase: Instant?
        var index = 0
        for snapshot in snapshots {
            for record in snapshot.records {
                let cell: Cell
                switch StatusRules.status(of: record.itemRecord, now: now) {
                case .available: cell = .free
                case .held: cell = .held
                case .sold: cell = .sold
                }
                if case .sold(let purchase) = record.itemRecord, lastPurchase.map({ $0 < purchase.purchasedAt }) ?? true {
                    lastPurchase = purchase.purchasedAt
                }
                grid[index / 4] |= cell.rawValue << UInt8(6 - 2 * (index % 4))
                index += 1
            }
        }
        let soldOut = summary.total > 0 && summary.sold >= summary.total
        return SaleBoard(summary: summary, grid: grid, soldOutAt: soldOut ? lastPurchase : nil, generation: generation)
    }

    /// The state of item `item` (1-based), as the page decodes it.
    func cell(_ item: Int) -> Cell? {
        let index = item - 1
        guard index >= 0, index / 4 < grid.count else { return nil }
        return Cell(rawValue: (grid[index / 4] >> UInt8(6 - 2 * (index % 4))) & 3)
    }
}
