/// Checks one partition of a history against its projection of the specification: turns the
/// partition's operations into the specification's (numbering users and codes), runs the search,
/// and on failure cuts the partition down to a minimal history that still cannot be linearized.
struct PartitionCheck {
    let key: HistoryPartitions.Key
    let rules: HistoryRules
    let holders: [String: String]
    let budget: Int

    /// nil when linearizable; else the verdict and, when it is a violation, the witness.
    func run(_ operations: [HistoryOperation]) -> SearchVerdict {
        switch key {
        case .item: LinearizabilitySearch(ItemSpecification(rules: rules), budget: budget).check(itemOps(operations))
        case .user: LinearizabilitySearch(UserSpecification(rules: rules), budget: budget).check(userOps(operations))
        }
    }

    func isViolation(_ operations: [HistoryOperation]) -> Bool {
        if case .notLinearizable = run(operations) { return true }
        return false
    }

    // MARK: Translation

    private static func decidedBy(_ op: HistoryOperation) -> Int64 { op.complete ?? HistoryTime.never }

    private static func checkoutAnswer(_ answer: HistoryOperation.Answer, code: (String) -> Int32) -> ItemSpecification.CheckoutAnswer {
        switch answer {
        case .held(let c, let expiresAt): .held(code: code(c), expiresAt: expiresAt)
        case .refused(let refusal): .refused(refusal)
        default: .unknown
        }
    }

    private static func purchaseAnswer(_ answer: HistoryOperation.Answer, user: (String) -> Int32) -> ItemSpecification.PurchaseAnswer {
        switch answer {
        case .purchased(let u, _, _, let at): .purchased(user: user(u), at: at)
        case .codeExpired: .expired
        case .unknownCode: .unknownCode
        default: .unknown
        }
    }

    func itemOps(_ operations: [HistoryOperation]) -> [TimedOperation<ItemSpecification.Op>] {
        let user = Numbering().number
        let code = Numbering().number
        return operations.compactMap { op in
            let kind: ItemSpecification.Op.Kind
            switch (op.call, op.answer) {
            case (.checkout(let u, _, _), let answer):
                kind = .checkout(user: user(u), answer: Self.checkoutAnswer(answer, code: code))
            case (.purchase(let c), let answer):
                kind = .purchase(code: code(c), answer: Self.purchaseAnswer(answer, user: user))
            case (.readItem, .itemStatus(let status)):
                kind = .read(status)
            default:
                return nil
            }
            return TimedOperation(ItemSpecification.Op(invoke: op.invoke, decidedBy: Self.decidedBy(op), kind: kind),
                                  invoke: op.invoke, complete: op.isPending ? nil : op.complete)
        }
    }

    func userOps(_ operations: [HistoryOperation]) -> [TimedOperation<UserSpecification.Op>] {
        let code = Numbering().number
        return operations.compactMap { op in
            let kind: UserSpecification.Op.Kind
            switch (op.call, op.answer) {
            case (.checkout(_, let item, _), let answer):
                kind = .checkout(item: item, answer: Self.checkoutAnswer(answer, code: code))
            case (.purchase(let c), let answer):
                guard let named = CodeText.saleAndItem(c) else { return nil }
                kind = .purchase(item: named.item, code: code(c), answer: Self.purchaseAnswer(answer, user: { _ in 0 }))
            case (.readPurchases, .purchases(let items)):
                kind = .readPurchases(items: items)
            default:
                return nil
            }
            return TimedOperation(UserSpecification.Op(invoke: op.invoke, decidedBy: Self.decidedBy(op), kind: kind),
                                  invoke: op.invoke, complete: op.isPending ? nil : op.complete)
        }
    }

    // MARK: The minimal witness

    /// The partition cut down to a small history that still cannot be linearized: first the
    /// shortest prefix in time that cannot (answers that arrive after the cut become unknown, as
    /// they were at that moment: so the whole history cannot be linearized either), then every
    /// observation (a refusal, a `410`/`404`, a read) whose removal keeps it impossible is removed,
    /// in halves first, then one by one. Only observations: they constrain and never enable, so
    /// removing one never makes an order impossible, and what remains is a true core of the
    /// violation. Holds and purchases stay, since removing one could leave an honest answer
    /// unexplained.
    func minimalWitness(_ operations: [HistoryOperation]) -> [HistoryOperation] {
        let cuts = Array(Set(operations.compactMap { $0.isPending ? nil : $0.complete })).sorted()
        var low = 0
        var high = cuts.count - 1
        var shortest = operations
        while low <= high {
            let mid = (low + high) / 2
            let prefix = Self.prefix(operations, at: cuts[mid])
            if isViolation(prefix) {
                shortest = prefix
                high = mid - 1
            } else {
                low = mid + 1
            }
        }
        var kept = shortest
        var chunk = max(1, kept.count / 2)
        while true {
            var start = 0
            while start < kept.count {
                var candidate: [HistoryOperation] = []
                var removed = 0
                for (index, op) in kept.enumerated() {
                    if index >= start && removed < chunk && Self.isObservation(op) {
                        removed += 1
                    } else {
                        candidate.append(op)
                    }
                }
                if removed > 0 && isViolation(candidate) { kept = candidate } else { start += chunk }
            }
            if chunk == 1 { break }
            chunk = max(1, chunk / 2)
        }
        return kept
    }

    /// An answer that only constrains what came before: removing it never makes a history harder to order.
    static func isObservation(_ op: HistoryOperation) -> Bool {
        switch op.answer {
        case .refused, .codeExpired, .unknownCode, .itemStatus, .purchases, .saleCounts: true
        case .unknown, .ignored, .held, .purchased: false
        }
    }

    static func prefix(_ operations: [HistoryOperation], at cut: Int64) -> [HistoryOperation] {
        operations.compactMap { op in
            guard op.invoke <= cut else { return nil }
            guard let complete = op.complete, complete <= cut else {
                var open = op
                open.complete = nil
                open.answer = .unknown
                if case .readItem = op.call { return nil }
                if case .readPurchases = op.call { return nil }
                return open
            }
            return op
        }
    }
}

/// Numbers the users or codes of one partition 0, 1, 2… in order of first appearance, so the
/// search's states hold small integers instead of strings.
private final class Numbering {
    private var numbers: [String: Int32] = [:]

    func number(_ text: String) -> Int32 {
        if let n = numbers[text] { return n }
        let n = Int32(numbers.count)
        numbers[text] = n
        return n
    }
}
