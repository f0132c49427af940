import Engine

/// Where each `PlantedBug` enters a simulated instance: the seams between the engine and the
/// world around it. The engine itself is the production engine, untouched; the simulator alters
/// what goes in and out of it, as the wrong line in a handler, an adapter or a configuration would.
/// (Bugs of the simulated Redis itself, and of answers, are planted where those are simulated:
/// `SimStores.swift`, `SimServers.swift`.)
extension PlantedBug {
    /// The rules the instances are configured with. The checker keeps judging by the true ones.
    func instanceRules(_ rules: SaleRules) -> SaleRules {
        var configured = rules
        switch self {
        case .limitOffByOne: configured.userLimit += 1
        case .noSkewAllowance: configured.clockSkewAllowance = .zero
        default: break
        }
        return configured
    }

    /// A store call as the buggy instance sends it.
    func outgoing(_ call: StoreCall) -> StoreCall {
        switch (self, call) {
        case (.unguardedUserRecord, .hotCommit(var commit)):
            for key in commit.guards.keys { if case .user = key { commit.guards[key] = nil } }
            return .hotCommit(commit)
        case (.purchaseCommitIgnoresExpiry, .hotCommit(var commit)) where commit.validFrom == nil:
            commit.deadline = nil  // a purchase's commit: a deadline and no validity start
            return .hotCommit(commit)
        case (.clockCheckSkipped, .hotCommit(var commit)) where commit.validFrom != nil:
            commit.validFrom = nil  // a checkout's commit: its validity window
            commit.deadline = nil
            return .hotCommit(commit)
        case (.unfencedDurableWrites, .durableWrite(.attempt(let attempt, _))):
            return .durableWrite(.attempt(attempt, fence: nil))
        case (.unfencedDurableWrites, .durableWrite(.purchase(let purchase, _, let limit))):
            return .durableWrite(.purchase(purchase, fence: nil, userLimit: limit))
        case (.unfencedRefusals, .durableWrite(.attempt(let attempt, _))) where attempt.hold == nil:
            return .durableWrite(.attempt(attempt, fence: nil))
        case (.rebuildSkipsHolds, .hotInstall(var install)):
            for (key, value) in install.records {
                if case .item(.held) = value { install.records[key] = nil }
                if case .user(var record) = value {
                    record.slots = []
                    install.records[key] = .user(record)
                }
            }
            return .hotInstall(install)
        default:
            return call
        }
    }

    /// A reply as the buggy instance reads it.
    func incoming(_ reply: StoreReply, to call: StoreCall, rules: SaleRules) -> StoreReply {
        switch (self, call, reply) {
        case (.soldOutOffByOne, .hotRead(let read), .hotRead(.snapshot(var snapshot))) where read.keys.count == 2 && snapshot.counts.count == 1:
            snapshot.counts[0] += 1  // a checkout's first read: item, user, sold count
            return .hotRead(.snapshot(snapshot))
        case (.codesExpireEarly, .hotRead(let read), .hotRead(.snapshot(var snapshot))) where read.keys.count == 1 && read.counts.isEmpty:
            snapshot.storeTime = snapshot.storeTime.map { $0 + rules.clockSkewAllowance }  // a purchase's read
            return .hotRead(.snapshot(snapshot))
        case (.limitIgnoresHolds, .hotRead(let read), .hotRead(.snapshot(var snapshot))) where snapshot.records.count == read.keys.count:
            for (index, key) in read.keys.enumerated() {
                guard case .user = key, case .user(var record)? = snapshot.records[index].value else { continue }
                record.slots = []
                snapshot.records[index].value = .user(record)
            }
            return .hotRead(.snapshot(snapshot))
        case (.clockCheckSkipped, .hotRead, .hotRead(.snapshot(var snapshot))):
            snapshot.storeTime = nil
            return .hotRead(.snapshot(snapshot))
        default:
            return reply
        }
    }

    /// A batch's replies as the buggy connection hands them out: off by one position, as a pipeline
    /// reader that skipped a reply (or a driver that sorted the replies and not the calls) would.
    func fannedOut(_ replies: [StoreReply]) -> [StoreReply] {
        guard self == .batchRepliesMisrouted, replies.count > 1 else { return replies }
        return Array(replies.dropFirst()) + [replies[0]]
    }

    /// A checkout's answer as the buggy handler sends it. `handedOutBefore`: its code was answered
    /// to a request before (this one found the user's own live hold).
    func answered(_ result: CheckoutResult, handedOutBefore: Bool) -> CheckoutResult {
        switch (self, result) {
        case (.heldAnsweredAsSold, .refused(.itemHeld)): .refused(.itemSold)
        case (.repeatCheckoutAnsweredHeld, .held) where handedOutBefore: .refused(.itemHeld)
        default: result
        }
    }

    /// A purchase's answer as the buggy handler sends it.
    func answered(_ result: PurchaseResult) -> PurchaseResult {
        self == .expiredAnsweredUnknown && result == .codeExpired ? .unknownCode : result
    }

    /// A purchase's code as the buggy handler hands it to the engine.
    func parsed(_ code: Code, at now: Instant, calendar: SaleCalendar) -> Code {
        guard self == .purchaseUsesCurrentSale else { return code }
        return Code(sale: calendar.sale(at: now), item: code.item, nonce: code.nonce)
    }
}
