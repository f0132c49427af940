/// Operations as one readable line each, times in seconds from the witness's first request: how a
/// violation is printed.
public enum HistoryText {
    public static func describe(_ op: HistoryOperation, origin: Int64) -> String {
        let from = seconds(op.invoke - origin)
        let to = op.complete.map { seconds($0 - origin) } ?? "never"
        let call: String
        switch op.call {
        case .checkout(let user, let item, let sale): call = "\(user) checkout item \(item)" + (sale.map { " of sale \($0)" } ?? "")
        case .purchase(let code): call = "purchase \(code)"
        case .readItem(let sale, let item): call = "GET item \(item) of sale \(sale)"
        case .readPurchases(let user, let sale): call = "GET purchases of \(user) in sale \(sale)"
        case .readSale: call = "GET sale"
        }
        let answer: String
        switch op.answer {
        case .unknown: answer = op.complete == nil ? "no answer" : "503 (nothing promised)"
        case .ignored: answer = "ignored"
        case .held(let code, let expiresAt): answer = "200 \(code) expires \(seconds(expiresAt - origin))"
        case .refused(let refusal): answer = refusal.rawValue
        case .purchased(let user, _, _, let at): answer = "200 bought for \(user) at \(seconds(at - origin))"
        case .codeExpired: answer = "410 code_expired"
        case .unknownCode: answer = "404 unknown_code"
        case .itemStatus(.available): answer = "available"
        case .itemStatus(.sold): answer = "sold"
        case .itemStatus(.held(let until)): answer = "held until \(seconds(until - origin))"
        case .purchases(let items): answer = "items \(items.map(String.init).joined(separator: ","))"
        case .saleCounts(let sale, let sold, let held): answer = "sale \(sale): sold \(sold), held \(held)"
        }
        return "[\(from) .. \(to)] (\(op.client)) \(call) -> \(answer)"
    }

    /// `+1.234567s`, exact to the microsecond.
    static func seconds(_ micros: Int64) -> String {
        let sign = micros < 0 ? "-" : "+"
        let magnitude = micros.magnitude
        let fraction = String(magnitude % 1_000_000)
        return "\(sign)\(magnitude / 1_000_000).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)s"
    }
}
