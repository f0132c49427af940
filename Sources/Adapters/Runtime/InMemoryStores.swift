import Engine
import StoreModel
import Synchronization

/// The embedded default: both stores in this process's memory, with the exact semantics of the
/// port models. Nothing survives a restart; the server says so loudly when it runs on this.
public final class InMemoryStores: StorePort {
    private let hotModel = Mutex(HotStoreModel())
    private let durableModel = Mutex(DurableStoreModel())
    /// The hot store's clock (what purchase deadlines are judged by): the service's own.
    private let clock: @Sendable () -> Instant

    /// - Parameter clock: the hot store's clock; the server passes its own, tests theirs.
    public init(clock: @escaping @Sendable () -> Instant) {
        self.clock = clock
    }

    public var stores: Stores { Stores(hot: self, durable: self) }

    /// Completes before it returns, on the caller's thread.
    public func execute(_ call: StoreCall, then complete: @escaping StoreCompletion) {
        complete(reply(to: call))
    }

    private func reply(to call: StoreCall) -> StoreReply {
        guard call.isHot else { return durableModel.withLock { $0.apply(call) } ?? .failed(.unavailable) }
        let now = clock()
        return hotModel.withLock { model in
            model.clock = now
            return model.apply(call)
        } ?? .failed(.unavailable)
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
