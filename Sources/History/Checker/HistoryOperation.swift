/// One operation of a client-visible history: what a client asked, when it sent the request, when
/// (and whether) the answer came back, and what the answer said. The unit the linearizability
/// checker orders; one line of a history file (docs/histories.md).
public struct HistoryOperation: Hashable, Sendable {
    /// Who sent it (a connection, a simulated user): for the reader, never used to order.
    public var client: String
    public var call: Call
    /// When the request was sent, microseconds since the Unix epoch.
    public var invoke: Int64
    /// When the answer arrived; nil when none did (a timeout, a lost response).
    public var complete: Int64?
    public var answer: Answer

    public init(client: String, call: Call, invoke: Int64, complete: Int64?, answer: Answer) {
        self.client = client
        self.call = call
        self.invoke = invoke
        self.complete = complete
        self.answer = answer
    }

    /// What was asked.
    public enum Call: Hashable, Sendable {
        /// `POST /checkout`; `sale` is the sale the answer named, when it named one.
        case checkout(user: String, item: Int64, sale: Int64?)
        /// `POST /purchase`.
        case purchase(code: String)
        /// `GET /sales/{sale}/items/{item}`.
        case readItem(sale: Int64, item: Int64)
        /// `GET /users/{user}/purchases?sale=`.
        case readPurchases(user: String, sale: Int64)
        /// `GET /sale`.
        case readSale
    }

    /// What came back.
    public enum Answer: Hashable, Sendable {
        /// No definite answer: a timeout, a lost response, a `503` or a `500`. The operation may or
        /// may not have taken effect, at any time after it was sent.
        case unknown
        /// An answer that changed nothing and says nothing about the sale: `400`, `401`, `429`.
        case ignored
        /// Checkout `200`.
        case held(code: String, expiresAt: Int64)
        /// Checkout `403`/`409`: `sold_out`, `item_sold`, `item_held` or `user_limit_reached`.
        case refused(Refusal)
        /// Purchase `200`.
        case purchased(user: String, sale: Int64, item: Int64, purchasedAt: Int64)
        /// Purchase `410 code_expired`.
        case codeExpired
        /// Purchase `404 unknown_code`.
        case unknownCode
        /// Item read `200`.
        case itemStatus(ItemStatus)
        /// Purchases read `200`: the item ids listed.
        case purchases(items: [Int64])
        /// Sale read `200`.
        case saleCounts(sale: Int64, sold: Int, held: Int)
    }

    /// The refusals a checkout may answer.
    public enum Refusal: String, Hashable, Sendable, CaseIterable {
        case soldOut = "sold_out"
        case itemSold = "item_sold"
        case itemHeld = "item_held"
        case userLimitReached = "user_limit_reached"
    }

    /// An item as `GET /sales/{sale}/items/{item}` shows it.
    public enum ItemStatus: Hashable, Sendable {
        case available
        case held(until: Int64)
        case sold
    }

    /// The answer is not definite: the operation may take effect after `complete`, or never.
    public var isPending: Bool { answer == .unknown }
}

/// The parts of a code's text the checker needs: the sale and item it names.
enum CodeText {
    static func saleAndItem(_ code: String) -> (sale: Int64, item: Int64)? {
        let parts = code.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let sale = Int64(parts[0]), let item = Int64(parts[1]), sale >= 0, item > 0 else { return nil }
        return (sale, item)
    }
}
