import Engine

/// The text form of hot-store records in Redis: `<version>|<payload>`.
///
/// Payloads (user ids are `[A-Za-z0-9_.-]`, codes `<sale>.<item>.<base64url>`, so `,` `:` and
/// spaces never occur inside a field):
/// - tombstone: empty
/// - held item: `H,<code>,<user>,<expiresAt µs>`
/// - sold item: `S,<code>,<user>,<purchasedAt µs>`
/// - user: `U,<code>:<expiresAt µs> <code>:<expiresAt µs>…,<item> <item>…` (slots, then purchased)
///
/// An absent key is version 0 with no value. Decoding never traps: anything unexpected is a
/// `HotCodecError`, which the adapter reports as `.unavailable` for that call.
public enum HotValueCodec {
    public static func encode(version: UInt64, value: HotValue?) -> String {
        "\(version)|\(encode(value))"
    }

    public static func encode(_ value: HotValue?) -> String {
        switch value {
        case nil: return ""
        case .item(.held(let hold)): return "H,\(hold.code.text),\(hold.user.rawValue),\(hold.expiresAt.microseconds)"
        case .item(.sold(let purchase)):
            return "S,\(purchase.code.text),\(purchase.user.rawValue),\(purchase.purchasedAt.microseconds)"
        case .user(let record):
            let slots = record.slots.map { "\($0.code.text):\($0.expiresAt.microseconds)" }.joined(separator: " ")
            let purchased = record.purchased.map { String($0.rawValue) }.joined(separator: " ")
            return "U,\(slots),\(purchased)"
        }
    }

    /// Decodes a stored record; the empty string (what the scripts return for a missing key) is
    /// `Versioned.absent`.
    public static func decodeRecord(_ text: String) throws(HotCodecError) -> Versioned {
        if text.isEmpty { return .absent }
        guard let bar = text.firstIndex(of: "|") else { throw HotCodecError("no version in record \(text.debugDescription)") }
        guard let version = UInt64(text[..<bar]), version > 0 else {
            throw HotCodecError("bad version in record \(text.debugDescription)")
        }
        return Versioned(value: try decode(text[text.index(after: bar)...]), version: version)
    }

    public static func decode(_ payload: Substring) throws(HotCodecError) -> HotValue? {
        if payload.isEmpty { return nil }
        let fields = payload.split(separator: ",", omittingEmptySubsequences: false)
        switch fields[0] {
        case "H", "S":
            guard fields.count == 4 else { throw HotCodecError("item record needs 4 fields: \(payload.debugDescription)") }
            let code = try code(fields[1])
            let user = try user(fields[2])
            let instant = try instant(fields[3])
            return fields[0] == "H"
                ? .item(.held(Hold(code: code, user: user, expiresAt: instant)))
                : .item(.sold(Purchase(code: code, user: user, purchasedAt: instant)))
        case "U":
            guard fields.count == 3 else { throw HotCodecError("user record needs 3 fields: \(payload.debugDescription)") }
            var slots: [HoldSlot] = []
            for slot in fields[1].split(separator: " ") {
                let parts = slot.split(separator: ":", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw HotCodecError("bad hold slot \(slot.debugDescription)") }
                slots.append(HoldSlot(code: try code(parts[0]), expiresAt: try instant(parts[1])))
            }
            var purchased: [ItemID] = []
            for item in fields[2].split(separator: " ") {
                guard let value = Int(item) else { throw HotCodecError("bad item id \(item.debugDescription)") }
                purchased.append(ItemID(value))
            }
            return .user(UserRecord(slots: slots, purchased: purchased))
        default:
            throw HotCodecError("unknown record kind in \(payload.debugDescription)")
        }
    }

    static func code(_ text: Substring) throws(HotCodecError) -> Code {
        guard let code = Code.parse(text) else { throw HotCodecError("bad code \(text.debugDescription)") }
        return code
    }

    static func user(_ text: Substring) throws(HotCodecError) -> UserID {
        guard let user = UserID.parse(text) else { throw HotCodecError("bad user id \(text.debugDescription)") }
        return user
    }

    static func instant(_ text: Substring) throws(HotCodecError) -> Instant {
        guard let value = Int64(text) else { throw HotCodecError("bad instant \(text.debugDescription)") }
        return Instant(microseconds: value)
    }
}

public struct HotCodecError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
