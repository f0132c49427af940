import Engine
import StoreModel

/// Checks the guarantees S1–S7 (docs/spec.md) as the simulation runs: on every store transition, on
/// every response an instance sends, and on every answer a client receives.
///
/// It sees the simulated stores directly, and knows what every client was told; it never asks
/// the engine, so an engine bug cannot hide from it.
struct Checker: Sendable {
    let rules: SaleRules
    let maxSkew: TimeSpan
    private(set) var violations: [String] = []

    /// Codes whose `200` was sent, and the newest such hold per item.
    private(set) var handedOut: [Code: Hold] = [:]
    private var newestHandedOut: [HotKey: Hold] = [:]
    /// Purchases whose `200` was sent.
    private(set) var acknowledged: [Code: Purchase] = [:]
    private var acknowledgedOfItem: [HotKey: Code] = [:]
    private var acknowledgedPerUser: [HotKey: Int] = [:]
    private var durablePerUser: [HotKey: Int] = [:]
    private var durablePerSale: [SaleID: Int] = [:]
    /// Codes an instance answered `410` for, and when it first did.
    private var answeredExpired: [Code: Instant] = [:]
    /// Generations this service's own rebuilds installed (not another database's).
    private var ourGenerations: Set<Generation> = []
    /// What this service's own hot store held, and when: what every answer is judged against
    /// (`AnswerJudgments.swift`).
    private(set) var timeline = StoreTimeline()
    /// When PostgreSQL first recorded each code as handed out.
    private(set) var recordedAt: [Code: Instant] = [:]
    /// The sales of the run (for the timeline's sold counts).
    let sales: [SaleID]
    /// Purchases whose `200` a client received, and when (first): what the read endpoints must show
    /// (`ViewJudgments.swift`).
    var received = ReceivedPurchases()

    init(rules: SaleRules, maxSkew: TimeSpan, sales: [SaleID] = []) {
        self.rules = rules
        self.maxSkew = maxSkew
        self.sales = sales
    }

    mutating func fail(_ message: String, at now: Instant) {
        violations.append("[\(now)] \(message)")
    }

    // MARK: Store transitions

    /// Before a committed hot write is applied: every put must be a legal transition.
    mutating func hotCommitWillApply(_ commit: HotCommit, hot: HotStoreModel, now: Instant) {
        for (key, newValue) in commit.puts {
            guard case .item = key else { continue }
            let before = hot.record(key).itemRecord
            let after: ItemRecord? = if case .item(let record)? = newValue { record } else { nil }
            if case .held(let hold) = before, case .sold(let purchase)? = after, purchase.code == hold.code, now >= hold.expiresAt {
                fail("S6 violated: code \(hold.code) of \(hold.user) was sold at \(now), after its expiry at \(hold.expiresAt) (decided at \(purchase.purchasedAt))", at: now)
            }
            switch before {
            case .sold(let purchase):
                if after != .sold(purchase) {
                    fail("S1 violated: \(key), sold to \(purchase.user) with \(purchase.code), was overwritten with \(String(describing: after))", at: now)
                }
            case .held(let hold) where handedOut[hold.code] != nil && now < hold.expiresAt:
                switch after {
                case .sold(let purchase) where purchase.code == hold.code: break
                case .held(let renewed) where renewed.user == hold.user: break
                default:
                    fail("S6 violated: \(key) is held by live code \(hold.code) of \(hold.user) until \(hold.expiresAt), but was changed to \(String(describing: after))", at: now)
                }
            default:
                break
            }
        }
    }

    /// After a commit applied: what it wrote, if it was made on this service's own hot store.
    mutating func hotCommitApplied(_ commit: HotCommit, hot: HotStoreModel, now: Instant) {
        guard ourGenerations.contains(commit.generation) else { return }
        for key in commit.puts.keys { if case .item = key { timeline.record(key, hot.record(key).itemRecord, trusted: true, at: now) } }
        for case .sold(let sale) in commit.setAdds.keys { timeline.soldCount(sale, hot.members(.sold(sale)).count, trusted: true, at: now) }
    }

    /// Whether the hot store is this service's own: trusted, with a generation one of its rebuilds installed.
    func isOwn(_ hot: HotStoreModel) -> Bool { hot.trustedGeneration.map { ourGenerations.contains($0) } ?? false }

    /// After the hot store changed all at once without an install: lost, restarted from a copy, or
    /// serving another database.
    mutating func hotStoreReplaced(_ hot: HotStoreModel, now: Instant) {
        timeline.resync(hot, own: isOwn(hot), install: nil, sales: sales, at: now)
    }

    /// After a rebuild's state was installed: every code handed out and still live is there.
    ///
    /// Unless the install is already behind the durable generation: a rebuild whose snapshot was
    /// overtaken by a later rebuild's bump can still install over a Redis that came back without the
    /// later generation (a rollback leaves it no trace of it). Such a hot store serves nothing that can
    /// be acknowledged (every write decided on it is fenced by PostgreSQL, so every answer from it is a
    /// `503`), and the reconcile pass rebuilds it once it sees the hot generation behind; liveness (L1,
    /// L2) holds that repair to account.
    @discardableResult
    mutating func installed(_ hot: HotStoreModel, install: HotInstall, durableGeneration: Generation, now: Instant) -> Bool {
        ourGenerations.insert(install.generation)
        timeline.resync(hot, own: isOwn(hot), install: install, sales: sales, at: now)
        guard install.generation >= durableGeneration else { return false }
        for key in newestHandedOut.keys.sorted(by: { $0.description < $1.description }) {
            guard let hold = newestHandedOut[key] else { continue }
            guard now < hold.expiresAt else {
                newestHandedOut[key] = nil
                continue
            }
            if !Self.holds(hot.record(key).itemRecord, hold.code) {
                fail("S6 violated: the rebuild lost live code \(hold.code) of \(hold.user) (expires \(hold.expiresAt)); \(key) is now \(String(describing: hot.record(key).itemRecord))", at: now)
            }
        }
        return true
    }

    static func holds(_ record: ItemRecord?, _ code: Code) -> Bool {
        switch record {
        case .held(let hold): hold.code == code
        case .sold(let purchase): purchase.code == code
        case nil: false
        }
    }

    /// After a durable write was applied.
    mutating func durableWriteApplied(_ write: DurableWrite, reply: DurableWriteReply, durable: DurableStoreModel, now: Instant) {
        if case .attempt(let attempt, _) = write, let hold = attempt.hold, recordedAt[hold.code] == nil, durable.holdsByCode[hold.code] != nil {
            recordedAt[hold.code] = now
        }
        guard case .purchase(let purchase, _, _) = write else { return }
        switch reply {
        case .rejected where durable.purchase(sale: purchase.sale, item: purchase.item) != nil:
            fail("S1 violated: a second purchase of item \(purchase.item) of sale \(purchase.sale) (code \(purchase.code), user \(purchase.user)) reached PostgreSQL; only its unique constraint stopped it", at: now)
        case .rejected:
            fail("S2 violated: a purchase by \(purchase.user), who already owns \(durable.purchaseCount(sale: purchase.sale, user: purchase.user)) items of sale \(purchase.sale), reached PostgreSQL; only its limit backstop stopped it", at: now)
        case .written:
            if let hold = durable.holdsByCode[purchase.code], hold.user != purchase.user {
                fail("S7 violated: code \(purchase.code) of \(hold.user) was bought for \(purchase.user)", at: now)
            } else if durable.holdsByCode[purchase.code] == nil {
                fail("S7 violated: purchase with code \(purchase.code), which was never recorded as handed out", at: now)
            }
            let userKey = HotKey.user(purchase.sale, purchase.user)
            durablePerUser[userKey, default: 0] += 1
            if durablePerUser[userKey, default: 0] > rules.userLimit {
                fail("S2 violated: \(purchase.user) owns \(durablePerUser[userKey, default: 0]) items of sale \(purchase.sale) in PostgreSQL (limit \(rules.userLimit))", at: now)
            }
            durablePerSale[purchase.sale, default: 0] += 1
            if durablePerSale[purchase.sale, default: 0] > rules.itemsPerSale {
                fail("S3 violated: sale \(purchase.sale) sold \(durablePerSale[purchase.sale, default: 0]) items", at: now)
            }
        case .alreadyPresent, .fenced:
            break
        }
    }

    // MARK: Responses sent by instances

    mutating func checkoutAnswered(_ result: CheckoutResult, attempt: AttemptID, hot: HotStoreModel, durable: DurableStoreModel, now: Instant) {
        let recorded = durable.attempts[attempt]
        switch result {
        case .held(let hold):
            guard let recorded, recorded.hold == hold else {
                fail("S5 violated: code \(hold.code) handed to \(hold.user) is not recorded in PostgreSQL with its holder, item and expiry", at: now)
                return
            }
            let key = HotKey.item(hold.sale, hold.item)
            // (Its own holder may already have renewed it, at an instance whose clock says it expired,
            // and even bought the item with the renewed code.)
            let record = hot.record(key).itemRecord
            let renewedByHolder = switch record {
            case .held(let current): current.user == hold.user && now + maxSkew >= hold.expiresAt
            case .sold(let purchase): purchase.user == hold.user && now + maxSkew >= hold.expiresAt
            case nil: false
            }
            if hot.trustedGeneration == durable.generation && !Self.holds(record, hold.code) && !renewedByHolder && now < hold.expiresAt {
                fail("S6 violated: code \(hold.code) handed to \(hold.user), but \(key) is \(String(describing: hot.record(key).itemRecord))", at: now)
            }
            handedOut[hold.code] = hold
            if let newest = newestHandedOut[key], newest.expiresAt > hold.expiresAt {} else { newestHandedOut[key] = hold }
        case .refused(let outcome):
            if recorded?.outcome != outcome {
                fail("S5 violated: checkout attempt \(attempt) answered \(outcome.rawValue) but PostgreSQL has \(String(describing: recorded?.outcome))", at: now)
            }
        case .unavailable, .clockUnsafe:
            break
        }
    }

    mutating func purchaseAnswered(_ result: PurchaseResult, code: Code?, durable: DurableStoreModel, now: Instant) {
        if result == .codeExpired, let code, answeredExpired[code] == nil { answeredExpired[code] = now }
        guard case .purchased(let purchase) = result else { return }
        if let refusedAt = answeredExpired[purchase.code], acknowledged[purchase.code] == nil {
            fail("S6 violated: code \(purchase.code) of \(purchase.user) was answered 410 code_expired at \(refusedAt), then sold (acknowledged \(now), bought at \(purchase.purchasedAt))", at: now)
        }
        guard durable.purchasesByCode[purchase.code] == purchase else {
            fail("S4 violated: purchase of item \(purchase.item) of sale \(purchase.sale) by \(purchase.user) acknowledged but PostgreSQL has \(String(describing: durable.purchasesByCode[purchase.code]))", at: now)
            return
        }
        if let earlier = acknowledged[purchase.code] {
            if earlier != purchase { fail("S7 violated: code \(purchase.code) acknowledged twice with different purchases", at: now) }
            return
        }
        acknowledged[purchase.code] = purchase
        let itemKey = HotKey.item(purchase.sale, purchase.item)
        if let other = acknowledgedOfItem[itemKey], other != purchase.code {
            fail("S1 violated: \(itemKey) acknowledged as sold with \(other) and with \(purchase.code)", at: now)
        }
        acknowledgedOfItem[itemKey] = purchase.code
        let userKey = HotKey.user(purchase.sale, purchase.user)
        acknowledgedPerUser[userKey, default: 0] += 1
        if acknowledgedPerUser[userKey, default: 0] > rules.userLimit {
            fail("S2 violated: \(purchase.user) was acknowledged \(acknowledgedPerUser[userKey, default: 0]) purchases in sale \(purchase.sale)", at: now)
        }
    }

    // MARK: Answers received by clients

    /// Judges an answer against what the client meant. `sentAt` is the true time the instance answered.
    mutating func clientReceived(_ response: SimResponse, for request: ClientRequest, sentAt: Instant, now: Instant) {
        switch (request.intent, response) {
        case (.malformed, .badRequest):
            break
        case (.malformed, _):
            fail("API: malformed request '\(request.query)' was not refused with 400", at: now)
        case (_, .badRequest(let error)):
            fail("API: well-formed request '\(request.query)' refused with \(error.code)", at: now)
        case (.purchaseOwn(let hold), .purchase(let result)):
            switch result {
            case .purchased(let purchase):
                if purchase.code != hold.code || purchase.user != hold.user {
                    fail("S7 violated: code \(hold.code) of \(hold.user) bought \(purchase)", at: now)
                }
            case .codeExpired, .unknownCode, .unavailable:
                break  // judged when answered (A5, A6)
            }
        case (.purchaseForeign(let hold), .purchase(.purchased(let purchase))):
            if purchase.user != hold.user || purchase.code != hold.code {
                fail("S7 violated: another user's code \(hold.code) bought \(purchase) instead of for its holder \(hold.user)", at: now)
            }
        case (.purchaseForeign, .purchase):
            break
        case (.purchaseGuess(let code), .purchase(let result)):
            if result != .unknownCode && result != .unavailable {
                fail("S7 violated: guessed code \(code) was answered \(result)", at: now)
            }
        case (.checkout, .checkout):
            break
        case (.viewSale, .view), (.viewItem, .view), (.viewPurchases, .view):
            break  // judged by `judgeView` (G1–G3)
        default:
            fail("simulator: answer \(response) does not fit request \(request.intent)", at: now)
        }
    }

    /// A repeated request must get the same answer as the first when nothing changed between.
    /// (A checkout repeated after its code was used, by the holder or by someone presenting it,
    /// rightly answers `item_sold`.)
    mutating func repeatReceived(_ response: SimResponse, first: SimResponse, sentAt: Instant, hot: HotStoreModel,
                                 durable: DurableStoreModel, now: Instant) {
        switch (first, response) {
        case (.purchase(.purchased(let a)), .purchase(let second)):
            if second != .purchased(a) && second != .unavailable {
                fail("S7 violated: a retried purchase of code \(a.code) that had succeeded was answered \(second)", at: now)
            }
        case (.checkout(.held(let hold), _, _), .checkout(let second, _, let sale)):
            // Bought with it: durably, or sold in the hot store with its purchase on its way to PostgreSQL.
            let soldWithIt = if case .sold(let purchase) = hot.record(.item(hold.sale, hold.item)).itemRecord { purchase.code == hold.code } else { false }
            let boughtWithIt = second == .refused(.itemSold) && (durable.purchasesByCode[hold.code] != nil || soldWithIt)
            if sale == hold.sale, sentAt + maxSkew < hold.expiresAt, second != .held(hold), second != .unavailable, second != .clockUnsafe, !boughtWithIt {
                fail("API: a retried checkout of \(hold.user) for item \(hold.item) got \(second) instead of its live code \(hold.code)", at: now)
            }
        default:
            break
        }
    }

    // MARK: The end of the run

    /// The auditor: replays every acknowledged purchase against the final durable store, then
    /// checks the stores agree with each other once faults have stopped.
    /// - Parameter forgotten: sales a rebuild legitimately left out of the hot store (over before it).
    mutating func audit(hot: HotStoreModel, durable: DurableStoreModel, sales: [SaleID], forgotten: (SaleID) -> Bool, now: Instant) {
        for code in acknowledged.keys.sorted(by: { $0.text < $1.text }) {
            guard let purchase = acknowledged[code] else { continue }
            if durable.purchasesByCode[code] != purchase {
                fail("S4 violated (audit): acknowledged purchase \(purchase) is not in PostgreSQL", at: now)
            }
        }
        guard hot.trustedGeneration != nil else {
            fail("L2 violated: the hot store is still uninitialized after faults stopped", at: now)
            return
        }
        for sale in sales {
            let durablePurchases = durable.purchases(of: sale)
            let hotKnowsSale = !hot.members(.sold(sale)).isEmpty || !hot.members(.pending(sale)).isEmpty
            if !hotKnowsSale && forgotten(sale) {
                // Served from PostgreSQL alone now; still check the durable side.
                for purchase in durablePurchases where handedOut[purchase.code] == nil {
                    fail("audit: PostgreSQL has a purchase with code \(purchase.code), which no client was ever given", at: now)
                }
                continue
            }
            var perUser: [UserID: Int] = [:]
            for purchase in durablePurchases {
                perUser[purchase.user, default: 0] += 1
                if handedOut[purchase.code] == nil {
                    fail("audit: PostgreSQL has a purchase with code \(purchase.code), which no client was ever given", at: now)
                }
                if hot.record(.item(sale, purchase.item)).itemRecord != .sold(purchase) {
                    fail("audit: stores disagree on item \(purchase.item) of sale \(sale): PostgreSQL sold it to \(purchase.user), Redis has \(String(describing: hot.record(.item(sale, purchase.item)).itemRecord))", at: now)
                }
            }
            for (user, count) in perUser where count > rules.userLimit {
                fail("S2 violated (audit): \(user) owns \(count) items of sale \(sale)", at: now)
            }
            if hot.members(.sold(sale)).count != durablePurchases.count {
                fail("audit: Redis counts \(hot.members(.sold(sale)).count) sold items in sale \(sale), PostgreSQL \(durablePurchases.count)", at: now)
            }
            if !hot.members(.pending(sale)).isEmpty {
                fail("L2 violated: \(hot.members(.pending(sale)).count) purchases of sale \(sale) still pending after faults stopped", at: now)
            }
        }
    }
}
