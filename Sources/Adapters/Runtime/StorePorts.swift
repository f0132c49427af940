import Engine

/// How a store hands back the answer to one call: exactly once, on whatever thread the answer
/// arrived on (a connection thread for Redis and PostgreSQL, the caller's for the in-memory
/// store). A request's next store call can then be started right there, without waking the
/// request's task in between (see `RequestDriver`).
public typealias StoreCompletion<Reply> = @Sendable (Result<Reply, StoreFailure>) -> Void

/// The hot store as a service (Redis in production, `InMemoryStores` embedded). Implementations
/// add atomicity and durability only; the semantics are `HotStoreModel`'s.
public protocol HotStore: Sendable {
    func read(_ read: HotRead, then complete: @escaping StoreCompletion<HotReadReply>)
    func commit(_ commit: HotCommit, then complete: @escaping StoreCompletion<HotCommitReply>)
    func install(_ install: HotInstall, then complete: @escaping StoreCompletion<HotInstallReply>)
}

/// The durable store as a service (PostgreSQL in production, `InMemoryStores` embedded). The
/// semantics are `DurableStoreModel`'s.
public protocol DurableStore: Sendable {
    func write(_ write: DurableWrite, then complete: @escaping StoreCompletion<DurableWriteReply>)
    func query(_ query: DurableQuery, then complete: @escaping StoreCompletion<DurableQueryReply>)
    func bumpGeneration(_ bump: GenerationBump, then complete: @escaping StoreCompletion<Generation>)
}

extension StoreFailure: Error {}

/// Waits for a completion-style call (the store answers exactly once, so an unsafe continuation is
/// enough).
public func awaitCompletion<Reply: Sendable>(_ start: (@escaping StoreCompletion<Reply>) -> Void) async throws(StoreFailure) -> Reply {
    try await withUnsafeContinuation { continuation in start { continuation.resume(returning: $0) } }.get()
}

extension HotStore {
    public func read(_ read: HotRead) async throws(StoreFailure) -> HotReadReply {
        try await awaitCompletion { self.read(read, then: $0) }
    }
    public func commit(_ commit: HotCommit) async throws(StoreFailure) -> HotCommitReply {
        try await awaitCompletion { self.commit(commit, then: $0) }
    }
    public func install(_ install: HotInstall) async throws(StoreFailure) -> HotInstallReply {
        try await awaitCompletion { self.install(install, then: $0) }
    }
}

extension DurableStore {
    public func write(_ write: DurableWrite) async throws(StoreFailure) -> DurableWriteReply {
        try await awaitCompletion { self.write(write, then: $0) }
    }
    public func query(_ query: DurableQuery) async throws(StoreFailure) -> DurableQueryReply {
        try await awaitCompletion { self.query(query, then: $0) }
    }
    public func bumpGeneration(_ bump: GenerationBump) async throws(StoreFailure) -> Generation {
        try await awaitCompletion { self.bumpGeneration(bump, then: $0) }
    }
}

/// Routes the engine's store calls to the two stores.
public struct Stores: Sendable {
    public let hot: any HotStore
    public let durable: any DurableStore

    public init(hot: any HotStore, durable: any DurableStore) {
        self.hot = hot
        self.durable = durable
    }

    /// Starts `call`; `complete` gets its reply exactly once, on the thread the store answered on.
    public func execute(_ call: StoreCall, then complete: @escaping @Sendable (StoreReply) -> Void) {
        switch call {
        case .hotRead(let read): hot.read(read) { complete(Self.reply($0, StoreReply.hotRead)) }
        case .hotCommit(let commit): hot.commit(commit) { complete(Self.reply($0, StoreReply.hotCommit)) }
        case .hotInstall(let install): hot.install(install) { complete(Self.reply($0, StoreReply.hotInstall)) }
        case .durableWrite(let write): durable.write(write) { complete(Self.reply($0, StoreReply.durableWrite)) }
        case .durableQuery(let query): durable.query(query) { complete(Self.reply($0, StoreReply.durableQuery)) }
        case .durableBumpGeneration(let bump): durable.bumpGeneration(bump) { complete(Self.reply($0, StoreReply.durableGeneration)) }
        }
    }

    public func execute(_ call: StoreCall) async -> StoreReply {
        await withUnsafeContinuation { continuation in execute(call) { continuation.resume(returning: $0) } }
    }

    static func reply<Value>(_ result: Result<Value, StoreFailure>, _ wrap: (Value) -> StoreReply) -> StoreReply {
        switch result {
        case .success(let value): wrap(value)
        case .failure(let failure): .failed(failure)
        }
    }
}
