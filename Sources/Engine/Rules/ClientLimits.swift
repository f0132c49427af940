/// Per-client abuse limits that keep one client from locking a sale (docs/spec.md, "Identity and abuse").
///
/// Two limits, each decided here and nowhere else:
/// - a **checkout rate**: a token bucket per client (kept as GCRA, one instant per client): a burst
///   of `burst` checkouts, then one every `interval`. Every checkout the rate lets through costs a
///   token, whatever it is answered afterwards.
/// - **live holds**: at most `maxLiveHolds` holds handed out to one client and not yet expired.
///   A checkout let through reserves a slot at once (so concurrent checkouts of one client cannot
///   all slip under the cap); the caller settles the reservation with the hold it handed out, or
///   with none.
///
/// Who "the client" is (a verified user, or an address) is the caller's business: it is just a
/// `Client` key here. Pure and deterministic: no I/O, no clock (every call is given `now`), no
/// randomness. Memory is bounded: a client whose bucket is full again and who holds nothing is
/// idle, and idle clients are dropped on periodic sweeps (dropping one changes no decision, since a
/// fresh client is in exactly that state); at most `maxTrackedClients` are kept.
public struct ClientLimits: Sendable {
    /// The key of one client: `user:<id>` for a verified user, `addr:<ip>` for an address.
    public struct Client: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public static func user(_ user: UserID) -> Client { Client("user:" + user.rawValue) }
        public static func address(_ address: String) -> Client { Client("addr:" + address) }
        public var description: String { rawValue }
    }

    /// The limits, the same for every client.
    public struct Policy: Hashable, Sendable {
        /// Time between two checkouts once the burst is spent (1 / rate); `zero` turns the rate limit off.
        public var interval: TimeSpan
        /// Checkouts a client that has been quiet may make at once.
        public var burst: Int
        /// Holds one client may have live at once; `0` turns the limit off.
        public var maxLiveHolds: Int
        /// How long a reservation that was never settled counts (a safety net: callers always settle).
        public var reservationTimeout: TimeSpan
        /// Clients kept at most; beyond, new clients are let through untracked until a sweep makes room.
        public var maxTrackedClients: Int
        /// How often idle clients are swept away (also when the table is full, at most once a second).
        public var sweepInterval: TimeSpan

        public init(
            interval: TimeSpan, burst: Int, maxLiveHolds: Int, reservationTimeout: TimeSpan = .seconds(60),
            maxTrackedClients: Int = 100_000, sweepInterval: TimeSpan = .seconds(30)
        ) {
            self.interval = interval
            self.burst = burst
            self.maxLiveHolds = maxLiveHolds
            self.reservationTimeout = reservationTimeout
            self.maxTrackedClients = maxTrackedClients
            self.sweepInterval = sweepInterval
        }

        /// A rate of `perSecond` checkouts a second (`0`: no rate limit).
        public static func interval(perSecond: Int) -> TimeSpan {
            perSecond <= 0 ? .zero : TimeSpan(microseconds: 1_000_000 / Int64(perSecond))
        }

        /// The default cap on live holds: a small share of a sale (1 %), never below the user limit,
        /// so that a client may hold what one user may, and a few clients cannot hold a sale.
        public static func defaultMaxLiveHolds(rules: SaleRules) -> Int {
            max(rules.userLimit, (rules.itemsPerSale + 99) / 100)
        }

        var rateLimited: Bool { interval > .zero && burst > 0 }

        /// Neither limit is on: nothing needs to be remembered about any client.
        public var limitsNothing: Bool { !rateLimited && maxLiveHolds <= 0 }
    }

    /// Why a checkout was refused.
    public enum Refusal: String, Hashable, Sendable, CaseIterable {
        /// Too many checkouts too fast.
        case rateLimited = "rate_limited"
        /// Too many holds live at once.
        case tooManyHolds = "too_many_holds"
    }

    /// A reservation made by an admitted checkout, to be settled once it is answered.
    public struct Ticket: Hashable, Sendable {
        public let client: Client
        let serial: UInt64
        /// False when the table was full: the checkout was let through without being tracked.
        public let tracked: Bool
    }

    /// The answer to a checkout: go ahead (and settle the ticket afterwards), or refuse.
    public enum Admission: Hashable, Sendable {
        case admitted(Ticket)
        /// Refuse; the client may try again after `retryAfter` (always positive).
        case refused(Refusal, retryAfter: TimeSpan)
    }

    /// A hold handed out, counted as live until `liveUntil` (the caller passes its expiry plus the
    /// clock-skew allowance: the item is unavailable to others until then).
    public struct Hold: Hashable, Sendable {
        public let sale: SaleID
        public let item: ItemID
        public let liveUntil: Instant
        public init(sale: SaleID, item: ItemID, liveUntil: Instant) {
            self.sale = sale
            self.item = item
            self.liveUntil = liveUntil
        }
    }

    struct Reservation: Hashable, Sendable {
        let serial: UInt64
        let deadline: Instant
    }

    struct ClientState: Sendable {
        /// GCRA's theoretical arrival time: the bucket is full when `tat <= now`.
        var tat: Instant
        var holds: [Hold] = []
        var reservations: [Reservation] = []

        mutating func dropExpired(now: Instant) {
            holds.removeAll { !(now < $0.liveUntil) }
            reservations.removeAll { !(now < $0.deadline) }
        }

        func isIdle(now: Instant) -> Bool {
            !(now < tat) && holds.allSatisfy { !(now < $0.liveUntil) } && reservations.allSatisfy { !(now < $0.deadline) }
        }

        /// The reservation `serial` becomes `hold`, or is freed.
        mutating func settle(serial: UInt64, hold: Hold?, now: Instant) {
            reservations.removeAll { $0.serial == serial }
            guard let hold, now < hold.liveUntil else { return }
            if let same = holds.firstIndex(where: { $0.sale == hold.sale && $0.item == hold.item }) {
                holds[same] = Hold(sale: hold.sale, item: hold.item, liveUntil: max(holds[same].liveUntil, hold.liveUntil))
            } else {
                holds.append(hold)
            }
        }

        /// When the earliest live slot frees up.
        func nextRelease(now: Instant) -> Instant? {
            (holds.map(\.liveUntil) + reservations.map(\.deadline)).filter { now < $0 }.min()
        }
    }

    public let policy: Policy
    var clients: [Client: ClientState] = [:]
    var nextSerial: UInt64 = 0
    var lastSweep: Instant?
    /// Checkouts let through untracked because the table was full (for metrics).
    public private(set) var untrackedAdmissions = 0

    public init(policy: Policy) { self.policy = policy }

    /// Clients currently remembered.
    public var trackedClients: Int { clients.count }

    /// Live holds (and reservations) counted against `client` at `now`.
    public func liveHolds(of client: Client, now: Instant) -> Int {
        guard let state = clients[client] else { return 0 }
        return state.holds.filter { now < $0.liveUntil }.count + state.reservations.filter { now < $0.deadline }.count
    }

    /// Decides whether `client` may check out at `now`. An admitted checkout must be settled.
    ///
    /// A client's state is changed in place (`clients.values[index]`), never copied out and back:
    /// a copy would share its arrays with the table's and copy them whole on the first change.
    public mutating func admitCheckout(_ client: Client, now: Instant) -> Admission {
        // Both limits off: every checkout goes ahead, and nothing is remembered.
        if policy.limitsNothing { return .admitted(Ticket(client: client, serial: 0, tracked: false)) }
        sweepIfDue(now: now)
        guard let index = clients.index(forKey: client) else {
            if clients.count >= policy.maxTrackedClients {
                untrackedAdmissions += 1
                return .admitted(Ticket(client: client, serial: 0, tracked: false))
            }
            var fresh = ClientState(tat: now)
            let admission = Self.decide(client, &fresh, policy: policy, serial: &nextSerial, now: now)
            clients[client] = fresh
            return admission
        }
        return Self.decide(client, &clients.values[index], policy: policy, serial: &nextSerial, now: now)
    }

    /// The decision for one client; `serial` numbers the reservations (the last one handed out).
    static func decide(_ client: Client, _ state: inout ClientState, policy: Policy, serial: inout UInt64, now: Instant) -> Admission {
        state.dropExpired(now: now)
        if policy.rateLimited {
            let tat = max(state.tat, now)
            let tolerance = policy.interval * Int64(policy.burst - 1)
            if tolerance < tat - now {
                return .refused(.rateLimited, retryAfter: TimeSpan(microseconds: (tat - now).microseconds - tolerance.microseconds))
            }
            state.tat = tat + policy.interval
        }
        if policy.maxLiveHolds > 0, state.holds.count + state.reservations.count >= policy.maxLiveHolds {
            let release = state.nextRelease(now: now) ?? now + .seconds(1)
            return .refused(.tooManyHolds, retryAfter: max(release - now, TimeSpan(microseconds: 1)))
        }
        serial += 1
        state.reservations.append(Reservation(serial: serial, deadline: now + policy.reservationTimeout))
        return .admitted(Ticket(client: client, serial: serial, tracked: true))
    }

    /// Settles an admitted checkout: its reservation becomes `hold` (a checkout answered with a
    /// hold) or is freed (any other answer). A hold of an item the client already holds (the same
    /// code handed out again) is counted once.
    public mutating func settle(_ ticket: Ticket, hold: Hold?, now: Instant) {
        guard ticket.tracked, let index = clients.index(forKey: ticket.client) else { return }
        clients.values[index].settle(serial: ticket.serial, hold: hold, now: now)
    }

    /// The client bought what it held: the hold no longer counts as live.
    public mutating func release(_ client: Client, sale: SaleID, item: ItemID) {
        guard let index = clients.index(forKey: client) else { return }
        clients.values[index].holds.removeAll { $0.sale == sale && $0.item == item }
    }

    /// Drops every idle client (one that is indistinguishable from a client never seen).
    public mutating func sweep(now: Instant) {
        lastSweep = now
        clients = clients.filter { !$0.value.isIdle(now: now) }
    }

    mutating func sweepIfDue(now: Instant) {
        guard let last = lastSweep else {
            lastSweep = now
            return
        }
        let since = now - last
        if !(since < policy.sweepInterval) || (clients.count >= policy.maxTrackedClients && !(since < .seconds(1))) {
            sweep(now: now)
        }
    }
}
