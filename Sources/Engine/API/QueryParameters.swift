/// Parses a raw URL query string into name/value pairs, strictly: percent-decoding must be valid
/// and yield UTF-8, sizes are bounded, and the caller says which names are allowed, so that
/// unknown, duplicated or missing parameters each get their own precise `400`.
public struct QueryParameters: Sendable, Equatable {
    public private(set) var pairs: [(name: String, value: String)]

    public static let maxQueryLength = 2_048

    public static func == (lhs: QueryParameters, rhs: QueryParameters) -> Bool {
        lhs.pairs.map(\.name) == rhs.pairs.map(\.name) && lhs.pairs.map(\.value) == rhs.pairs.map(\.value)
    }

    /// - Parameter allowed: the only names accepted; each may appear at most once.
    public static func parse(_ raw: String, allowed: Set<String>) throws(APIError) -> QueryParameters {
        let bytes = Array(raw.utf8)
        guard bytes.count <= maxQueryLength else {
            throw .badRequest("query_too_long", "the query string is longer than \(maxQueryLength) bytes")
        }
        var pairs: [(name: String, value: String)] = []
        for part in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let pieces = part.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            let name = try decode(pieces[0])
            let value = pieces.count > 1 ? try decode(pieces[1]) : ""
            guard allowed.contains(name) else {
                throw .badRequest("unknown_parameter", "unknown query parameter '\(printable(name))'")
            }
            guard !pairs.contains(where: { $0.name == name }) else {
                throw .badRequest("duplicate_parameter", "query parameter '\(name)' is given more than once")
            }
            pairs.append((name, value))
        }
        return QueryParameters(pairs: pairs)
    }

    public subscript(name: String) -> String? { pairs.first { $0.name == name }?.value }

    /// Decodes one path segment as a query value is decoded (the same escapes, the same UTF-8
    /// check), except that `+` stays `+` (it means a space only in a query).
    public static func decodePathSegment<S: StringProtocol>(_ segment: S) throws(APIError) -> String {
        do {
            return try decode(ArraySlice(segment.utf8), plusIsSpace: false)
        } catch {
            throw .badRequest("malformed_path", "a path segment has an invalid percent-escape or is not UTF-8")
        }
    }

    static func decode(_ bytes: ArraySlice<UInt8>, plusIsSpace: Bool = true) throws(APIError) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let b = bytes[i]
            if b == UInt8(ascii: "%") {
                guard i + 2 < bytes.endIndex,
                    let hi = hex(bytes[i + 1]), let lo = hex(bytes[i + 2])
                else { throw .badRequest("malformed_query", "the query string has an invalid percent-escape") }
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(plusIsSpace && b == UInt8(ascii: "+") ? UInt8(ascii: " ") : b)
                i += 1
            }
        }
        guard let text = String(validating: out, as: UTF8.self) else {
            throw .badRequest("malformed_query", "the query string is not valid UTF-8")
        }
        return text
    }

    static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// A name echoed in an error message, shortened and stripped of control characters.
    static func printable(_ s: String) -> String {
        let cleaned = String(s.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.prefix(40).map(Character.init))
        return s.count > 40 ? cleaned + "…" : cleaned
    }
}

extension CheckoutRequest {
    /// Parses `user_id` and `id` from a raw query string; every malformation is a precise `400`.
    public static func parse(query: String, rules: SaleRules) throws(APIError) -> CheckoutRequest {
        let params = try QueryParameters.parse(query, allowed: ["user_id", "id"])
        guard let rawUser = params["user_id"] else { throw .badRequest("missing_user_id", "query parameter 'user_id' is required") }
        guard let user = UserID.parse(rawUser) else {
            throw .badRequest("invalid_user_id", "user_id must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'")
        }
        guard let rawItem = params["id"] else { throw .badRequest("missing_item_id", "query parameter 'id' is required") }
        guard let item = parseItem(rawItem, rules: rules) else {
            throw .badRequest("invalid_item_id", "id must be an integer from 1 to \(rules.itemsPerSale)")
        }
        return CheckoutRequest(user: user, item: item)
    }

    /// An item id in `1…itemsPerSale`, written in plain decimal digits.
    public static func parseItem(_ text: String, rules: SaleRules) -> ItemID? {
        let utf8 = Array(text.utf8)
        guard let value = Code.parseDecimal(utf8[...], maxDigits: 9), value >= 1, value <= rules.itemsPerSale else { return nil }
        return ItemID(Int(value))
    }
}

extension Code {
    /// Parses `code` from a raw query string of `POST /purchase`.
    public static func parse(query: String) throws(APIError) -> Code {
        let params = try QueryParameters.parse(query, allowed: ["code"])
        guard let raw = params["code"] else { throw .badRequest("missing_code", "query parameter 'code' is required") }
        guard let code = Code.parse(raw) else {
            throw .badRequest("invalid_code", "code is malformed: expected <sale>.<item>.<22 URL-safe characters>")
        }
        return code
    }
}
