import Engine

/// The client side of the simulation: users acting on their behaviour, sending requests
/// through a load balancer to random instances, timing out, retrying and duplicating.
extension Simulation {
    var lastSale: SaleID { SaleID(firstSale.rawValue + Int64(config.sales) - 1) }

    mutating func userActs(_ u: Int) {
        users[u].pendingAction = false
        guard users[u].outstanding == 0 else { return }
        users[u].holds.removeAll { now >= $0.expiresAt }
        if let retry = users[u].retry {
            users[u].retry = nil
            send(retry, from: u)
            return
        }
        if users[u].behaviour != .abandoner && users[u].behaviour != .attacker, let hold = users[u].holds.first {
            send(.purchaseOwn(hold), from: u)
            return
        }
        let current = calendar.sale(at: now)
        guard current <= lastSale else { return }
        if users[u].sale != current { users[u].enter(sale: current) }
        if users[u].finishedSale {
            let next = SaleID(current.rawValue + 1)
            if next <= lastSale { queue.schedule(.userActs(user: u), at: arrival(of: u, saleStart: calendar.start(of: next))) }
            return
        }
        if users[u].behaviour.isEagerBuyer && users[u].rng.chance(0.03) { return sendView(u) }
        let limit = config.rules.userLimit
        let items = config.rules.itemsPerSale
        users[u].checkoutsSent += 1
        switch users[u].behaviour {
        case .attacker:
            if users[u].checkoutsSent > 15 { return finishSale(u) }
            attack(u)
        case .abandoner:
            if users[u].checkoutsSent > 2 { return finishSale(u) }
            send(.checkout(randomItem(u)), from: u)
        case .hoarder where users[u].checkoutsSent == 1:
            // Trap 7: more checkouts than the limit, at once, spread over every instance.
            var chosen = Set<Int>()
            for n in 0..<min(items, limit + 3) {
                var item = randomItem(u)
                while chosen.contains(item.rawValue) && chosen.count < items { item = randomItem(u) }
                chosen.insert(item.rawValue)
                send(.checkout(item), from: u, instance: n % config.instances)
            }
            mark("concurrent_checkouts_one_user")
        case .racer:
            let item = users[u].rng.chance(0.7) ? ItemID(users[u].rng.int(1...min(5, items))) : randomItem(u)
            send(.checkout(item), from: u)
        default:
            if users[u].owned >= limit { return finishSale(u) }
            send(.checkout(users[u].consecutiveRefusals >= 2 ? browsedItem(u) : randomItem(u)), from: u)
        }
    }

    /// A look at the sale, at an item or at the user's own purchases, as a buyer's page would make.
    mutating func sendView(_ u: Int) {
        let sale = users[u].sale
        // (`/sale` reads every item of the sale, as the server's summary does: the rarest.)
        switch users[u].rng.int(0...9) {
        case 0: send(.viewSale, from: u)
        case 1...5: send(.viewItem(sale, randomItem(u)), from: u)
        default: send(.viewPurchases(sale), from: u)
        }
    }

    mutating func finishSale(_ u: Int) {
        users[u].finishedSale = true
        scheduleAct(u, after: .milliseconds(1))
    }

    mutating func randomItem(_ u: Int) -> ItemID { ItemID(users[u].rng.int(1...config.rules.itemsPerSale)) }

    /// An item the catalog shows as not sold (it may still be held).
    mutating func browsedItem(_ u: Int) -> ItemID {
        let sale = users[u].sale
        if unsold[sale] == nil { unsold[sale] = UnsoldItems(count: config.rules.itemsPerSale) }
        return unsold[sale]?.pick(&users[u].rng) ?? randomItem(u)
    }

    mutating func scheduleAct(_ u: Int, after delay: TimeSpan) {
        guard users[u].outstanding == 0, !users[u].pendingAction else { return }
        users[u].pendingAction = true
        queue.schedule(.userActs(user: u), at: now + delay)
    }

    /// Sends `intent` as the user's request; duplicators send it twice at once.
    mutating func send(_ intent: Intent, from u: Int, instance: Int? = nil) {
        let primary = sendRequest(intent, from: u, instance: instance, shadow: false, repeatOf: nil)
        if users[u].behaviour == .duplicator && config.instances > 1 {
            let other = (requests[primary].instance + 1 + users[u].rng.int(0...(config.instances - 2))) % config.instances
            sendRequest(intent, from: u, instance: other, shadow: true, repeatOf: primary)
            mark("duplicate_request")
        }
    }

    @discardableResult
    mutating func sendRequest(_ intent: Intent, from u: Int, instance: Int?, shadow: Bool, repeatOf: Int?, awaited: Bool = false) -> Int {
        let id = requests.count
        let target = instance ?? users[u].rng.int(0...(config.instances - 1))
        var request = ClientRequest(
            id: id, user: u, intent: intent, query: query(for: intent, user: u), instance: target, sentAt: now,
            sale: calendar.sale(at: now))
        request.shadow = shadow
        request.repeatOf = repeatOf
        request.awaited = awaited
        request.ordinal = users[u].requestsSent
        users[u].requestsSent += 1
        requests.append(request)
        if !shadow || awaited { users[u].outstanding += 1 }
        queue.schedule(.requestArrives(request: id), at: now + networkDelay(draw(.requestTrip, identity(ofRequest: id))))
        queue.schedule(.clientTimeout(request: id), at: now + Self.clientTimeout)
        return id
    }

    mutating func query(for intent: Intent, user u: Int) -> String {
        switch intent {
        case .checkout(let item):
            return users[u].rng.chance(0.5) ? "user_id=\(users[u].id)&id=\(item)" : "id=\(item)&user_id=\(users[u].id)"
        case .purchaseOwn(let hold), .purchaseForeign(let hold):
            return "code=\(hold.code.text)"
        case .purchaseGuess(let code):
            return "code=\(code.text)"
        case .malformed(let checkout):
            let options = checkout ? malformedCheckouts : malformedPurchases
            return options[users[u].rng.int(0...(options.count - 1))]
        case .viewSale:
            return "GET /sale"
        case .viewItem(let sale, let item):
            return "GET /sales/\(sale)/items/\(item)"
        case .viewPurchases(let sale):
            return "GET /users/\(users[u].id)/purchases?sale=\(sale)"
        }
    }

    var malformedCheckouts: [String] {
        let n = config.rules.itemsPerSale
        return [
            "user_id=&id=5", "user_id=bad%20user&id=5", "user_id=u1&id=0", "user_id=u1&id=\(n + 1)", "user_id=u1&id=abc",
            "user_id=u1&id=5&id=6", "user_id=u1&id=5&debug=1", "id=5", "user_id=u1", "user_id=\(String(repeating: "a", count: 65))&id=1",
            "user_id=u1&id=%zz", "user_id=%ff%fe&id=1", String(repeating: "x", count: 4_000), "user_id=u1&id=-1", "user_id=u1&id=1e3",
            "user_id=u%00&id=1", "user_id=u1&user_id=u2&id=1", "=&=", "user_id=u1&id=99999999999999999999",
        ]
    }

    var malformedPurchases: [String] {
        ["code=", "code=abc", "code=1.2.short", "", "code=1.2.AAAAAAAAAAAAAAAAAAAAAA&code=x", "code=%C0%AF", "code=1.0.AAAAAAAAAAAAAAAAAAAAAA",
         "code=1.2.AAAAAAAAAAAAAAAAAAAA!!", "coda=1.2.AAAAAAAAAAAAAAAAAAAAAA", "code=\(String(repeating: "9", count: 70))"]
    }

    mutating func attack(_ u: Int) {
        switch users[u].rng.int(0...2) {
        case 0:
            let code = Code(
                sale: calendar.sale(at: now), item: randomItem(u), nonce: Base64URL.encode(users[u].rng.next(), users[u].rng.next()))
            send(.purchaseGuess(code), from: u)
        case 1 where !leaked.isEmpty:
            send(.purchaseForeign(leaked[users[u].rng.int(0...(leaked.count - 1))]), from: u)
            mark("foreign_code_presented")
        default:
            send(.malformed(checkout: users[u].rng.chance(0.6)), from: u)
        }
    }

    // MARK: Answers

    mutating func responseArrives(_ id: Int, _ response: SimResponse) {
        guard !requests[id].abandoned, !requests[id].answered else { return }
        requests[id].answered = true
        history.received(response, for: id, at: now)
        let request = requests[id]
        if isWatched(request) { tell("user \(users[request.user].id) receives the answer to request \(id): \(response)") }
        let sentAt = respondedAt[id] ?? now
        checker.clientReceived(response, for: request, sentAt: sentAt, now: now)
        switch (request.intent, response) {
        case (.purchaseOwn, .purchase(.purchased(let purchase))): checker.purchaseReceived(purchase, byItsBuyer: true, at: now)
        case (_, .purchase(.purchased(let purchase))): checker.purchaseReceived(purchase, byItsBuyer: false, at: now)
        case (_, .view(let answer)): checker.judgeView(answer, of: users[request.user].id, sentAt: request.sentAt, now: now)
        default: break
        }
        countOutcome(response)
        if request.sentAt >= faultsEnd + Self.settle {
            switch response {
            case .checkout(.unavailable, _, _), .checkout(.clockUnsafe, _, _), .purchase(.unavailable): unavailableAfterSettle += 1
            default: break
            }
        }
        // Only a repeat sent after the first answer must match it; concurrent duplicates may
        // legitimately be ordered either way.
        if users[request.user].behaviour == .retrier {
            if let first = request.repeatOf.flatMap({ firstAnswers[$0] }) {
                checker.repeatReceived(response, first: first, sentAt: sentAt, hot: hot, durable: durable, now: now)
            } else {
                firstAnswers[id] = response
            }
        }
        if request.shadow {
            if request.awaited {
                users[request.user].outstanding -= 1
                scheduleAct(request.user, after: users[request.user].thinkTime())
            }
            return
        }
        users[request.user].outstanding -= 1
        react(request, response)
    }

    mutating func clientTimeout(_ id: Int) {
        guard !requests[id].answered, !requests[id].abandoned else { return }
        requests[id].abandoned = true
        count("client_timeout")
        let request = requests[id]
        if request.shadow {
            if request.awaited {
                users[request.user].outstanding -= 1
                scheduleAct(request.user, after: .milliseconds(100))
            }
            return
        }
        let u = request.user
        users[u].outstanding -= 1
        if users[u].behaviour != .attacker && (users[u].behaviour == .retrier || users[u].rng.chance(0.8)) {
            users[u].retry = request.intent
            mark("client_timeout_retry")
        }
        scheduleAct(u, after: .milliseconds(users[u].rng.micros(100, 1_000)))
    }

    mutating func react(_ request: ClientRequest, _ response: SimResponse) {
        let u = request.user
        switch (request.intent, response) {
        case (.checkout, .checkout(.held(let hold), _, _)):
            if !users[u].holds.contains(where: { $0.code == hold.code }) { users[u].holds.append(hold) }
            users[u].consecutiveRefusals = 0
            if leaked.count < 512 { leaked.append(hold) } else { leaked[users[u].rng.int(0...511)] = hold }
            if users[u].behaviour == .retrier {
                sendRequest(request.intent, from: u, instance: nil, shadow: true, repeatOf: request.id, awaited: true)
            }
            scheduleAct(u, after: users[u].thinkTime())
        case (.checkout, .checkout(.refused(let outcome), _, _)):
            switch outcome {
            case .soldOut:
                if request.sale == users[u].sale { users[u].finishedSale = true }
                scheduleAct(u, after: users[u].thinkTime())
            case .userLimitReached:
                // At the limit with what it owns, a buyer is done; at the limit with holds it has not
                // bought (yet, or in time), it comes back later, as a real one would.
                mark("user_limit_hit")
                if request.sale == users[u].sale && users[u].owned >= config.rules.userLimit { users[u].finishedSale = true }
                scheduleAct(u, after: users[u].refusalDelay())
            default:
                scheduleAct(u, after: users[u].refusalDelay())
            }
        case (_, .checkout(.unavailable, _, _)), (_, .checkout(.clockUnsafe, _, _)), (_, .purchase(.unavailable)):
            users[u].retry = request.intent
            scheduleAct(u, after: .milliseconds(users[u].rng.micros(100, 1_000)))
        case (.purchaseOwn(let hold), .purchase(let result)):
            users[u].holds.removeAll { $0.code == hold.code }
            if case .purchased(let purchase) = result {
                if purchase.sale == users[u].sale { users[u].owned += 1 }
                if users[u].behaviour == .retrier {
                    sendRequest(request.intent, from: u, instance: nil, shadow: true, repeatOf: request.id, awaited: true)
                }
            }
            scheduleAct(u, after: users[u].thinkTime())
        default:
            scheduleAct(u, after: .milliseconds(users[u].rng.micros(200, 2_000)))
        }
    }

    mutating func countOutcome(_ response: SimResponse) {
        switch response {
        case .checkout(.held, _, _): count("checkout held")
        case .checkout(.refused(let outcome), _, _): count("checkout \(outcome.rawValue)")
        case .checkout(.unavailable, _, _): count("checkout unavailable")
        case .checkout(.clockUnsafe, _, _): count("checkout clock_unsafe")
        case .purchase(.purchased): count("purchase purchased")
        case .purchase(.codeExpired): count("purchase code_expired")
        case .purchase(.unknownCode): count("purchase unknown_code")
        case .purchase(.unavailable): count("purchase unavailable")
        case .badRequest: count("bad_request")
        case .view(.sale): count("view sale")
        case .view(.item): count("view item")
        case .view(.purchases): count("view purchases")
        case .view(.unavailable): count("view unavailable")
        }
    }
}
