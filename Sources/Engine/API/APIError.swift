/// An error answer of the HTTP API: status, machine-readable code and a message for humans.
/// Rendered as `{"error": {"code": …, "message": …}}`.
public struct APIError: Error, Hashable, Sendable {
    public let status: Int
    public let code: String
    public let message: String

    public init(status: Int, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    static func badRequest(_ code: String, _ message: String) -> APIError {
        APIError(status: 400, code: code, message: message)
    }

    public static let soldOut = APIError(status: 409, code: "sold_out", message: "every item of this sale is sold")
    public static let itemSold = APIError(status: 409, code: "item_sold", message: "this item is already sold")
    public static let userLimitReached = APIError(
        status: 403, code: "user_limit_reached", message: "this user already owns or holds the most items allowed in this sale")
    public static let itemHeld = APIError(status: 409, code: "item_held", message: "this item is held by another user")
    public static let unknownCode = APIError(status: 404, code: "unknown_code", message: "no checkout handed out this code")
    public static let codeExpired = APIError(status: 410, code: "code_expired", message: "this code has expired")
    public static let unavailable = APIError(
        status: 503, code: "store_unavailable", message: "a store is unavailable; nothing was done, retry later")
    public static let clockUnsafe = APIError(
        status: 503, code: "clock_unsafe",
        message: "this instance's clock is too far from the store's to decide on holds; nothing was done, retry later")
    public static let notFound = APIError(status: 404, code: "not_found", message: "no such resource")
    public static let methodNotAllowed = APIError(status: 405, code: "method_not_allowed", message: "method not allowed on this resource")

    /// The error answer of a refused checkout.
    public static func refusal(_ outcome: CheckoutOutcome) -> APIError? {
        switch outcome {
        case .held: nil
        case .soldOut: .soldOut
        case .itemSold: .itemSold
        case .userLimitReached: .userLimitReached
        case .itemHeld: .itemHeld
        }
    }
}
