/// One operation a state machine asks its driver to perform on a store, and the replies.
///
/// These values are the whole interface between the engine and the outside world's storage:
/// the production server executes them with libpq and hiredis, the simulator with its
/// fault-injecting models, the tests with the in-memory models.
public enum StoreCall: Hashable, Sendable {
    case hotRead(HotRead)
    case hotCommit(HotCommit)
    case hotInstall(HotInstall)
    case durableWrite(DurableWrite)
    case durableQuery(DurableQuery)
    /// Atomically moves the durable generation past both its current value and `bump.above`,
    /// and returns the new value (`GenerationBump`).
    case durableBumpGeneration(GenerationBump)

    /// Which store this call goes to.
    public var isHot: Bool {
        switch self {
        case .hotRead, .hotCommit, .hotInstall: true
        case .durableWrite, .durableQuery, .durableBumpGeneration: false
        }
    }

    /// The operation's name in metrics and logs (`read`, `commit`, `install`, `write`, `query`,
    /// `bump_generation`).
    public var operationName: String {
        switch self {
        case .hotRead: "read"
        case .hotCommit: "commit"
        case .hotInstall: "install"
        case .durableWrite: "write"
        case .durableQuery: "query"
        case .durableBumpGeneration: "bump_generation"
        }
    }
}

public enum StoreReply: Hashable, Sendable {
    case hotRead(HotReadReply)
    case hotCommit(HotCommitReply)
    case hotInstall(HotInstallReply)
    case durableWrite(DurableWriteReply)
    case durableQuery(DurableQueryReply)
    case durableGeneration(Generation)
    case failed(StoreFailure)
}

/// Why a store call gave no answer.
public enum StoreFailure: Hashable, Sendable {
    /// No reply in time: the operation may or may not have taken effect.
    case timeout
    /// The store refused or could not be reached: the operation did not take effect.
    case unavailable
}
