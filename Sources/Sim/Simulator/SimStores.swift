import Engine
import StoreModel

/// The store side of the simulation: PostgreSQL and Redis with the port models' exact
/// semantics, plus faults: refusals, lost replies, latency spikes, outages and Redis
/// restarting empty. The checker watches every transition.
extension Simulation {
    /// A batch reaches its store. Redis runs a pipeline's scripts one after the other; PostgreSQL runs
    /// the writes of a batch as one transaction, in its lock order, then the queries. A store that is
    /// down (or cut off) refuses the batch; a transient error refuses one call; a connection that
    /// breaks mid-batch leaves some calls applied and some replies unread (`lost-reply`).
    mutating func batchReachesStore(_ id: Int) {
        guard var batch = batches[id] else { return }
        let isHot = batch.connection.hot
        let cutOff = partitioned.contains(Partition(instance: batch.connection.instance, hot: isHot))
        if cutOff { mark(isHot ? "partitioned_from_redis" : "partitioned_from_postgres") }
        let down = (isHot ? hotDown : durableDown) || cutOff
        if down { fault("store_down_refusal") }
        var replies = [StoreReply](repeating: .failed(.unavailable), count: batch.calls.count)
        // How far the store gets, and how many replies the connection reads before it breaks.
        var applies = batch.calls.count
        var answered = batch.calls.count
        var lost = draw(.replyLost, batch.identity)
        if !down && faultsActive && lost.chance(config.faults.lostReply) {
            fault("reply_lost")
            if isHot {
                applies = lost.int(0...batch.calls.count)
                answered = lost.int(0...applies)
            } else {
                applies = lost.chance(0.5) ? batch.calls.count : 0  // the commit happened, or not
                answered = 0
            }
            if applies == batch.calls.count && answered == 0 { mark(isHot ? "hot_applied_reply_lost" : "durable_applied_reply_lost") }
            if applies > 0 && applies < batch.calls.count { mark("batch_cut_partly_applied") }
            if answered > 0 && answered < batch.calls.count { mark("batch_cut_partly_answered") }
        }
        if !down {
            for (step, position) in executionOrder(of: batch).enumerated() {
                if step < applies { replies[position] = receive(batch.calls[position]) } else { calls[batch.calls[position]]?.lostOnTheWay = true }
            }
        }
        for position in answered..<batch.calls.count { replies[position] = .failed(.timeout) }
        guard answered > 0 || down else {
            // Nothing comes back: the connection waits out its deadline.
            batch.storeDone = true
            batches[id] = batch.abandoned ? nil : batch
            return
        }
        var delay = storeDelay(draw(.fromStore, batch.identity))
        var spike = draw(.latencySpike, batch.identity)
        if faultsActive && spike.chance(config.faults.latencySpike) {
            fault("latency_spike")
            delay = delay + .milliseconds(spike.micros(20, 400))
        }
        queue.schedule(.batchReplyArrives(batch: id, replies: replies), at: now + delay)
    }

    /// The order the store runs a batch's calls in, as positions in the batch.
    func executionOrder(of batch: SimBatch) -> [Int] {
        guard !batch.connection.hot else { return Array(batch.calls.indices) }
        var writes: [(position: Int, write: DurableWrite)] = []
        var others: [Int] = []
        for (position, id) in batch.calls.enumerated() {
            if case .durableWrite(let write)? = calls[id]?.call { writes.append((position, write)) } else { others.append(position) }
        }
        return BatchRules.durableWriteOrder(writes.map(\.write)).map { writes[$0].position } + others
    }

    /// The store runs call `id` of a batch: refused by a transient error, or applied.
    mutating func receive(_ id: Int) -> StoreReply {
        guard let pending = calls[id] else { return .failed(.unavailable) }
        calls[id]?.received = true
        let call = pending.call
        if let watch = config.watch, Self.touches(call, watch) {
            tell("store receives call \(id) from instance \(pending.instance): \(call) (hot gen \(String(describing: hot.generation)), durable gen \(durable.generation), hot record \(hot.record(watch)))")
        }
        var transient = draw(.transientError, pending.identity)
        if faultsActive && transient.chance(config.faults.transientError) {
            fault("transient_error")
            return .failed(.unavailable)
        }
        if !pending.waiting {
            // The caller timed out on it already: it applies now, and its reply goes nowhere.
            calls[id] = nil
            mark("call_applied_after_its_timeout")
        }
        if config.plantedBug == .fenceReadWithoutLock, case .durableWrite(let write) = call {
            let began = pending.deadline - Self.durableTimeout
            return apply(.durableWrite(bugMemory.unlockedFence(write, began: began, current: durable.generation)))
        }
        if config.plantedBug == .rebuildSnapshotsBeforeBump,
            let reply = bugMemory.snapshotBeforeBump(call, instance: pending.instance, durable: durable)
        {
            return reply
        }
        return apply(call)
    }

    static func touches(_ call: StoreCall, _ key: HotKey) -> Bool {
        guard case .item(let sale, let item) = key else { return false }
        switch call {
        case .hotRead(let read): return read.keys.contains(key)
        case .hotCommit(let commit): return commit.puts.keys.contains(key) || commit.guards.keys.contains(key)
        case .hotInstall: return true
        case .durableWrite(.purchase(let p, _, _)): return p.sale == sale && p.item == item
        case .durableWrite(.attempt(let a, _)): return a.sale == sale && a.item == item
        case .durableQuery(.codeHistory(let code)): return code.sale == sale && code.item == item
        case .durableQuery, .durableBumpGeneration: return true
        }
    }

    /// Applies one call atomically, with the checker looking on.
    mutating func apply(_ call: StoreCall) -> StoreReply {
        hot.clock = now  // the simulated Redis's clock is true time
        switch call {
        case .hotRead(let read):
            if config.plantedBug == .staleReplicaReads && read.keys.count == 2 && read.counts.count == 1 {
                return .hotRead(bugMemory.replicaRead(read, primary: hot, now: now))  // a checkout's first read
            }
            return .hotRead(hot.read(read))
        case .hotCommit(let commit):
            // The checker sees each transition before it is applied.
            let verdict = hot.check(commit)
            if verdict == .committed {
                checker.hotCommitWillApply(commit, hot: hot, now: now)
                noteCommitCoverage(commit)
            } else {
                mark(verdict == .conflict ? "cas_conflict" : "hot_commit_fenced")
            }
            if verdict == .conflict && config.plantedBug == .guardCheckedAfterWrite {
                // The script writes first and compares after: the writes stay, the answer is `conflict`.
                var blind = commit
                for key in blind.guards.keys { blind.guards[key] = hot.record(key).version }
                checker.hotCommitWillApply(blind, hot: hot, now: now)
                _ = hot.commit(blind)
                checker.hotCommitApplied(blind, hot: hot, now: now)
                return .hotCommit(.conflict)
            }
            let reply = hot.commit(commit)
            if reply == .committed { checker.hotCommitApplied(commit, hot: hot, now: now) }
            return .hotCommit(reply)
        case .hotInstall(let install):
            let reply = hot.install(install)
            if reply == .installed {
                mark("rebuild_installed")
                lastInstallAt = now
                if !checker.installed(hot, install: install, durableGeneration: durable.generation, now: now) { mark("stale_install_over_rolled_back_redis") }
            } else {
                mark("rebuild_superseded")
            }
            return .hotInstall(reply)
        case .durableWrite(let write):
            let reply = durable.write(write)
            checker.durableWriteApplied(write, reply: reply, durable: durable, now: now)
            switch reply {
            case .fenced: mark("durable_write_fenced")
            case .alreadyPresent: mark("durable_write_already_present")
            case .written:
                if case .purchase(let purchase, _, _) = write {
                    durableSold[purchase.sale, default: 0] += 1
                    unsold[purchase.sale, default: UnsoldItems(count: config.rules.itemsPerSale)].remove(purchase.item)
                    if durableSold[purchase.sale] == config.rules.itemsPerSale {
                        soldOutAt[purchase.sale] = now
                        mark("sellout")
                    }
                    if now >= calendar.end(of: purchase.sale) { mark("purchase_after_sale_end") }
                }
            case .rejected: break
            }
            return .durableWrite(reply)
        case .durableQuery(let query):
            return .durableQuery(durable.query(query))
        case .durableBumpGeneration(let bump):
            if config.plantedBug == .fenceReadWithoutLock { bugMemory.noteBump(replacing: durable.generation, at: now) }
            return .durableGeneration(durable.bumpGeneration(bump))
        }
    }

    mutating func noteCommitCoverage(_ commit: HotCommit) {
        for (key, value) in commit.puts {
            guard case .item = key else { continue }
            let before = hot.record(key).itemRecord
            switch (before, value) {
            case (.held(let old), .item(.held(let new))?):
                mark(old.user == new.user ? "hold_renewed_after_expiry" : "expired_hold_taken_over")
            case (.held, nil):
                mark("expired_slot_released")
            case (.held(let hold), .item(.sold)?):
                if now + config.rules.clockSkewAllowance >= hold.expiresAt { mark("purchase_near_expiry") }
            default:
                break
            }
        }
    }

    mutating func redisRestart() {
        guard faultsActive else { return }
        queue.schedule(.redisRestart, at: now + rngFaults.exponential(mean: config.faults.redisRestartEvery))
        guard strikes() else { return }
        fault("redis_restart_empty")
        hot.loseEverything()
        checker.hotStoreReplaced(hot, now: now)
    }

    mutating func redisSave() {
        guard faultsActive else { return }
        savedHot = hot
        queue.schedule(.redisSave, at: now + rngFaults.exponential(mean: config.faults.redisSaveEvery))
    }

    /// Redis comes back with the last copy it saved: everything written since is gone, the
    /// generation and versions go back, and the server is a new process.
    mutating func redisRollback() {
        guard faultsActive else { return }
        queue.schedule(.redisRollback, at: now + rngFaults.exponential(mean: config.faults.redisRollbackEvery))
        guard let savedHot, strikes() else { return }
        fault("redis_rollback")
        if savedHot.generation == nil { mark("redis_rollback_to_empty") }
        else if savedHot.generation == hot.trustedGeneration { mark("redis_rollback_same_generation") }
        else { mark("redis_rollback_older_generation") }
        hot.restart(from: savedHot, keepingIdentity: config.plantedBug == .identityBlindHotStore)
        checker.hotStoreReplaced(hot, now: now)
    }

    /// The Redis now holds another database's state: another generation, half of every sale's
    /// items sold to strangers, every sale counted sold out. Nothing of it may be answered.
    mutating func redisServesAnotherDatabase() {
        guard faultsActive else { return }
        queue.schedule(.redisServesAnotherDatabase, at: now + rngFaults.exponential(mean: config.faults.foreignRedisEvery))
        let generation = Generation(Int64(rngFaults.next() >> 2))
        guard generation != durable.generation else { return }
        let strikes = strikes()
        if strikes { fault("redis_serves_another_database") }
        var records: [HotKey: HotValue] = [:]
        var sets: [HotSetKey: [ItemID]] = [:]
        var nonce = SplitMix64(seed: rngFaults.next())
        for sale in sales {
            let items = (1...config.rules.itemsPerSale).map(ItemID.init)
            sets[.sold(sale)] = items
            for item in items where rngFaults.chance(0.5) {
                let code = Code.generate(sale: sale, item: item, using: &nonce)
                records[.item(sale, item)] = .item(.sold(Purchase(code: code, user: UserID(unchecked: "stranger"), purchasedAt: now)))
            }
        }
        guard strikes else { return }
        hot.serveAnotherDatabase(HotInstall(generation: generation, records: records, sets: sets))
        checker.hotStoreReplaced(hot, now: now)
    }

    mutating func outageStarts(hot isHot: Bool) {
        guard faultsActive else { return }
        let length = TimeSpan(microseconds: rngFaults.micros(config.faults.outageLength.microseconds / 2, config.faults.outageLength.microseconds * 3 / 2))
        queue.schedule(.outageStarts(hot: rngFaults.chance(0.5)), at: now + length + rngFaults.exponential(mean: config.faults.outageEvery))
        guard strikes() else { return }
        fault(isHot ? "redis_outage" : "postgres_outage")
        if isHot { hotDown = true } else { durableDown = true }
        chart("outage", lane: isHot ? "redis" : "postgresql", lasting: length)
        queue.schedule(.outageEnds(hot: isHot), at: now + length)
    }

    /// One instance cannot reach one store for a while; every other instance still can.
    mutating func partitionStarts(_ index: Int, hot isHot: Bool) {
        guard faultsActive else { return }
        let length = TimeSpan(microseconds: rngFaults.micros(config.faults.outageLength.microseconds / 2, config.faults.outageLength.microseconds * 2))
        queue.schedule(.partitionStarts(instance: rngFaults.int(0...(config.instances - 1)), hot: rngFaults.chance(0.5)),
                       at: now + length + rngFaults.exponential(mean: config.faults.partitionEvery))
        guard strikes() else { return }
        fault(isHot ? "partition_from_redis" : "partition_from_postgres")
        partitioned.insert(Partition(instance: index, hot: isHot))
        chart(isHot ? "partition from redis" : "partition from postgresql", lane: "instance \(index)", lasting: length)
        queue.schedule(.partitionEnds(instance: index, hot: isHot), at: now + length)
    }

    mutating func outageEnds(hot isHot: Bool) {
        if isHot { hotDown = false } else { durableDown = false }
    }
}
