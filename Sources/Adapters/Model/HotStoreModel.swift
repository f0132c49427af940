import Engine

/// The exact semantics of the hot store port, as a plain value: what the Redis adapter must do,
/// what the simulator's Redis does, and what the in-memory adapter is.
///
/// Every operation is atomic by construction (it is one function call on a value).
public struct HotStoreModel: Sendable {
    /// nil after the store lost its data, until a rebuild installs a new generation.
    public private(set) var generation: Generation?
    private var records: [HotKey: Versioned] = [:]
    private var sets: [HotSetKey: Set<ItemID>] = [:]

    /// A new, empty store. `generation` nil models a Redis that never held this service's data.
    public init(generation: Generation? = nil) {
        self.generation = generation
    }

    public mutating func apply(_ call: StoreCall) -> StoreReply? {
        switch call {
        case .hotRead(let read): .hotRead(self.read(read))
        case .hotCommit(let commit): .hotCommit(self.commit(commit))
        case .hotInstall(let install): .hotInstall(self.install(install))
        case .durableWrite, .durableQuery, .durableBumpGeneration: nil
        }
    }

    public func read(_ read: HotRead) -> HotReadReply {
        guard let generation else { return .uninitialized }
        return .snapshot(HotSnapshot(
            generation: generation,
            records: read.keys.map { records[$0] ?? .absent },
            counts: read.counts.map { sets[$0]?.count ?? 0 },
            members: read.members.map { (sets[$0] ?? []).sorted() }))
    }

    /// What `commit` would answer, without applying anything. (A put whose key is not guarded is a
    /// blind write; the engine guards every put, and the simulator's planted bugs show why.)
    public func check(_ commit: HotCommit) -> HotCommitReply {
        guard let generation, generation == commit.generation else { return .fenced }
        for (key, version) in commit.guards where (records[key]?.version ?? 0) != version {
            return .conflict
        }
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
        if let generation, generation >= install.generation { return .superseded }
        generation = install.generation
        records = install.records.mapValues { Versioned(value: $0, version: 1) }
        sets = install.sets.mapValues { Set($0) }
        return .installed
    }

    /// Redis restarting without persistence.
    public mutating func loseEverything() {
        generation = nil
        records = [:]
        sets = [:]
    }

    // MARK: Inspection, for checkers and tests

    public func record(_ key: HotKey) -> Versioned { records[key] ?? .absent }
    public func members(_ set: HotSetKey) -> Set<ItemID> { sets[set] ?? [] }
}
