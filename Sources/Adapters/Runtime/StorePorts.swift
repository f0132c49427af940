import Engine

/// The hot store as an asynchronous service (Redis in production, `InMemoryStores` embedded).
/// Implementations add atomicity and durability only; the semantics are `HotStoreModel`'s.
public protocol HotStore: Sendable {
    func read(_ read: HotRead) async throws(StoreFailure) -> HotReadReply
    func commit(_ commit: HotCommit) async throws(StoreFailure) -> HotCommitReply
    func install(_ install: HotInstall) async throws(StoreFailure) -> HotInstallReply
}

/// The durable store as an asynchronous service (PostgreSQL in production, `InMemoryStores`
/// embedded). The semantics are `DurableStoreModel`'s.
public protocol DurableStore: Sendable {
    func write(_ write: DurableWrite) async throws(StoreFailure) -> DurableWriteReply
    func query(_ query: DurableQuery) async throws(StoreFailure) -> DurableQueryReply
    func bumpGeneration() async throws(StoreFailure) -> Generation
}

extension StoreFailure: Error {}

/// Routes the engine's store calls to the two stores.
public struct Stores: Sendable {
    public let hot: any HotStore
    public let durable: any DurableStore

    public init(hot: any HotStore, durable: any DurableStore) {
        self.hot = hot
        self.durable = durable
    }

    public func execute(_ call: StoreCall) async -> StoreReply {
        do {
            switch call {
            case .hotRead(let read): return .hotRead(try await hot.read(read))
            case .hotCommit(let commit): return .hotCommit(try await hot.commit(commit))
            case .hotInstall(let install): return .hotInstall(try await hot.install(install))
            case .durableWrite(let write): return .durableWrite(try await durable.write(write))
            case .durableQuery(let query): return .durableQuery(try await durable.query(query))
            case .durableBumpGeneration: return .durableGeneration(try await durable.bumpGeneration())
            }
        } catch {
            return .failed(error)
        }
    }
}
