import Engine
import StoreModel

/// What this service's own hot store held, and when, in true time: every item record ever
/// written, every sale's sold count, and every code a user ever held or bought. The answer
/// judgments (`AnswerJudgments.swift`) ask it what the store held between a request's send and
/// its answer, the window in which the request could have taken effect.
///
/// Stretches during which the hot store was not this service's own (lost, restarted from an
/// untrusted copy, serving another database) are kept as untrusted: nothing read from it then may
/// be answered, so they never justify an answer.
struct StoreTimeline: Sendable {
    /// From `from` until the next segment's start, a key held `record`.
    struct Segment: Sendable {
        let from: Instant
        let record: ItemRecord?
        let trusted: Bool
    }

    /// From `from` until the next one, a sale's sold set counted `sold` items.
    struct CountSegment: Sendable {
        let from: Instant
        let sold: Int
        let trusted: Bool
    }

    /// A code counted against its user's limit from `since`: a hold until its expiry (and the
    /// allowance after it), a purchase for good.
    struct Counted: Sendable {
        let code: Code
        let since: Instant
        /// nil for a purchase.
        let expiresAt: Instant?
    }

    private(set) var items: [HotKey: [Segment]] = [:]
    private(set) var soldCounts: [SaleID: [CountSegment]] = [:]
    private(set) var countedOfUser: [HotKey: [Counted]] = [:]

    // MARK: Recording

    /// Key `key` holds `record` from `now` on.
    mutating func record(_ key: HotKey, _ record: ItemRecord?, trusted: Bool, at now: Instant) {
        if let last = items[key]?.last, last.record == record, last.trusted == trusted { return }
        items[key, default: []].append(Segment(from: now, record: record, trusted: trusted))
        guard trusted, case .item(let sale, _) = key else { return }
        switch record {
        case .held(let hold): countedOfUser[.user(sale, hold.user), default: []].append(Counted(code: hold.code, since: now, expiresAt: hold.expiresAt))
        case .sold(let purchase): countedOfUser[.user(sale, purchase.user), default: []].append(Counted(code: purchase.code, since: now, expiresAt: nil))
        case nil: break
        }
    }

    /// Sale `sale`'s sold set counts `sold` items from `now` on.
    mutating func soldCount(_ sale: SaleID, _ sold: Int, trusted: Bool, at now: Instant) {
        if let last = soldCounts[sale]?.last, last.sold == sold, last.trusted == trusted { return }
        soldCounts[sale, default: []].append(CountSegment(from: now, sold: sold, trusted: trusted))
    }

    /// The whole hot store changed at once (an install, a loss, a restart from a copy, another
    /// database): every key known so far, and every key of `install`, takes its new record.
    mutating func resync(_ hot: HotStoreModel, own: Bool, install: HotInstall?, sales: [SaleID], at now: Instant) {
        for key in install?.records.keys.filter({ if case .item = $0 { true } else { false } }) ?? [] where items[key] == nil {
            items[key] = []
        }
        for key in Array(items.keys) {  // (each key's segments are its own: the order does not matter)
            record(key, own ? hot.record(key).itemRecord : nil, trusted: own, at: now)
        }
        for sale in sales { soldCount(sale, hot.members(.sold(sale)).count, trusted: own, at: now) }
    }

    // MARK: Questions

    /// Whether, at some instant of `window`, the trusted hot store's record of `key` satisfied
    /// `holds`, which is given the record and the earliest instant of the window it was there.
    /// Before its first write a key is absent.
    func some(_ key: HotKey, in window: ClosedRange<Instant>, _ holds: (ItemRecord?, Instant) -> Bool) -> Bool {
        guard let segments = items[key], let first = segments.first else { return holds(nil, window.lowerBound) }
        if window.lowerBound < first.from && holds(nil, window.lowerBound) { return true }
        // Newest first: windows are recent, histories long.
        var end: Instant?
        for segment in segments.reversed() {
            defer { end = segment.from }
            if segment.from > window.upperBound { continue }
            if let end, end < window.lowerBound { break }
            if segment.trusted && holds(segment.record, max(segment.from, window.lowerBound)) { return true }
        }
        return false
    }

    /// When the trusted hot store first recorded `key` sold with `code`.
    func firstSold(_ key: HotKey, code: Code) -> Instant? {
        items[key]?.first { segment in
            if segment.trusted, case .sold(let purchase) = segment.record { purchase.code == code } else { false }
        }?.from
    }

    /// Whether the trusted hot store counted `sale` sold out at some instant of `window`.
    func soldOut(_ sale: SaleID, itemsPerSale: Int, in window: ClosedRange<Instant>) -> Bool {
        var end: Instant?
        for segment in (soldCounts[sale] ?? []).reversed() {
            defer { end = segment.from }
            if segment.from > window.upperBound { continue }
            if let end, end < window.lowerBound { break }
            if segment.trusted && segment.sold >= itemsPerSale { return true }
        }
        return false
    }

    /// The most items `user` had counted against the limit of its sale at any instant of
    /// `window`: codes it held (until `tolerance` after their expiry) or bought there. Generous on
    /// purpose: a hold counts from its commit even if a rebuild or a release dropped it since.
    func mostCounted(_ userKey: HotKey, in window: ClosedRange<Instant>, tolerance: TimeSpan) -> Int {
        let counted = countedOfUser[userKey] ?? []
        var instants = [window.lowerBound]
        for entry in counted where window.contains(entry.since) { instants.append(entry.since) }
        var most = 0
        for instant in instants {
            var codes = Set<String>()
            for entry in counted where entry.since <= instant {
                if let expiresAt = entry.expiresAt, instant >= expiresAt + tolerance { continue }
                codes.insert(entry.code.text)
            }
            most = max(most, codes.count)
        }
        return most
    }
}
