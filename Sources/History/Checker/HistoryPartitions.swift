/// Splits a history into the pieces that are checked on their own (P-compositionality): one per
/// item of a sale (holds, takeovers, purchases, item reads) and one per user of a sale (the limit,
/// the purchases read). An operation belongs to every piece its key names: a checkout to its
/// item's and its user's, a purchase to its code's item's and to its code's holder's.
struct HistoryPartitions {
    enum Key: Hashable, Comparable, CustomStringConvertible {
        case item(sale: Int64, item: Int64)
        case user(sale: Int64, user: String)

        var description: String {
            switch self {
            case .item(let sale, let item): "item \(item) of sale \(sale)"
            case .user(let sale, let user): "user \(user) in sale \(sale)"
            }
        }

        static func < (a: Key, b: Key) -> Bool {
            switch (a, b) {
            case (.item(let s1, let i1), .item(let s2, let i2)): (s1, i1) < (s2, i2)
            case (.user(let s1, let u1), .user(let s2, let u2)): (s1, u1) < (s2, u2)
            case (.item, .user): true
            case (.user, .item): false
            }
        }
    }

    /// Operation indices per key, in history order.
    private(set) var members: [Key: [Int]] = [:]
    /// The holder of each code, from the checkout answers that handed it out.
    private(set) var holders: [String: String] = [:]
    /// Refusals whose sale cannot be told (sent across a rollover, the answer not naming it).
    private(set) var unplaced = 0

    init(_ operations: [HistoryOperation], rules: HistoryRules) {
        for op in operations {
            if case .checkout(let user, _, _) = op.call, case .held(let code, _) = op.answer { holders[code] = user }
            if case .purchase(let code) = op.call, case .purchased(let user, _, _, _) = op.answer, holders[code] == nil {
                holders[code] = user
            }
        }
        for (index, op) in operations.enumerated() {
            for key in keys(of: op, rules: rules) { members[key, default: []].append(index) }
        }
    }

    var keys: [Key] { members.keys.sorted() }

    mutating func keys(of op: HistoryOperation, rules: HistoryRules) -> [Key] {
        if op.answer == .ignored { return [] }
        switch op.call {
        case .checkout(let user, let item, let sale):
            let sales: [Int64]
            if case .held(let code, _) = op.answer, let named = CodeText.saleAndItem(code) {
                sales = [named.sale]
            } else if let sale {
                sales = [sale]
            } else {
                let first = rules.sale(at: op.invoke - rules.clockSlack)
                let last = rules.sale(at: (op.complete ?? op.invoke) + rules.clockSlack)
                let candidates = Array(first...max(first, min(last, first + 1)))
                if candidates.count > 1 && !op.isPending {
                    unplaced += 1  // a refusal of one of two sales: nothing to judge it against
                    return []
                }
                sales = candidates
            }
            return sales.flatMap { [Key.item(sale: $0, item: item), .user(sale: $0, user: user)] }
        case .purchase(let code):
            guard let named = CodeText.saleAndItem(code) else { return [] }
            var keys = [Key.item(sale: named.sale, item: named.item)]
            if let holder = holders[code] { keys.append(.user(sale: named.sale, user: holder)) }
            return keys
        case .readItem(let sale, let item):
            return op.isPending ? [] : [.item(sale: sale, item: item)]
        case .readPurchases(let user, let sale):
            return op.isPending ? [] : [.user(sale: sale, user: user)]
        case .readSale:
            return []
        }
    }
}
