/// What one instance last saw of the hot store, so that a checkout or a purchase can decide
/// before reading and go straight to its compare-and-set.
///
/// It is a guess, never an authority: the compare-and-set guards every record the decision used
/// by the version remembered here (a key never seen is guessed absent, version 0), and is fenced
/// by the remembered generation. If anything changed, the store refuses the commit and the
/// machine reads and decides again, exactly as without a guess. Only decisions to *write* are
/// taken on a guess; a refusal or a repeat answer is always decided on a fresh read. The one
/// value not guarded is the sale's sold count, which only orders refusals (`sold_out` before
/// `item_sold`): a sold-out sale has every item's record sold, so no guarded hold can commit.
///
/// Learning: every hot-store reply an instance receives, with the call it answers, goes through
/// `learn`. A committed put's new version is its guard plus one (the port's contract, see
/// `HotCommit`). Replies may be learned out of order (two connections): a stale entry only costs
/// one refused commit. Bounded: past `capacity` records it starts over empty.
public struct HotRecordCache: Sendable {
    public private(set) var generation: Generation?
    private var records: [HotKey: Versioned] = [:]
    private var soldCounts: [SaleID: Int] = [:]
    public let capacity: Int
    /// The rules whose clock check a guess must pass (nil: no check).
    let rules: SaleRules?
    /// Whether the instance's clock was within the allowance of the store's at the last read.
    public private(set) var clockSafe = false

    /// - Parameter rules: when given, no guess is offered unless the last read found this
    ///   instance's clock close enough to the store's (`ClockCheck`): a guessed commit stamps and
    ///   judges times by the instance's clock alone.
    public init(capacity: Int = 65_536, rules: SaleRules? = nil) {
        precondition(capacity > 0)
        self.capacity = capacity
        self.rules = rules
    }

    /// Records remembered (for tests and metrics).
    public var count: Int { records.count }

    /// `read` answered from memory, or nil when the generation is unknown or the read needs set
    /// members (which are never guessed).
    public func snapshot(for read: HotRead) -> HotSnapshot? {
        guard let generation, read.members.isEmpty, rules == nil || clockSafe else { return nil }
        var counts: [Int] = []
        for set in read.counts {
            guard case .sold(let sale) = set else { return nil }
            counts.append(soldCounts[sale] ?? 0)
        }
        return HotSnapshot(generation: generation, records: read.keys.map { records[$0] ?? .absent }, counts: counts)
    }

    /// Takes in what `reply` says about the hot store, `call` being the call it answers, received
    /// at `localTime` on the instance's clock.
    public mutating func learn(_ call: StoreCall, _ reply: StoreReply, localTime: Instant? = nil) {
        switch (call, reply) {
        case (.hotRead(let read), .hotRead(.snapshot(let snapshot))):
            if let rules, let localTime, let storeTime = snapshot.storeTime {
                clockSafe = ClockCheck.isSafe(local: localTime, store: storeTime, rules: rules)
            }
            guard snapshot.records.count == read.keys.count, snapshot.counts.count == read.counts.count else { return }
            adopt(snapshot.generation)
            for (key, versioned) in zip(read.keys, snapshot.records) { remember(key, versioned) }
            for (set, count) in zip(read.counts, snapshot.counts) {
                if case .sold(let sale) = set { soldCounts[sale] = count }
            }
        case (.hotCommit(let commit), .hotCommit(.committed)):
            adopt(commit.generation)
            for (key, value) in commit.puts {
                if let guarded = commit.guards[key] {
                    remember(key, Versioned(value: value, version: guarded + 1))
                } else {
                    records[key] = nil  // an unguarded put: its new version is not known
                }
            }
            for set in commit.setAdds.keys { if case .sold(let sale) = set { soldCounts[sale] = nil } }
        case (.hotCommit(let commit), .hotCommit(.conflict)), (.hotCommit(let commit), .failed):
            // Some guarded record changed (or the commit may or may not have applied).
            for key in commit.guards.keys { records[key] = nil }
            for key in commit.puts.keys { records[key] = nil }
        case (.hotCommit, .hotCommit(.fenced)), (.hotRead, .hotRead(.uninitialized)), (.hotInstall, _):
            forgetAll()  // the store's contents were (or are being) replaced
        default:
            break
        }
    }

    /// Forgets everything (the store was replaced, or this instance restarted).
    public mutating func forgetAll() {
        generation = nil
        records.removeAll()
        soldCounts.removeAll()
    }

    private mutating func adopt(_ seen: Generation) {
        guard seen != generation else { return }
        // Another generation has other contents (versions start again at 1): nothing carries over.
        forgetAll()
        generation = seen
    }

    private mutating func remember(_ key: HotKey, _ versioned: Versioned) {
        if records.count >= capacity && records[key] == nil { records.removeAll(keepingCapacity: true) }
        records[key] = versioned
    }
}
