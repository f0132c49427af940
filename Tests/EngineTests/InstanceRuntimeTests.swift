import Engine
import StoreModel
import Testing

/// `InstanceRuntime` walked action by action, with the port models as stores: the glue both the
/// server and the simulator run (guesses, learning, the shared rebuild, the reconcile pass,
/// invariants, crashes).
@Suite("Instance runtime, action by action")
struct InstanceRuntimeTests {
    typealias Runtime = InstanceRuntime
    typealias Action = InstanceAction

    /// Test clients are named; the runtime carries them as tokens.
    static let names = ["setup", "a", "b", "p", "first", "second", "third"]
    static func token(_ name: String) -> ClientToken { ClientToken(UInt64(names.firstIndex(of: name) ?? 99)) }
    static func name(_ token: ClientToken) -> String { token.rawValue < UInt64(names.count) ? names[Int(token.rawValue)] : "?" }

    /// The stores, applied synchronously; what the runtime asked for and what it answered.
    struct Harness {
        var runtime = Runtime(rules: Fixture.rules, policy: ProtocolPolicy(), seed: 7)
        var hot = HotStoreModel()
        var durable = DurableStoreModel()
        var random = TestRandom()
        var now = Fixture.t0
        var answers: [String: InstanceResponse] = [:]
        var notes: [InstanceNote] = []
        /// Calls issued and not yet answered, in order.
        var pending: [(StoreCall, Runtime.MachineID)] = []
        var sleeping: [Runtime.MachineID] = []

        init() {
            hot.clock = Fixture.t0
        }

        mutating func apply(_ call: StoreCall) -> StoreReply {
            hot.clock = now
            return hot.apply(call) ?? durable.apply(call) ?? .failed(.unavailable)
        }

        /// Records what `actions` ask for; calls wait in `pending` until `answer()`.
        mutating func take(_ actions: [Action]) {
            for action in actions {
                switch action {
                case .call(let call, let machine): pending.append((call, machine))
                case .sleep(_, let machine): sleeping.append(machine)
                case .followUp(let call): _ = apply(call)
                case .respond(let response, let client): answers[InstanceRuntimeTests.name(client)] = response
                case .note(let note): notes.append(note)
                }
            }
        }

        /// Answers the oldest pending call from the stores.
        mutating func answer() {
            let (call, machine) = pending.removeFirst()
            let reply = apply(call)
            take(runtime.receive(reply, for: machine, now: now))
        }

        /// Answers calls and wakes sleepers until nothing is left to do.
        mutating func settle() {
            while !pending.isEmpty || !sleeping.isEmpty {
                if pending.isEmpty { take(runtime.wake(sleeping.removeFirst(), now: now)) } else { answer() }
            }
        }

        mutating func checkout(_ user: UserID, _ item: Int, as client: String) {
            take(runtime.checkout(CheckoutRequest(user: user, item: ItemID(item)), for: InstanceRuntimeTests.token(client), now: now, random: &random))
        }
    }

    /// A fresh hot store is uninitialized: the first checkout waits for a rebuild, which the
    /// runtime starts and then resumes the checkout.
    static func ready() -> Harness {
        var h = Harness()
        h.take(h.runtime.rebuild(for: Self.token("setup"), now: h.now))
        h.settle()
        return h
    }

    @Test func aCheckoutReadsCommitsPersistsAndAnswers() {
        var h = Self.ready()
        h.checkout(Fixture.alice, 1, as: "a")
        #expect(h.pending.count == 1)
        guard case .hotRead? = h.pending.first?.0 else { Issue.record("a checkout with no guess reads first: \(h.pending)"); return }
        h.answer()
        guard case .hotCommit? = h.pending.first?.0 else { Issue.record("then commits: \(h.pending)"); return }
        h.answer()
        guard case .durableWrite(.attempt)? = h.pending.first?.0 else { Issue.record("then persists: \(h.pending)"); return }
        #expect(h.answers["a"] == nil, "nothing is answered before the attempt is durable")
        h.answer()
        guard case .checkout(.held(let hold), _, _)? = h.answers["a"] else { Issue.record("held: \(h.answers)"); return }
        #expect(hold.user == Fixture.alice && h.runtime.running == 0)
    }

    @Test func whatOneRequestTaughtLetsTheNextCommitOnAGuess() {
        var h = Self.ready()
        h.checkout(Fixture.alice, 1, as: "a")
        h.settle()
        guard case .checkout(.held(let hold), _, _)? = h.answers["a"] else { Issue.record("held: \(h.answers)"); return }
        h.take(h.runtime.purchase(hold.code, for: Self.token("p"), now: h.now, random: &h.random))
        #expect(h.notes.last == .committedOnGuess)
        guard case .hotCommit? = h.pending.first?.0 else { Issue.record("the purchase commits without reading: \(h.pending)"); return }
        h.settle()
        #expect(h.notes.contains(.guessResolved(committed: true)))
        guard case .purchase(.purchased(let purchase))? = h.answers["p"] else { Issue.record("bought: \(h.answers)"); return }
        #expect(purchase.code == hold.code && h.durable.purchasesByCode[hold.code] == purchase)
    }

    @Test func requestsThatNeedARebuildShareOne() {
        var h = Harness()  // the hot store was never installed
        h.checkout(Fixture.alice, 1, as: "a")
        h.checkout(Fixture.bob, 2, as: "b")
        h.answer()  // a's read: uninitialized, so a awaits a rebuild and starts it
        h.answer()  // b's read: uninitialized, b joins
        #expect(h.notes.filter { $0 == .rebuildAwaited }.count == 2)
        #expect(h.runtime.running == 3, "two requests and one rebuild")
        h.settle()
        #expect(h.notes.filter { if case .rebuildFinished(.done) = $0 { true } else { false } }.count == 1)
        guard case .checkout(.held, _, _)? = h.answers["a"], case .checkout(.held, _, _)? = h.answers["b"] else {
            Issue.record("both held after the one rebuild: \(h.answers)")
            return
        }
    }

    @Test func oneReconcilePassAtATime() {
        var h = Self.ready()
        h.take(h.runtime.reconcile(for: Self.token("first"), now: h.now))
        h.take(h.runtime.reconcile(for: Self.token("second"), now: h.now))
        #expect(h.answers["second"] == .reconcileSkipped)
        h.settle()
        #expect(h.answers["first"] == .reconcile(.reconciled(0)))
        h.take(h.runtime.reconcile(for: Self.token("third"), now: h.now))
        h.settle()
        #expect(h.answers["third"] == .reconcile(.reconciled(0)))
    }

    @Test func aReplyTheMachineNeverAskedForIsReportedNotSwallowed() {
        var h = Self.ready()
        h.checkout(Fixture.alice, 1, as: "a")
        let (_, machine) = h.pending.removeFirst()
        h.take(h.runtime.receive(.durableGeneration(Generation(9)), for: machine, now: h.now))
        #expect(h.answers["a"] == .checkout(.unavailable, attempt: answeredAttempt(h.answers["a"]), sale: Fixture.sale))
        #expect(h.notes.contains { if case .invariantBroken(let message) = $0 { message.contains("unexpected reply") } else { false } })
    }

    @Test func afterACrashNothingMeantForTheOldMachinesLands() {
        var h = Self.ready()
        h.checkout(Fixture.alice, 1, as: "a")
        let (call, machine) = h.pending.removeFirst()
        h.runtime.forgetEverything()
        #expect(h.runtime.running == 0)
        #expect(h.runtime.receive(h.apply(call), for: machine, now: h.now).isEmpty)
        #expect(h.runtime.wake(machine, now: h.now).isEmpty)
        // A new request after the crash has no guess (the cache is gone) and a new machine id.
        h.checkout(Fixture.bob, 2, as: "b")
        guard case .hotRead? = h.pending.first?.0, let fresh = h.pending.first?.1 else { Issue.record("reads first: \(h.pending)"); return }
        #expect(fresh > machine)
    }

    func answeredAttempt(_ response: InstanceResponse?) -> AttemptID {
        if case .checkout(_, let attempt, _)? = response { return attempt }
        return AttemptID(unchecked: "none")
    }
}
