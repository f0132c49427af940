/// The sale's sequential specification projected on one item of one sale: free, held by one code
/// for one user until an expiry, or sold with one code. Checkout and purchase are decided as
/// docs/spec.md's decision tables say, in the engine's terms: a new hold, the same code again to
/// its holder while live, a takeover of a hold past `expires_at + allowance`, a purchase before
/// `expires_at`, `410` for a code handed out but not (or no longer) buyable, `404` for a code never
/// handed out. What depends on other items or on the user's other holds (`sold_out`, the limit)
/// is judged here only as far as this item shows it (`sold_out` needs this item sold too; a
/// `user_limit_reached` needs the item neither sold nor the user's live hold); the user's count
/// is `UserSpecification`'s.
///
/// Time: an operation's linearization point is somewhere in `[invoke, complete]`, and the clock
/// that decided (an instance's, the hot store's) may be `clockSlack` off the history's. Each time
/// condition is judged as "possible somewhere in that widened window", so a clock difference is
/// never read as a violation; expiries not known exactly (a hold whose answer was lost) are ranges.
struct ItemSpecification: SequentialSpecification {
    let rules: HistoryRules

    /// Users and codes are numbered per partition.
    struct Op {
        let invoke: Int64
        /// The latest time its decision can have been taken: its answer's time, even a `503`'s
        /// (a write may still apply later, but what it writes was decided before); `never` without one.
        let decidedBy: Int64
        let kind: Kind

        enum Kind {
            case checkout(user: Int32, answer: CheckoutAnswer)
            case purchase(code: Int32, answer: PurchaseAnswer)
            case read(HistoryOperation.ItemStatus)
        }
    }

    enum CheckoutAnswer {
        case held(code: Int32, expiresAt: Int64)
        case refused(HistoryOperation.Refusal)
        case unknown
    }

    enum PurchaseAnswer {
        case purchased(user: Int32, at: Int64)
        case expired
        case unknownCode
        case unknown
    }

    struct State: Hashable {
        enum Phase: UInt8 { case free, held, sold }
        var phase = Phase.free
        /// The holder (or buyer), -1 when free.
        var user: Int32 = -1
        /// The hold's (or purchase's) code; -1 when not known (a checkout without an answer).
        var code: Int32 = -1
        /// The hold's expiry lies in `expiresLow...expiresHigh`.
        var expiresLow: Int64 = 0
        var expiresHigh: Int64 = 0
        /// The purchase's `purchased_at`, `HistoryTime.unknown` until an answer shows it.
        var purchasedAt = HistoryTime.unknown
        /// The hold or the sale is the effect of an operation without a definite answer, never
        /// confirmed by one: it may not be durable, and a rebuild of the hot store may drop it
        /// (a `503` promises nothing), so it may vanish at any later point.
        var tentative = false
        /// A `410` was answered for the current hold's code: the hot store's clock passed its expiry,
        /// so it can never be bought.
        var answeredExpired = false
        /// Codes of this item handed out so far (sorted).
        var issued: [Int32] = []

        func wasIssued(_ code: Int32) -> Bool { issued.contains(code) }
        mutating func issue(_ code: Int32) {
            guard code >= 0, !issued.contains(code) else { return }
            issued.append(code)
            issued.sort()
        }
    }

    var initialState: State { State() }

    func successors(of state: State, applying op: Op) -> [State] {
        guard state.tentative else { return apply(op, to: state) }
        var reverted = state
        reverted.tentative = false
        if state.phase == .sold {
            reverted.phase = .held  // the sale vanished, the (definite) hold it completed is back
            reverted.purchasedAt = HistoryTime.unknown
        } else {
            reverted.phase = .free
            reverted.user = -1
            reverted.code = -1
        }
        return apply(op, to: state) + apply(op, to: reverted)
    }

    func apply(_ op: Op, to state: State) -> [State] {
        switch op.kind {
        case .checkout(let user, let answer): checkout(state, op, user, answer)
        case .purchase(let code, let answer): purchase(state, op, code, answer)
        case .read(let status): read(state, op, status)
        }
    }

    // MARK: Time, judged generously

    var slack: Int64 { rules.clockSlack }
    /// The hold may still be live (before its expiry) at some point of the operation's window.
    func mayBeLive(_ s: State, _ op: Op) -> Bool { op.invoke - slack < s.expiresHigh }
    /// The hold may be expired at some point of the window.
    func mayBeExpired(_ s: State, _ op: Op) -> Bool { op.decidedBy.addingSlack(slack) >= s.expiresLow }
    /// Another user may take the hold over: `expires_at + allowance` may have passed.
    func mayBeTakenOver(_ s: State, _ op: Op) -> Bool { op.decidedBy.addingSlack(slack) >= s.expiresLow + rules.clockSkewAllowance }
    /// The hold may still keep others out (`item_held`).
    func mayStillBlock(_ s: State, _ op: Op) -> Bool { op.invoke - slack < s.expiresHigh.addingSlack(rules.clockSkewAllowance) }

    // MARK: Checkout

    /// The state after `user` newly holds the item, when a new hold is possible now.
    func newHold(_ s: State, _ op: Op, user: Int32, code: Int32, low: Int64, high: Int64) -> State? {
        switch s.phase {
        case .sold: return nil
        case .held where s.user == user:
            guard mayBeExpired(s, op) else { return nil }  // a live own hold is answered with its code
        case .held:
            guard mayBeTakenOver(s, op) else { return nil }
        case .free: break
        }
        if code >= 0 && s.wasIssued(code) { return nil }
        var next = s
        next.phase = .held
        next.user = user
        next.code = code
        next.expiresLow = low
        next.expiresHigh = high
        next.answeredExpired = false
        next.tentative = code < 0
        next.issue(code)
        return next
    }

    func checkout(_ s: State, _ op: Op, _ user: Int32, _ answer: CheckoutAnswer) -> [State] {
        let low = op.invoke - slack + rules.holdTTL
        let high = op.decidedBy.addingSlack(slack + rules.holdTTL)
        switch answer {
        case .held(let code, let expiresAt):
            var states: [State] = []
            // The same code again, to its holder, while live (row 3), or binding a hold whose answer was lost.
            if s.phase == .held, s.user == user, s.code == code || s.code < 0,
                s.expiresLow <= expiresAt, expiresAt <= s.expiresHigh, op.invoke - slack < expiresAt, !(s.code < 0 && s.wasIssued(code)) {
                var bound = s
                bound.code = code
                bound.expiresLow = expiresAt
                bound.expiresHigh = expiresAt
                bound.tentative = false
                bound.issue(code)
                states.append(bound)
            }
            // A new hold: its expiry is the deciding clock plus the hold's length.
            if low <= expiresAt, expiresAt <= op.decidedBy.addingSlack(slack + rules.holdTTL),
                let next = newHold(s, op, user: user, code: code, low: expiresAt, high: expiresAt) {
                states.append(next)
            }
            return states
        case .refused(.soldOut), .refused(.itemSold):
            return s.phase == .sold ? [s] : []
        case .refused(.itemHeld):
            return s.phase == .held && s.user != user && mayStillBlock(s, op) ? [s] : []
        case .refused(.userLimitReached):
            if s.phase == .sold { return [] }
            if s.phase == .held && s.user == user && !mayBeExpired(s, op) { return [] }  // row 3 answers first
            return [s]
        case .unknown:
            // (Not taking effect is not placing it: see LinearizabilitySearch.)
            return newHold(s, op, user: user, code: -1, low: low, high: high).map { [$0] } ?? []
        }
    }

    // MARK: Purchase

    func purchase(_ s: State, _ op: Op, _ code: Int32, _ answer: PurchaseAnswer) -> [State] {
        let holdsCode = s.phase == .held && s.code == code
        switch answer {
        case .purchased(let user, let at):
            if s.phase == .sold && s.code == code {
                // Every later purchase with the code answers the same purchase (S7).
                guard s.user == user, s.purchasedAt == HistoryTime.unknown || s.purchasedAt == at else { return [] }
                var next = s
                next.purchasedAt = at
                next.tentative = false
                return [next]
            }
            // Bought from a live hold, for its holder, decided before the expiry (S6, S7).
            // (`purchased_at` is not held to the request's window: an instance deciding on its memory
            // stamps its own clock, which a jump can put seconds off before it notices.)
            guard holdsCode, !s.answeredExpired, s.user == user, mayBeLive(s, op), at < s.expiresHigh else { return [] }
            var next = s
            next.phase = .sold
            next.purchasedAt = at
            next.tentative = false
            return [next]
        case .expired:
            if s.phase == .sold && s.code == code { return [] }  // a bought code answers its purchase
            if holdsCode {
                guard mayBeExpired(s, op) else { return [] }
                var next = s  // no code is sold after a 410 for it
                next.answeredExpired = true
                return [next]
            }
            return s.wasIssued(code) ? [s] : []  // taken over, released, or never bought
        case .unknownCode:
            return s.wasIssued(code) || (s.phase != .free && s.code == code) ? [] : [s]
        case .unknown:
            var states: [State] = []
            if holdsCode && !s.answeredExpired && mayBeLive(s, op) {
                var next = s
                next.phase = .sold
                next.purchasedAt = HistoryTime.unknown
                next.tentative = true
                states.append(next)
            }
            return states
        }
    }

    // MARK: Reads

    func read(_ s: State, _ op: Op, _ status: HistoryOperation.ItemStatus) -> [State] {
        switch status {
        case .sold:
            return s.phase == .sold ? [s] : []
        case .held(let until):
            guard s.phase == .held, s.expiresLow <= until, until <= s.expiresHigh, op.invoke - slack < until else { return [] }
            if s.expiresLow == s.expiresHigh { return [s] }
            var bound = s  // the read shows the expiry of a hold whose answer was lost
            bound.expiresLow = until
            bound.expiresHigh = until
            return [bound]
        case .available:
            return s.phase == .free || (s.phase == .held && mayBeExpired(s, op)) ? [s] : []
        }
    }
}

/// Time sentinels and saturating arithmetic for the specifications.
enum HistoryTime {
    /// "No answer": later than anything.
    static let never = Int64.max / 4
    /// A time not known yet.
    static let unknown = Int64.min
}

extension Int64 {
    /// `self + slack`, staying `never` when it is `never`.
    func addingSlack(_ slack: Int64) -> Int64 { self >= HistoryTime.never ? HistoryTime.never : self + slack }
}
