/// A well-formed checkout request.
public struct CheckoutRequest: Hashable, Sendable {
    public let user: UserID
    public let item: ItemID

    public init(user: UserID, item: ItemID) {
        self.user = user
        self.item = item
    }
}

/// How a checkout ends.
public enum CheckoutResult: Hashable, Sendable {
    case held(Hold)
    /// Refused with this outcome (never `.held`).
    case refused(CheckoutOutcome)
    /// A store stayed unreachable or contention never settled: nothing was promised.
    case unavailable
    /// This instance's clock is further from the hot store's than half the skew allowance: the
    /// time-based rules (expiry, takeover) cannot be applied safely here. Nothing was promised.
    case clockUnsafe
}

/// The protocol of one checkout: read the item and user records, decide, compare-and-set the
/// hot store, persist the attempt durably, answer.
///
/// Order and idempotency:
/// - The hot compare-and-set is the linearization point; the durable write of the attempt comes
///   after it and before the answer, so nothing is answered that is not durable.
/// - A compare-and-set whose reply was lost is resolved by reading again: if it took effect, the
///   item shows this user's live hold and the same code is handed out (`reaffirm`).
/// - The attempt is written under its attempt id, so a retried write is recognised.
/// - Every attempt (a hold or a refusal) is written to the durable store fenced by the generation
///   it was decided under, so nothing decided on a hot view that a rebuild replaced, or on a hot
///   store that belongs to another database, is ever answered. A fenced write asks for a rebuild
///   (which finds nothing to do if another one already replaced the view) and decides again.
/// - Crash after the compare-and-set and before the durable write: the hold was never handed out;
///   it expires like an abandoned hold (or a retry of the same user hands it out, durably).
/// - With a `guess` (what the instance remembers, `HotRecordCache`), a decision to hold is
///   committed without reading first; any other decision, and any refused or unanswered guessed
///   commit, falls back to the read above. The guards make the guessed commit exactly as safe.
public struct CheckoutMachine: Sendable {
    enum State: Sendable {
        case idle
        /// A compare-and-set decided on the guess, before any read.
        case speculating(Hold)
        case reading
        case resolving(HotSnapshot, [HotKey])
        case committing(Hold)
        case persisting(CheckoutAttempt, CheckoutResult)
        case sleeping(then: Resume)
        case awaitingRebuild
        case done
    }

    enum Resume: Sendable {
        case read
        case persist(CheckoutAttempt, CheckoutResult)
    }

    public let request: CheckoutRequest
    /// Set when the machine met a state its protocol rules out (a reply it never asked for, a
    /// resume while not waiting): it then answers as a failure and promises nothing, and its driver
    /// reports this (a violation in the simulator, an error log and a metric in production).
    public internal(set) var brokenInvariant: String?
    public let sale: SaleID
    public let attemptID: AttemptID
    public let attemptedAt: Instant
    let rules: SaleRules
    let policy: ProtocolPolicy
    let newCode: Code
    var budget: RetryBudget
    var state: State = .idle
    var resolved: [ItemID: Versioned] = [:]

    let guess: HotSnapshot?

    /// - Parameters:
    ///   - random: the source of the attempt id and the new code; cryptographically secure in
    ///     production, seeded in the simulator.
    ///   - guess: the answer to `firstRead(for:now:rules:)` as the instance remembers it
    ///     (`HotRecordCache.snapshot(for:)`), or nil to read first.
    public init(request: CheckoutRequest, now: Instant, rules: SaleRules, policy: ProtocolPolicy,
                random: inout some RandomNumberGenerator, guess: HotSnapshot? = nil) {
        self.request = request
        self.rules = rules
        self.policy = policy
        self.attemptedAt = now
        self.sale = SaleCalendar(saleLength: rules.saleLength).sale(at: now)
        self.attemptID = AttemptID.generate(using: &random)
        self.newCode = Code.generate(sale: sale, item: request.item, using: &random)
        self.budget = RetryBudget(policy: policy, seed: random.next())
        self.guess = guess
    }

    /// The read a checkout of `request` started at `now` makes first (and the one a guess answers).
    public static func firstRead(for request: CheckoutRequest, now: Instant, rules: SaleRules) -> HotRead {
        CheckoutRules.firstRead(sale: SaleCalendar(saleLength: rules.saleLength).sale(at: now), item: request.item, user: request.user)
    }

    public mutating func start(now: Instant) -> Step<CheckoutResult> {
        guard case .idle = state else { preconditionFailure("start called twice") }
        if let guess, guess.records.count == 2, guess.counts.count == 1,
            case .hold(let hold, let commit) = CheckoutRules.decide(
                rules: rules, sale: sale, item: request.item, user: request.user, now: now,
                snapshot: guess, resolved: [:], newCode: newCode)
        {
            generationOfCommit = guess.generation
            state = .speculating(hold)
            return .call(.hotCommit(commit))
        }
        return read()
    }

    /// True while a commit decided on a guess is in flight (for coverage).
    public var isSpeculating: Bool {
        if case .speculating = state { return true }
        return false
    }

    mutating func read() -> Step<CheckoutResult> {
        state = .reading
        resolved = [:]
        return .call(.hotRead(CheckoutRules.firstRead(sale: sale, item: request.item, user: request.user)))
    }

    public mutating func receive(_ reply: StoreReply, now: Instant) -> Step<CheckoutResult> {
        switch (state, reply) {
        case (.reading, .hotRead(.snapshot(let snapshot))):
            // A reply of the wrong shape is a store fault, never a reason to crash.
            guard snapshot.records.count == 2, snapshot.counts.count == 1 else { return backoff(then: .read) }
            return decide(snapshot: snapshot, now: now)
        case (.reading, .hotRead(.uninitialized)), (.resolving, .hotRead(.uninitialized)):
            // Waiting for a rebuild spends the restart budget: a rebuild that keeps failing ends
            // in a definite `503`, not in a request that waits for ever.
            guard budget.allowRestart() else { return giveUp() }
            state = .awaitingRebuild
            return .awaitRebuild
        case (.resolving(let first, let keys), .hotRead(.snapshot(let snapshot))):
            guard snapshot.generation == first.generation, snapshot.records.count == keys.count else { return restart() }
            for (key, versioned) in zip(keys, snapshot.records) {
                if case .item(_, let item) = key { resolved[item] = versioned }
            }
            return decide(snapshot: first, now: now)
        case (.reading, .failed), (.resolving, .failed):
            return backoff(then: .read)

        case (.committing(let hold), .hotCommit(.committed)), (.speculating(let hold), .hotCommit(.committed)):
            let attempt = makeAttempt(.held, hold: hold)
            return persist(attempt, .held(hold), fence: generationOfCommit)
        case (.speculating, .hotCommit(.conflict)), (.speculating, .hotCommit(.fenced)), (.speculating, .hotCommit(.expired)),
            (.speculating, .failed(.timeout)):
            // The guess was out of date (or the commit's fate is unknown): read and decide, as
            // without a guess. A timed-out guessed commit that did apply shows up as this user's
            // live hold, handed out by `reaffirm`.
            return read()
        case (.speculating, .failed(.unavailable)):
            return backoff(then: .read)
        case (.committing, .hotCommit(.conflict)), (.committing, .hotCommit(.fenced)), (.committing, .hotCommit(.expired)):
            // (Expired: the store's clock was not near this instance's; the read tells whether
            // the clock is unsafe, or the commit was only held back.)
            return restart()
        case (.committing, .failed(.timeout)):
            // The compare-and-set may have applied: reading again tells, and a hold of ours shows
            // up as this user's live hold, which is then handed out (idempotent).
            return read()
        case (.committing, .failed(.unavailable)):
            return backoff(then: .read)

        case (.persisting(_, let result), .durableWrite(.written)), (.persisting(_, let result), .durableWrite(.alreadyPresent)):
            state = .done
            return .respond(result, followUp: nil)
        case (.persisting, .durableWrite(.fenced)):
            // The hot view this attempt was decided on is not the durable store's (replaced by a
            // rebuild, or foreign): make sure the hot store is rebuilt, then decide again.
            guard budget.allowRestart() else { return giveUp() }
            state = .awaitingRebuild
            return .awaitRebuild
        case (.persisting, .durableWrite(.rejected)):
            return restart()
        case (.persisting(let attempt, let result), .failed):
            return backoff(then: .persist(attempt, result))

        default:
            brokenInvariant = "checkout: unexpected reply \(reply) in state \(state)"
            return giveUp()
        }
    }

    /// Continues after `.sleep` or `.awaitRebuild`.
    public mutating func resume(now: Instant) -> Step<CheckoutResult> {
        switch state {
        case .sleeping(then: .read), .awaitingRebuild:
            return read()
        case .sleeping(then: .persist(let attempt, let result)):
            return persist(attempt, result, fence: fence(for: attempt))
        default:
            brokenInvariant = "checkout: resume in state \(state)"
            return giveUp()
        }
    }

    var generationOfCommit: Generation?

    /// True between the hot compare-and-set of a new hold and its durable record (for coverage).
    public var isPersistingNewHold: Bool {
        if case .persisting(let attempt, _) = state { return attempt.outcome == .held }
        return false
    }

    mutating func decide(snapshot: HotSnapshot, now: Instant) -> Step<CheckoutResult> {
        if let storeTime = snapshot.storeTime,
            !ClockCheck.isSafe(local: now, store: storeTime, rules: rules)
        {
            state = .done
            return .respond(.clockUnsafe, followUp: nil)
        }
        let decision = CheckoutRules.decide(
            rules: rules, sale: sale, item: request.item, user: request.user, now: now,
            snapshot: snapshot, resolved: resolved, newCode: newCode)
        generationOfCommit = snapshot.generation
        switch decision {
        case .refuse(let outcome):
            return persist(makeAttempt(outcome, hold: nil), .refused(outcome), fence: snapshot.generation)
        case .reaffirm(let hold):
            return persist(makeAttempt(.held, hold: hold), .held(hold), fence: snapshot.generation)
        case .resolveSlots(let keys):
            state = .resolving(snapshot, keys)
            return .call(.hotRead(HotRead(keys: keys)))
        case .hold(let hold, let commit):
            state = .committing(hold)
            return .call(.hotCommit(commit))
        }
    }

    func makeAttempt(_ outcome: CheckoutOutcome, hold: Hold?) -> CheckoutAttempt {
        CheckoutAttempt(
            id: attemptID, sale: sale, item: request.item, user: request.user, outcome: outcome,
            code: hold?.code, expiresAt: hold?.expiresAt, attemptedAt: attemptedAt)
    }

    func fence(for attempt: CheckoutAttempt) -> Generation? {
        generationOfCommit
    }

    mutating func persist(_ attempt: CheckoutAttempt, _ result: CheckoutResult, fence: Generation?) -> Step<CheckoutResult> {
        state = .persisting(attempt, result)
        return .call(.durableWrite(.attempt(attempt, fence: fence)))
    }

    mutating func restart() -> Step<CheckoutResult> {
        guard budget.allowRestart() else { return giveUp() }
        return read()
    }

    mutating func backoff(then resume: Resume) -> Step<CheckoutResult> {
        guard let delay = budget.backoffAfterFailure() else { return giveUp() }
        state = .sleeping(then: resume)
        return .sleep(delay)
    }

    mutating func giveUp() -> Step<CheckoutResult> {
        state = .done
        return .respond(.unavailable, followUp: nil)
    }
}
