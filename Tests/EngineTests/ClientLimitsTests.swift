import Engine
import Testing

@Suite("Per-client abuse limits: checkout rate and live holds")
struct ClientLimitsTests {
    typealias Client = ClientLimits.Client
    static let mallory = Client.address("203.0.113.7")
    static let alice = Client.user(UserID(unchecked: "alice"))
    static let t0 = Fixture.t0

    /// 2 checkouts a second after a burst of 4; at most 3 live holds.
    static let policy = ClientLimits.Policy(interval: .milliseconds(500), burst: 4, maxLiveHolds: 3)

    static func hold(_ item: Int, until: Instant) -> ClientLimits.Hold {
        ClientLimits.Hold(sale: Fixture.sale, item: ItemID(item), liveUntil: until)
    }

    /// Admits and at once settles with no hold (a refused checkout), returning the admission.
    static func attempt(_ limits: inout ClientLimits, _ client: Client, at now: Instant) -> ClientLimits.Admission {
        let admission = limits.admitCheckout(client, now: now)
        if case .admitted(let ticket) = admission { limits.settle(ticket, hold: nil, now: now) }
        return admission
    }

    static func isAdmitted(_ admission: ClientLimits.Admission) -> Bool {
        if case .admitted = admission { return true }
        return false
    }

    @Test func clientKeysNameTheirKind() {
        #expect(Self.alice.rawValue == "user:alice")
        #expect(Self.mallory.rawValue == "addr:203.0.113.7")
        #expect(Client.user(UserID(unchecked: "1.2.3.4")) != Client.address("1.2.3.4"))
    }

    @Test func burstThenSteadyRate() {
        var limits = ClientLimits(policy: Self.policy)
        for _ in 0..<4 { #expect(Self.isAdmitted(Self.attempt(&limits, Self.mallory, at: Self.t0))) }
        let refused = Self.attempt(&limits, Self.mallory, at: Self.t0)
        #expect(refused == .refused(.rateLimited, retryAfter: .milliseconds(500)))
        // Refusals for rate cost nothing: the wait stays the same.
        #expect(Self.attempt(&limits, Self.mallory, at: Self.t0 + .milliseconds(100))
            == .refused(.rateLimited, retryAfter: .milliseconds(400)))
        // One token back every 500 ms.
        #expect(Self.isAdmitted(Self.attempt(&limits, Self.mallory, at: Self.t0 + .milliseconds(500))))
        #expect(!Self.isAdmitted(Self.attempt(&limits, Self.mallory, at: Self.t0 + .milliseconds(700))))
        #expect(Self.isAdmitted(Self.attempt(&limits, Self.mallory, at: Self.t0 + .milliseconds(1_000))))
        // After a long pause the full burst is back, and no more than the burst.
        let later = Self.t0 + .seconds(60)
        let admitted = (0..<10).filter { _ in Self.isAdmitted(Self.attempt(&limits, Self.mallory, at: later)) }.count
        #expect(admitted == 4)
    }

    @Test func clientsAreIndependent() {
        var limits = ClientLimits(policy: Self.policy)
        for _ in 0..<4 { _ = Self.attempt(&limits, Self.mallory, at: Self.t0) }
        #expect(!Self.isAdmitted(Self.attempt(&limits, Self.mallory, at: Self.t0)))
        #expect(Self.isAdmitted(Self.attempt(&limits, Self.alice, at: Self.t0)))
    }

    @Test func liveHoldsAreCappedUntilTheyExpire() {
        var limits = ClientLimits(policy: ClientLimits.Policy(interval: .zero, burst: 0, maxLiveHolds: 3))
        for item in 1...3 {
            guard case .admitted(let ticket) = limits.admitCheckout(Self.mallory, now: Self.t0) else {
                Issue.record("checkout \(item) refused")
                return
            }
            limits.settle(ticket, hold: Self.hold(item, until: Self.t0 + .seconds(60 + Int64(item))), now: Self.t0)
        }
        #expect(limits.liveHolds(of: Self.mallory, now: Self.t0) == 3)
        // The earliest hold frees its slot at t0 + 61 s.
        #expect(limits.admitCheckout(Self.mallory, now: Self.t0 + .seconds(1)) == .refused(.tooManyHolds, retryAfter: .seconds(60)))
        #expect(Self.isAdmitted(limits.admitCheckout(Self.alice, now: Self.t0)))
        // Once the first hold has expired, one more.
        let later = Self.t0 + .seconds(61)
        #expect(limits.liveHolds(of: Self.mallory, now: later) == 2)
        #expect(Self.isAdmitted(limits.admitCheckout(Self.mallory, now: later)))
        #expect(!Self.isAdmitted(limits.admitCheckout(Self.mallory, now: later)))
    }

    /// Admission reserves a slot at once, so checkouts of one client in flight together cannot
    /// all slip under the cap; a checkout answered without a hold gives its slot back.
    @Test func checkoutsInFlightReserveTheirSlots() {
        var limits = ClientLimits(policy: ClientLimits.Policy(interval: .zero, burst: 0, maxLiveHolds: 2))
        guard case .admitted(let first) = limits.admitCheckout(Self.mallory, now: Self.t0),
            case .admitted(let second) = limits.admitCheckout(Self.mallory, now: Self.t0)
        else {
            Issue.record("the first two checkouts must be admitted")
            return
        }
        guard case .refused(.tooManyHolds, _) = limits.admitCheckout(Self.mallory, now: Self.t0) else {
            Issue.record("a third checkout in flight must be refused")
            return
        }
        limits.settle(first, hold: nil, now: Self.t0)  // e.g. 409 item_held: no hold
        limits.settle(second, hold: Self.hold(1, until: Self.t0 + .seconds(60)), now: Self.t0)
        #expect(limits.liveHolds(of: Self.mallory, now: Self.t0) == 1)
        #expect(Self.isAdmitted(limits.admitCheckout(Self.mallory, now: Self.t0)))
    }

    /// A reservation never settled stops counting after the timeout (a safety net).
    @Test func unsettledReservationsTimeOut() {
        var limits = ClientLimits(policy: ClientLimits.Policy(interval: .zero, burst: 0, maxLiveHolds: 1, reservationTimeout: .seconds(5)))
        #expect(Self.isAdmitted(limits.admitCheckout(Self.mallory, now: Self.t0)))
        #expect(limits.admitCheckout(Self.mallory, now: Self.t0 + .seconds(2)) == .refused(.tooManyHolds, retryAfter: .seconds(3)))
        #expect(Self.isAdmitted(limits.admitCheckout(Self.mallory, now: Self.t0 + .seconds(5))))
    }

    /// The same code handed out again counts once; buying an item frees its slot.
    @Test func repeatsCountOnceAndPurchasesRelease() {
        var limits = ClientLimits(policy: ClientLimits.Policy(interval: .zero, burst: 0, maxLiveHolds: 2))
        for _ in 0..<3 {
            guard case .admitted(let ticket) = limits.admitCheckout(Self.mallory, now: Self.t0) else {
                Issue.record("a repeat of a held item must be admitted while under the cap")
                return
            }
            limits.settle(ticket, hold: Self.hold(7, until: Self.t0 + .seconds(60)), now: Self.t0)
        }
        #expect(limits.liveHolds(of: Self.mallory, now: Self.t0) == 1)
        guard case .admitted(let other) = limits.admitCheckout(Self.mallory, now: Self.t0) else {
            Issue.record("a second item must be admitted")
            return
        }
        limits.settle(other, hold: Self.hold(8, until: Self.t0 + .seconds(60)), now: Self.t0)
        #expect(!Self.isAdmitted(limits.admitCheckout(Self.mallory, now: Self.t0)))
        limits.release(Self.mallory, sale: Fixture.sale, item: ItemID(7))
        #expect(limits.liveHolds(of: Self.mallory, now: Self.t0) == 1)
        #expect(Self.isAdmitted(limits.admitCheckout(Self.mallory, now: Self.t0)))
    }

    /// The 50-made-up-users attack from one client: 500 checkouts at once get at most the cap.
    @Test func oneClientCannotHoldMoreThanItsShare() {
        let rules = SaleRules(itemsPerSale: 500, saleLength: .seconds(3_600), userLimit: 10, holdTTL: .seconds(60))
        let cap = ClientLimits.Policy.defaultMaxLiveHolds(rules: rules)
        #expect(cap == 10)
        var limits = ClientLimits(policy: ClientLimits.Policy(interval: ClientLimits.Policy.interval(perSecond: 10), burst: 40, maxLiveHolds: cap))
        var held = 0
        var refusals: [ClientLimits.Refusal: Int] = [:]
        for item in 1...500 {
            let now = Self.t0 + TimeSpan(microseconds: Int64(item) * 300)  // 500 checkouts in 0.15 s
            switch limits.admitCheckout(Self.mallory, now: now) {
            case .admitted(let ticket):
                held += 1
                limits.settle(ticket, hold: Self.hold(item, until: now + .seconds(62)), now: now)
            case .refused(let reason, let retryAfter):
                #expect(retryAfter > .zero)
                refusals[reason, default: 0] += 1
            }
        }
        #expect(held == cap)
        // The rate lets the burst (40) and the 0.15 s worth of refill through; the cap stops the rest of those.
        let passedRate = 500 - (refusals[.rateLimited] ?? 0)
        #expect((40...42).contains(passedRate), "\(refusals)")
        #expect(refusals[.tooManyHolds] == passedRate - cap)
    }

    @Test func defaultCapIsAShareOfTheSaleNeverBelowTheUserLimit() {
        var rules = SaleRules(itemsPerSale: 10_000, saleLength: .seconds(3_600), userLimit: 10, holdTTL: .seconds(60))
        #expect(ClientLimits.Policy.defaultMaxLiveHolds(rules: rules) == 100)
        rules.itemsPerSale = 150
        #expect(ClientLimits.Policy.defaultMaxLiveHolds(rules: rules) == 10)
        rules.itemsPerSale = 1_001
        #expect(ClientLimits.Policy.defaultMaxLiveHolds(rules: rules) == 11)
        #expect(ClientLimits.Policy.interval(perSecond: 10) == .milliseconds(100))
        #expect(ClientLimits.Policy.interval(perSecond: 0) == .zero)
    }

    /// With both limits off everything goes through and nothing is remembered (a table of every
    /// client's holds, scanned and grown on every checkout, cost the bench's one client ~14 % of
    /// the server's CPU, docs/bench.md).
    @Test func limitsOffLetEverythingThrough() {
        let off = ClientLimits.Policy(interval: .zero, burst: 0, maxLiveHolds: 0)
        #expect(off.limitsNothing)
        #expect(!Self.policy.limitsNothing)
        #expect(!ClientLimits.Policy(interval: .zero, burst: 4, maxLiveHolds: 3).limitsNothing)
        var limits = ClientLimits(policy: off)
        for item in 1...1_000 {
            guard case .admitted(let ticket) = limits.admitCheckout(Self.mallory, now: Self.t0) else {
                Issue.record("refused with both limits off")
                return
            }
            #expect(!ticket.tracked)
            limits.settle(ticket, hold: Self.hold(item, until: Self.t0 + .seconds(600)), now: Self.t0)
        }
        #expect(limits.trackedClients == 0)
        #expect(limits.liveHolds(of: Self.mallory, now: Self.t0) == 0)
        #expect(limits.untrackedAdmissions == 0)
    }

    /// Memory stays bounded: idle clients are swept, and a full table lets new clients through
    /// untracked (counted) rather than growing.
    @Test func idleClientsAreSweptAndTheTableIsBounded() {
        let policy = ClientLimits.Policy(
            interval: .seconds(1), burst: 2, maxLiveHolds: 5, maxTrackedClients: 3, sweepInterval: .seconds(30))
        var limits = ClientLimits(policy: policy)
        for n in 0..<3 { _ = Self.attempt(&limits, .address("198.51.100.\(n)"), at: Self.t0) }
        #expect(limits.trackedClients == 3)
        // Full, and nobody idle yet (each spent a token 0 s ago): the fourth goes untracked.
        let fourth = limits.admitCheckout(.address("198.51.100.9"), now: Self.t0)
        guard case .admitted(let untracked) = fourth else {
            Issue.record("a new client is let through when the table is full")
            return
        }
        #expect(!untracked.tracked)
        #expect(limits.untrackedAdmissions == 1 && limits.trackedClients == 3)
        // A second later every bucket is full again: the full table is swept and makes room.
        #expect(Self.isAdmitted(Self.attempt(&limits, .address("198.51.100.9"), at: Self.t0 + .seconds(1))))
        #expect(limits.trackedClients == 1)
        // A client with a live hold is not idle and is kept by a periodic sweep.
        guard case .admitted(let ticket) = limits.admitCheckout(Self.alice, now: Self.t0 + .seconds(2)) else {
            Issue.record("alice refused")
            return
        }
        limits.settle(ticket, hold: Self.hold(1, until: Self.t0 + .seconds(100)), now: Self.t0 + .seconds(2))
        limits.sweep(now: Self.t0 + .seconds(50))
        #expect(limits.trackedClients == 1 && limits.liveHolds(of: Self.alice, now: Self.t0 + .seconds(50)) == 1)
        limits.sweep(now: Self.t0 + .seconds(100))
        #expect(limits.trackedClients == 0)
    }

    /// A clock stepping backwards never admits more than the burst.
    @Test func aClockSteppingBackIsSafe() {
        var limits = ClientLimits(policy: Self.policy)
        for _ in 0..<4 { _ = Self.attempt(&limits, Self.mallory, at: Self.t0) }
        #expect(!Self.isAdmitted(Self.attempt(&limits, Self.mallory, at: Self.t0 - .seconds(10))))
    }
}
