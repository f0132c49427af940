import AdapterSupport
import Adapters
import Engine
@testable import RedisAdapter
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

    @Test("Consecutive commits of a batch travel as one COMMIT script call and each gets its own verdict")
    func foldedCommitsAreOneScriptCall() async throws {
        let store = try await LiveStores.freshRedis(clock: { HotGenerator.storeTime })
        defer { store.shutdown() }
        let sale = SaleID(9)
        let generation = Generation(3)
        #expect(try await store.install(HotInstall(generation: generation, records: [:], sets: [:])) == .installed)
        let url = try #require(LiveStores.redisURL)
        let endpoint = try #require(RedisEndpoint.parse(url))
        let driver = RedisDriver(endpoint: endpoint, connectTimeout: .seconds(2), scripts: LuaScripts.all)
        defer { driver.close() }
        // One commit's arguments as RedisHotStore builds them: an empty item record written at version 1.
        func commit(_ item: Int, guardedAt version: UInt64) -> RedisRequest {
            let key = HotKey.item(sale, ItemID(item)).description
            let section = [String(generation.rawValue), "60", "", "", "", "1", key, String(version), "1", key, "\(version + 1)|", "0", "0"]
            return .script(LuaScripts.commit, keys: ["\(store.keyPrefix):gen"], args: ["\(store.keyPrefix):g", "1", String(section.count)] + section)
        }
        func evalshaCalls() -> Int {
            guard case .success(.string(let info)) = driver.execute([.command(["INFO", "commandstats"])], deadline: .now + .seconds(2))[0],
                let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_evalsha:") }),
                let calls = line.split(separator: "=").dropFirst().first?.split(separator: ",").first
            else { return 0 }
            return Int(calls) ?? 0
        }
        _ = driver.execute([.command(["PING"])], deadline: .now + .seconds(2))  // connected, scripts loaded
        let before = evalshaCalls()
        let replies = driver.execute([commit(1, guardedAt: 0), commit(2, guardedAt: 5), commit(1, guardedAt: 0), commit(3, guardedAt: 0)],
                                     deadline: .now + .seconds(2))
        #expect(evalshaCalls() - before == 1, "four commits, one script call")
        let verdicts = replies.map { $0.flatMap(RedisHotStore.decodeCommit) }
        #expect(verdicts == [.success(.committed), .success(.conflict), .success(.conflict), .success(.committed)])
    }
}
