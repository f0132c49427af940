import Engine

/// The server side of the simulation: instances receiving requests, carrying out what their
/// `InstanceRuntime` asks (the runtime the HTTP server's `RequestDriver` drives), crashing,
/// pausing and restarting. It executes actions and decides nothing.
extension Simulation {
    mutating func requestArrives(_ id: Int) {
        let request = requests[id]
        let index = request.instance
        guard instances[index].alive else {
            // Connection refused: the client notices at once.
            mark("connection_refused")
            queue.schedule(.clientTimeout(request: id), at: now + .milliseconds(1))
            return
        }
        if isWatched(request) { tell("request \(id) of user \(users[request.user].id) reaches instance \(index): \(request.intent)") }
        let local = instances[index].localTime(now)
        let isCheckout: Bool
        switch request.intent {
        case .checkout: isCheckout = true
        case .purchaseOwn, .purchaseForeign, .purchaseGuess: isCheckout = false
        case .malformed(let checkout): isCheckout = checkout
        case .viewSale, .viewItem, .viewPurchases: return viewArrives(id, on: index)
        }
        var rng = draw(.requestRandomness, identity(ofRequest: id))
        let actions: [InstanceAction]
        do throws(APIError) {
            if isCheckout {
                let parsed = try CheckoutRequest.parse(query: request.query, rules: config.rules)
                actions = instances[index].runtime.checkout(parsed, for: SimCaller.request(id).token, now: local, random: &rng)
            } else {
                var code = try Code.parse(query: request.query)
                if let bug = config.plantedBug {
                    code = bug.parsed(code, at: local, calendar: calendar)
                    if bug == .purchaseRetryNotIdempotent, durable.purchasesByCode[code] != nil { arrivedBought.insert(id) }
                }
                actions = instances[index].runtime.purchase(code, for: SimCaller.request(id).token, now: local, random: &rng)
            }
        } catch {
            mark("malformed_rejected")
            send(.badRequest(error), for: id)
            return
        }
        carryOut(actions, on: index)
    }

    /// Executes what instance `index`'s runtime asked for: the simulator's counterpart of
    /// `RequestDriver.carryOut`.
    mutating func carryOut(_ actions: [InstanceAction], on index: Int) {
        if faultsActive, let (length, point) = instances[index].pauseAtNextStep {
            let commits = actions.contains { if case .call(.hotCommit, _) = $0 { true } else { false } }
            let responds = actions.contains { if case .respond = $0 { true } else { false } }
            let strikes: Bool
            switch point {
            case .anyStep: strikes = !actions.isEmpty
            case .beforeCommit: strikes = commits
            case .beforeResponse: strikes = responds
            }
            if strikes {
                instances[index].pauseAtNextStep = nil
                stop(index, for: length)
                if commits { mark("paused_between_decision_and_commit") }
                if responds { mark("paused_between_last_reply_and_response") }
            }
        }
        for action in actions {
            switch action {
            case .call(let call, let machine):
                if config.plantedBug == .ackBeforeDurable, case .durableWrite(.purchase(let purchase, _, _)) = call,
                    let token = instances[index].runtime.client(of: machine), case .request(let request) = SimCaller(token)
                {
                    finished(.purchase(.purchased(purchase)), for: .request(request))  // answered before it is durable
                }
                issue(call, from: index, machine: machine)
            case .sleep(let span, let machine):
                queue.schedule(.wake(instance: index, incarnation: instances[index].incarnation, machine: machine), at: now + span)
            case .followUp(let call):
                issue(call, from: index, machine: nil)
            case .respond(let response, let token):
                finished(response, for: SimCaller(token))
            case .note(let note):
                switch note {
                case .committedOnGuess: mark("commit_on_guess")
                case .guessResolved(let committed): mark(committed ? "guess_committed" : "guess_refused")
                case .rebuildAwaited: mark("rebuild_awaited")
                case .rebuildFinished(.done): mark("rebuild_completed")
                case .rebuildFinished(.failed): mark("rebuild_failed")
                case .invariantBroken(let message): checker.fail("engine invariant broken on instance \(index): \(message)", at: now)
                }
            }
        }
    }

    mutating func finished(_ response: InstanceResponse, for caller: SimCaller) {
        switch (response, caller) {
        case (.checkout(var result, let attempt, let sale), .request(let request)):
            if result == .clockUnsafe { mark("clock_unsafe_refused") }
            if let bug = config.plantedBug {
                let handedOutBefore = if case .held(let hold) = result { !bugMemory.answeredHolds.insert(hold.code).inserted } else { false }
                result = bug.answered(result, handedOutBefore: handedOutBefore)
            }
            // The answer first (A1–A4), then its durable record (S5).
            if case .checkout(let item) = requests[request].intent {
                checker.judgeCheckout(result, sale: sale, item: item, user: users[requests[request].user].id, window: requests[request].sentAt...now)
            }
            checker.checkoutAnswered(result, attempt: attempt, hot: hot, durable: durable, now: now)
            send(.checkout(result, attempt: attempt, sale: sale), for: request)
        case (.purchase(var result), .request(let request)):
            guard respondedAt[request] == nil else { return }  // answered already (planted bug `ackBeforeDurable`)
            if arrivedBought.contains(request), case .purchased = result { result = .codeExpired }
            result = config.plantedBug?.answered(result) ?? result
            let code = try? Code.parse(query: requests[request].query)
            checker.purchaseAnswered(result, code: code, durable: durable, now: now)
            if let code { checker.judgePurchase(result, code: code, durable: durable, window: requests[request].sentAt...now) }
            send(.purchase(result), for: request)
        case (.reconcile(.reconciled(let n)), _):
            if n > 0 { coverage["purchase_rolled_forward", default: 0] += n }
        case (.rebuild, .view(let id)):
            viewRebuilt(id, on: requests[id].instance)
        case (.reconcile(.failed), _), (.reconcileSkipped, _), (.rebuild, _), (.checkout, .reconcileTimer), (.purchase, .reconcileTimer),
            (.checkout, .view), (.purchase, .view):
            break
        }
    }

    /// The instance answers a client (the response may still be lost on the way).
    mutating func send(_ response: SimResponse, for id: Int) {
        respondedAt[id] = now
        let request = requests[id]
        if calendar.sale(at: now) != request.sale { mark("rollover_in_flight") }
        var lost = draw(.responseLost, identity(ofRequest: id))
        if faultsActive && lost.chance(config.faults.lostResponse) {
            fault("response_lost")
            return
        }
        // An instance paused right before answering sends the answer when it resumes.
        let departs = max(now, instances[request.instance].pausedUntil ?? now)
        queue.schedule(.responseArrives(request: id, response: response), at: departs + networkDelay(draw(.responseTrip, identity(ofRequest: id))))
    }

    /// Sends `call` for machine `machine` (nil: a fire-and-forget follow-up) or for read endpoint
    /// request `view` (`SimViews.swift`).
    mutating func issue(_ call: StoreCall, from index: Int, machine: Int?, view: Int? = nil) {
        nextCall += 1
        let id = nextCall
        let call = config.plantedBug?.outgoing(call) ?? call
        let deadline = now + (call.isHot ? Self.hotTimeout : Self.durableTimeout)
        var pending = PendingCall(instance: index, incarnation: instances[index].incarnation, machine: machine, call: call, deadline: deadline)
        pending.view = view
        // Drawn from who made the call, so that removing anything else leaves these draws alone.
        var request = view
        if let machine, let token = instances[index].runtime.client(of: machine), case .request(let r) = SimCaller(token) { request = r }
        let ordinal = request.map { requests[$0].calls } ?? id
        if let request { requests[request].calls += 1 }
        pending.identity = identity(ofCallFor: request, ordinal: ordinal, instance: index)
        calls[id] = pending
        queue.schedule(.callTimeout(call: id), at: pending.deadline)
        enqueue(id, hot: call.isHot, from: index)
    }

    /// The instance an event is for (or a store call comes from), when it is paused.
    func pausedInstance(for event: Event) -> Int? {
        let index: Int?
        switch event {
        case .requestArrives(let request): index = requests[request].instance
        case .callTimeout(let call): index = calls[call]?.instance
        case .batchReachesStore(let batch), .batchReplyArrives(let batch, _), .batchGivesUp(let batch): index = batches[batch]?.connection.instance
        case .wake(let instance, _, _), .reconcileTick(let instance): index = instance
        default: index = nil
        }
        guard let index, instances[index].pausedUntil != nil else { return nil }
        return index
    }

    /// The paused instance carries on: what waited for it is handled now, in arrival order.
    mutating func resume(_ index: Int) {
        guard instances[index].pausedUntil != nil else { return }
        instances[index].pausedUntil = nil
        for event in instances[index].deferred { queue.schedule(event, at: now) }
        instances[index].deferred = []
    }

    /// Pauses instance `index` for `length`.
    mutating func stop(_ index: Int, for length: TimeSpan) {
        chart("pause", lane: "instance \(index)", lasting: length)
        instances[index].pausedUntil = now + length
        queue.schedule(.resume(instance: index), at: now + length)
    }

    /// A stop-the-world pause of one instance, from 10 ms to three hold TTLs, between any two steps
    /// of its machines: a store call it had decided but not yet sent waits too.
    mutating func pause(_ index: Int) {
        guard faultsActive else { return }
        queue.schedule(.pause(instance: rngFaults.int(0...(config.instances - 1))), at: now + rngFaults.exponential(mean: config.faults.pauseEvery))
        guard instances[index].alive, instances[index].pausedUntil == nil, instances[index].pauseAtNextStep == nil else { return }
        let longest = max(20_000, config.rules.holdTTL.microseconds * 3)
        // About log-uniform: most pauses are short (GC), some outlast several holds (SIGSTOP, swapping).
        let doublings = Int(log(Double(longest) / 10_000) / log(2))
        let base = Int64(10_000) << Int64(rngFaults.int(0...max(0, doublings)))
        let length = rngFaults.micros(base, min(base * 2, longest))
        let anywhere = rngFaults.chance(0.5)
        let point = anywhere ? .anyStep : [SimInstance.PausePoint.anyStep, .beforeCommit, .beforeResponse][rngFaults.int(0...2)]
        guard strikes() else { return }
        fault("instance_pause")
        if length > config.rules.holdTTL.microseconds { mark("pause_longer_than_a_hold") }
        if anywhere {
            stop(index, for: TimeSpan(microseconds: length))  // wherever its machines are
        } else {
            instances[index].pauseAtNextStep = (TimeSpan(microseconds: length), point)  // right after a decision
        }
    }

    mutating func replyArrives(_ id: Int, _ reply: StoreReply) {
        guard var pending = calls[id], pending.waiting else { return }
        if let watch = config.watch, Self.touches(pending.call, watch) { tell("instance \(pending.instance) receives the reply to call \(id): \(reply)") }
        pending.waiting = false
        calls[id] = nil
        deliver(reply, to: pending)
    }

    mutating func callTimedOut(_ id: Int) {
        guard var pending = calls[id], pending.waiting else { return }
        pending.waiting = false
        // Not yet at the store: it may still arrive and apply (or be dropped from its queue), after
        // the caller gave up on it.
        calls[id] = pending.received || pending.lostOnTheWay ? nil : pending
        mark("store_call_timed_out")
        deliver(.failed(.timeout), to: pending)
    }

    mutating func deliver(_ reply: StoreReply, to pending: PendingCall) {
        let index = pending.instance
        if let view = pending.view {
            guard instances[index].alive, instances[index].incarnation == pending.incarnation else { return }
            return viewReplied(view, reply, on: index)
        }
        guard let machine = pending.machine, instances[index].alive, instances[index].incarnation == pending.incarnation
        else { return }
        var crashes = draw(.crashBeforeReply, pending.identity)
        if faultsActive && crashes.chance(config.faults.crashPerReply) {
            // A crash between two port calls: the reply is never processed.
            if instances[index].runtime.isBetweenWrites(machine) { mark("crash_between_writes") }
            crash(index)
            return
        }
        let reply = config.plantedBug?.incoming(reply, to: pending.call, rules: config.rules) ?? reply
        carryOut(instances[index].runtime.receive(reply, for: machine, now: instances[index].localTime(now)), on: index)
    }

    mutating func crash(_ index: Int) {
        guard instances[index].alive else { return }
        fault("instance_crash")
        chart("crash", lane: "instance \(index)")
        instances[index].alive = false
        instances[index].incarnation += 1
        instances[index].runtime.forgetEverything()
        instances[index].confirmedGeneration = nil
        views = views.filter { requests[$0.key].instance != index }
        dropConnections(of: index)
        queue.schedule(.restart(instance: index), at: now + .milliseconds(rngFaults.micros(200, 2_000)))
    }

    mutating func restart(_ index: Int) {
        instances[index].alive = true
    }

    mutating func reconcileTick(_ index: Int) {
        guard now + Self.reconcileEvery <= end else { return }
        queue.schedule(.reconcileTick(instance: index), at: now + Self.reconcileEvery)
        guard instances[index].alive else { return }
        carryOut(instances[index].runtime.reconcile(for: SimCaller.reconcileTimer.token, now: instances[index].localTime(now)), on: index)
    }

    /// The instance's clock goes one to five allowances off, either way, for a while: a bad NTP
    /// step, a VM resumed from suspend. Its checkouts must be refused (`clock_unsafe`), not decided.
    mutating func clockGoesBad(_ index: Int) {
        guard faultsActive else { return }
        queue.schedule(.clockGoesBad(instance: rngFaults.int(0...(config.instances - 1))), at: now + rngFaults.exponential(mean: config.faults.badClockEvery))
        guard !instances[index].clockBad else { return }
        let allowance = config.rules.clockSkewAllowance.microseconds
        let size = rngFaults.micros(allowance, allowance * 5)
        let offset = TimeSpan(microseconds: rngFaults.chance(0.5) ? size : -size)
        let recovery = now + .seconds(1) + TimeSpan(microseconds: rngFaults.micros(0, 9_000_000))
        guard strikes() else { return }
        fault("clock_outside_allowance")
        instances[index].clockOffset = offset
        instances[index].clockBad = true
        queue.schedule(.clockRecovers(instance: index), at: recovery)
    }

    mutating func clockRecovers(_ index: Int) {
        guard instances[index].clockBad else { return }
        instances[index].clockBad = false
        let skew = config.maxClockSkew.microseconds
        instances[index].clockOffset = TimeSpan(microseconds: rngFaults.micros(-skew, skew))
    }

    mutating func clockJump(_ index: Int) {
        guard faultsActive else { return }
        queue.schedule(.clockJump(instance: rngFaults.int(0...(config.instances - 1))), at: now + rngFaults.exponential(mean: config.faults.clockJumpEvery))
        guard !instances[index].clockBad else { return }
        let skew = config.maxClockSkew.microseconds
        let offset = TimeSpan(microseconds: rngFaults.micros(-skew, skew))
        guard strikes() else { return }
        fault("clock_jump")
        instances[index].clockOffset = offset
    }

    /// A client's request or response crossing the network, drawn from `draw`.
    func networkDelay(_ draw: SplitMix64) -> TimeSpan {
        var draw = draw
        return TimeSpan(microseconds: draw.micros(200, 2_000))
    }
    /// A store call or reply crossing the network, drawn from `draw`.
    func storeDelay(_ draw: SplitMix64) -> TimeSpan {
        var draw = draw
        return TimeSpan(microseconds: draw.micros(40, 400))
    }
}
