import Engine

/// What the trace hash takes from an event beyond its kind and subject: the contents of every
/// store reply and of every response a client receives, so that two runs answering differently
/// (another code, another expiry, another refusal) cannot share a hash. Hand-written rather than
/// `hashValue` (seeded per process) or `String(describing:)` (slow on millions of events).
extension TraceHash {
    mutating func mixContents(of event: Event) {
        switch event {
        case .responseArrives(_, let response): mix(response)
        case .batchReplyArrives(_, let replies): for reply in replies { mix(reply) }
        default: break
        }
    }

    mutating func mix(_ text: String) {
        for byte in text.utf8 { mix(UInt64(byte)) }
    }

    mutating func mix(_ instant: Instant?) { mix(UInt64(bitPattern: instant?.microseconds ?? Int64.min)) }

    mutating func mix(_ code: Code) {
        mix(UInt64(bitPattern: code.sale.rawValue) << 24 ^ UInt64(code.item.rawValue))
        mix(code.nonce)
    }

    mutating func mix(_ record: ItemRecord?) {
        switch record {
        case nil: mix(0)
        case .held(let hold):
            mix(1)
            mix(hold.code)
            mix(hold.user.rawValue)
            mix(hold.expiresAt)
        case .sold(let purchase):
            mix(2)
            mix(purchase)
        }
    }

    mutating func mix(_ purchase: Purchase) {
        mix(purchase.code)
        mix(purchase.user.rawValue)
        mix(purchase.purchasedAt)
    }

    mutating func mix(_ response: SimResponse) {
        switch response {
        case .checkout(let result, let attempt, let sale):
            mix(10)
            mix(UInt64(bitPattern: sale.rawValue))
            mix(attempt.rawValue)
            switch result {
            case .held(let hold): mix(.held(hold))
            case .refused(let outcome): mix(outcome.rawValue)
            case .unavailable: mix(11)
            case .clockUnsafe: mix(12)
            }
        case .purchase(let result):
            mix(20)
            switch result {
            case .purchased(let purchase): mix(purchase)
            case .unknownCode: mix(21)
            case .codeExpired: mix(22)
            case .unavailable: mix(23)
            }
        case .badRequest(let error):
            mix(30)
            mix(error.code)
        case .view(let answer):
            mix(40)
            switch answer {
            case .sale(let summary):
                mix(UInt64(bitPattern: summary.sale.rawValue))
                mix(UInt64(summary.sold))
                mix(UInt64(summary.held))
            case .item(let sale, let item, let status):
                mix(UInt64(bitPattern: sale.rawValue))
                mix(UInt64(item.rawValue))
                mix(status.name)
            case .purchases(let sale, let purchases):
                mix(UInt64(bitPattern: sale.rawValue))
                for purchase in purchases { mix(purchase) }
            case .unavailable:
                mix(41)
            }
        }
    }

    mutating func mix(_ reply: StoreReply) {
        switch reply {
        case .hotRead(.snapshot(let snapshot)):
            mix(40)
            mix(UInt64(bitPattern: snapshot.generation.rawValue))
            mix(snapshot.storeTime)
            for versioned in snapshot.records {
                mix(versioned.version)
                switch versioned.value {
                case .item(let record)?: mix(record)
                case .user(let record)?:
                    mix(UInt64(record.slots.count) << 32 | UInt64(record.purchased.count))
                    for slot in record.slots { mix(slot.code) }
                case nil: mix(0)
                }
            }
            for count in snapshot.counts { mix(UInt64(count)) }
            for members in snapshot.members { mix(UInt64(members.count)) }
        case .hotRead(.uninitialized): mix(41)
        case .hotCommit(let result): mix(String(describing: result))
        case .hotInstall(let result): mix(String(describing: result))
        case .durableWrite(let result): mix(String(describing: result))
        case .durableQuery(let result):
            mix(50)
            switch result {
            case .codeHistory(let history):
                mix(history.hold.map { ItemRecord.held($0) })
                mix(history.purchase.map { ItemRecord.sold($0) })
            case .snapshot(let snapshot):
                mix(UInt64(snapshot.purchases.count) << 32 | UInt64(snapshot.holds.count))
                for purchase in snapshot.purchases { mix(purchase) }
                for hold in snapshot.holds { mix(.held(hold)) }
            case .purchases(let purchases): for purchase in purchases { mix(purchase) }
            case .generation(let generation): mix(UInt64(bitPattern: generation.rawValue))
            }
        case .durableGeneration(let generation): mix(UInt64(bitPattern: generation.rawValue))
        case .failed(let failure): mix(failure == .timeout ? 60 : 61)
        }
    }
}
