import Engine

/// How a store hands back the reply to one call: exactly once, on whatever thread it arrived on
/// (a connection thread for Redis and PostgreSQL, the caller's for the in-memory store). A
/// request's next store call can then be started right there, without waking the request's task
/// in between (see `RequestDriver`).
public typealias StoreCompletion = @Sendable (StoreReply) -> Void

/// A completion carrying one typed result, for the adapters' internals (connection pools, scripts).
public typealias ResultCompletion<Reply> = @Sendable (Result<Reply, StoreFailure>) -> Void

/// A store as a service: the one operation through which the engine's calls reach PostgreSQL,
/// Redis or the in-memory models.
///
/// One operation, so that anything standing between the engine and a store (metrics, fault
/// injection in tests, routing) is one function. Implementations add atomicity and durability
/// only; the semantics are `HotStoreModel`'s and `DurableStoreModel`'s. A store given a call that
/// is not its own answers `.failed(.unavailable)`.
public protocol StorePort: Sendable {
    /// Starts `call`; `complete` gets its reply exactly once.
    func execute(_ call: StoreCall, then complete: @escaping StoreCompletion)
}

extension StoreFailure: Error {}

/// Waits for a completion-style call (the store answers exactly once, so an unsafe continuation is
/// enough).
public func awaitCompletion<Reply: Sendable>(_ start: (@escaping ResultCompletion<Reply>) -> Void) async throws(StoreFailure) -> Reply {
    try await withUnsafeContinuation { continuation in start { continuation.resume(returning: $0) } }.get()
}

extension StorePort {
    public func execute(_ call: StoreCall) async -> StoreReply {
        await withUnsafeContinuation { continuation in execute(call) { continuation.resume(returning: $0) } }
    }

    // Typed calls, for tests and tools that talk to one store directly.

    public func read(_ read: HotRead) async throws(StoreFailure) -> HotReadReply {
        guard case .hotRead(let reply) = try await typed(.hotRead(read)) else { throw .unavailable }
        return reply
    }
    public func commit(_ commit: HotCommit) async throws(StoreFailure) -> HotCommitReply {
        guard case .hotCommit(let reply) = try await typed(.hotCommit(commit)) else { throw .unavailable }
        return reply
    }
    public func install(_ install: HotInstall) async throws(StoreFailure) -> HotInstallReply {
        guard case .hotInstall(let reply) = try await typed(.hotInstall(install)) else { throw .unavailable }
        return reply
    }
    public func write(_ write: DurableWrite) async throws(StoreFailure) -> DurableWriteReply {
        guard case .durableWrite(let reply) = try await typed(.durableWrite(write)) else { throw .unavailable }
        return reply
    }
    public func query(_ query: DurableQuery) async throws(StoreFailure) -> DurableQueryReply {
        guard case .durableQuery(let reply) = try await typed(.durableQuery(query)) else { throw .unavailable }
        return reply
    }
    public func bumpGeneration(_ bump: GenerationBump) async throws(StoreFailure) -> Generation {
        guard case .durableGeneration(let reply) = try await typed(.durableBumpGeneration(bump)) else { throw .unavailable }
        return reply
    }

    private func typed(_ call: StoreCall) async throws(StoreFailure) -> StoreReply {
        let reply = await execute(call)
        if case .failed(let failure) = reply { throw failure }
        return reply
    }
}

/// Both stores behind one port: each call goes to the store it is for (`StoreCall.isHot`).
public struct Stores: StorePort {
    public let hot: any StorePort
    public let durable: any StorePort

    public init(hot: any StorePort, durable: any StorePort) {
        self.hot = hot
        self.durable = durable
    }

    public func execute(_ call: StoreCall, then complete: @escaping StoreCompletion) {
        (call.isHot ? hot : durable).execute(call, then: complete)
    }
}

extension Result where Failure == StoreFailure {
    /// The reply this result stands for: `wrap(value)`, or `.failed`.
    public func storeReply(_ wrap: (Success) -> StoreReply) -> StoreReply {
        switch self {
        case .success(let value): wrap(value)
        case .failure(let failure): .failed(failure)
        }
    }
}
