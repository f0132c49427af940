import Engine

/// Purchases whose `200` a client received, and when it first did: what a read endpoint asked
/// afterwards must show.
struct ReceivedPurchases: Sendable {
    /// Per sale, the receipt times of its acknowledged purchases, in order (one per code).
    private(set) var timesPerSale: [SaleID: [Instant]] = [:]
    /// Per item, when its purchase was first acknowledged.
    private(set) var itemAcknowledgedAt: [HotKey: Instant] = [:]
    /// Per user and sale, the codes acknowledged to that user as their buyer, and when.
    private(set) var toBuyer: [HotKey: [(code: Code, at: Instant)]] = [:]
    private var codes: Set<Code> = []
    private var codesToBuyer: Set<Code> = []

    mutating func note(_ purchase: Purchase, byItsBuyer: Bool, at now: Instant) {
        if codes.insert(purchase.code).inserted {
            timesPerSale[purchase.sale, default: []].append(now)
            itemAcknowledgedAt[.item(purchase.sale, purchase.item)] = now
        }
        if byItsBuyer && codesToBuyer.insert(purchase.code).inserted {
            toBuyer[.user(purchase.sale, purchase.user), default: []].append((purchase.code, now))
        }
    }

    /// Purchases of `sale` acknowledged at or before `instant`.
    func count(_ sale: SaleID, atOrBefore instant: Instant) -> Int {
        let times = timesPerSale[sale] ?? []
        var low = 0, high = times.count
        while low < high {
            let middle = (low + high) / 2
            if times[middle] <= instant { low = middle + 1 } else { high = middle }
        }
        return low
    }
}

/// The read endpoint judgments G1–G3: what `GET /sale`, `GET /sales/{sale}/items/{item}` and
/// `GET /users/{user}/purchases` answer is never behind what clients had been acknowledged before
/// the request was sent. docs/simulator.md lists them.
extension Checker {
    mutating func purchaseReceived(_ purchase: Purchase, byItsBuyer: Bool, at now: Instant) {
        received.note(purchase, byItsBuyer: byItsBuyer, at: now)
    }

    mutating func judgeView(_ answer: ViewAnswer, of user: UserID, sentAt: Instant, now: Instant) {
        switch answer {
        case .sale(let summary):
            let acknowledged = received.count(summary.sale, atOrBefore: sentAt)
            if summary.sold < acknowledged {
                fail("G1 violated: GET /sale (sent \(sentAt)) answered \(summary.sold) sold in sale \(summary.sale), but \(acknowledged) purchases had been acknowledged before", at: now)
            }
        case .item(let sale, let item, let status):
            // docs/spec.md: a sale a rebuild left out of the hot store (over, it can no longer
            // change) shows its items `available`; so may an item this service's own store held no
            // record of during the request.
            let leftOut = timeline.some(.item(sale, item), in: sentAt...now) { record, _ in record == nil }
            if let at = received.itemAcknowledgedAt[.item(sale, item)], at <= sentAt, status != .sold, !leftOut {
                fail("G2 violated: GET /sales/\(sale)/items/\(item) (sent \(sentAt)) answered \(status.name), but its purchase had been acknowledged at \(at)", at: now)
            }
        case .purchases(let sale, let purchases):
            let shown = Set(purchases.map(\.code))
            for (code, at) in received.toBuyer[.user(sale, user)] ?? [] where at <= sentAt && !shown.contains(code) {
                fail("G3 violated: GET /users/\(user)/purchases?sale=\(sale) (sent \(sentAt)) left out \(code), acknowledged to \(user) at \(at)", at: now)
                return
            }
        case .unavailable:
            break
        }
    }
}
