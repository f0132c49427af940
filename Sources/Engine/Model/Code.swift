/// A checkout code: the bearer token that buys one held item for its holder.
///
/// Text form: `<sale>.<item>.<nonce>`, where the nonce is 128 random bits in URL-safe base64
/// (22 characters). Carrying the sale and item lets a purchase go straight to the one item
/// record that decides it; the nonce is what makes a code unguessable. A code is only ever
/// trusted after the item record (or the durable history) confirms it, never on its text alone.
public struct Code: Hashable, Sendable, CustomStringConvertible {
    public let sale: SaleID
    public let item: ItemID
    public let nonce: String

    public static let nonceLength = 22
    public static let maxTextLength = 64

    public init(sale: SaleID, item: ItemID, nonce: String) {
        self.sale = sale
        self.item = item
        self.nonce = nonce
    }

    /// A fresh code; `rng` must be a cryptographically secure generator in production.
    public static func generate(sale: SaleID, item: ItemID, using rng: inout some RandomNumberGenerator) -> Code {
        Code(sale: sale, item: item, nonce: Base64URL.encode(rng.next(), rng.next()))
    }

    public var text: String { "\(sale.rawValue).\(item.rawValue).\(nonce)" }
    public var description: String { text }

    /// Parses the text form; nil when malformed (a `400`, not a `404`).
    public static func parse<S: StringProtocol>(_ text: S) -> Code? {
        let utf8 = Array(text.utf8)
        guard utf8.count <= maxTextLength else { return nil }
        let parts = utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3,
            let sale = parseDecimal(parts[0], maxDigits: 18),
            let item = parseDecimal(parts[1], maxDigits: 9), item > 0,
            parts[2].count == nonceLength, parts[2].allSatisfy(Base64URL.isAlphabet)
        else { return nil }
        return Code(sale: SaleID(sale), item: ItemID(Int(item)), nonce: String(decoding: parts[2], as: UTF8.self))
    }

    static func parseDecimal(_ digits: ArraySlice<UInt8>, maxDigits: Int) -> Int64? {
        guard !digits.isEmpty, digits.count <= maxDigits else { return nil }
        if digits.count > 1 && digits.first == UInt8(ascii: "0") { return nil }
        var value: Int64 = 0
        for d in digits {
            guard d >= UInt8(ascii: "0"), d <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(d - UInt8(ascii: "0"))
        }
        return value
    }
}
