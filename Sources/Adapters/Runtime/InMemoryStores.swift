import Engine
import StoreModel
import Synchronization

/// The embedded default: both stores in this process's memory, with the exact semantics of the
/// port models. Nothing survives a restart; the server says so loudly when it runs on this.
public final class InMemoryStores: HotStore, DurableStore {
    private let hotModel = Mutex(HotStoreModel())
    private let durableModel = Mutex(DurableStoreModel())

    public init() {}

    public var stores: Stores { Stores(hot: self, durable: self) }

    public func read(_ read: HotRead) async throws(StoreFailure) -> HotReadReply {
        hotModel.withLock { $0.read(read) }
    }

    public func commit(_ commit: HotCommit) async throws(StoreFailure) -> HotCommitReply {
        hotModel.withLock { $0.commit(commit) }
    }

    public func install(_ install: HotInstall) async throws(StoreFailure) -> HotInstallReply {
        hotModel.withLock { $0.install(install) }
    }

    public func write(_ write: DurableWrite) async throws(StoreFailure) -> DurableWriteReply {
        durableModel.withLock { $0.write(write) }
    }

    public func query(_ query: DurableQuery) async throws(StoreFailure) -> DurableQueryReply {
        durableModel.withLock { $0.query(query) }
    }

    public func bumpGeneration() async throws(StoreFailure) -> Generation {
        durableModel.withLock { $0.bumpGeneration() }
    }

    /// Simulates Redis restarting empty (for tests of the rebuild path).
    public func loseHotState() {
        hotModel.withLock { $0.loseEverything() }
    }
}
