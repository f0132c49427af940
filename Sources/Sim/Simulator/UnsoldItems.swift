import Engine

/// The items of a sale not yet sold: what a user browsing the catalog (the item pages' status)
/// would see. Lets eager buyers find the last free items the way real ones do, instead of
/// probing at random. O(1) pick and removal.
struct UnsoldItems: Sendable {
    private var items: [ItemID]
    private var position: [Int]

    init(count: Int) {
        items = (1...max(1, count)).map(ItemID.init)
        position = Array(0...max(1, count))
        for (index, item) in items.enumerated() { position[item.rawValue] = index }
    }

    mutating func remove(_ item: ItemID) {
        guard item.rawValue < position.count else { return }
        let index = position[item.rawValue]
        guard index >= 0, index < items.count, items[index] == item else { return }
        let last = items[items.count - 1]
        items[index] = last
        position[last.rawValue] = index
        items.removeLast()
        position[item.rawValue] = -1
    }

    /// Up to `limit` of them, lowest first (for a report).
    func first(_ limit: Int) -> [ItemID] { Array(items.sorted().prefix(limit)) }

    func pick(_ rng: inout SplitMix64) -> ItemID? {
        items.isEmpty ? nil : items[rng.int(0...(items.count - 1))]
    }
}
