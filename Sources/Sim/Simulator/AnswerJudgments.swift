import Engine
import StoreModel

/// The answer judgments A1–A7: every checkout and purchase answer an instance sends is judged
/// against what this service's own stores held between the request's send by its client and the
/// answer (the window in which the request could have taken effect), as the `StoreTimeline`
/// recorded it. Judged when sent rather than when received, so answers lost on the way are judged
/// too (the window is then the tighter one). docs/simulator.md lists them.
extension Checker {
    /// How long past its expiry a hold may still stand in the way (`item_held`) or count against
    /// its user's limit: the allowance a taking instance waits, plus how far that instance's clock
    /// may be from the store's when it decides (`ClockCheck`; the configured skew when it is off).
    var holdTolerance: TimeSpan {
        rules.clockSkewAllowance + (ClockCheck.isEnabled(rules: rules) ? ClockCheck.maximumOffset(rules: rules) : maxSkew)
    }

    /// A1–A4: a checkout's refusal of `item` of `sale` to `user`, answered at the end of `window`.
    mutating func judgeCheckout(_ result: CheckoutResult, sale: SaleID, item: ItemID, user: UserID, window: ClosedRange<Instant>) {
        guard case .refused(let outcome) = result else { return }
        let key = HotKey.item(sale, item)
        let tolerance = holdTolerance
        let now = window.upperBound
        let during = "between \(window.lowerBound) and \(now)"
        switch outcome {
        case .itemSold:
            if !timeline.some(key, in: window, { record, _ in if case .sold = record { true } else { false } }) {
                fail("A1 violated: \(user) was answered item_sold for \(key), which was not sold \(during)", at: now)
            }
        case .itemHeld:
            let heldByAnother = timeline.some(key, in: window) { record, at in
                if case .held(let hold) = record { hold.user != user && at < hold.expiresAt + tolerance } else { false }
            }
            if !heldByAnother {
                fail("A2 violated: \(user) was answered item_held for \(key), which no other user held \(during)", at: now)
            }
        case .userLimitReached:
            let most = timeline.mostCounted(.user(sale, user), in: window, tolerance: tolerance)
            if most < rules.userLimit {
                fail("A3 violated: \(user) was answered user_limit_reached in sale \(sale) (checking out \(key)) with at most \(most) of \(rules.userLimit) items held or bought \(during)", at: now)
            }
        case .soldOut:
            if !timeline.soldOut(sale, itemsPerSale: rules.itemsPerSale, in: window) {
                fail("A4 violated: \(user) was answered sold_out for sale \(sale) (checking out \(key)), which was not sold out \(during)", at: now)
            }
        case .held:
            break
        }
    }

    /// A5–A7: a purchase answer for `code` (as the client sent it), answered at the end of `window`.
    mutating func judgePurchase(_ result: PurchaseResult, code: Code, durable: DurableStoreModel, window: ClosedRange<Instant>) {
        let key = PurchaseRules.itemKey(for: code)
        let now = window.upperBound
        let during = "between \(window.lowerBound) and \(now)"
        let expiresAt = durable.holdsByCode[code]?.expiresAt
        switch result {
        case .codeExpired:
            if let expiresAt, expiresAt <= now { return }
            let takenOver = timeline.some(key, in: window) { record, _ in !Self.holds(record, code) }
            if !takenOver {
                fail("A5 violated: code \(code) (expires \(String(describing: expiresAt))) was answered 410 code_expired, but it was live and its item's holder \(during)", at: now)
            }
        case .unknownCode:
            if let recorded = recordedAt[code], recorded <= window.lowerBound {
                fail("A6 violated: code \(code), recorded as handed out at \(recorded), was answered 404 unknown_code \(during)", at: now)
            }
        case .purchased(let purchase):
            guard let expiresAt, let soldAt = timeline.firstSold(key, code: purchase.code) else { return }
            if soldAt >= expiresAt {
                fail("A7 violated: code \(purchase.code) of \(purchase.user) was answered 200, but its item was sold at \(soldAt), after the code expired at \(expiresAt)", at: now)
            }
        case .unavailable:
            break
        }
    }
}
