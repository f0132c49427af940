import Engine

/// The calls waiting on one store connection while its previous batch is in flight, and the rules by
/// which they leave it: oldest first, at most `maxBatch` at a time, a call whose caller has stopped
/// waiting is never sent, and each reply of a batch goes back to the call in the same position.
///
/// Batching across requests happens here: every call that queues while a round trip is under way
/// goes out in the next one (one pipeline to Redis, one transaction to PostgreSQL), so a store's
/// fixed cost per round trip is paid once per batch. The adapters' connection threads
/// (`ConnectionPool`) and the simulator's connections both run these rules, so the simulator proves
/// the batching production runs.
public struct ConnectionQueue<Job> {
    /// The most calls one batch carries.
    public let maxBatch: Int
    private var jobs: [Job] = []

    public init(maxBatch: Int) {
        precondition(maxBatch >= 1, "a batch carries at least one call")
        self.maxBatch = maxBatch
    }

    /// Calls waiting.
    public var count: Int { jobs.count }
    public var isEmpty: Bool { jobs.isEmpty }

    /// Queues a call behind every call already waiting.
    public mutating func append(_ job: Job) { jobs.append(job) }

    /// Moves the next batch, oldest first, into `batch` (which must be empty): the whole queue when
    /// it fits (swapping buffers, so the common case copies nothing), else its oldest `maxBatch`.
    public mutating func takeBatch(into batch: inout [Job]) {
        precondition(batch.isEmpty, "the previous batch was not cleared")
        if jobs.count <= maxBatch {
            swap(&batch, &jobs)
        } else {
            batch.append(contentsOf: jobs[..<maxBatch])
            jobs.removeFirst(maxBatch)
        }
    }

    /// Empties the queue (the connection is closing); returns what waited, oldest first.
    public mutating func removeAll() -> [Job] {
        defer { jobs.removeAll() }
        return jobs
    }
}

extension ConnectionQueue: Sendable where Job: Sendable {}

/// How a batch's calls are sent and answered, whatever the store.
public enum BatchRules {
    /// Splits a batch taken from a `ConnectionQueue` into what is sent: a call whose caller has
    /// stopped waiting (`isExpired`) is answered at once by `expire` and never reaches the store;
    /// the rest keep their order in `live`.
    public static func dropExpired<Job>(_ batch: [Job], into live: inout [Job], isExpired: (Job) -> Bool, expire: (Job) -> Void) {
        for job in batch {
            if isExpired(job) { expire(job) } else { live.append(job) }
        }
    }

    /// Hands each call of a sent batch its reply, by position: the store answers a pipeline or a
    /// transaction's statements in the order they were sent. A call the store returned no reply for
    /// gets `missing`.
    public static func fanOut<Job, Reply>(_ replies: [Reply], to jobs: [Job], missing: Reply, _ deliver: (Job, Reply) -> Void) {
        for index in jobs.indices {
            deliver(jobs[index], index < replies.count ? replies[index] : missing)
        }
    }

    /// The connection a new call queues on, among `count`: the one whose thread is making the call
    /// (`current`, a reply's completion starting the request's next call), so it leaves in that
    /// connection's very next batch and no other thread has to wake up; otherwise the one with the
    /// fewest calls waiting, the first on ties, stopping at an idle one.
    public static func connection(current: Int?, count: Int, queued: (Int) -> Int) -> Int {
        if let current { return current }
        var chosen = 0
        var fewest = queued(0)
        var candidate = 1
        while candidate < count && fewest > 0 {
            let waiting = queued(candidate)
            if waiting < fewest { (chosen, fewest) = (candidate, waiting) }
            candidate += 1
        }
        return chosen
    }

    /// The order in which PostgreSQL applies a batch's writes: sorted by the unique keys they insert,
    /// the same in every batch, so two batches never wait on each other's index entries in opposite
    /// orders; writes with equal keys keep their queue order (the first one is written, the later
    /// ones find it). Returns positions in `writes`.
    public static func durableWriteOrder(_ writes: [DurableWrite]) -> [Int] {
        writes.indices.sorted { lhs, rhs in
            let (a, b) = (lockKey(writes[lhs]), lockKey(writes[rhs]))
            return a != b ? a < b : lhs < rhs
        }
    }

    private static func lockKey(_ write: DurableWrite) -> (Int, String, Int64, Int) {
        switch write {
        case .attempt(let attempt, _): (0, attempt.id.rawValue, 0, 0)
        case .purchase(let purchase, _, _): (1, purchase.code.text, purchase.sale.rawValue, purchase.item.rawValue)
        }
    }
}
