import Engine

/// Everything that can happen in a simulation, at one instant of true (virtual) time.
enum Event: Sendable {
    /// A user decides what to do next.
    case userActs(user: Int)
    /// A client request reaches a server instance.
    case requestArrives(request: Int)
    /// A response reaches its client.
    case responseArrives(request: Int, response: SimResponse)
    /// The client stops waiting for a request.
    case clientTimeout(request: Int)
    /// A batch of store calls reaches its store.
    case batchReachesStore(batch: Int)
    /// A store's replies to a batch reach the connection that sent it, in the order of its calls.
    case batchReplyArrives(batch: Int, replies: [StoreReply])
    /// The connection's deadline for a batch passes.
    case batchGivesUp(batch: Int)
    /// The instance's timeout for a store call fires.
    case callTimeout(call: Int)
    /// A machine's back-off ends.
    case wake(instance: Int, incarnation: Int, machine: Int)
    case restart(instance: Int)
    case redisRestart
    /// Redis saves a copy of its data (an RDB snapshot; what a lagging replica holds).
    case redisSave
    /// Redis comes back with the last saved copy (restart from a snapshot, failover to a replica).
    case redisRollback
    /// Redis now holds another database's state (the service was pointed at another PostgreSQL).
    case redisServesAnotherDatabase
    /// An instance stops for a while (stop-the-world pause, SIGSTOP, swapping).
    case pause(instance: Int)
    /// A paused instance carries on.
    case resume(instance: Int)
    /// An instance's clock jumps or drifts beyond the skew allowance, and later comes back.
    case clockGoesBad(instance: Int)
    case clockRecovers(instance: Int)
    /// One instance loses (or regains) its connection to one store; the others still reach it.
    case partitionStarts(instance: Int, hot: Bool)
    case partitionEnds(instance: Int, hot: Bool)
    case outageStarts(hot: Bool)
    case outageEnds(hot: Bool)
    case clockJump(instance: Int)
    case reconcileTick(instance: Int)
    case faultsEnd

    /// A small number per kind, for the trace hash.
    var kind: UInt64 {
        switch self {
        case .userActs: 1
        case .requestArrives: 2
        case .responseArrives: 3
        case .clientTimeout: 4
        case .batchReachesStore: 5
        case .batchReplyArrives: 6
        case .batchGivesUp: 9
        case .callTimeout: 7
        case .wake: 8
        case .restart: 10
        case .redisRestart: 11
        case .redisSave: 17
        case .redisRollback: 18
        case .pause: 19
        case .resume: 24
        case .redisServesAnotherDatabase: 25
        case .partitionStarts: 20
        case .partitionEnds: 21
        case .clockGoesBad: 22
        case .clockRecovers: 23
        case .outageStarts: 12
        case .outageEnds: 13
        case .clockJump: 14
        case .reconcileTick: 15
        case .faultsEnd: 16
        }
    }

    /// The main id the event concerns, for the trace hash.
    var subject: UInt64 {
        switch self {
        case .userActs(let u): UInt64(u)
        case .requestArrives(let r), .responseArrives(let r, _), .clientTimeout(let r): UInt64(r)
        case .batchReachesStore(let b), .batchReplyArrives(let b, _), .batchGivesUp(let b): UInt64(b)
        case .callTimeout(let c): UInt64(c)
        case .wake(let i, _, let m): UInt64(i) << 32 | UInt64(m)
        case .restart(let i), .clockJump(let i), .reconcileTick(let i), .pause(let i), .clockGoesBad(let i), .clockRecovers(let i),
            .resume(let i):
            UInt64(i)
        case .outageStarts(let hot), .outageEnds(let hot): hot ? 1 : 0
        case .partitionStarts(let i, let hot), .partitionEnds(let i, let hot): UInt64(i) << 1 | (hot ? 1 : 0)
        case .redisRestart, .redisSave, .redisRollback, .redisServesAnotherDatabase, .faultsEnd: 0
        }
    }
}

struct ScheduledEvent: Sendable {
    let time: Instant
    let event: Event
}

/// Events ordered by time, ties broken by scheduling order: the only order the simulation has.
/// A binary min-heap of plain keys; the events themselves wait in slots, so sifting never copies
/// (and retains) their payloads.
struct EventQueue: Sendable {
    private struct Key: Sendable {
        let time: Int64
        let sequence: UInt64
        let slot: Int

        static func < (lhs: Key, rhs: Key) -> Bool { (lhs.time, lhs.sequence) < (rhs.time, rhs.sequence) }
    }

    private var heap: [Key] = []
    private var slots: [Event?] = []
    private var freeSlots: [Int] = []
    private var sequence: UInt64 = 0

    mutating func schedule(_ event: Event, at time: Instant) {
        sequence += 1
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            slots[free] = event
        } else {
            slot = slots.count
            slots.append(event)
        }
        heap.append(Key(time: time.microseconds, sequence: sequence, slot: slot))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child] < heap[parent] else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func next() -> ScheduledEvent? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { break }
            let right = left + 1
            let child = right < heap.count && heap[right] < heap[left] ? right : left
            guard heap[child] < heap[parent] else { break }
            heap.swapAt(child, parent)
            parent = child
        }
        guard let event = slots[top.slot] else { return nil }
        slots[top.slot] = nil
        freeSlots.append(top.slot)
        return ScheduledEvent(time: Instant(microseconds: top.time), event: event)
    }

}

/// FNV-1a over the processed events: equal hashes mean equal traces.
struct TraceHash: Sendable {
    private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    mutating func mix(_ word: UInt64) {
        var w = word
        for _ in 0..<8 {
            value ^= w & 0xFF
            value &*= 0x0000_0100_0000_01B3
            w >>= 8
        }
    }
}
