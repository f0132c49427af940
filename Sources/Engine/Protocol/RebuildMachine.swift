/// How a rebuild ends.
public enum RebuildResult: Hashable, Sendable {
    /// This rebuild's state is in the hot store, or a newer rebuild's is.
    case done(Generation)
    case failed
}

/// Rebuilds the hot store from the durable store when it cannot be trusted: it lost its data or
/// came back with an older copy (`.uninitialized`), or its generation is not the durable store's
/// (a durable write was fenced: a rebuild is under way elsewhere, half-done, or the hot store
/// belongs to another database or a later moment).
///
/// 0. Probe: read the hot store's generation and the durable one. If they are equal, the store is
///    already rebuilt (by another instance, or by the rebuild that fenced the caller): done.
/// 1. Bump the durable generation past both (`GenerationBump`). From this moment every durable
///    write fenced by an older generation is refused, so no decision made on the replaced view can
///    become durable later.
/// 2. Read the durable snapshot: purchases and recorded holds that may still be live.
/// 3. Install the folded state under the new generation, unless a newer rebuild already did.
///
/// Several instances may rebuild at once; the highest generation wins and the others' writes
/// are fenced. A crash anywhere leaves the hot store uninitialized or installed, never half-built.
public struct RebuildMachine: Sendable {
    enum State: Sendable {
        case idle
        /// Reading the hot store's generation (nil: it has none it can vouch for).
        case probingHot
        /// Reading the durable generation, the hot one known.
        case probingDurable(hot: Generation?)
        case bumping(GenerationBump)
        case snapshotting(Generation)
        case installing(Generation, HotInstall)
        case sleeping(then: Resume)
        case done
    }

    enum Resume: Sendable {
        case probe
        case bump(GenerationBump)
        case snapshot(Generation)
        case install(Generation, HotInstall)
    }

    let rules: SaleRules
    /// See `CheckoutMachine.brokenInvariant`.
    public internal(set) var brokenInvariant: String?
    let policy: ProtocolPolicy
    var budget: RetryBudget
    var state: State = .idle
    /// The random step of this rebuild's generation bump (1...2^32).
    let stride: Int64

    public init(rules: SaleRules, policy: ProtocolPolicy, random: inout some RandomNumberGenerator) {
        self.rules = rules
        self.policy = policy
        var relaxed = policy
        relaxed.maxFailures = max(policy.maxFailures, 12)
        self.budget = RetryBudget(policy: relaxed, seed: random.next())
        self.stride = 1 + Int64(random.next() % (1 << 32))
    }

    public mutating func start(now: Instant) -> Step<RebuildResult> {
        probe()
    }

    mutating func probe() -> Step<RebuildResult> {
        state = .probingHot
        return .call(.hotRead(HotRead(keys: [])))
    }

    mutating func bump(_ bump: GenerationBump) -> Step<RebuildResult> {
        state = .bumping(bump)
        return .call(.durableBumpGeneration(bump))
    }

    public mutating func receive(_ reply: StoreReply, now: Instant) -> Step<RebuildResult> {
        switch (state, reply) {
        case (.probingHot, .hotRead(.snapshot(let snapshot))):
            state = .probingDurable(hot: snapshot.generation)
            return .call(.durableQuery(.generation))
        case (.probingHot, .hotRead(.uninitialized)):
            state = .probingDurable(hot: nil)
            return .call(.durableQuery(.generation))
        case (.probingDurable(let hot), .durableQuery(.generation(let durable))):
            if let hot, hot == durable {
                state = .done
                return .respond(.done(hot), followUp: nil)
            }
            return bump(GenerationBump(above: max(hot ?? durable, durable), stride: stride))
        case (.probingHot, .failed), (.probingDurable, .failed):
            return backoff(then: .probe)
        case (.bumping, .durableGeneration(let generation)):
            return snapshot(generation, now: now)
        case (.bumping(let bump), .failed):
            return backoff(then: .bump(bump))
        case (.snapshotting(let generation), .durableQuery(.snapshot(let snapshot))):
            let (records, sets) = RebuildRules.hotState(from: snapshot)
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
            brokenInvariant = "rebuild: unexpected reply \(reply) in state \(state)"
            state = .done
            return .respond(.failed, followUp: nil)
        }
    }

    public mutating func resume(now: Instant) -> Step<RebuildResult> {
        switch state {
        case .sleeping(then: .probe):
            return probe()
        case .sleeping(then: .bump(let next)):
            return bump(next)
        case .sleeping(then: .snapshot(let generation)):
            // A snapshot taken later is still correct for this generation: nothing older can commit.
            return snapshot(generation, now: now)
        case .sleeping(then: .install(let generation, let install)):
            state = .installing(generation, install)
            return .call(.hotInstall(install))
        default:
            brokenInvariant = "rebuild: resume in state \(state)"
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
