import Engine

/// The exact semantics of the durable store port, as a plain value: what the PostgreSQL adapter
/// must do (its constraints included), what the simulator's PostgreSQL does, and what the
/// in-memory adapter is.
public struct DurableStoreModel: Sendable {
    public private(set) var generation = Generation(0)
    public private(set) var attempts: [AttemptID: CheckoutAttempt] = [:]
    public private(set) var holdsByCode: [Code: Hold] = [:]
    public private(set) var purchasesByCode: [Code: Purchase] = [:]
    private var purchaseOfItem: [SaleItem: Code] = [:]
    private var holdsBySale: [SaleID: [Hold]] = [:]
    private var purchasesBySale: [SaleID: [Purchase]] = [:]
    private var purchasesOfUser: [SaleUser: Int] = [:]

    struct SaleUser: Hashable, Sendable {
        let sale: SaleID
        let user: UserID
    }

    struct SaleItem: Hashable, Sendable {
        let sale: SaleID
        let item: ItemID
    }

    public init() {}

    public mutating func apply(_ call: StoreCall) -> StoreReply? {
        switch call {
        case .durableWrite(let write): .durableWrite(self.write(write))
        case .durableQuery(let query): .durableQuery(self.query(query))
        case .durableBumpGeneration(let bump): .durableGeneration(bumpGeneration(bump))
        case .hotRead, .hotCommit, .hotInstall: nil
        }
    }

    /// Idempotency first (a retry of a committed write is `alreadyPresent` whatever the
    /// generation now is), then the fence, then the constraints (one purchase per item, then at
    /// most `userLimit` purchases per user and sale).
    public mutating func write(_ write: DurableWrite) -> DurableWriteReply {
        switch write {
        case .attempt(let attempt, let fence):
            if attempts[attempt.id] != nil { return .alreadyPresent }
            if let fence, fence != generation { return .fenced }
            attempts[attempt.id] = attempt
            if let hold = attempt.hold, holdsByCode[hold.code] == nil {
                holdsByCode[hold.code] = hold
                holdsBySale[hold.sale, default: []].append(hold)
            }
            return .written
        case .purchase(let purchase, let fence, let userLimit):
            if purchasesByCode[purchase.code] != nil { return .alreadyPresent }
            if let fence, fence != generation { return .fenced }
            let key = SaleItem(sale: purchase.sale, item: purchase.item)
            if purchaseOfItem[key] != nil { return .rejected }  // UNIQUE (sale_id, item_id)
            let owner = SaleUser(sale: purchase.sale, user: purchase.user)
            if purchasesOfUser[owner, default: 0] >= userLimit { return .rejected }  // the limit backstop
            purchasesOfUser[owner, default: 0] += 1
            purchaseOfItem[key] = purchase.code
            purchasesByCode[purchase.code] = purchase
            purchasesBySale[purchase.sale, default: []].append(purchase)
            return .written
        }
    }

    public func query(_ query: DurableQuery) -> DurableQueryReply {
        switch query {
        case .codeHistory(let code):
            return .codeHistory(CodeHistory(hold: holdsByCode[code], purchase: purchasesByCode[code], generation: generation))
        case .snapshot(let sales, let after):
            var purchases: [Purchase] = []
            var holds: [Hold] = []
            for sale in sales {
                purchases += purchasesBySale[sale] ?? []
                holds += (holdsBySale[sale] ?? []).filter { $0.expiresAt > after }
            }
            return .snapshot(DurableSnapshot(purchases: purchases, holds: holds))
        case .purchases(let sale, let user):
            return .purchases((purchasesBySale[sale] ?? []).filter { $0.user == user }.sorted { $0.item < $1.item })
        case .generation:
            return .generation(generation)
        }
    }

    public mutating func bumpGeneration(_ bump: GenerationBump) -> Generation {
        generation = bump.next(after: generation)
        return generation
    }

    // MARK: Inspection, for checkers and tests

    public func purchases(of sale: SaleID) -> [Purchase] { purchasesBySale[sale] ?? [] }
    public func purchaseCount(sale: SaleID, user: UserID) -> Int { purchasesOfUser[SaleUser(sale: sale, user: user)] ?? 0 }
    public func purchase(sale: SaleID, item: ItemID) -> Purchase? {
        purchaseOfItem[SaleItem(sale: sale, item: item)].flatMap { purchasesByCode[$0] }
    }
}
