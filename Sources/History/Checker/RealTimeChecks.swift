/// The reads' promises that span more than one partition, checked against real time directly:
/// - a user's purchases list every purchase acknowledged to that user before the read was sent;
/// - a sale's `sold` count is never below the items acknowledged sold before the read was sent,
///   nor above the items anyone tried to buy before it was answered;
/// - `sold_out` only when as many items as the sale has were bought (or being bought) by then.
struct RealTimeChecks {
    let rules: HistoryRules
    let operations: [HistoryOperation]

    /// Per sale: each item's earliest acknowledged purchase, and its earliest purchase attempt
    /// that acknowledged or may have taken effect.
    private struct SaleTimes {
        var acknowledged: [Int64: (time: Int64, op: Int)] = [:]
        var attempted: [Int64: (time: Int64, op: Int)] = [:]
    }

    func violations() -> [HistoryViolation] {
        var sales: [Int64: SaleTimes] = [:]
        var acknowledgedTo: [String: [(sale: Int64, item: Int64, at: Int64, op: Int)]] = [:]
        for (index, op) in operations.enumerated() {
            guard case .purchase(let code) = op.call, let named = CodeText.saleAndItem(code) else { continue }
            switch op.answer {
            case .purchased(let user, _, _, _):
                guard let complete = op.complete else { continue }
                acknowledgedTo[user, default: []].append((named.sale, named.item, complete, index))
                if sales[named.sale, default: SaleTimes()].acknowledged[named.item].map({ complete < $0.time }) ?? true {
                    sales[named.sale, default: SaleTimes()].acknowledged[named.item] = (complete, index)
                }
                fallthrough
            case .unknown:
                if sales[named.sale, default: SaleTimes()].attempted[named.item].map({ op.invoke < $0.time }) ?? true {
                    sales[named.sale, default: SaleTimes()].attempted[named.item] = (op.invoke, index)
                }
            default:
                continue
            }
        }
        let acknowledgedTimes = sales.mapValues { $0.acknowledged.values.map(\.time).sorted() }
        let attemptedTimes = sales.mapValues { $0.attempted.values.map(\.time).sorted() }
        /// How many of the sorted `times` are before `limit` (or at it, when `inclusive`).
        func count(_ times: [Int64]?, before limit: Int64, inclusive: Bool) -> Int {
            guard let times else { return 0 }
            var low = 0
            var high = times.count
            while low < high {
                let mid = (low + high) / 2
                if times[mid] < limit || (inclusive && times[mid] == limit) { low = mid + 1 } else { high = mid }
            }
            return low
        }
        var found: [HistoryViolation] = []
        for (index, op) in operations.enumerated() {
            guard let complete = op.complete else { continue }
            switch (op.call, op.answer) {
            case (.readPurchases(let user, let sale), .purchases(let items)):
                let listed = Set(items)
                for missing in (acknowledgedTo[user] ?? []) where missing.sale == sale && missing.at < op.invoke && !listed.contains(missing.item) {
                    found.append(HistoryViolation(
                        subject: "user \(user) in sale \(sale)",
                        reason: "the purchases read leaves out item \(missing.item), whose purchase was acknowledged before the read was sent",
                        witness: [operations[missing.op], op]))
                    break
                }
            case (.readSale, .saleCounts(let sale, let sold, _)):
                let before = count(acknowledgedTimes[sale], before: op.invoke, inclusive: false)
                if sold < before {
                    found.append(HistoryViolation(
                        subject: "sale \(sale)", reason: "the sale read shows \(sold) sold, but \(before) purchases were acknowledged before it was sent",
                        witness: [op]))
                }
                let possible = count(attemptedTimes[sale], before: complete, inclusive: true)
                if sold > possible || sold > rules.itemsPerSale {
                    found.append(HistoryViolation(
                        subject: "sale \(sale)", reason: "the sale read shows \(sold) sold, but only \(possible) items had been bought or tried by then",
                        witness: [op]))
                }
            case (.checkout(_, _, let sale), .refused(.soldOut)):
                let candidates = sale.map { [$0] } ?? Array(Set([rules.sale(at: op.invoke - rules.clockSlack), rules.sale(at: complete + rules.clockSlack)]))
                let soldOutSomewhere = candidates.contains { sale in
                    count(attemptedTimes[sale], before: complete, inclusive: true) >= rules.itemsPerSale
                }
                if !soldOutSomewhere {
                    found.append(HistoryViolation(
                        subject: "checkout \(index)", reason: "answered sold_out before as many items as the sale has were bought", witness: [op]))
                }
            default:
                continue
            }
        }
        return found
    }
}
