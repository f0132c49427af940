/// The id of an hourly sale: sale `n` covers `[n·L, (n+1)·L)` of UTC time.
public struct SaleID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: Int64
    public init(_ rawValue: Int64) { self.rawValue = rawValue }
    public static func < (lhs: SaleID, rhs: SaleID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { String(rawValue) }
}

/// The id of an item inside a sale, `1…itemsPerSale`.
public struct ItemID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: Int
    public init(_ rawValue: Int) { self.rawValue = rawValue }
    public static func < (lhs: ItemID, rhs: ItemID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { String(rawValue) }
}

/// A buyer, as named by the client: 1–64 characters of `[A-Za-z0-9_.-]`.
///
/// The only way to make one from outside input is `UserID.parse`, so every `UserID` in the engine
/// is valid and safe to embed in keys, logs and store encodings.
public struct UserID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public static let maxLength = 64

    /// Returns nil unless `text` is 1–64 characters of `[A-Za-z0-9_.-]`.
    public static func parse<S: StringProtocol>(_ text: S) -> UserID? {
        var count = 0
        for byte in text.utf8 {
            count += 1
            guard count <= maxLength, isAllowed(byte) else { return nil }
        }
        guard count > 0 else { return nil }
        return UserID(unchecked: String(text))
    }

    /// For ids that were validated before (store decoding, the simulator's own users).
    public init(unchecked rawValue: String) { self.rawValue = rawValue }

    static func isAllowed(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    public static func < (lhs: UserID, rhs: UserID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { rawValue }
}

/// The unique id of one checkout attempt: the idempotency key of its durable record, so that a
/// retried write of the same attempt is recognised instead of stored twice.
public struct AttemptID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(unchecked rawValue: String) { self.rawValue = rawValue }

    /// 128 random bits, URL-safe.
    public static func generate(using rng: inout some RandomNumberGenerator) -> AttemptID {
        AttemptID(unchecked: Base64URL.encode(rng.next(), rng.next()))
    }

    public var description: String { rawValue }
}
