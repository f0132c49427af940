import Adapters
import Engine
import Foundation
import StoreModel
import Synchronization

/// One connection's worth of protocol, living on exactly one OS thread.
///
/// A driver owns its (non-`Sendable`) C connection: it is created on its worker thread, used only
/// there and destroyed there, so `PGconn` / `redisContext` never cross threads. The worker hands it
/// every job that queued up since the last batch (at most `maxBatch`), and the driver answers them
/// all, typically in one pipelined round trip.
public protocol ConnectionDriver: AnyObject, SendableMetatype {
    associatedtype Request: Sendable
    associatedtype Reply: Sendable

    /// Answers every request of `batch`, in order, one result each. Must not throw or crash on
    /// a broken connection: the driver reconnects by itself on a later batch. `deadline` is when
    /// the callers stop waiting: a batch still unanswered then answers `.timeout`.
    func execute(_ batch: [Request], deadline: ContinuousClock.Instant) -> [Result<Reply, StoreFailure>]

    /// Closes the connection (called on the worker thread when the pool shuts down).
    func close()
}

/// Settings shared by both adapters' pools.
public struct PoolSettings: Sendable {
    /// Connections, each with its own thread.
    public var connections: Int
    /// How long a call may take, queueing included, before it answers `.timeout`.
    public var callTimeout: Duration
    /// The most jobs sent as one pipeline / one transaction.
    public var maxBatch: Int

    public init(connections: Int = 4, callTimeout: Duration = .seconds(5), maxBatch: Int = 256) {
        precondition(connections >= 1 && maxBatch >= 1)
        self.connections = connections
        self.callTimeout = callTimeout
        self.maxBatch = maxBatch
    }
}

/// N connections, each confined to its own OS thread with a job queue. A call enqueues a job with
/// a completion (or a continuation, for `call`); no task ever blocks on I/O.
public final class ConnectionPool<Driver: ConnectionDriver>: Sendable {
    private let workers: [Worker<Driver>]
    private let settings: PoolSettings

    /// - Parameter makeDriver: called once on each connection's own thread.
    public init(name: String, settings: PoolSettings, makeDriver: @escaping @Sendable () -> Driver) {
        self.settings = settings
        self.workers = (0..<settings.connections).map { index in
            Worker(name: "\(name)-\(index)", maxBatch: settings.maxBatch, makeDriver: makeDriver)
        }
    }

    deinit {
        for worker in workers { worker.stop() }
    }

    /// Stops every connection thread; queued calls answer `.unavailable`.
    public func shutdown() {
        for worker in workers { worker.stop() }
    }

    /// Runs `request` on the least busy connection.
    public func call(_ request: Driver.Request) async throws(StoreFailure) -> Driver.Reply {
        // The worker answers every job exactly once (answered, timed out, or failed at stop).
        try await awaitCompletion { submit(request, then: $0) }
    }

    /// Queues `request` on the least busy connection; `complete` runs exactly once, on that
    /// connection's thread, as soon as the reply is in (so whatever it starts next needs no
    /// other thread to wake up first).
    ///
    /// Called from one of this pool's own connection threads (a completion starting the request's
    /// next call), the job stays on that connection: it goes out in the very next batch and no
    /// other thread has to wake up for it.
    public func submit(_ request: Driver.Request, then complete: @escaping @Sendable (Result<Driver.Reply, StoreFailure>) -> Void) {
        let job = Job(request: request, deadline: ContinuousClock.now + settings.callTimeout, complete: complete)
        let me = UInt(pthread_self())
        let current = workers.firstIndex { $0.thread.load(ordering: .relaxed) == me }
        let workers = self.workers
        workers[BatchRules.connection(current: current, count: workers.count) { workers[$0].queued }].submit(job)
    }
}

struct Job<Request: Sendable, Reply: Sendable>: Sendable {
    let request: Request
    let deadline: ContinuousClock.Instant
    let complete: @Sendable (Result<Reply, StoreFailure>) -> Void
}

/// One connection thread and its queue. The queue is guarded by `condition`; the driver exists
/// only inside `run`, on the thread.
final class Worker<Driver: ConnectionDriver>: @unchecked Sendable {
    typealias J = Job<Driver.Request, Driver.Reply>
    private let condition = NSCondition()
    private var jobs: ConnectionQueue<J>  // guarded by condition
    private var stopped = false  // guarded by condition
    private let maxBatch: Int
    /// The connection thread's `pthread_t` once it runs (0 before): lets a call made on this very
    /// thread stay here.
    let thread = Atomic<UInt>(0)

    init(name: String, maxBatch: Int, makeDriver: @escaping @Sendable () -> Driver) {
        self.maxBatch = maxBatch
        jobs = ConnectionQueue(maxBatch: maxBatch)
        let thread = Thread { [self] in
            self.thread.store(UInt(pthread_self()), ordering: .relaxed)
            Thread.current.name = name  // set from the thread itself, so top and perf show it
            self.run(makeDriver)
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    var queued: Int {
        condition.lock()
        defer { condition.unlock() }
        return jobs.count
    }

    func submit(_ job: J) {
        condition.lock()
        if stopped {
            condition.unlock()
            job.complete(.failure(.unavailable))
            return
        }
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func run(_ makeDriver: @Sendable () -> Driver) {
        let driver = makeDriver()
        var batch: [J] = []
        var live: [J] = []
        var requests: [Driver.Request] = []
        batch.reserveCapacity(maxBatch)
        live.reserveCapacity(maxBatch)
        requests.reserveCapacity(maxBatch)
        while true {
            condition.lock()
            while jobs.isEmpty && !stopped { condition.wait() }
            if stopped {
                let left = jobs.removeAll()
                condition.unlock()
                for job in left { job.complete(.failure(.unavailable)) }
                driver.close()
                return
            }
            jobs.takeBatch(into: &batch)
            condition.unlock()

            // A job that already waited past its deadline is not sent at all.
            let now = ContinuousClock.now
            BatchRules.dropExpired(batch, into: &live, isExpired: { $0.deadline <= now }, expire: { $0.complete(.failure(.timeout)) })
            batch.removeAll(keepingCapacity: true)
            if !live.isEmpty {
                var deadline = live[0].deadline
                for job in live {
                    requests.append(job.request)
                    if job.deadline < deadline { deadline = job.deadline }
                }
                BatchRules.fanOut(driver.execute(requests, deadline: deadline), to: live, missing: .failure(.unavailable)) { $0.complete($1) }
            }
            live.removeAll(keepingCapacity: true)
            requests.removeAll(keepingCapacity: true)
        }
    }
}

/// Adapter logging: one line on standard error. (The server wires its own logger later; the
/// adapters only report what they cannot return to the caller.)
public func adapterLog(_ message: String) {
    FileHandle.standardError.write(Data("[adapters] \(message)\n".utf8))
}
