import Engine

/// The story of one item in a run: every client request about it, every store call touching it
/// with the store's state at that moment, every reply, every answer a client received, and the
/// faults in between, in order. Collected only while `SimConfig.watch` names the item; `--shrink`
/// sets it to the item the violation is about, so a failing seed reads as a short story.
extension Simulation {
    /// Callers check `config.watch` first, so no line is built for a run that tells no story.
    mutating func tell(_ line: String) {
        guard config.watch != nil else { return }
        story.append("[\(now)] \(line)")
    }

    /// Whether `request` is about the watched item.
    func isWatched(_ request: ClientRequest) -> Bool {
        guard case .item(let sale, let item)? = config.watch else { return false }
        switch request.intent {
        case .checkout(let wanted): return wanted == item && request.sale == sale
        case .purchaseOwn(let hold), .purchaseForeign(let hold): return hold.sale == sale && hold.item == item
        case .purchaseGuess(let code): return code.sale == sale && code.item == item
        case .viewItem(let viewed, let wanted): return viewed == sale && wanted == item
        case .malformed, .viewSale, .viewPurchases: return false
        }
    }

    /// The item a violation message is about, if it names one (as `item:SALE:ITEM`, `item ITEM of
    /// sale SALE`, or a code `SALE.ITEM.NONCE`).
    public static func itemKey(in message: String) -> HotKey? {
        let words = message.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "(" || $0 == ")" || $0 == ";" }).map(String.init)
        for (index, word) in words.enumerated() {
            let parts = word.split(separator: ":", omittingEmptySubsequences: false)
            if parts.count == 3, parts[0] == "item", let sale = Int64(parts[1]), let item = Int(parts[2]) {
                return .item(SaleID(sale), ItemID(item))
            }
            if word == "item", index + 4 < words.count, let item = Int(words[index + 1]), words[index + 2] == "of",
                words[index + 3] == "sale", let sale = Int64(words[index + 4])
            {
                return .item(SaleID(sale), ItemID(item))
            }
        }
        for word in words {
            let parts = word.split(separator: ".", omittingEmptySubsequences: false)
            if parts.count == 3, let sale = Int64(parts[0]), let item = Int(parts[1]), parts[2].count == 22 {
                return .item(SaleID(sale), ItemID(item))
            }
        }
        return nil
    }
}
