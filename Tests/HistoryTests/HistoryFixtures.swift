import History

/// Hand-written histories: times in seconds (as Doubles, for readability), one sale (sale 0)
/// of three items, a limit of two, holds of 30 s and a skew allowance (and clock slack) of 2 s.
enum Fixture {
    static let rules = HistoryRules(itemsPerSale: 3, userLimit: 2, holdTTL: 30_000_000, saleLength: 600_000_000, clockSkewAllowance: 2_000_000)

    static func t(_ seconds: Double) -> Int64 { Int64((seconds * 1_000_000).rounded()) }

    static func code(_ item: Int, _ tag: String) -> String {
        "0.\(item).\(tag)" + String(repeating: "A", count: max(0, 22 - tag.count))
    }

    static func checkout(_ user: String, _ item: Int, _ from: Double, _ to: Double?, _ answer: HistoryOperation.Answer) -> HistoryOperation {
        HistoryOperation(client: user, call: .checkout(user: user, item: Int64(item), sale: 0), invoke: t(from), complete: to.map(t), answer: answer)
    }

    static func held(_ code: String, expires: Double) -> HistoryOperation.Answer { .held(code: code, expiresAt: t(expires)) }

    static func purchase(_ client: String, _ code: String, _ from: Double, _ to: Double?, _ answer: HistoryOperation.Answer) -> HistoryOperation {
        HistoryOperation(client: client, call: .purchase(code: code), invoke: t(from), complete: to.map(t), answer: answer)
    }

    static func bought(_ user: String, item: Int, at: Double) -> HistoryOperation.Answer {
        .purchased(user: user, sale: 0, item: Int64(item), purchasedAt: t(at))
    }

    static func readItem(_ item: Int, _ from: Double, _ to: Double, _ status: HistoryOperation.ItemStatus) -> HistoryOperation {
        HistoryOperation(client: "reader", call: .readItem(sale: 0, item: Int64(item)), invoke: t(from), complete: t(to), answer: .itemStatus(status))
    }

    static func readPurchases(_ user: String, _ from: Double, _ to: Double, _ items: [Int64]) -> HistoryOperation {
        HistoryOperation(client: user, call: .readPurchases(user: user, sale: 0), invoke: t(from), complete: t(to), answer: .purchases(items: items))
    }

    static func verdict(_ operations: [HistoryOperation]) -> HistoryVerdict { HistoryChecker(rules: rules).check(operations) }
}
