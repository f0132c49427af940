import Engine
import StoreModel

/// One store connection of a simulated instance: the calls queued on it and the batch in flight.
/// The server's connection threads (`ConnectionPool`) work the same way, by the same rules
/// (`ConnectionQueue`, `BatchRules`): while a batch is out, every new call queues, and the queue
/// leaves as the next batch, one pipeline (Redis) or one transaction (PostgreSQL).
struct SimConnection: Sendable {
    var queue: ConnectionQueue<Int>
    /// The batch out on the connection, if any.
    var inFlight: Int?
}

/// Where a connection is: its instance, its store, its place in that store's pool.
struct ConnectionAddress: Hashable, Sendable {
    let instance: Int
    let hot: Bool
    let index: Int
}

/// Calls sent together on one connection, from the moment they leave until the connection gives up
/// on them.
struct SimBatch: Sendable {
    let connection: ConnectionAddress
    let incarnation: Int
    /// The calls, in the order they were queued (and sent).
    let calls: [Int]
    /// The first call's stable identity: the batch's own delays and faults are drawn from it.
    let identity: UInt64
    /// The connection's deadline for it passed: whatever the store still does with it, its replies
    /// go nowhere.
    var abandoned = false
    /// Its replies reached the connection.
    var replied = false
    /// No store event will come for it any more (lost on the way, or answered, or cut off unanswered).
    var storeDone = false
}

/// The instance's pools: `connectionsPerStore` connections to each store.
struct SimPools: Sendable {
    var hot: [SimConnection]
    var durable: [SimConnection]

    init(connections: Int, maxBatch: Int) {
        hot = (0..<connections).map { _ in SimConnection(queue: ConnectionQueue(maxBatch: maxBatch)) }
        durable = hot
    }

    subscript(hot isHot: Bool, index: Int) -> SimConnection {
        get { isHot ? hot[index] : durable[index] }
        set { if isHot { hot[index] = newValue } else { durable[index] = newValue } }
    }
}

/// Store calls on their way through the instances' connections: queued, sent in batches,
/// answered together, replies handed back by position.
extension Simulation {
    /// Queues call `id` on one of its instance's connections to its store and sends it at once if
    /// the connection is idle.
    mutating func enqueue(_ id: Int, hot isHot: Bool, from index: Int) {
        let current = currentConnection.flatMap { $0.instance == index && $0.hot == isHot ? $0.index : nil }
        let chosen = BatchRules.connection(current: current, count: config.connectionsPerStore) { self.instances[index].pools[hot: isHot, $0].queue.count }
        instances[index].pools[hot: isHot, chosen].queue.append(id)
        sendNextBatch(on: ConnectionAddress(instance: index, hot: isHot, index: chosen))
    }

    /// An idle connection sends what queued on it, as one batch; calls whose caller has stopped
    /// waiting are dropped first, as the server's connection threads drop them.
    mutating func sendNextBatch(on address: ConnectionAddress) {
        let index = address.instance
        guard instances[index].alive else { return }
        while instances[index].pools[hot: address.hot, address.index].inFlight == nil,
            !instances[index].pools[hot: address.hot, address.index].queue.isEmpty
        {
            var taken: [Int] = []
            instances[index].pools[hot: address.hot, address.index].queue.takeBatch(into: &taken)
            var live: [Int] = []
            var expired: [Int] = []
            BatchRules.dropExpired(taken, into: &live, isExpired: { self.calls[$0].map { $0.deadline <= self.now } ?? true },
                                   expire: { expired.append($0) })
            for id in expired { expireQueued(id) }
            guard !live.isEmpty else { continue }
            send(live, on: address)
        }
    }

    /// A call that waited in its connection's queue past its deadline: never sent, its caller told
    /// it timed out (if its own timeout has not told it already).
    mutating func expireQueued(_ id: Int) {
        guard let pending = calls.removeValue(forKey: id) else { return }
        mark("call_expired_in_queue")
        if pending.waiting {
            mark("store_call_timed_out")
            deliver(.failed(.timeout), to: pending)
        }
    }

    mutating func send(_ ids: [Int], on address: ConnectionAddress) {
        nextBatch += 1
        let id = nextBatch
        let identity = calls[ids[0]]?.identity ?? UInt64(id)
        var batch = SimBatch(connection: address, incarnation: instances[address.instance].incarnation, calls: ids, identity: identity)
        instances[address.instance].pools[hot: address.hot, address.index].inFlight = id
        noteBatchCoverage(batch)
        // The connection waits until the earliest deadline of its calls, as the server's does.
        let deadline = ids.compactMap { calls[$0]?.deadline }.min() ?? now
        queue.schedule(.batchGivesUp(batch: id), at: deadline)
        var lost = draw(.lostOnTheWay, identity)
        var late = draw(.appliedLate, identity)
        if faultsActive && lost.chance(config.faults.lostOnTheWay) {
            fault("call_lost_on_the_way")
            batch.storeDone = true
            for call in ids { calls[call]?.lostOnTheWay = true }
        } else if faultsActive && late.chance(config.faults.appliedLate) {
            // Delayed past its timeout: it applies after the caller gave up on it, often after its retry.
            fault("call_applied_late")
            let timeout = address.hot ? Self.hotTimeout : Self.durableTimeout
            queue.schedule(.batchReachesStore(batch: id), at: now + timeout + TimeSpan(microseconds: late.micros(1_000, timeout.microseconds * 4)))
        } else {
            queue.schedule(.batchReachesStore(batch: id), at: now + storeDelay(draw(.toStore, identity)))
        }
        batches[id] = batch
    }

    mutating func noteBatchCoverage(_ batch: SimBatch) {
        let size = batch.calls.count
        if size == 1 { mark("batch_of_one") } else { mark("batch_of_several") }
        if size > 1 && size == config.maxBatch { mark("batch_full") }
        if !batch.connection.hot {
            let writes = batch.calls.filter { if case .durableWrite? = calls[$0]?.call { true } else { false } }.count
            if writes > 1 { mark("group_commit_of_several_writes") }
            if writes > 0 && writes < size { mark("group_commit_with_queries") }
        }
    }

    /// The batch's replies reach its connection: handed to its calls by position. Whatever the
    /// replies start on this connection (a request's next call) queues here and leaves in its
    /// next batch.
    mutating func batchReplyArrives(_ id: Int, _ replies: [StoreReply]) {
        guard var batch = batches[id] else { return }
        batch.replied = true
        batch.storeDone = true
        guard !batch.abandoned else {
            batches[id] = nil  // the connection was closed: the replies go nowhere
            return
        }
        batches[id] = batch
        let address = batch.connection
        let sameLife = instances[address.instance].incarnation == batch.incarnation
        if sameLife && instances[address.instance].pools[hot: address.hot, address.index].inFlight == id {
            instances[address.instance].pools[hot: address.hot, address.index].inFlight = nil
        }
        let routed = config.plantedBug?.fannedOut(replies) ?? replies
        var pairs: [(Int, StoreReply)] = []
        BatchRules.fanOut(routed, to: batch.calls, missing: .failed(.unavailable)) { pairs.append(($0, $1)) }
        currentConnection = sameLife ? address : nil
        for (call, reply) in pairs { replyArrives(call, reply) }
        currentConnection = nil
        if sameLife { sendNextBatch(on: address) }
    }

    /// The connection's deadline passed: if the batch is still unanswered, the server closes the
    /// connection and answers every call of the batch `.timeout` (they may have run).
    mutating func batchGivesUp(_ id: Int) {
        guard var batch = batches[id] else { return }
        batch.abandoned = true
        batches[id] = batch.storeDone ? nil : batch
        guard !batch.replied else { return }
        mark("batch_timed_out")
        let address = batch.connection
        guard instances[address.instance].incarnation == batch.incarnation else { return }
        if instances[address.instance].pools[hot: address.hot, address.index].inFlight == id {
            instances[address.instance].pools[hot: address.hot, address.index].inFlight = nil
        }
        for call in batch.calls { callTimedOut(call) }
        sendNextBatch(on: address)
    }

    /// A crash takes the instance's connections with it: what waited in their queues is never sent.
    mutating func dropConnections(of index: Int) {
        for isHot in [true, false] {
            for connection in 0..<config.connectionsPerStore {
                for id in instances[index].pools[hot: isHot, connection].queue.removeAll() { calls[id] = nil }
                instances[index].pools[hot: isHot, connection].inFlight = nil
            }
        }
    }
}
