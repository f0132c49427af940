import Engine
import StoreModel
import Synchronization

/// The embedded default: both stores in this process's memory, with the exact semantics of the
/// port models. Nothing survives a restart; the server says so loudly when it runs on this.
public final class InMemoryStores: HotStore, DurableStore {
    private let hotModel = Mutex(HotStoreModel())
    private let durableModel = Mutex(DurableStoreModel())
    /// The hot store's clock (what purchase deadlines are judged by): the service's own.
    private let clock: @Sendable () -> Instant

    /// - Parameter clock: the hot store's clock; the server passes its own, tests theirs.
    public init(clock: @escaping @Sendable () -> Instant) {
        self.clock = clock
    }

    public var stores: Stores { Stores(hot: self, durable: self) }

    // Every call completes before it returns, on the caller's thread.

    public func read(_ read: HotRead, then complete: @escaping StoreCompletion<HotReadReply>) {
        let now = clock()
        complete(.success(hotModel.withLock { model in
            model.clock = now
            return model.read(read)
        }))
    }

    public func commit(_ commit: HotCommit, then complete: @escaping StoreCompletion<HotCommitReply>) {
        let now = clock()
        complete(.success(hotModel.withLock { model in
            model.clock = now
            return model.commit(commit)
        }))
    }

    public func install(_ install: HotInstall, then complete: @escaping StoreCompletion<HotInstallReply>) {
        complete(.success(hotModel.withLock { $0.install(install) }))
    }

    public func write(_ write: DurableWrite, then complete: @escaping StoreCompletion<DurableWriteReply>) {
        complete(.success(durableModel.withLock { $0.write(write) }))
    }

    public func query(_ query: DurableQuery, then complete: @escaping StoreCompletion<DurableQueryReply>) {
        complete(.success(durableModel.withLock { $0.query(query) }))
    }

    public func bumpGeneration(_ bump: GenerationBump, then complete: @escaping StoreCompletion<Generation>) {
        complete(.success(durableModel.withLock { $0.bumpGeneration(bump) }))
    }

    /// Simulates Redis restarting empty (for tests of the rebuild path).
    public func loseHotState() {
        hotModel.withLock { $0.loseEverything() }
    }

    /// A copy of the hot store's data, as an RDB snapshot would save it (for tests of rollbacks).
    public func saveHotState() -> HotStoreModel {
        hotModel.withLock { $0 }
    }

    /// Simulates Redis restarting from the older copy `saved` (for tests of rollbacks).
    public func restartHot(from saved: HotStoreModel) {
        hotModel.withLock { $0.restart(from: saved) }
    }
}
