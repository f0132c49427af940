import AdapterSupport
import Adapters
import Engine

/// The hot store on Redis (through hiredis): the semantics of `HotStoreModel`.
///
/// Key layout (prefix `fs` by default):
/// - `fs:gen`: `<generation> <run_id>`, the current generation and the `run_id` of the Redis server
///   it was installed on. Absent = this Redis lost (or never had) our data; another `run_id` = this
///   Redis restarted (from an RDB snapshot or AOF that may lack the latest writes) or is a promoted
///   replica (that may have lagged): either way its contents may be older than what was
///   acknowledged, so the scripts serve none of them and the engine rebuilds from PostgreSQL.
/// - `fs:g{gen}:item:{sale}:{item}`, `fs:g{gen}:user:{sale}:{user}`: records, `<version>|<payload>`
///   (see `HotValueCodec`); a tombstone is a version with an empty payload.
/// - `fs:g{gen}:sold:{sale}`, `fs:g{gen}:pending:{sale}`: sets of item ids.
///
/// Every operation is one generic Lua script, so it is atomic on the server: READ (generation,
/// records, set sizes and members), COMMIT (generation check, every guard's version, then the
/// puts at guard version + 1 and the set changes), INSTALL (fills a new generation's namespace
/// in chunks, each recorded in the namespace's `chunks` set, then flips `fs:gen` only if it is
/// still absent, lower or installed on another server, and only if every chunk is there: a Redis
/// that restarted between two chunks refuses the flip). Nothing reads a namespace before its flip,
/// so a half-done install is invisible. Every script gets the connection's `run_id` as `ARGV[1]`
/// (`RedisDriver`). The scripts decide nothing about sales: they compare versions, generations
/// and server identities.
///
/// Record and set keys expire `recordTTL` after their last write, which collects the namespaces
/// of old generations. It must exceed the life of any sale's records (sale length + hold TTL +
/// clock skew); the default is two days.
public final class RedisHotStore: StorePort {
    private let pool: ConnectionPool<RedisDriver>
    private let genKey: String
    /// The prefix of every key this store writes.
    public let keyPrefix: String
    private let namespacePrefix: String
    private let recordTTLSeconds: Int
    /// The most arguments one install chunk carries.
    private let installChunk: Int
    /// The clock reads report and deadlines are judged by: nil for Redis's own `TIME` (production);
    /// tests that move time by hand pass theirs, which Redis's real clock could not follow.
    private let clock: (@Sendable () -> Instant)?

    /// - Parameter url: `redis://host:port[/db]`; a malformed URL makes every call `.unavailable`.
    public init(url: String, settings: PoolSettings = PoolSettings(), keyPrefix: String = "fs",
                recordTTLSeconds: Int = 2 * 86_400, connectTimeout: Duration = .seconds(2), installChunk: Int = 2_000,
                clock: (@Sendable () -> Instant)? = nil) {
        let endpoint = RedisEndpoint.parse(url)
        if endpoint == nil { adapterLog("redis: malformed URL \(url.debugDescription)") }
        pool = ConnectionPool(name: "redis", settings: settings) {
            RedisDriver(endpoint: endpoint ?? RedisEndpoint(host: "invalid.invalid", port: 1), connectTimeout: connectTimeout,
                        scripts: LuaScripts.all)
        }
        self.keyPrefix = keyPrefix
        genKey = "\(keyPrefix):gen"
        namespacePrefix = "\(keyPrefix):g"
        self.recordTTLSeconds = recordTTLSeconds
        self.installChunk = max(16, installChunk)
        self.clock = clock
    }

    /// The store time a script is given ('' = the script reads Redis's `TIME`).
    private var clockArgument: String { clock.map { String($0().microseconds) } ?? "" }

    /// Closes every connection; later calls answer `.unavailable`.
    public func shutdown() { pool.shutdown() }

    /// Runs a raw command (tests and tools: `FLUSHALL`, `PING`).
    public func command(_ argv: [String]) async throws(StoreFailure) -> RedisValue {
        try await pool.call(.command(argv))
    }

    public func execute(_ call: StoreCall, then complete: @escaping StoreCompletion) {
        switch call {
        case .hotRead(let read): self.read(read) { complete($0.storeReply(StoreReply.hotRead)) }
        case .hotCommit(let commit): self.commit(commit) { complete($0.storeReply(StoreReply.hotCommit)) }
        case .hotInstall(let install): self.install(install) { complete($0.storeReply(StoreReply.hotInstall)) }
        case .durableWrite, .durableQuery, .durableBumpGeneration:
            adapterLog("redis: refusing a durable-store call")
            complete(.failed(.unavailable))
        }
    }

    private func read(_ read: HotRead, then complete: @escaping ResultCompletion<HotReadReply>) {
        var args = [namespacePrefix, clockArgument, String(read.keys.count), String(read.counts.count), String(read.members.count)]
        args += read.keys.map(\.description)
        args += read.counts.map(\.description)
        args += read.members.map(\.description)
        run(LuaScripts.read, args: args) { result in
            complete(result.flatMap { reply in Result { () throws(StoreFailure) in try Self.decodeRead(reply, of: read) } })
        }
    }

    /// The READ script's reply as a snapshot aligned with `read`.
    static func decodeRead(_ reply: RedisValue, of read: HotRead) throws(StoreFailure) -> HotReadReply {
        if reply == .null { return .uninitialized }
        do throws(HotCodecError) {
            guard case .array(let parts) = reply, parts.count == 5,
                case .string(let genText) = parts[0], let gen = Int64(genText),
                case .string(let timeText) = parts[4], let time = Int64(timeText),
                case .array(let records) = parts[1], records.count == read.keys.count,
                case .array(let counts) = parts[2], counts.count == read.counts.count,
                case .array(let members) = parts[3], members.count == read.members.count
            else { throw HotCodecError("unexpected READ reply \(reply)") }
            var snapshot = HotSnapshot(generation: Generation(gen), records: [], counts: [], members: [],
                                       storeTime: Instant(microseconds: time))
            for record in records {
                guard case .string(let text) = record else { throw HotCodecError("record is not a string: \(record)") }
                snapshot.records.append(try HotValueCodec.decodeRecord(text))
            }
            for count in counts {
                guard case .integer(let value) = count else { throw HotCodecError("count is not an integer: \(count)") }
                snapshot.counts.append(Int(value))
            }
            for set in members {
                guard case .array(let elements) = set else { throw HotCodecError("members are not an array: \(set)") }
                var items: [ItemID] = []
                for element in elements {
                    guard case .string(let text) = element, let value = Int(text) else {
                        throw HotCodecError("bad set member \(element)")
                    }
                    items.append(ItemID(value))
                }
                snapshot.members.append(items.sorted())
            }
            return .snapshot(snapshot)
        } catch {
            adapterLog("redis: cannot decode READ: \(error)")
            throw .unavailable
        }
    }

    private func commit(_ commit: HotCommit, then complete: @escaping ResultCompletion<HotCommitReply>) {
        // One commit's section of the COMMIT script's arguments (`LuaScripts.commit`), behind the
        // prefix, a count of one and the section's length: the connection may send it together with
        // the commits queued beside it, in one script (`CommitBatching`).
        var section = [String(commit.generation.rawValue), String(recordTTLSeconds),
                       commit.deadline.map { String($0.microseconds) } ?? "", commit.validFrom.map { String($0.microseconds) } ?? "",
                       commit.deadline == nil && commit.validFrom == nil ? "" : clockArgument,
                       String(commit.guards.count)]
        for (key, version) in commit.guards {
            section.append(key.description)
            section.append(String(version))
        }
        section.append(String(commit.puts.count))
        for (key, value) in commit.puts {
            guard let guarded = commit.guards[key] else {
                adapterLog("redis: refusing a commit with an unguarded put of \(key)")
                return complete(.failure(.unavailable))
            }
            section.append(key.description)
            section.append(HotValueCodec.encode(version: guarded + 1, value: value))
        }
        Self.appendSets(commit.setAdds, to: &section)
        Self.appendSets(commit.setRemoves, to: &section)
        run(LuaScripts.commit, args: [namespacePrefix, "1", String(section.count)] + section) { result in
            complete(result.flatMap(Self.decodeCommit))
        }
    }

    /// The COMMIT script's answer to one commit: a list of one verdict.
    static func decodeCommit(_ reply: RedisValue) -> Result<HotCommitReply, StoreFailure> {
        switch reply {
        case .array([.string("committed")]): return .success(.committed)
        case .array([.string("conflict")]): return .success(.conflict)
        case .array([.string("fenced")]): return .success(.fenced)
        case .array([.string("expired")]): return .success(.expired)
        case let other:
            adapterLog("redis: unexpected COMMIT reply \(other)")
            return .failure(.unavailable)
        }
    }

    static func appendSets(_ sets: [HotSetKey: [ItemID]], to args: inout [String]) {
        args.append(String(sets.count))
        for (set, members) in sets {
            args.append(set.description)
            args.append(String(members.count))
            args += members.map { String($0.rawValue) }
        }
    }

    private func install(_ install: HotInstall, then complete: @escaping ResultCompletion<HotInstallReply>) {
        // Chunks of records and set members, written under the new namespace; the last one flips.
        var chunks: [(records: [String], sets: [String], setCount: Int)] = [([], [], 0)]
        func room(_ needed: Int) {
            let last = chunks[chunks.count - 1]
            if last.records.count + last.sets.count + needed > installChunk && !(last.records.isEmpty && last.sets.isEmpty) {
                chunks.append(([], [], 0))
            }
        }
        for (key, value) in install.records {
            room(2)
            chunks[chunks.count - 1].records += [key.description, HotValueCodec.encode(version: 1, value: value)]
        }
        for (set, members) in install.sets {
            var rest = members[...]
            repeat {
                let piece = rest.prefix(max(1, installChunk - 2))
                rest = rest.dropFirst(piece.count)
                room(2 + piece.count)
                chunks[chunks.count - 1].sets += [set.description, String(piece.count)] + piece.map { String($0.rawValue) }
                chunks[chunks.count - 1].setCount += 1
            } while !rest.isEmpty
        }
        installChunks(chunks.map { chunk in
            [String(chunk.records.count / 2)] + chunk.records + [String(chunk.setCount)] + chunk.sets
        }, generation: install.generation, from: 0, then: complete)
    }

    /// Sends install chunk `index` and, once it is in, the next; the last one flips the generation.
    private func installChunks(_ chunks: [[String]], generation: Generation, from index: Int,
                               then complete: @escaping ResultCompletion<HotInstallReply>) {
        let flip = index == chunks.count - 1
        let args = [namespacePrefix, String(generation.rawValue), String(recordTTLSeconds), flip ? "1" : "0", String(index),
                    String(chunks.count)] + chunks[index]
        run(LuaScripts.install, args: args) { [self] result in
            switch result {
            case .failure(let failure): complete(.failure(failure))
            case .success(.string("installed")):
                if flip { complete(.success(.installed)) } else { installChunks(chunks, generation: generation, from: index + 1, then: complete) }
            case .success(.string("superseded")): complete(.success(.superseded))
            case .success(.string("incomplete")):
                adapterLog("redis: install of generation \(generation) lost chunks (Redis restarted during it?)")
                complete(.failure(.unavailable))
            case .success(let other):
                adapterLog("redis: unexpected INSTALL reply \(other)")
                complete(.failure(.unavailable))
            }
        }
    }

    private func run(_ script: RedisScript, args: [String], then complete: @escaping ResultCompletion<RedisValue>) {
        pool.submit(.script(script, keys: [genKey], args: args)) { result in
            if case .success(.error(let message)) = result {
                adapterLog("redis: \(script.name) failed: \(message)")
                return complete(.failure(.unavailable))
            }
            complete(result)
        }
    }
}

/// The generic scripts. KEYS[1] is the generation key; ARGV[1] the connected server's `run_id`
/// (added by `RedisDriver`); ARGV[2] the namespace prefix (`fs:g`). Record and set keys are built
/// inside the scripts from the generation they read, which is what makes "same generation, same
/// server" and "the guarded versions" one atomic check (single Redis, not Cluster).
enum LuaScripts {
    /// Lua shared by READ and COMMIT: the generation the store serves, in `gen`, or nil when
    /// `fs:gen` is absent or was installed on another server (an older copy of unknown age).
    static let servedGeneration = """
        local gen, owner
        local current = redis.call('GET', KEYS[1])
        if current then gen, owner = string.match(current, '^(%d+) (%S+)$') end
        if owner ~= ARGV[1] then gen = nil end
        """

    /// ARGV: run_id, prefix, the store time ('' = Redis's `TIME`), the numbers of keys, counted
    /// sets and listed sets, then those. Answers the generation, records, counts, members and the
    /// store time in microseconds.
    static let read = RedisScript(name: "READ", source: """
        \(servedGeneration)
        if not gen then return false end
        local p = ARGV[2] .. gen .. ':'
        local nk, nc, nm = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
        local i = 7
        local records, counts, members = {}, {}, {}
        for k = 1, nk do records[k] = redis.call('GET', p .. ARGV[i]) or ''; i = i + 1 end
        for k = 1, nc do counts[k] = redis.call('SCARD', p .. ARGV[i]); i = i + 1 end
        for k = 1, nm do members[k] = redis.call('SMEMBERS', p .. ARGV[i]); i = i + 1 end
        local now = ARGV[3]
        if now == '' then
          local t = redis.call('TIME')
          now = t[1] .. string.format('%06d', tonumber(t[2]))
        end
        return {gen, records, counts, members, now}
        """)

    /// Lua shared by COMMIT and INSTALL: reads a count of sets, then for each a key, a member count
    /// and the members, and adds them (refreshing the set's TTL). Expects `i`, `n`, `p`, `ttl`.
    static let addToSets = """
        n = tonumber(ARGV[i]); i = i + 1
        for k = 1, n do
          local key, m = p .. ARGV[i], tonumber(ARGV[i + 1]); i = i + 2
          if m > 0 then
            redis.call('SADD', key, unpack(ARGV, i, i + m - 1))
            redis.call('EXPIRE', key, ttl)
          end
          i = i + m
        end
        """

    /// ARGV: run_id, prefix, the number of commits, then for each commit the length of its section
    /// and the section: generation, ttl, deadline and valid-from ('' = none), the store time ('' =
    /// Redis's `TIME`), then the guards, puts, set additions and set removals. Each commit checks the
    /// generation, then every guard, then the time window, and only then writes; the commits run one
    /// after the other, as the same number of single-commit scripts would (`CommitBatching` sends a
    /// connection's queued commits as one call: the generation, the server's identity and the clock
    /// are read once for all of them). Answers one verdict per commit.
    static let commit = RedisScript(name: "COMMIT", source: """
        \(servedGeneration)
        local clock
        local function commitAt(i)
          if (not gen) or gen ~= ARGV[i] then return 'fenced' end
          local p = ARGV[2] .. gen .. ':'
          local ttl = tonumber(ARGV[i + 1])
          local deadline, validFrom, storeTime = ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
          i = i + 5
          local n = tonumber(ARGV[i]); i = i + 1
          for k = 1, n do
            local v = redis.call('GET', p .. ARGV[i])
            local version = '0'
            if v then version = string.match(v, '^(%d+)|') or 'corrupt' end
            if version ~= ARGV[i + 1] then return 'conflict' end
            i = i + 2
          end
          if deadline ~= '' or validFrom ~= '' then
            local now
            if storeTime ~= '' then now = tonumber(storeTime)
            else
              if not clock then
                local t = redis.call('TIME')
                clock = tonumber(t[1]) * 1000000 + tonumber(t[2])
              end
              now = clock
            end
            if deadline ~= '' and now >= tonumber(deadline) then return 'expired' end
            if validFrom ~= '' and now < tonumber(validFrom) then return 'expired' end
          end
          n = tonumber(ARGV[i]); i = i + 1
          for k = 1, n do redis.call('SET', p .. ARGV[i], ARGV[i + 1], 'EX', ttl); i = i + 2 end
          \(addToSets)
          n = tonumber(ARGV[i]); i = i + 1
          for k = 1, n do
            local key, m = p .. ARGV[i], tonumber(ARGV[i + 1]); i = i + 2
            if m > 0 then redis.call('SREM', key, unpack(ARGV, i, i + m - 1)) end
            i = i + m
          end
          return 'committed'
        end
        local verdicts = {}
        local i = 4
        for c = 1, tonumber(ARGV[3]) do
          verdicts[c] = commitAt(i + 1)
          i = i + 1 + tonumber(ARGV[i])
        end
        return verdicts
        """)

    /// ARGV: run_id, prefix, new generation, ttl, flip (1 on the last chunk), chunk index, chunk
    /// count, then the chunk's records and sets.
    static let install = RedisScript(name: "INSTALL", source: """
        \(servedGeneration)
        local new = ARGV[3]
        if gen and tonumber(gen) >= tonumber(new) then return 'superseded' end
        local p = ARGV[2] .. new .. ':'
        local ttl = tonumber(ARGV[4])
        local i = 8
        local n = tonumber(ARGV[i]); i = i + 1
        for k = 1, n do redis.call('SET', p .. ARGV[i], ARGV[i + 1], 'EX', ttl); i = i + 2 end
        \(addToSets)
        redis.call('SADD', p .. 'chunks', ARGV[6])
        redis.call('EXPIRE', p .. 'chunks', ttl)
        if ARGV[5] == '1' then
          if redis.call('SCARD', p .. 'chunks') ~= tonumber(ARGV[7]) then return 'incomplete' end
          redis.call('SET', KEYS[1], new .. ' ' .. ARGV[1])
        end
        return 'installed'
        """)

    static let all = [read, commit, install]
}
