/// How a rebuild ends.
public enum RebuildResult: Hashable, Sendable {
    /// This rebuild's state is in the hot store, or a newer rebuild's is.
    case done(Generation)
    case failed
}

/// Rebuilds the hot store from the durable store after it lost its data (Redis restarted empty).
///
/// 1. Bump the durable generation. From this moment every durable write fenced by an older
///    generation is refused, so no decision made on the lost view can become durable later.
/// 2. Read the durable snapshot: purchases and recorded holds that may still be live.
/// 3. Install the folded state under the new generation, unless a newer rebuild already did.
///
/// Several instances may rebuild at once; the highest generation wins and the others' writes
/// are fenced. A crash anywhere leaves the hot store uninitialized or installed, never half-built.
public struct RebuildMachine: Sendable {
    enum State: Sendable {
        case idle
        case bumping
        case snapshotting(Generation)
        case installing(Generation, HotInstall)
        case sleeping(then: Resume)
        case done
    }

    enum Resume: Sendable {
        case bump
        case snapshot(Generation)
        case install(Generation, HotInstall)
    }

    let rules: SaleRules
    let policy: ProtocolPolicy
    var budget: RetryBudget
    var state: State = .idle

    public init(rules: SaleRules, policy: ProtocolPolicy, random: inout some RandomNumberGenerator) {
        self.rules = rules
        self.policy = policy
        var relaxed = policy
        relaxed.maxFailures = max(policy.maxFailures, 12)
        self.budget = RetryBudget(policy: relaxed, seed: random.next())
    }

    public mutating func start(now: Instant) -> Step<RebuildResult> {
        state = .bumping
        return .call(.durableBumpGeneration)
    }

    public mutating func receive(_ reply: StoreReply, now: Instant) -> Step<RebuildResult> {
        switch (state, reply) {
        case (.bumping, .durableGeneration(let generation)):
            return snapshot(generation, now: now)
        case (.bumping, .failed):
            return backoff(then: .bump)
        case (.snapshotting(let generation), .durableQuery(.snapshot(let snapshot))):
            let (records, sets) = RebuildRules.hotState(from: snapshot, bug: policy.plantedBug)
            let install = HotInstall(generation: generation, records: records, sets: sets)
            state = .installing(generation, install)
            return .call(.hotInstall(install))
        case (.snapshotting(let generation), .failed):
            return backoff(then: .snapshot(generation))
        case (.installing(let generation, _), .hotInstall):
            state = .done
            return .respond(.done(generation), followUp: nil)
        case (.installing(let generation, let install), .failed):
            return backoff(then: .install(generation, install))
        default:
            assertionFailure("rebuild: unexpected reply \(reply) in state \(state)")
            state = .done
            return .respond(.failed, followUp: nil)
        }
    }

    public mutating func resume(now: Instant) -> Step<RebuildResult> {
        switch state {
        case .sleeping(then: .bump):
            state = .bumping
            return .call(.durableBumpGeneration)
        case .sleeping(then: .snapshot(let generation)):
            // A snapshot taken later is still correct for this generation: nothing older can commit.
            return snapshot(generation, now: now)
        case .sleeping(then: .install(let generation, let install)):
            state = .installing(generation, install)
            return .call(.hotInstall(install))
        default:
            assertionFailure("rebuild: resume in state \(state)")
            state = .done
            return .respond(.failed, followUp: nil)
        }
    }

    mutating func snapshot(_ generation: Generation, now: Instant) -> Step<RebuildResult> {
        state = .snapshotting(generation)
        return .call(.durableQuery(.snapshot(
            sales: RebuildRules.salesToRebuild(rules: rules, now: now),
            holdsExpiringAfter: RebuildRules.holdsExpiringAfter(rules: rules, now: now))))
    }

    mutating func backoff(then resume: Resume) -> Step<RebuildResult> {
        guard let delay = budget.backoffAfterFailure() else {
            state = .done
            return .respond(.failed, followUp: nil)
        }
        state = .sleeping(then: resume)
        return .sleep(delay)
    }
}
