import Engine
import History

/// What the simulated clients saw, as a history for the linearizability checker
/// (docs/histories.md): one operation per request a client sent (malformed ones aside), with the
/// true time it was sent and the true time its answer arrived (none when it never did).
struct SimHistory: Sendable {
    /// Arrival time and answer, per request id.
    private(set) var answers: [Int: (at: Instant, response: SimResponse)] = [:]

    mutating func received(_ response: SimResponse, for request: Int, at now: Instant) {
        answers[request] = (now, response)
    }

    static func rules(_ rules: SaleRules) -> HistoryRules {
        HistoryRules(
            itemsPerSale: rules.itemsPerSale, userLimit: rules.userLimit, holdTTL: rules.holdTTL.microseconds,
            saleLength: rules.saleLength.microseconds, clockSkewAllowance: rules.clockSkewAllowance.microseconds)
    }

    /// The operations, in the order the requests were sent.
    func operations(requests: [ClientRequest], users: [SimUser]) -> [HistoryOperation] {
        requests.compactMap { request in
            let answer = answers[request.id]
            let user = users[request.user].id.rawValue
            let call: HistoryOperation.Call
            switch request.intent {
            case .checkout(let item):
                var sale: Int64?
                if case .checkout(_, _, let decided)? = answer?.response { sale = decided.rawValue }
                call = .checkout(user: user, item: Int64(item.rawValue), sale: sale)
            case .purchaseOwn(let hold), .purchaseForeign(let hold):
                call = .purchase(code: hold.code.text)
            case .purchaseGuess(let code):
                call = .purchase(code: code.text)
            case .malformed, .viewSale, .viewItem, .viewPurchases:
                return nil  // (the history's specification has no reads; G1–G3 judge them)
            }
            return HistoryOperation(
                client: user, call: call, invoke: request.sentAt.microseconds, complete: answer?.at.microseconds,
                answer: answer.map { Self.answer($0.response) } ?? .unknown)
        }
    }

    static func answer(_ response: SimResponse) -> HistoryOperation.Answer {
        switch response {
        case .checkout(.held(let hold), _, _): .held(code: hold.code.text, expiresAt: hold.expiresAt.microseconds)
        case .checkout(.refused(let outcome), _, _): HistoryOperation.Refusal(rawValue: outcome.rawValue).map { .refused($0) } ?? .unknown
        case .checkout(.unavailable, _, _), .checkout(.clockUnsafe, _, _), .purchase(.unavailable): .unknown
        case .purchase(.purchased(let p)):
            .purchased(user: p.user.rawValue, sale: p.sale.rawValue, item: Int64(p.item.rawValue), purchasedAt: p.purchasedAt.microseconds)
        case .purchase(.codeExpired): .codeExpired
        case .purchase(.unknownCode): .unknownCode
        case .badRequest, .view: .ignored
        }
    }
}

extension Simulation {
    /// The run's client-visible history.
    public var historyOperations: [HistoryOperation] { history.operations(requests: requests, users: users) }

    public var historyRules: HistoryRules { SimHistory.rules(config.rules) }
}
