import AdapterSupport
import Adapters
import Engine
import RedisAdapter
import Testing

/// Replies matched to their calls when many calls share one pipeline: the real Redis, one
/// connection, so every call that queues behind a round trip leaves in the same batch.
extension LiveStoreTests {
    @Test("Calls batched into one Redis pipeline each get their own reply")
    func pipelinedRepliesReachTheirCalls() async throws {
        let store = try await LiveStores.freshRedis(settings: PoolSettings(connections: 1, maxBatch: 64), clock: { HotGenerator.storeTime })
        defer { store.shutdown() }
        let sale = SaleID(9)
        let items = (1...300).map(ItemID.init)
        var rng = SplitMix64(seed: 42)
        let expiry = HotGenerator.storeTime + .seconds(60)
        var records: [HotKey: HotValue] = [:]
        for item in items {
            let hold = Hold(code: Code.generate(sale: sale, item: item, using: &rng), user: UserID(unchecked: "u\(item.rawValue)"), expiresAt: expiry)
            records[.item(sale, item)] = .item(.held(hold))
        }
        let generation = Generation(1)
        #expect(try await store.install(HotInstall(generation: generation, records: records, sets: [:])) == .installed)

        // Reads of 300 distinct items at once: each must see its own item's holder.
        let seen = await withTaskGroup(of: (ItemID, String?).self) { group in
            for item in items {
                group.addTask {
                    guard case .snapshot(let snapshot)? = try? await store.read(HotRead(keys: [.item(sale, item)])),
                        case .item(.held(let hold))? = snapshot.records.first?.value
                    else { return (item, nil) }
                    return (item, hold.user.rawValue)
                }
            }
            var seen: [ItemID: String?] = [:]
            for await (item, user) in group { seen[item] = user }
            return seen
        }
        for item in items { #expect(seen[item] == "u\(item.rawValue)", "item \(item.rawValue)") }

        // Commits at once, every other one guarded by a stale version: each gets its own verdict.
        let verdicts = await withTaskGroup(of: (ItemID, HotCommitReply?).self) { group in
            for item in items {
                group.addTask {
                    let stale = item.rawValue % 2 == 0
                    let commit = HotCommit(generation: generation, guards: [.item(sale, item): stale ? 7 : 1], puts: [.item(sale, item): nil])
                    return (item, try? await store.commit(commit))
                }
            }
            var verdicts: [ItemID: HotCommitReply?] = [:]
            for await (item, verdict) in group { verdicts[item] = verdict }
            return verdicts
        }
        for item in items {
            #expect(verdicts[item] == (item.rawValue % 2 == 0 ? .conflict : .committed), "item \(item.rawValue)")
        }
    }
}
