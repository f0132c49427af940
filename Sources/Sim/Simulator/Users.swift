import Engine

/// How a simulated user behaves. The mix covers the behaviours the README's "The simulator" lists.
enum Behaviour: String, CaseIterable, Sendable {
    /// Checks out random items and pays at once, until the limit or a sellout.
    case eager
    /// Checks out a couple of items and never pays.
    case abandoner
    /// Like eager, but repeats every request once more after its answer (and always after a
    /// timeout): the second answer must be the same.
    case retrier
    /// Like eager, but sends every request twice at once, to two instances.
    case duplicator
    /// Fires more checkouts than the limit at once, across instances, then pays for all it got.
    case hoarder
    /// Races for the same few popular items.
    case racer
    /// Presents guessed codes, other users' codes and malformed requests.
    case attacker
    /// Arrives in the last seconds of a sale, so its requests straddle the rollover.
    case straggler

    /// Behaviours that keep buying until the sale is sold out.
    var isEagerBuyer: Bool {
        switch self {
        case .eager, .retrier, .duplicator, .hoarder, .racer, .straggler: true
        case .abandoner, .attacker: false
        }
    }

    /// The mix, in per-mille.
    static func draw(_ rng: inout SplitMix64) -> Behaviour {
        let r = rng.int(0...999)
        switch r {
        case 0..<540: return .eager
        case 540..<640: return .abandoner
        case 640..<720: return .retrier
        case 720..<790: return .duplicator
        case 790..<840: return .hoarder
        case 840..<900: return .racer
        case 900..<930: return .attacker
        default: return .straggler
        }
    }
}

/// What the user meant by a request; the checker judges answers against it.
enum Intent: Sendable {
    case checkout(ItemID)
    /// Buy with a code this user was handed.
    case purchaseOwn(Hold)
    /// Buy with a code another user was handed (bought for its holder, if live).
    case purchaseForeign(Hold)
    /// A code nobody was handed: must be `unknown_code`.
    case purchaseGuess(Code)
    /// A query that must be refused with `400`.
    case malformed(checkout: Bool)
    /// `GET /sale`: the current sale's counts.
    case viewSale
    /// `GET /sales/{sale}/items/{item}`.
    case viewItem(SaleID, ItemID)
    /// `GET /users/{user}/purchases?sale=`: the user's own purchases.
    case viewPurchases(SaleID)

    /// One of the read endpoints.
    var isView: Bool {
        switch self {
        case .viewSale, .viewItem, .viewPurchases: true
        case .checkout, .purchaseOwn, .purchaseForeign, .purchaseGuess, .malformed: false
        }
    }
}

/// One HTTP request of a simulated client.
struct ClientRequest: Sendable {
    let id: Int
    let user: Int
    let intent: Intent
    let query: String
    let instance: Int
    let sentAt: Instant
    /// The sale current (in true time) when it was sent.
    let sale: SaleID
    /// Sent alongside or after another request only to compare answers; the user does not act on it.
    var shadow = false
    /// A shadow the user waits for before acting again (a retrier's sequential repeat).
    var awaited = false
    var answered = false
    var abandoned = false
    /// A re-send of an earlier request whose first answer must match.
    var repeatOf: Int?
    /// Its place among its user's requests (its stable identity, `StableDraws.swift`).
    var ordinal = 0
    /// Store calls made for it so far.
    var calls = 0
}

/// What an instance answered, with what the checker needs to verify it.
enum SimResponse: Sendable {
    case checkout(CheckoutResult, attempt: AttemptID, sale: SaleID)
    case purchase(PurchaseResult)
    case badRequest(APIError)
    /// A read endpoint's answer.
    case view(ViewAnswer)
}

/// What a read endpoint answered: computed by `StatusRules` from the stores' replies, as the
/// server's handlers compute it.
enum ViewAnswer: Hashable, Sendable {
    case sale(SaleSummary)
    case item(SaleID, ItemID, ItemStatus)
    case purchases(SaleID, [Purchase])
    case unavailable
}

/// One simulated user and what it knows.
struct SimUser: Sendable {
    let index: Int
    let id: UserID
    let behaviour: Behaviour
    var rng: SplitMix64
    /// The sale this user's state below belongs to.
    var sale = SaleID(-1)
    var owned = 0
    var holds: [Hold] = []
    var finishedSale = false
    var outstanding = 0
    /// Requests sent so far (the next one's `ordinal`).
    var requestsSent = 0
    var consecutiveRefusals = 0
    var checkoutsSent = 0
    var pendingAction = false
    /// A request to send again (after a timeout or a `503`).
    var retry: Intent?

    init(index: Int, behaviour: Behaviour, rng: SplitMix64) {
        self.index = index
        self.id = UserID(unchecked: "u\(index)")
        self.behaviour = behaviour
        self.rng = rng
    }

    mutating func enter(sale: SaleID) {
        self.sale = sale
        owned = 0
        holds = []
        finishedSale = false
        consecutiveRefusals = 0
        checkoutsSent = 0
    }

    /// Back-off after a refusal: grows with consecutive refusals so a nearly sold-out sale is not
    /// polled flat out, as real clients would not.
    mutating func refusalDelay() -> TimeSpan {
        consecutiveRefusals += 1
        let ceiling = min(Int64(20_000), Int64(200) << Int64(min(consecutiveRefusals, 8)))
        return .milliseconds(rng.micros(ceiling / 4, ceiling))
    }

    mutating func thinkTime() -> TimeSpan { .milliseconds(rng.micros(50, 800)) }
}
