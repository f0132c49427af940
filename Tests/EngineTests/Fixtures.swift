import Engine

/// Small rules and helpers shared by the engine tests.
enum Fixture {
    static let rules = SaleRules(itemsPerSale: 10, saleLength: .seconds(3_600), userLimit: 2, holdTTL: .seconds(60))
    static let sale = SaleID(500_000)
    static let t0 = Instant.seconds(500_000 * 3_600 + 100)
    static let alice = UserID(unchecked: "alice")
    static let bob = UserID(unchecked: "bob")

    static func code(_ item: Int, _ nonce: String = "AAAAAAAAAAAAAAAAAAAAAA", sale: SaleID = sale) -> Code {
        Code(sale: sale, item: ItemID(item), nonce: nonce)
    }

    static func hold(_ item: Int, _ user: UserID, expires: Instant, nonce: String = "BBBBBBBBBBBBBBBBBBBBBB") -> Hold {
        Hold(code: code(item, nonce), user: user, expiresAt: expires)
    }

    /// A snapshot answering `CheckoutRules.firstRead`.
    static func snapshot(item: ItemRecord?, itemVersion: UInt64 = 1, user: UserRecord?, userVersion: UInt64 = 1, sold: Int = 0) -> HotSnapshot {
        HotSnapshot(
            generation: Generation(1),
            records: [
                Versioned(value: item.map { .item($0) }, version: item == nil ? 0 : itemVersion),
                Versioned(value: user.map { .user($0) }, version: user == nil ? 0 : userVersion),
            ],
            counts: [sold])
    }

    static func decide(_ snapshot: HotSnapshot, item: Int = 1, user: UserID = alice, now: Instant = t0,
                       resolved: [ItemID: Versioned] = [:], rules: SaleRules = rules) -> CheckoutDecision {
        CheckoutRules.decide(
            rules: rules, sale: sale, item: ItemID(item), user: user, now: now, snapshot: snapshot, resolved: resolved,
            newCode: code(item, "NNNNNNNNNNNNNNNNNNNNNN"))
    }
}

/// A deterministic generator for tests.
struct TestRandom: RandomNumberGenerator {
    var inner = SplitMix64(seed: 42)
    mutating func next() -> UInt64 { inner.next() }
}
