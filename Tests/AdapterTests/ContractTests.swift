import Adapters
import Engine
import PostgresAdapter
import RedisAdapter
import StoreModel
import Testing

/// Seeded, generated operation sequences run against the port models and the real adapters side
/// by side: every reply must be identical.
extension LiveStoreTests {
    @Test("Redis hot store answers exactly like HotStoreModel", arguments: [1, 2, 3] as [UInt64])
    func hotContract(seed: UInt64) async throws {
        // A tiny install chunk, so installs really go in several scripts before the flip.
        let store = try await LiveStores.freshRedis(installChunk: 16, clock: { HotGenerator.storeTime })
        defer { store.shutdown() }
        var model = HotStoreModel()
        model.clock = HotGenerator.storeTime
        var gen = HotGenerator(seed: seed)
        var seen: Set<String> = []
        for step in 0..<400 {
            let op = gen.operation(model: model)
            let expected: StoreReply?
            let actual: StoreReply
            switch op {
            case .lose:
                model.loseEverything()
                _ = try await store.command(["FLUSHALL"])
                continue
            case .call(let call):
                expected = model.apply(call)
                actual = await Stores(hot: store, durable: InMemoryStores(clock: { Instant(microseconds: 0) })).execute(call)
            }
            try #require(actual == expected, "seed \(seed) step \(step): \(op)")
            seen.insert(Self.kind(actual))
        }
        // The sequence really exercised every answer.
        for kind in ["hotRead(snapshot)", "hotRead(uninitialized)", "hotCommit(committed)", "hotCommit(conflict)",
                     "hotCommit(fenced)", "hotCommit(expired)", "hotInstall(installed)", "hotInstall(superseded)"] {
            #expect(seen.contains(kind), "seed \(seed) never produced \(kind)")
        }
    }

    static func kind(_ reply: StoreReply) -> String {
        switch reply {
        case .hotRead(.snapshot): "hotRead(snapshot)"
        case .hotRead(.uninitialized): "hotRead(uninitialized)"
        case .hotCommit(let r): "hotCommit(\(r))"
        case .hotInstall(let r): "hotInstall(\(r))"
        case .durableWrite(let r): "durableWrite(\(r))"
        case .durableQuery(.codeHistory): "durableQuery(codeHistory)"
        case .durableQuery(.snapshot): "durableQuery(snapshot)"
        case .durableQuery(.purchases): "durableQuery(purchases)"
        case .durableQuery(.generation): "durableQuery(generation)"
        case .durableGeneration: "durableGeneration"
        case .failed(let f): "failed(\(f))"
        }
    }

    @Test("PostgreSQL durable store answers exactly like DurableStoreModel", arguments: [1, 2, 3] as [UInt64])
    func durableContract(seed: UInt64) async throws {
        let store = PostgresDurableStore(url: try LiveStores.freshDatabase())
        defer { store.shutdown() }
        var model = DurableStoreModel()
        var gen = DurableGenerator(seed: seed)
        var seen: Set<String> = []
        for step in 0..<400 {
            let call = gen.call(model: model)
            let expected = model.apply(call)
            let actual = await Stores(hot: InMemoryStores(clock: { Instant(microseconds: 0) }), durable: store).execute(call)
            try #require(actual == expected, "seed \(seed) step \(step): \(call)")
            seen.insert(Self.kind(actual))
        }
        for kind in ["durableWrite(written)", "durableWrite(alreadyPresent)", "durableWrite(fenced)", "durableWrite(rejected)",
                     "durableQuery(codeHistory)", "durableQuery(snapshot)", "durableQuery(purchases)", "durableQuery(generation)",
                     "durableGeneration"] {
            #expect(seen.contains(kind), "seed \(seed) never produced \(kind)")
        }
    }

    @Test("Concurrent durable writes are group-committed and stay idempotent")
    func groupCommit() async throws {
        let store = PostgresDurableStore(url: try LiveStores.freshDatabase())
        defer { store.shutdown() }
        var rng = SplitMix64(seed: 9)
        let attempts = (0..<600).map { index in
            CheckoutAttempt(id: AttemptID.generate(using: &rng), sale: SaleID(5), item: ItemID(index % 50 + 1),
                            user: UserID(unchecked: "u\(index)"), outcome: .itemHeld, code: nil, expiresAt: nil,
                            attemptedAt: Instant(microseconds: Int64(index)))
        }
        let purchases = (1...50).map { item in
            Purchase(code: Code.generate(sale: SaleID(5), item: ItemID(item), using: &rng), user: UserID(unchecked: "p\(item)"),
                     purchasedAt: Instant(microseconds: Int64(item)))
        }
        // A second purchase of every item, under another code: the constraint refuses it.
        let rivals = (1...50).map { item in
            Purchase(code: Code.generate(sale: SaleID(5), item: ItemID(item), using: &rng), user: UserID(unchecked: "r\(item)"),
                     purchasedAt: Instant(microseconds: Int64(item)))
        }
        func writeAll(_ writes: [DurableWrite]) async -> [DurableWriteReply?] {
            await withTaskGroup(of: (Int, DurableWriteReply?).self) { group in
                for (index, write) in writes.enumerated() {
                    group.addTask { (index, try? await store.write(write)) }
                }
                var replies = [DurableWriteReply?](repeating: nil, count: writes.count)
                for await (index, reply) in group { replies[index] = reply }
                return replies
            }
        }
        let first = await writeAll(attempts.map { .attempt($0, fence: Generation(0)) } + purchases.map { .purchase($0, fence: nil, userLimit: 10) })
        #expect(first.allSatisfy { $0 == .written })
        let again = await writeAll(attempts.map { .attempt($0, fence: Generation(7)) } + purchases.map { .purchase($0, fence: Generation(7), userLimit: 10) })
        #expect(again.allSatisfy { $0 == .alreadyPresent })
        let rejected = await writeAll(rivals.map { .purchase($0, fence: nil, userLimit: 10) })
        #expect(rejected.allSatisfy { $0 == .rejected })
        // Repeats inside one batch: the same attempt twice, and two codes racing for each item.
        let twin = CheckoutAttempt(id: AttemptID.generate(using: &rng), sale: SaleID(5), item: ItemID(99),
                                   user: UserID(unchecked: "twin"), outcome: .itemHeld, code: nil, expiresAt: nil,
                                   attemptedAt: Instant(microseconds: 1))
        let racers = (51...90).flatMap { item in
            (0..<2).map { index in
                Purchase(code: Code.generate(sale: SaleID(5), item: ItemID(item), using: &rng),
                         user: UserID(unchecked: "racer\(index)"), purchasedAt: Instant(microseconds: Int64(item)))
            }
        }
        let raced = await writeAll([.attempt(twin, fence: nil), .attempt(twin, fence: nil)] + racers.map { .purchase($0, fence: nil, userLimit: 100) })
        #expect(Set(raced[0..<2]) == [.written, .alreadyPresent])
        for pair in stride(from: 2, to: raced.count, by: 2) {
            #expect(Set(raced[pair..<pair + 2]) == [.written, .rejected], "item \(racers[pair - 2].code.item)")
        }
        let snapshot = try await store.query(.snapshot(sales: [SaleID(5)], holdsExpiringAfter: Instant(microseconds: 0)))
        guard case .snapshot(let found) = snapshot else {
            Issue.record("unexpected reply \(snapshot)")
            return
        }
        let winners = Set(found.purchases).subtracting(purchases)
        #expect(Set(found.purchases).isSuperset(of: purchases) && found.purchases.count == purchases.count + 40)
        #expect(winners.isSubset(of: racers) && Set(winners.map(\.code.item)).count == 40)
        #expect(found.holds.isEmpty)
    }
}

enum HotOperation: CustomStringConvertible {
    case call(StoreCall)
    case lose

    var description: String {
        switch self {
        case .call(let call): "\(call)"
        case .lose: "loseEverything (FLUSHALL)"
        }
    }
}

/// Generates hot-store calls over a small key space, so guards, conflicts, fences and
/// supersessions all happen often.
struct HotGenerator {
    var rng: SplitMix64
    let sales = [SaleID(7), SaleID(8)]
    let items = [ItemID(1), ItemID(2), ItemID(3)]
    let users = [UserID(unchecked: "alice"), UserID(unchecked: "bob.b"), UserID(unchecked: "c_3-x")]

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    /// The store clock of the hot contract (the same for the model and for Redis).
    static let storeTime = Instant(microseconds: 1_700_000_000_000_000)

    mutating func roll(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
    mutating func pick<T>(_ values: [T]) -> T { values[roll(values.count)] }
    mutating func chance(_ percent: Int) -> Bool { roll(100) < percent }

    var keys: [HotKey] {
        sales.flatMap { sale in items.map { HotKey.item(sale, $0) } + users.map { HotKey.user(sale, $0) } }
    }
    var setKeys: [HotSetKey] { sales.flatMap { [HotSetKey.sold($0), .pending($0)] } }

    mutating func subset<T>(_ values: [T], max: Int) -> [T] {
        var out: [T] = []
        for value in values where chance(30) && out.count < max { out.append(value) }
        return out
    }

    mutating func code(_ sale: SaleID, _ item: ItemID) -> Code { Code.generate(sale: sale, item: item, using: &rng) }
    mutating func instant() -> Instant { Instant(microseconds: Int64(roll(1_000_000)) - 1_000 + 1_700_000_000_000_000) }

    mutating func value(for key: HotKey) -> HotValue? {
        if chance(15) { return nil }
        switch key {
        case .item(let sale, let item):
            return chance(50)
                ? .item(.held(Hold(code: code(sale, item), user: pick(users), expiresAt: instant())))
                : .item(.sold(Purchase(code: code(sale, item), user: pick(users), purchasedAt: instant())))
        case .user(let sale, _):
            let slots = (0..<roll(4)).map { _ in HoldSlot(code: code(sale, pick(items)), expiresAt: instant()) }
            let purchased = (0..<roll(3)).map { _ in pick(items) }
            return .user(UserRecord(slots: slots, purchased: purchased))
        }
    }

    mutating func operation(model: HotStoreModel) -> HotOperation {
        let current = model.generation
        switch roll(100) {
        case 0..<3:
            return .lose
        case 3..<33:
            return .call(.hotRead(HotRead(keys: subset(keys, max: 5), counts: subset(setKeys, max: 2),
                                          members: subset(setKeys, max: 2))))
        case 33..<88:
            var generation = current ?? Generation(Int64(roll(3)))
            if chance(10) { generation = Generation(generation.rawValue + (chance(50) ? 1 : -1)) }
            var commit = HotCommit(generation: generation)
            for key in subset(keys, max: 3) + [pick(keys)] {
                var version = model.record(key).version
                if chance(8) { version = chance(50) ? version + 1 : 0 }
                commit.guards[key] = version
                if chance(70) { commit.puts[key] = value(for: key) }
            }
            for set in subset(setKeys, max: 2) { commit.setAdds[set] = subset(items, max: 3) + [pick(items)] }
            for set in subset(setKeys, max: 1) { commit.setRemoves[set] = subset(items, max: 3) }
            // A purchase's deadline, passed or not, by the store's clock.
            if chance(30) { commit.deadline = HotGenerator.storeTime + .milliseconds(chance(50) ? 1 : -1) }
            return .call(.hotCommit(commit))
        default:
            let base = current?.rawValue ?? Int64(roll(3))
            let generation = Generation(max(1, base + Int64(roll(4)) - 1))
            var records: [HotKey: HotValue] = [:]
            for key in subset(keys, max: 12) { if let value = value(for: key) { records[key] = value } }
            var sets: [HotSetKey: [ItemID]] = [:]
            for set in subset(setKeys, max: 4) { sets[set] = subset(items, max: 3) }
            return .call(.hotInstall(HotInstall(generation: generation, records: records, sets: sets)))
        }
    }
}

/// Generates durable-store calls: retries of the same attempt id and code, fences right and
/// wrong, rival purchases of one item, bumps and every query.
struct DurableGenerator {
    var rng: SplitMix64
    let sales = [SaleID(490_000), SaleID(490_001)]
    let users = [UserID(unchecked: "alice"), UserID(unchecked: "bob"), UserID(unchecked: "carol")]
    var holds: [Hold] = []
    var attemptIDs: [AttemptID] = []

    init(seed: UInt64) {
        rng = SplitMix64(seed: seed ^ 0xD0AB_1E)
        // Every code has one hold (a code's hold never changes), two codes per item.
        for sale in sales {
            for item in 1...3 {
                for _ in 0..<2 {
                    let code = Code.generate(sale: sale, item: ItemID(item), using: &rng)
                    holds.append(Hold(code: code, user: users[Int(rng.next() % 3)],
                                      expiresAt: Instant(microseconds: 1_700_000_000_000_000 + Int64(rng.next() % 10_000))))
                }
            }
        }
        attemptIDs = (0..<40).map { _ in AttemptID.generate(using: &rng) }
    }

    mutating func roll(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
    mutating func pick<T>(_ values: [T]) -> T { values[roll(values.count)] }
    mutating func chance(_ percent: Int) -> Bool { roll(100) < percent }

    mutating func fence(_ current: Generation) -> Generation? {
        switch roll(10) {
        case 0..<3: nil
        case 3..<8: current
        default: Generation(current.rawValue + (chance(50) ? 1 : -1))
        }
    }

    mutating func instant() -> Instant { Instant(microseconds: 1_700_000_000_000_000 + Int64(roll(10_000))) }

    mutating func call(model: DurableStoreModel) -> StoreCall {
        switch roll(100) {
        case 0..<35:
            let id = pick(attemptIDs)
            let attempt: CheckoutAttempt
            if chance(60) {
                let hold = pick(holds)
                attempt = CheckoutAttempt(id: id, sale: hold.sale, item: hold.item, user: hold.user, outcome: .held,
                                          code: hold.code, expiresAt: hold.expiresAt, attemptedAt: instant())
            } else {
                let outcome = pick([CheckoutOutcome.soldOut, .itemSold, .userLimitReached, .itemHeld])
                attempt = CheckoutAttempt(id: id, sale: pick(sales), item: ItemID(1 + roll(3)), user: pick(users),
                                          outcome: outcome, code: nil, expiresAt: nil, attemptedAt: instant())
            }
            return .durableWrite(.attempt(attempt, fence: fence(model.generation)))
        case 35..<65:
            let hold = pick(holds)
            let purchase = Purchase(code: hold.code, user: chance(80) ? hold.user : pick(users), purchasedAt: instant())
            // Small limits, so the user-limit backstop refuses some purchases.
            return .durableWrite(.purchase(purchase, fence: fence(model.generation), userLimit: 1 + roll(3)))
        case 65..<70:
            let above = chance(50) ? model.generation : Generation(model.generation.rawValue + Int64(roll(1_000)))
            return .durableBumpGeneration(GenerationBump(above: above, stride: Int64(1 + roll(1 << 20))))
        case 70..<80:
            return .durableQuery(.codeHistory(pick(holds).code))
        case 80..<90:
            let chosen = chance(50) ? sales : (chance(50) ? [sales[1], sales[0]] : [pick(sales)])
            return .durableQuery(.snapshot(sales: chosen, holdsExpiringAfter: instant()))
        case 90..<95:
            return .durableQuery(.generation)
        default:
            return .durableQuery(.purchases(sale: pick(sales), user: pick(users)))
        }
    }
}
