import Engine

/// The read endpoints on a simulated instance: `GET /sale`, `GET /sales/{sale}/items/{item}` and
/// `GET /users/{user}/purchases`. They make the server handlers' store calls (the reads
/// `StatusRules.summaryReads` lists, one item's read, the durable purchases query), follow the
/// same protocol for each hot read (`StatusRules.afterRead`: a store that lost its data is rebuilt
/// through the instance's runtime, then read once more), and compute the answer with
/// `StatusRules.summary` and `StatusRules.status`, as the server does. (The server's summary cache,
/// which serves `/sale` up to a TTL old with its `as_of`, is not simulated: every `/sale` reads.)
struct ViewState: Sendable {
    let intent: Intent
    /// The sale this view is of, by the instance's clock.
    let sale: SaleID
    /// The instance's time when the request arrived (what `StatusRules` judges holds by).
    let arrivedAt: Instant
    /// The hot reads still to make, in order, and the snapshots of those made.
    var reads: [HotRead]
    var snapshots: [HotSnapshot] = []
    /// Whether the current read already waited for a rebuild.
    var rebuilt = false
    /// The snapshot waiting for PostgreSQL to confirm its generation (`StatusRules.afterGenerationCheck`).
    var unconfirmed: HotSnapshot?
    /// Whole passes over the summary's reads (a rebuild between two of them reads them all again, once).
    var passes = 1
}

extension Simulation {
    mutating func viewArrives(_ id: Int, on index: Int) {
        let request = requests[id]
        let local = instances[index].localTime(now)
        switch request.intent {
        case .viewSale:
            let sale = calendar.sale(at: local)
            views[id] = ViewState(intent: request.intent, sale: sale, arrivedAt: local, reads: StatusRules.summaryReads(sale: sale, rules: config.rules))
        case .viewItem(let sale, let item):
            views[id] = ViewState(intent: request.intent, sale: sale, arrivedAt: local, reads: [HotRead(keys: [.item(sale, item)])])
        case .viewPurchases(let sale):
            views[id] = ViewState(intent: request.intent, sale: sale, arrivedAt: local, reads: [])
            issue(.durableQuery(.purchases(sale: sale, user: users[request.user].id)), from: index, machine: nil, view: id)
            return
        default:
            return
        }
        readNext(for: id, on: index)
    }

    mutating func readNext(for id: Int, on index: Int) {
        guard let read = views[id]?.reads.first else { return }
        issue(.hotRead(read), from: index, machine: nil, view: id)
    }

    /// A store's reply (or a timeout) for view `id`.
    mutating func viewReplied(_ id: Int, _ reply: StoreReply, on index: Int) {
        guard var state = views[id] else { return }
        if case .durableQuery(.purchases(let purchases)) = reply {
            return answerView(id, .purchases(state.sale, purchases))
        }
        guard !state.reads.isEmpty else { return answerView(id, .unavailable) }
        let step: StatusReadStep
        if let snapshot = state.unconfirmed {
            state.unconfirmed = nil
            step = StatusRules.afterGenerationCheck(reply, of: snapshot, rebuiltAlready: state.rebuilt)
            if case .use = step { instances[index].confirmedGeneration = snapshot.generation }
        } else {
            step = StatusRules.afterRead(reply, rebuiltAlready: state.rebuilt, confirmed: instances[index].confirmedGeneration)
        }
        switch step {
        case .confirmGeneration(let snapshot):
            state.unconfirmed = snapshot
            views[id] = state
            issue(.durableQuery(.generation), from: index, machine: nil, view: id)
        case .use(let snapshot):
            state.snapshots.append(snapshot)
            state.reads.removeFirst()
            state.rebuilt = false
            views[id] = state
            if state.reads.isEmpty { finishView(id, on: index) } else { readNext(for: id, on: index) }
        case .rebuildThenRead:
            state.rebuilt = true
            views[id] = state
            carryOut(instances[index].runtime.rebuild(for: SimCaller.view(id).token, now: instances[index].localTime(now)), on: index)
        case .unavailable:
            answerView(id, .unavailable)
        }
    }

    /// The rebuild view `id` waited for is over: read again.
    mutating func viewRebuilt(_ id: Int, on index: Int) {
        guard views[id] != nil else { return }
        readNext(for: id, on: index)
    }

    mutating func finishView(_ id: Int, on index: Int) {
        guard var state = views[id] else { return }
        switch state.intent {
        case .viewItem(let sale, let item):
            let record = state.snapshots.first?.records.first?.itemRecord
            answerView(id, .item(sale, item, StatusRules.status(of: record, now: state.arrivedAt)))
        case .viewSale:
            if let summary = StatusRules.summary(sale: state.sale, rules: config.rules, snapshots: state.snapshots, now: state.arrivedAt) {
                answerView(id, .sale(summary))
            } else if state.passes < 2 {
                state.passes += 1
                state.snapshots = []
                state.reads = StatusRules.summaryReads(sale: state.sale, rules: config.rules)
                views[id] = state
                readNext(for: id, on: index)
            } else {
                answerView(id, .unavailable)
            }
        default:
            answerView(id, .unavailable)
        }
    }

    mutating func answerView(_ id: Int, _ answer: ViewAnswer) {
        views[id] = nil
        send(.view(answer), for: id)
    }
}
