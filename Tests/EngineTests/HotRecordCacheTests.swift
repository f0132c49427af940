import Engine
import StoreModel
import Testing

@Suite("What an instance remembers of the hot store, and committing on it")
struct HotRecordCacheTests {
    let alice = CheckoutRequest(user: Fixture.alice, item: ItemID(3))
    var read: HotRead { CheckoutMachine.firstRead(for: alice, now: Fixture.t0, rules: Fixture.rules) }

    /// The two stores as after start-up: generation 1 in both.
    struct Stores {
        var hot = HotStoreModel()
        var durable = DurableStoreModel()
    }

    func installedStore() -> Stores {
        var stores = Stores()
        stores.hot.clock = Fixture.t0  // the store's clock agrees with the instance's
        let generation = stores.durable.bumpGeneration(GenerationBump(above: Generation(0), stride: 1))
        _ = stores.hot.install(HotInstall(generation: generation, records: [:], sets: [:]))
        return stores
    }

    /// Runs `machine` against `store` to its answer, teaching `cache` every hot reply; returns
    /// the answer and the calls made.
    func drive<M: RequestStateMachine>(_ machine: M, _ store: inout Stores, _ cache: inout HotRecordCache)
        -> (M.Response?, [StoreCall])
    {
        var machine = machine
        var calls: [StoreCall] = []
        var step = machine.start(now: Fixture.t0)
        for _ in 0..<50 {
            switch step {
            case .call(let call):
                calls.append(call)
                guard let reply = store.hot.apply(call) ?? store.durable.apply(call) else { return (nil, calls) }
                if call.isHot { cache.learn(call, reply) }
                step = machine.receive(reply, now: Fixture.t0)
            case .sleep, .awaitRebuild: step = machine.resume(now: Fixture.t0)
            case .respond(let response, _): return (response, calls)
            }
        }
        return (nil, calls)
    }

    @Test func knowsNothingUntilItHasSeenAGeneration() {
        let cache = HotRecordCache()
        #expect(cache.snapshot(for: read) == nil)
    }

    @Test func aReadTeachesRecordsCountsAndGeneration() {
        var cache = HotRecordCache()
        let hold = Fixture.hold(3, Fixture.bob, expires: Fixture.t0 + .seconds(30))
        let snapshot = Fixture.snapshot(item: .held(hold), itemVersion: 4, user: nil, sold: 2)
        cache.learn(.hotRead(read), .hotRead(.snapshot(snapshot)))
        #expect(cache.snapshot(for: read) == snapshot)
        #expect(cache.snapshot(for: HotRead(keys: [], members: [.sold(Fixture.sale)])) == nil)  // members are never guessed
    }

    @Test func aCommitTeachesTheNextVersionsAConflictForgetsAndAFenceForgetsAll() {
        var cache = HotRecordCache()
        cache.learn(.hotRead(read), .hotRead(.snapshot(Fixture.snapshot(item: nil, user: nil))))
        let itemKey = read.keys[0]
        let hold = Fixture.hold(3, Fixture.alice, expires: Fixture.t0 + .seconds(60))
        let commit = HotCommit(generation: Generation(1), guards: [itemKey: 0], puts: [itemKey: .item(.held(hold))])
        cache.learn(.hotCommit(commit), .hotCommit(.committed))
        #expect(cache.snapshot(for: HotRead(keys: [itemKey]))?.records == [Versioned(value: .item(.held(hold)), version: 1)])

        cache.learn(.hotCommit(commit), .hotCommit(.conflict))
        #expect(cache.snapshot(for: HotRead(keys: [itemKey]))?.records == [.absent])
        cache.learn(.hotCommit(commit), .failed(.timeout))
        #expect(cache.generation == Generation(1))
        cache.learn(.hotCommit(commit), .hotCommit(.fenced))
        #expect(cache.snapshot(for: read) == nil)
    }

    @Test func anotherGenerationReplacesEverything() {
        var cache = HotRecordCache()
        let hold = Fixture.hold(3, Fixture.bob, expires: Fixture.t0 + .seconds(30))
        cache.learn(.hotRead(read), .hotRead(.snapshot(Fixture.snapshot(item: .held(hold), user: nil))))
        let other = HotSnapshot(generation: Generation(2), records: [.absent], counts: [])
        cache.learn(.hotRead(HotRead(keys: [.item(Fixture.sale, ItemID(9))])), .hotRead(.snapshot(other)))
        #expect(cache.snapshot(for: read)?.generation == Generation(2))
        #expect(cache.snapshot(for: read)?.records == [.absent, .absent])
    }

    @Test func staysWithinItsCapacity() {
        var cache = HotRecordCache(capacity: 3)
        for item in 1...10 {
            let key = HotKey.item(Fixture.sale, ItemID(item))
            cache.learn(.hotRead(HotRead(keys: [key])), .hotRead(.snapshot(HotSnapshot(generation: Generation(1), records: [.absent]))))
        }
        #expect(cache.count <= 3)
    }

    @Test func aRightGuessCommitsWithoutReading() {
        var store = installedStore()
        var cache = HotRecordCache()
        var random = TestRandom()
        // Learn the generation from one read-first checkout of another item.
        let bob = CheckoutRequest(user: Fixture.bob, item: ItemID(5))
        _ = drive(CheckoutMachine(request: bob, now: Fixture.t0, rules: Fixture.rules, policy: ProtocolPolicy(), random: &random),
                  &store, &cache)

        let guess = cache.snapshot(for: read)
        let machine = CheckoutMachine(request: alice, now: Fixture.t0, rules: Fixture.rules, policy: ProtocolPolicy(),
                                      random: &random, guess: guess)
        let (result, calls) = drive(machine, &store, &cache)
        guard case .held(let hold)? = result else {
            Issue.record("expected a hold, got \(String(describing: result))")
            return
        }
        guard case .hotCommit = calls.first, calls.count == 2 else {
            Issue.record("expected commit then durable write, got \(calls)")
            return
        }
        // The purchase of that code, on the same instance, commits on what the checkout taught.
        let purchaseGuess = cache.snapshot(for: PurchaseMachine.firstRead(for: hold.code))
        let purchase = PurchaseMachine(code: hold.code, rules: Fixture.rules, policy: ProtocolPolicy(), random: &random,
                                       guess: purchaseGuess)
        let (bought, purchaseCalls) = drive(purchase, &store, &cache)
        guard case .purchased(let p)? = bought, case .hotCommit = purchaseCalls.first else {
            Issue.record("expected a purchase committed on the guess, got \(String(describing: bought)) after \(purchaseCalls)")
            return
        }
        #expect(p.code == hold.code && p.user == Fixture.alice)
    }

    @Test func aStaleGuessIsRefusedThenTheMachineReadsAndDecidesRight() {
        var store = installedStore()
        var random = TestRandom()
        // Bob holds item 3 in the store; the guess still believes it is free.
        var elsewhere = HotRecordCache()
        let bob = CheckoutRequest(user: Fixture.bob, item: ItemID(3))
        _ = drive(CheckoutMachine(request: bob, now: Fixture.t0, rules: Fixture.rules, policy: ProtocolPolicy(), random: &random),
                  &store, &elsewhere)
        let stale = HotSnapshot(generation: Generation(1), records: [.absent, .absent], counts: [0])

        var cache = HotRecordCache()
        let machine = CheckoutMachine(request: alice, now: Fixture.t0, rules: Fixture.rules, policy: ProtocolPolicy(),
                                      random: &random, guess: stale)
        let (result, calls) = drive(machine, &store, &cache)
        #expect(result == .refused(.itemHeld))
        guard case .hotCommit = calls.first, case .hotRead = calls.dropFirst().first else {
            Issue.record("expected a refused guessed commit, then a read, got \(calls)")
            return
        }
    }

    @Test func onlyADecisionToWriteIsTakenOnAGuess() {
        var random = TestRandom()
        // The guess says bob holds the item: a refusal is never answered from memory.
        let hold = Fixture.hold(3, Fixture.bob, expires: Fixture.t0 + .seconds(30))
        var machine = CheckoutMachine(request: alice, now: Fixture.t0, rules: Fixture.rules, policy: ProtocolPolicy(),
                                      random: &random, guess: Fixture.snapshot(item: .held(hold), user: nil))
        guard case .call(.hotRead) = machine.start(now: Fixture.t0) else {
            Issue.record("a guessed refusal must read first")
            return
        }
    }
}
