/// How a purchase ends.
public enum PurchaseResult: Hashable, Sendable {
    case purchased(Purchase)
    case unknownCode
    case codeExpired
    /// A store stayed unreachable or contention never settled: nothing was promised.
    case unavailable
}

/// The protocol of one purchase: read the code's item record, decide, compare-and-set it to sold
/// (adding the item to the sale's `sold` and `pending` sets), make the purchase durable, answer,
/// then drop it from `pending`.
///
/// Order and idempotency:
/// - The compare-and-set on the item record is the linearization point. It carries the code's
///   expiry as a deadline the store checks against its own clock, the clock a read's `storeTime`
///   gives for deciding `410`: one clock decides expiry, so no purchase commits after a `410`.
/// - The purchase is durable in the durable store (idempotent by code, fenced by generation,
///   refused if it would take its user past the limit) before `200` is answered.
/// - A `404` or `410` drawn from the durable history is given only if the hot record it explains
///   was read from the durable store's generation; a fenced write or a history from another
///   generation asks for a rebuild and decides again.
/// - A retry after a lost reply finds the item sold with this code and answers the same purchase,
///   after writing it durably again (a no-op if it was).
/// - Crash between the compare-and-set and the durable write: the item stays in `pending`; the
///   client's retry or the `ReconcileMachine` rolls the purchase forward.
/// - With a `guess` of the item record (`HotRecordCache`), a decision to buy is committed without
///   reading first; any other decision, and any refused or unanswered guessed commit, falls back
///   to the read. The guard on the item's version makes the guessed commit exactly as safe.
public struct PurchaseMachine: Sendable {
    enum State: Sendable {
        case idle
        /// A compare-and-set decided on the guess, before any read.
        case speculating(Purchase, Generation)
        case reading(HotKey)
        case committing(Purchase, Generation)
        case persisting(Purchase, Generation?)
        /// The durable store already had a purchase with this code: answer with the stored one.
        case confirming(Purchase, Generation?)
        case consulting(HotKey, Versioned, Generation)
        case sleeping(then: Resume)
        case awaitingRebuild
        case done
    }

    enum Resume: Sendable {
        case read
        case persist(Purchase, Generation?)
        case confirm(Purchase, Generation?)
        case consult(HotKey, Versioned, Generation)
    }

    public let code: Code
    /// See `CheckoutMachine.brokenInvariant`.
    public internal(set) var brokenInvariant: String?
    let userLimit: Int
    let policy: ProtocolPolicy
    var budget: RetryBudget
    var state: State = .idle

    let guess: HotSnapshot?

    /// - Parameter guess: the answer to `firstRead(for:)` as the instance
    ///   remembers it (`HotRecordCache.snapshot(for:)`), or nil to read first.
    public init(code: Code, rules: SaleRules, policy: ProtocolPolicy, random: inout some RandomNumberGenerator,
                guess: HotSnapshot? = nil) {
        self.code = code
        self.userLimit = rules.userLimit
        self.policy = policy
        self.budget = RetryBudget(policy: policy, seed: random.next())
        self.guess = guess
    }

    /// The read a purchase of `code` started at `now` makes first (and the one a guess answers).
    public static func firstRead(for code: Code) -> HotRead {
        HotRead(keys: [PurchaseRules.itemKey(for: code)])
    }

    /// True while a commit decided on a guess is in flight (for coverage).
    public var isSpeculating: Bool {
        if case .speculating = state { return true }
        return false
    }

    /// True while a compare-and-set to sold, decided on a read, is in flight (for coverage).
    public var isCommitting: Bool {
        if case .committing = state { return true }
        return false
    }

    /// True between the compare-and-set to sold and the durable purchase (for coverage).
    public var isPersistingPurchase: Bool {
        switch state {
        case .persisting, .confirming: return true
        default: return false
        }
    }

    public mutating func start(now: Instant) -> Step<PurchaseResult> {
        guard case .idle = state else { preconditionFailure("start called twice") }
        let key = PurchaseRules.itemKey(for: code)
        if let guess, guess.records.count == 1,
            case .buy(let purchase, let commit) = PurchaseRules.decide(
                code: code, now: now, key: key, record: guess.records[0], generation: guess.generation)
        {
            state = .speculating(purchase, guess.generation)
            return .call(.hotCommit(commit))
        }
        return read(now: now)
    }

    mutating func read(now: Instant) -> Step<PurchaseResult> {
        let key = PurchaseRules.itemKey(for: code)
        state = .reading(key)
        return .call(.hotRead(HotRead(keys: [key])))
    }

    public mutating func receive(_ reply: StoreReply, now: Instant) -> Step<PurchaseResult> {
        switch (state, reply) {
        case (.reading(let key), .hotRead(.snapshot(let snapshot))) where snapshot.records.count == 1:
            let record = snapshot.records[0]
            // Expiry by the hot store's clock, the one that also enforces the commit's deadline.
            switch PurchaseRules.decide(code: code, now: snapshot.storeTime ?? now, key: key, record: record, generation: snapshot.generation) {
            case .completed(let purchase):
                return persist(purchase, fence: snapshot.generation)
            case .buy(let purchase, let commit):
                state = .committing(purchase, snapshot.generation)
                return .call(.hotCommit(commit))
            case .expired:
                return finish(.codeExpired)
            case .consultHistory:
                return consult(key, record, snapshot.generation)
            }
        case (.reading, .hotRead(.uninitialized)):
            return awaitRebuild()  // spends the restart budget, so a failing rebuild ends in a `503`
        case (.reading, .hotRead(.snapshot)):
            return backoff(then: .read)  // a reply of the wrong shape is a store fault
        case (.reading, .failed):
            return backoff(then: .read)

        case (.committing(let purchase, let generation), .hotCommit(.committed)),
            (.speculating(let purchase, let generation), .hotCommit(.committed)):
            return persist(purchase, fence: generation)
        case (.committing, .hotCommit(.expired)):
            // The hold still stood, but the code expired by the store's clock: a late commit (a
            // paused or slow instance) never sells a code another instance may have answered 410.
            return finish(.codeExpired)
        case (.speculating, .hotCommit(.conflict)), (.speculating, .hotCommit(.fenced)), (.speculating, .hotCommit(.expired)),
            (.speculating, .failed(.timeout)):
            // The guess was out of date (or the commit's fate is unknown: a read then finds the
            // item sold with this code and answers the same purchase).
            return read(now: now)
        case (.speculating, .failed(.unavailable)):
            return backoff(then: .read)
        case (.committing, .hotCommit(.conflict)), (.committing, .hotCommit(.fenced)):
            return restart(now: now)
        case (.committing, .failed(.timeout)):
            return read(now: now)  // it may have applied: the item then shows sold with this code
        case (.committing, .failed(.unavailable)):
            return backoff(then: .read)

        case (.persisting(let purchase, let fence), .durableWrite(.written)):
            return answer(purchase, fence: fence)
        case (.persisting(let purchase, let fence), .durableWrite(.alreadyPresent)):
            // Usually our own earlier write whose reply was lost; but it may be another instance's
            // purchase of the same code (decided on a newer hot view after a rebuild). The durable
            // record is the truth, and every answer for this code must be the same: read it.
            return confirm(purchase, fence: fence)
        case (.confirming(_, let fence), .durableQuery(.codeHistory(let history))):
            guard let stored = history.purchase else { return finish(.unavailable) }
            return answer(stored, fence: fence)
        case (.confirming(let purchase, let fence), .failed):
            return backoff(then: .confirm(purchase, fence))
        case (.persisting, .durableWrite(.fenced)):
            // The hot view this purchase was decided on is not the durable store's: make sure the
            // hot store is rebuilt, then decide again (a purchase already sold there is found sold).
            return awaitRebuild()
        case (.persisting, .durableWrite(.rejected)):
            // The schema's last line of defence refused a second purchase of this item: a bug
            // upstream. Promise nothing.
            brokenInvariant = "purchase of \(code) rejected by the durable store's constraints"
            return finish(.unavailable)
        case (.persisting(let purchase, let fence), .failed):
            return backoff(then: .persist(purchase, fence))

        case (.consulting(_, _, let generation), .durableQuery(.codeHistory(let history))):
            // The hot record that did not know this code came from a hot store whose generation is
            // not the durable store's: it may be foreign or replaced, so its silence proves nothing.
            if history.generation != generation { return awaitRebuild() }
            switch PurchaseRules.decide(history: history) {
            case .completed(let purchase): return finish(.purchased(purchase))
            case .expired: return finish(.codeExpired)
            case .unknown: return finish(.unknownCode)
            }
        case (.consulting(let key, let record, let generation), .failed):
            return backoff(then: .consult(key, record, generation))

        default:
            brokenInvariant = "purchase: unexpected reply \(reply) in state \(state)"
            return finish(.unavailable)
        }
    }

    public mutating func resume(now: Instant) -> Step<PurchaseResult> {
        switch state {
        case .sleeping(then: .read), .awaitingRebuild:
            return read(now: now)
        case .sleeping(then: .persist(let purchase, let fence)):
            return persist(purchase, fence: fence)
        case .sleeping(then: .consult(let key, let record, let generation)):
            return consult(key, record, generation)
        case .sleeping(then: .confirm(let purchase, let fence)):
            return confirm(purchase, fence: fence)
        default:
            brokenInvariant = "purchase: resume in state \(state)"
            return finish(.unavailable)
        }
    }

    mutating func persist(_ purchase: Purchase, fence: Generation?) -> Step<PurchaseResult> {
        state = .persisting(purchase, fence)
        return .call(.durableWrite(.purchase(purchase, fence: fence, userLimit: userLimit)))
    }

    mutating func confirm(_ purchase: Purchase, fence: Generation?) -> Step<PurchaseResult> {
        state = .confirming(purchase, fence)
        return .call(.durableQuery(.codeHistory(code)))
    }

    /// Answers `200` with the durable purchase, then drops it from `pending`.
    mutating func answer(_ purchase: Purchase, fence: Generation?) -> Step<PurchaseResult> {
        state = .done
        let tidy = fence.map {
            StoreCall.hotCommit(HotCommit(generation: $0, setRemoves: [.pending(purchase.sale): [purchase.item]]))
        }
        return .respond(.purchased(purchase), followUp: tidy)
    }

    mutating func consult(_ key: HotKey, _ record: Versioned, _ generation: Generation) -> Step<PurchaseResult> {
        state = .consulting(key, record, generation)
        return .call(.durableQuery(.codeHistory(code)))
    }

    mutating func awaitRebuild() -> Step<PurchaseResult> {
        guard budget.allowRestart() else { return finish(.unavailable) }
        state = .awaitingRebuild
        return .awaitRebuild
    }

    mutating func restart(now: Instant) -> Step<PurchaseResult> {
        guard budget.allowRestart() else { return finish(.unavailable) }
        return read(now: now)
    }

    mutating func backoff(then resume: Resume) -> Step<PurchaseResult> {
        guard let delay = budget.backoffAfterFailure() else { return finish(.unavailable) }
        state = .sleeping(then: resume)
        return .sleep(delay)
    }

    mutating func finish(_ result: PurchaseResult) -> Step<PurchaseResult> {
        state = .done
        return .respond(result, followUp: nil)
    }
}
