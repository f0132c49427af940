/// The sale's sequential specification projected on one user in one sale: the user limit. What
/// counts for a checkout of item `I` (docs/spec.md, "The user limit"): every item the user bought,
/// and every hold of the user on another item until its `expires_at + allowance`. A new hold and
/// an `item_held` (row 5, after the limit's row 4) need the count below `userLimit`;
/// `user_limit_reached` needs it at `userLimit`. Judged generously in time, as in
/// `ItemSpecification`: a hold counts for sure only while its `expires_at + allowance` is surely
/// ahead, and may count while it may be ahead. Whether each hold and purchase is legal is the item
/// partition's business; here a purchase only turns a hold into an item that counts for good.
struct UserSpecification: SequentialSpecification {
    let rules: HistoryRules

    struct Op {
        let invoke: Int64
        /// As `ItemSpecification.Op.decidedBy`.
        let decidedBy: Int64
        let kind: Kind

        enum Kind {
            case checkout(item: Int64, answer: ItemSpecification.CheckoutAnswer)
            case purchase(item: Int64, code: Int32, answer: ItemSpecification.PurchaseAnswer)
            /// `GET /users/{user}/purchases`: every item listed must be bought (the durable store
            /// has a purchase only after the hot store sold it).
            case readPurchases(items: [Int64])
        }
    }

    struct Slot: Hashable {
        var item: Int64
        var code: Int32
        var expiresLow: Int64
        var expiresHigh: Int64
        var bought: Bool
        /// The hold, or its purchase, came from an operation without a definite answer: it may
        /// have vanished since (a rebuild drops what is not durable).
        var tentative = false
    }

    struct State: Hashable {
        /// The user's latest hold per item, sorted by item.
        var slots: [Slot] = []

        func index(of item: Int64) -> Int? { slots.firstIndex { $0.item == item } }
        mutating func put(_ slot: Slot) {
            if let at = index(of: slot.item) { slots[at] = slot } else {
                slots.append(slot)
                slots.sort { $0.item < $1.item }
            }
        }
    }

    var initialState: State { State() }

    var slack: Int64 { rules.clockSlack }

    /// Items other than `item` that surely count during the operation's window.
    func surelyCounted(_ s: State, except item: Int64, _ op: Op) -> Int {
        s.slots.reduce(0) { n, slot in
            n + (slot.item != item && !slot.tentative
                && (slot.bought || op.decidedBy.addingSlack(slack) < slot.expiresLow + rules.clockSkewAllowance) ? 1 : 0)
        }
    }

    /// Items other than `item` that may count at some point of the window.
    func mayBeCounted(_ s: State, except item: Int64, _ op: Op) -> Int {
        s.slots.reduce(0) { n, slot in
            n + (slot.item != item && (slot.bought || op.invoke - slack < slot.expiresHigh.addingSlack(rules.clockSkewAllowance)) ? 1 : 0)
        }
    }

    func successors(of state: State, applying op: Op) -> [State] {
        switch op.kind {
        case .checkout(let item, let answer):
            return checkout(state, op, item, answer)
        case .purchase(let item, let code, let answer):
            guard let at = state.index(of: item), !state.slots[at].bought else {
                if case .purchased = answer, state.index(of: item) == nil {
                    // Bought with a code whose checkout this history does not show: it counts from now on.
                    var next = state
                    next.put(Slot(item: item, code: code, expiresLow: 0, expiresHigh: 0, bought: true))
                    return [next]
                }
                return [state]
            }
            let slot = state.slots[at]
            guard slot.code == code || slot.code < 0 else { return [state] }
            var bought = state
            bought.slots[at].bought = true
            bought.slots[at].code = code
            switch answer {
            case .purchased:
                bought.slots[at].tentative = false
                return [bought]
            case .unknown:
                bought.slots[at].tentative = true
                return [bought]  // (not taking effect is not placing it: see LinearizabilitySearch)
            case .expired, .unknownCode: return [state]
            }
        case .readPurchases(let items):
            for item in items {
                guard let at = state.index(of: item), state.slots[at].bought else { return [] }
            }
            return [state]
        }
    }

    func checkout(_ s: State, _ op: Op, _ item: Int64, _ answer: ItemSpecification.CheckoutAnswer) -> [State] {
        let belowLimit = surelyCounted(s, except: item, op) < rules.userLimit
        switch answer {
        case .held(let code, let expiresAt):
            var states: [State] = []
            if let at = s.index(of: item), s.slots[at].code == code || s.slots[at].code < 0, !s.slots[at].bought {
                var again = s  // the same code again (row 3): no count is taken
                again.slots[at].code = code
                again.slots[at].expiresLow = expiresAt
                again.slots[at].expiresHigh = expiresAt
                again.slots[at].tentative = false
                states.append(again)
            }
            if belowLimit {
                var next = s
                next.put(Slot(item: item, code: code, expiresLow: expiresAt, expiresHigh: expiresAt, bought: false))
                states.append(next)
            }
            return states
        case .refused(.userLimitReached):
            return mayBeCounted(s, except: item, op) >= rules.userLimit ? [s] : []
        case .refused(.itemHeld):
            return belowLimit ? [s] : []
        case .refused(.soldOut), .refused(.itemSold):
            return [s]
        case .unknown:
            var states: [State] = []
            if s.index(of: item).map({ !s.slots[$0].bought }) ?? true {
                var next = s
                next.put(Slot(item: item, code: -1, expiresLow: op.invoke - slack + rules.holdTTL,
                              expiresHigh: op.decidedBy.addingSlack(slack + rules.holdTTL), bought: false, tentative: true))
                states.append(next)
            }
            return states
        }
    }
}
