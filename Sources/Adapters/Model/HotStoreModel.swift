import Engine

/// The exact semantics of the hot store port, as a plain value: what the Redis adapter must do,
/// what the simulator's Redis does, and what the in-memory adapter is.
///
/// Every operation is atomic by construction (it is one function call on a value).
///
/// Identity: `server` is which server process the store is (Redis's `run_id`), new at every
/// restart; `installedOn` is the server the contents were installed on, kept with the data (so a
/// restart from an older copy brings back the old one). Contents installed on another server are
/// an older copy of unknown age, never trusted: the store answers as if it had lost them.
public struct HotStoreModel: Sendable {
    /// nil after the store lost its data, until a rebuild installs a new generation. (Contents not
    /// installed on the running server keep their generation here but are not served.)
    public private(set) var generation: Generation?
    private var records: [HotKey: Versioned] = [:]
    private var sets: [HotSetKey: Set<ItemID>] = [:]
    /// The running server's identity; changes with every restart.
    public private(set) var server: UInt64 = 1
    /// The server the contents were installed on.
    private var installedOn: UInt64?
    /// The store's clock (Redis's `TIME`): reported with every read, and what a commit's
    /// `deadline` is judged by. Set by whoever drives the model.
    public var clock = Instant(microseconds: 0)

    /// A new, empty store. `generation` nil models a Redis that never held this service's data.
    public init(generation: Generation? = nil) {
        self.generation = generation
        self.installedOn = generation == nil ? nil : server
    }

    /// The generation the store serves: nil when it has none it can vouch for.
    public var trustedGeneration: Generation? { installedOn == server ? generation : nil }

    public mutating func apply(_ call: StoreCall) -> StoreReply? {
        switch call {
        case .hotRead(let read): .hotRead(self.read(read))
        case .hotCommit(let commit): .hotCommit(self.commit(commit))
        case .hotInstall(let install): .hotInstall(self.install(install))
        case .durableWrite, .durableQuery, .durableBumpGeneration: nil
        }
    }

    public func read(_ read: HotRead) -> HotReadReply {
        guard let generation = trustedGeneration else { return .uninitialized }
        return .snapshot(HotSnapshot(
            generation: generation,
            records: read.keys.map { records[$0] ?? .absent },
            counts: read.counts.map { sets[$0]?.count ?? 0 },
            members: read.members.map { (sets[$0] ?? []).sorted() },
            storeTime: clock))
    }

    /// What `commit` would answer, without applying anything. (A put whose key is not guarded is a
    /// blind write; the engine guards every put, and the simulator's planted bugs show why.)
    public func check(_ commit: HotCommit) -> HotCommitReply {
        guard let generation = trustedGeneration, generation == commit.generation else { return .fenced }
        for (key, version) in commit.guards where (records[key]?.version ?? 0) != version {
            return .conflict
        }
        if let deadline = commit.deadline, clock >= deadline { return .expired }
        if let validFrom = commit.validFrom, clock < validFrom { return .expired }
        return .committed
    }

    public mutating func commit(_ commit: HotCommit) -> HotCommitReply {
        let verdict = check(commit)
        guard verdict == .committed else { return verdict }
        for (key, value) in commit.puts {
            records[key] = Versioned(value: value, version: (records[key]?.version ?? 0) + 1)
        }
        for (set, members) in commit.setAdds { sets[set, default: []].formUnion(members) }
        for (set, members) in commit.setRemoves { sets[set]?.subtract(members) }
        return .committed
    }

    public mutating func install(_ install: HotInstall) -> HotInstallReply {
        if let generation = trustedGeneration, generation >= install.generation { return .superseded }
        generation = install.generation
        installedOn = server
        records = install.records.mapValues { Versioned(value: $0, version: 1) }
        sets = install.sets.mapValues { Set($0) }
        return .installed
    }

    /// The same Redis server now holding another database's service state (it was pointed at
    /// another PostgreSQL, or this service's PostgreSQL was replaced by a restored backup).
    public mutating func serveAnotherDatabase(_ install: HotInstall) {
        generation = install.generation
        installedOn = server
        records = install.records.mapValues { Versioned(value: $0, version: 1) }
        sets = install.sets.mapValues { Set($0) }
    }

    /// Redis restarting without persistence.
    public mutating func loseEverything() {
        generation = nil
        installedOn = nil
        records = [:]
        sets = [:]
        server += 1
    }

    /// Redis restarting from `copy`, an older copy of its data (an RDB snapshot, an AOF missing its
    /// last writes), or a replica holding it promoted: the contents go back, the server is new.
    /// - Parameter keepingIdentity: the planted bug `identityBlindHotStore`: the restored contents
    ///   pass for the running server's, as with an adapter that never compared `run_id`.
    public mutating func restart(from copy: HotStoreModel, keepingIdentity: Bool = false) {
        let next = max(server, copy.server) + 1
        self = copy
        server = next
        if keepingIdentity, generation != nil { installedOn = next }
    }

    // MARK: Inspection, for checkers and tests

    public func record(_ key: HotKey) -> Versioned { records[key] ?? .absent }
    public func members(_ set: HotSetKey) -> Set<ItemID> { sets[set] ?? [] }
}
