/// The hot store port (Redis in production): a versioned key-value store with atomic multi-key
/// compare-and-set, a few sets of item ids, and a generation that fences every operation.
///
/// It decides nothing: the engine reads, decides, and submits a `HotCommit` whose guards say
/// "only if nothing I read has changed". The store applies all of it atomically or none of it.
///
/// Generation: the hot store can lose everything (Redis restarting empty) or only its latest
/// writes (Redis restarting from an older RDB snapshot or AOF, a failover to a replica that lagged).
/// Its contents are bound to the server that installed them (in Redis, its `run_id`): a store
/// that lost its data, or holds contents installed on another server process and so cannot vouch
/// that they are the latest, answers every operation with `.uninitialized` until the engine
/// rebuilds it from the durable store and installs a new generation. Every commit carries the
/// generation its decision was read under, so a decision made on a view that has since been
/// replaced is refused (`.fenced`) instead of applied; and every durable write carries it too, so
/// a hot store whose generation is not the durable store's (one that served another database, or
/// a later moment of a restored one) gets nothing acknowledged and is rebuilt.

/// The generation of the hot store's contents; bumped in the durable store by every rebuild.
public struct Generation: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: Int64
    public init(_ rawValue: Int64) { self.rawValue = rawValue }
    public static func < (lhs: Generation, rhs: Generation) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { String(rawValue) }
}

/// A record's key in the hot store.
public enum HotKey: Hashable, Sendable, CustomStringConvertible {
    case item(SaleID, ItemID)
    case user(SaleID, UserID)

    public var description: String {
        switch self {
        case .item(let s, let i): "item:\(s):\(i)"
        case .user(let s, let u): "user:\(s):\(u)"
        }
    }
}

/// A set of item ids in the hot store. Adding and removing are idempotent and commute, so they
/// never conflict with each other.
public enum HotSetKey: Hashable, Sendable, CustomStringConvertible {
    /// Items of a sale that are sold (its size decides `sold_out`).
    case sold(SaleID)
    /// Items sold in the hot store whose purchase is not yet known to be durable.
    case pending(SaleID)

    public var description: String {
        switch self {
        case .sold(let s): "sold:\(s)"
        case .pending(let s): "pending:\(s)"
        }
    }
}

/// A value stored under a `HotKey`.
public enum HotValue: Hashable, Sendable {
    case item(ItemRecord)
    case user(UserRecord)
}

/// A value and its version. Version 0 means "never written"; deleting writes a tombstone
/// (`value == nil`) with a new version, so a version never repeats (no ABA).
public struct Versioned: Hashable, Sendable {
    public var value: HotValue?
    public var version: UInt64

    public init(value: HotValue?, version: UInt64) {
        self.value = value
        self.version = version
    }

    public static let absent = Versioned(value: nil, version: 0)

    public var itemRecord: ItemRecord? {
        if case .item(let record) = value { return record }
        return nil
    }

    public var userRecord: UserRecord? {
        if case .user(let record) = value { return record }
        return nil
    }
}

/// One atomic read: the records of `keys`, the sizes of `counts` and the members of `members`,
/// all from the same generation.
public struct HotRead: Hashable, Sendable {
    public var keys: [HotKey]
    public var counts: [HotSetKey]
    public var members: [HotSetKey]

    public init(keys: [HotKey], counts: [HotSetKey] = [], members: [HotSetKey] = []) {
        self.keys = keys
        self.counts = counts
        self.members = members
    }
}

/// The answer to a `HotRead`, aligned with its arrays, with the store's clock when it read them.
///
/// `storeTime` is what decides whether a code has expired for a purchase: the same clock that
/// enforces a purchase's `HotCommit.deadline`, so a `410` answered on one instance and a purchase
/// committed on another (however late, however skewed or paused its clock) cannot both happen.
/// nil when the store does not tell (a snapshot remembered by `HotRecordCache`).
public struct HotSnapshot: Hashable, Sendable {
    public var generation: Generation
    public var records: [Versioned]
    public var counts: [Int]
    public var members: [[ItemID]]
    public var storeTime: Instant?

    public init(generation: Generation, records: [Versioned], counts: [Int] = [], members: [[ItemID]] = [],
                storeTime: Instant? = nil) {
        self.generation = generation
        self.records = records
        self.counts = counts
        self.members = members
        self.storeTime = storeTime
    }
}

public enum HotReadReply: Hashable, Sendable {
    case snapshot(HotSnapshot)
    /// The store has no generation it can vouch for (it lost its data, or came back with an older
    /// copy of it): rebuild before acting.
    case uninitialized
}

/// One atomic conditional write. Applied only if the store's generation is `generation`, every
/// guarded key still has the guarded version and the store's clock is in `[validFrom, deadline)`
/// (either bound optional);
/// then every put gets the next version (its guard plus one; `HotRecordCache` relies on it) and the
/// set changes are made. The engine guards every key it puts; an unguarded put is a blind write.
public struct HotCommit: Hashable, Sendable {
    public var generation: Generation
    public var guards: [HotKey: UInt64]
    public var puts: [HotKey: HotValue?]
    public var setAdds: [HotSetKey: [ItemID]]
    public var setRemoves: [HotSetKey: [ItemID]]
    /// A purchase commits only before its code's expiry by the store's clock; a checkout only
    /// while the store's clock is near the instance's (`ClockCheck.maximumOffset`).
    public var validFrom: Instant?
    public var deadline: Instant?

    public init(generation: Generation, guards: [HotKey: UInt64] = [:], puts: [HotKey: HotValue?] = [:],
                setAdds: [HotSetKey: [ItemID]] = [:], setRemoves: [HotSetKey: [ItemID]] = [:], validFrom: Instant? = nil,
                deadline: Instant? = nil) {
        self.generation = generation
        self.guards = guards
        self.puts = puts
        self.setAdds = setAdds
        self.setRemoves = setRemoves
        self.validFrom = validFrom
        self.deadline = deadline
    }
}

public enum HotCommitReply: Hashable, Sendable {
    case committed
    /// A guarded key changed since it was read: read again and decide again.
    case conflict
    /// The generation changed or is gone: the view the decision was made on no longer exists.
    case fenced
    /// Everything else held, but the store's clock is outside the commit's `[validFrom, deadline)`.
    case expired
}

/// Replaces the whole contents of the hot store with a state rebuilt from the durable store,
/// under `generation`, unless the store already has that generation or a higher one installed on
/// the running server (contents it cannot vouch for are replaced whatever their generation).
public struct HotInstall: Hashable, Sendable {
    public var generation: Generation
    public var records: [HotKey: HotValue]
    public var sets: [HotSetKey: [ItemID]]

    public init(generation: Generation, records: [HotKey: HotValue], sets: [HotSetKey: [ItemID]]) {
        self.generation = generation
        self.records = records
        self.sets = sets
    }
}

public enum HotInstallReply: Hashable, Sendable {
    case installed
    /// The store already holds this generation or a newer one; nothing was changed.
    case superseded
}
