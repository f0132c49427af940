/// How a reconciliation pass ends.
public enum ReconcileResult: Hashable, Sendable {
    /// Purchases rolled forward into the durable store (or found already there).
    case reconciled(Int)
    case failed
}

/// Rolls forward purchases left half-done by a crash: items the hot store shows as sold (and
/// lists in `pending`) whose purchase may not be durable yet. Each one is written durably
/// (idempotent, fenced) and then dropped from `pending`. Run periodically by every instance.
///
/// Rolling forward is safe because the compare-and-set to sold already decided the purchase;
/// the client that made it learns of it by retrying, which answers the same `200`.
///
/// A pass also repairs a hot store left behind the durable generation: a rebuild bumps the
/// generation first and installs after, so a rebuild that bumped and then failed (its install
/// timed out) leaves the hot store on an older generation than the durable store's fence. The
/// store is initialized, so no request asks for a rebuild, yet every durable write decided on it
/// is refused as fenced: nothing could be held or bought until some rebuild installs a newer
/// generation (found by the simulator: seed 6088 of a heavy swarm answered `503` for minutes).
/// A hot store ahead of the durable one belongs to another database or to a later moment of a
/// restored one. So each pass compares the two generations and rebuilds when they differ.
public struct ReconcileMachine: Sendable {
    enum State: Sendable {
        case idle
        case listing
        /// The pending sets are read; is the hot store's generation the durable one?
        case checkingGeneration(HotSnapshot)
        case awaitingRebuild
        case reading(Generation, [HotKey])
        case writing(Generation, Purchase, rest: [Purchase], count: Int)
        case removing(Generation, rest: [Purchase], count: Int)
        case done
    }

    let rules: SaleRules
    let policy: ProtocolPolicy
    var state: State = .idle
    /// One rebuild per pass at most; a store that keeps failing is left to the next pass.
    var rebuilt = false
    /// The sales whose pending sets the listing read, in its order.
    var listedSales: [SaleID] = []
    /// See `CheckoutMachine.brokenInvariant`.
    public internal(set) var brokenInvariant: String?

    public init(rules: SaleRules, policy: ProtocolPolicy) {
        self.rules = rules
        self.policy = policy
    }

    /// The sales whose `pending` sets a pass reads: every sale of the last `reconcileHorizon`
    /// (at most `maxReconciledSales`), so a purchase left half-done during a long outage is still
    /// found when the outage ends.
    static func sales(rules: SaleRules, policy: ProtocolPolicy, now: Instant) -> [SaleID] {
        let calendar = SaleCalendar(saleLength: rules.saleLength)
        let shortest = rules.holdTTL + rules.clockSkewAllowance * 2 + policy.reconcileAfter
        let last = calendar.sale(at: now)
        let first = max(calendar.sale(at: now - max(policy.reconcileHorizon, shortest)).rawValue,
                        last.rawValue - Int64(policy.maxReconciledSales) + 1)
        return (first...max(first, last.rawValue)).map(SaleID.init)
    }

    public mutating func start(now: Instant) -> Step<ReconcileResult> {
        state = .listing
        listedSales = Self.sales(rules: rules, policy: policy, now: now)
        return .call(.hotRead(HotRead(keys: [], members: listedSales.map { HotSetKey.pending($0) })))
    }

    public mutating func receive(_ reply: StoreReply, now: Instant) -> Step<ReconcileResult> {
        switch (state, reply) {
        case (.listing, .hotRead(.uninitialized)):
            // The hot store lost its data: rebuild it now rather than waiting for a request to.
            return rebuild()
        case (.listing, .hotRead(.snapshot(let snapshot))):
            state = .checkingGeneration(snapshot)
            return .call(.durableQuery(.generation))
        case (.checkingGeneration(let snapshot), .durableQuery(.generation(let durable))):
            if snapshot.generation != durable { return rebuild() }
            guard snapshot.members.count == listedSales.count else { return finish(.failed) }  // a store fault
            var keys: [HotKey] = []
            for (sale, members) in zip(listedSales, snapshot.members) {
                keys += members.sorted().map { HotKey.item(sale, $0) }
            }
            guard !keys.isEmpty else { return finish(.reconciled(0)) }
            state = .reading(snapshot.generation, keys)
            return .call(.hotRead(HotRead(keys: keys)))
        case (.reading(let generation, let keys), .hotRead(.snapshot(let snapshot))):
            guard snapshot.generation == generation else { return finish(.reconciled(0)) }
            var due: [Purchase] = []
            var stray: [HotKey] = []
            for (key, versioned) in zip(keys, snapshot.records) {
                switch versioned.itemRecord {
                case .sold(let purchase):
                    if purchase.purchasedAt + policy.reconcileAfter <= now { due.append(purchase) }
                default:
                    stray.append(key)  // listed as pending but not sold: nothing to roll forward
                }
            }
            if !stray.isEmpty {
                state = .removing(generation, rest: due, count: 0)
                return .call(.hotCommit(removal(generation, stray)))
            }
            return next(generation, due, count: 0)
        case (.writing(let generation, let purchase, let rest, let count), .durableWrite(.written)),
            (.writing(let generation, let purchase, let rest, let count), .durableWrite(.alreadyPresent)):
            state = .removing(generation, rest: rest, count: count + 1)
            return .call(.hotCommit(removal(generation, [.item(purchase.sale, purchase.item)])))
        case (.removing(let generation, let rest, let count), .hotCommit):
            return next(generation, rest, count: count)
        case (.writing, _), (.listing, _), (.checkingGeneration, _), (.reading, _), (.removing, .failed):
            // Fenced, failed or the store is rebuilding: the next pass will try again.
            return finish(.failed)
        default:
            brokenInvariant = "reconcile: unexpected reply \(reply) in state \(state)"
            return finish(.failed)
        }
    }

    mutating func rebuild() -> Step<ReconcileResult> {
        guard !rebuilt else { return finish(.failed) }
        rebuilt = true
        state = .awaitingRebuild
        return .awaitRebuild
    }

    mutating func next(_ generation: Generation, _ purchases: [Purchase], count: Int) -> Step<ReconcileResult> {
        guard let first = purchases.first else { return finish(.reconciled(count)) }
        state = .writing(generation, first, rest: Array(purchases.dropFirst()), count: count)
        return .call(.durableWrite(.purchase(first, fence: generation, userLimit: rules.userLimit)))
    }

    func removal(_ generation: Generation, _ keys: [HotKey]) -> HotCommit {
        var removes: [HotSetKey: [ItemID]] = [:]
        for case .item(let sale, let item) in keys { removes[.pending(sale), default: []].append(item) }
        return HotCommit(generation: generation, setRemoves: removes)
    }

    mutating func finish(_ result: ReconcileResult) -> Step<ReconcileResult> {
        state = .done
        return .respond(result, followUp: nil)
    }
}
