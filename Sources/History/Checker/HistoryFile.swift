/// The history file format (JSON Lines, docs/histories.md): an optional first line with the
/// sale's rules (`"op":"rules"`), then one line per operation. Written by the simulator and by
/// `sale-load --history`; read by `sale-history-check`.
public enum HistoryFile {
    public struct FormatError: Error, CustomStringConvertible {
        public let line: Int
        public let message: String
        public var description: String { "line \(line): \(message)" }
    }

    // MARK: Writing

    public static func header(_ rules: HistoryRules) -> String {
        "{\"op\":\"rules\",\"items_per_sale\":\(rules.itemsPerSale),\"user_limit\":\(rules.userLimit),\"hold_ttl_us\":\(rules.holdTTL),"
            + "\"sale_length_us\":\(rules.saleLength),\"clock_skew_allowance_us\":\(rules.clockSkewAllowance),\"clock_slack_us\":\(rules.clockSlack)}"
    }

    public static func line(_ op: HistoryOperation) -> String {
        var fields: [(String, String)] = [("client", JSONValue.quoted(op.client))]
        switch op.call {
        case .checkout(let user, let item, let sale):
            fields += [("op", "\"checkout\""), ("user", JSONValue.quoted(user)), ("item", String(item))]
            if let sale { fields.append(("sale", String(sale))) }
        case .purchase(let code):
            fields += [("op", "\"purchase\""), ("code", JSONValue.quoted(code))]
        case .readItem(let sale, let item):
            fields += [("op", "\"item\""), ("sale", String(sale)), ("item", String(item))]
        case .readPurchases(let user, let sale):
            fields += [("op", "\"purchases\""), ("user", JSONValue.quoted(user)), ("sale", String(sale))]
        case .readSale:
            fields += [("op", "\"sale\"")]
        }
        fields.append(("invoke", String(op.invoke)))
        fields.append(("complete", op.complete.map(String.init) ?? "null"))
        switch op.answer {
        case .unknown: fields.append(("status", op.complete == nil ? "null" : "503"))
        case .ignored: fields.append(("status", "400"))
        case .held(let code, let expiresAt):
            fields += [("status", "200"), ("result_code", JSONValue.quoted(code)), ("expires_at", String(expiresAt))]
        case .refused(let refusal):
            fields += [("status", refusal == .userLimitReached ? "403" : "409"), ("error", JSONValue.quoted(refusal.rawValue))]
        case .purchased(let user, let sale, let item, let at):
            fields += [("status", "200"), ("result_user", JSONValue.quoted(user)), ("result_sale", String(sale)), ("result_item", String(item)),
                       ("purchased_at", String(at))]
        case .codeExpired: fields += [("status", "410"), ("error", "\"code_expired\"")]
        case .unknownCode: fields += [("status", "404"), ("error", "\"unknown_code\"")]
        case .itemStatus(let status):
            fields.append(("status", "200"))
            switch status {
            case .available: fields.append(("item_status", "\"available\""))
            case .sold: fields.append(("item_status", "\"sold\""))
            case .held(let until): fields += [("item_status", "\"held\""), ("held_until", String(until))]
            }
        case .purchases(let items):
            fields += [("status", "200"), ("items", "[" + items.map(String.init).joined(separator: ",") + "]")]
        case .saleCounts(let sale, let sold, let held):
            fields += [("status", "200"), ("result_sale", String(sale)), ("sold", String(sold)), ("held", String(held))]
        }
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }

    // MARK: Reading

    /// The rules of the header line (if any) and the operations, in file order.
    public static func parse(_ text: String) throws(FormatError) -> (rules: HistoryRules?, operations: [HistoryOperation]) {
        var rules: HistoryRules?
        var operations: [HistoryOperation] = []
        var number = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let trimmed = raw.drop { $0 == " " || $0 == "\t" || $0 == "\r" }
            if trimmed.isEmpty { continue }
            let value: JSONValue
            do { value = try JSONValue.parse(String(trimmed)) } catch { throw FormatError(line: number, message: "not JSON: \(error.message)") }
            guard case .object(let fields) = value else { throw FormatError(line: number, message: "not a JSON object") }
            if fields["op"]?.string == "rules" {
                rules = try parseRules(fields, line: number)
            } else {
                operations.append(try parseOperation(fields, line: number))
            }
        }
        return (rules, operations)
    }

    static func parseRules(_ f: [String: JSONValue], line: Int) throws(FormatError) -> HistoryRules {
        func int(_ name: String) throws(FormatError) -> Int64 {
            guard let value = f[name]?.int, value >= 0 else { throw FormatError(line: line, message: "rules need \(name)") }
            return value
        }
        let rules = HistoryRules(
            itemsPerSale: Int(try int("items_per_sale")), userLimit: Int(try int("user_limit")), holdTTL: try int("hold_ttl_us"),
            saleLength: try int("sale_length_us"), clockSkewAllowance: try int("clock_skew_allowance_us"), clockSlack: f["clock_slack_us"]?.int)
        guard rules.saleLength > 0 else { throw FormatError(line: line, message: "sale_length_us must be positive") }
        return rules
    }

    /// An RFC 3339 UTC time as the server writes it, in microseconds since the epoch.
    public static func time(_ text: String) -> Int64? { RFC3339Reader.parse(text) }

    /// A time: microseconds since the epoch, or an RFC 3339 UTC string as the server writes them.
    static func time(_ value: JSONValue?) -> Int64? {
        switch value {
        case .number(let n)?: Int64(n)
        case .string(let s)?: RFC3339Reader.parse(s)
        default: nil
        }
    }

    static func parseOperation(_ f: [String: JSONValue], line: Int) throws(FormatError) -> HistoryOperation {
        func fail(_ message: String) -> FormatError { FormatError(line: line, message: message) }
        guard let kind = f["op"]?.string else { throw fail("no \"op\"") }
        guard let invoke = time(f["invoke"]) else { throw fail("no \"invoke\" time") }
        let complete = time(f["complete"])
        let status = f["status"]?.int
        let error = f["error"]?.string
        let client = f["client"]?.string ?? f["user"]?.string ?? ""
        let call: HistoryOperation.Call
        switch kind {
        case "checkout":
            guard let user = f["user"]?.string, let item = f["item"]?.int else { throw fail("a checkout needs user and item") }
            call = .checkout(user: user, item: item, sale: f["sale"]?.int)
        case "purchase":
            guard let code = f["code"]?.string else { throw fail("a purchase needs code") }
            call = .purchase(code: code)
        case "item":
            guard let sale = f["sale"]?.int, let item = f["item"]?.int else { throw fail("an item read needs sale and item") }
            call = .readItem(sale: sale, item: item)
        case "purchases":
            guard let user = f["user"]?.string, let sale = f["sale"]?.int else { throw fail("a purchases read needs user and sale") }
            call = .readPurchases(user: user, sale: sale)
        case "sale":
            call = .readSale
        default:
            throw fail("unknown op \(kind)")
        }
        let answer: HistoryOperation.Answer
        switch (status, complete) {
        case (nil, _), (_, nil):
            answer = .unknown
        case (let code?, _) where code >= 500:
            answer = .unknown
        case (200?, _):
            switch call {
            case .checkout:
                guard let code = f["result_code"]?.string ?? f["code"]?.string, let expires = time(f["expires_at"]) else {
                    throw fail("a checkout 200 needs result_code and expires_at")
                }
                answer = .held(code: code, expiresAt: expires)
            case .purchase(let code):
                let named = CodeText.saleAndItem(code)
                guard let user = f["result_user"]?.string, let at = time(f["purchased_at"]),
                    let sale = f["result_sale"]?.int ?? named?.sale, let item = f["result_item"]?.int ?? named?.item
                else { throw fail("a purchase 200 needs result_user and purchased_at") }
                answer = .purchased(user: user, sale: sale, item: item, purchasedAt: at)
            case .readItem:
                switch f["item_status"]?.string {
                case "available": answer = .itemStatus(.available)
                case "sold": answer = .itemStatus(.sold)
                case "held":
                    guard let until = time(f["held_until"]) else { throw fail("a held item needs held_until") }
                    answer = .itemStatus(.held(until: until))
                default: throw fail("an item read 200 needs item_status")
                }
            case .readPurchases:
                guard case .array(let values)? = f["items"] else { throw fail("a purchases read 200 needs items") }
                answer = .purchases(items: values.compactMap(\.int))
            case .readSale:
                guard let sale = f["result_sale"]?.int, let sold = f["sold"]?.int, let held = f["held"]?.int else {
                    throw fail("a sale read 200 needs result_sale, sold and held")
                }
                answer = .saleCounts(sale: sale, sold: Int(sold), held: Int(held))
            }
        case (403?, _), (409?, _):
            guard let error, let refusal = HistoryOperation.Refusal(rawValue: error) else { throw fail("a 403/409 needs a refusal error") }
            answer = .refused(refusal)
        case (410?, _):
            answer = .codeExpired
        case (404?, _) where error == "unknown_code":
            answer = .unknownCode
        default:
            answer = .ignored  // 400, 401, 429: nothing done, nothing said about the sale
        }
        return HistoryOperation(client: client, call: call, invoke: invoke, complete: complete, answer: answer)
    }
}

/// Reads `2026-11-25T15:36:21.485Z` (UTC, any number of fraction digits) as microseconds.
enum RFC3339Reader {
    static func parse(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        guard b.count >= 20, b.last == UInt8(ascii: "Z") else { return nil }
        func number(_ from: Int, _ count: Int) -> Int64? {
            guard from + count <= b.count else { return nil }
            var value: Int64 = 0
            for byte in b[from..<from + count] {
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int64(byte - 48)
            }
            return value
        }
        guard let y = number(0, 4), let m = number(5, 2), let d = number(8, 2), let hh = number(11, 2), let mm = number(14, 2),
            let ss = number(17, 2), (1...12).contains(m), (1...31).contains(d)
        else { return nil }
        var micros: Int64 = 0
        if b.count > 21, b[19] == UInt8(ascii: ".") {
            let digits = b.count - 21
            guard digits > 0, let fraction = number(20, digits) else { return nil }
            micros = digits <= 6 ? fraction * Int64([1, 100_000, 10_000, 1_000, 100, 10, 1][digits]) : fraction / pow10(digits - 6)
        }
        // Howard Hinnant's days-from-civil.
        let yy = m <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return ((days * 86_400 + hh * 3_600 + mm * 60 + ss) * 1_000_000) + micros
    }

    static func pow10(_ n: Int) -> Int64 { (0..<n).reduce(1) { r, _ in r * 10 } }
}
