import AdapterSupport
import Adapters
import Engine
import StoreModel

/// The durable store on PostgreSQL (through libpq): the semantics of `DurableStoreModel`, with
/// group commit.
///
/// Every write that queues on a connection while its previous batch is in flight goes out in the
/// next batch, as one implicit transaction in one pipelined round trip:
///
///     SELECT generation FROM fence WHERE id = 1 FOR SHARE
///     INSERT INTO checkout_attempts ... SELECT ... FROM unnest($1::text[], ...)   -- every attempt of the batch
///            WHERE fence IS NULL OR fence = (SELECT generation FROM fence)
///            ON CONFLICT DO NOTHING RETURNING attempt_id
///     INSERT INTO purchases ... (the same shape)                                 -- every purchase of the batch
///     <sync: commit>
///
/// One statement per kind of write rather than one per row: PostgreSQL's cost per row falls
/// several times (docs/bench.md).
///
/// Each caller resumes only after that commit. A row that was not inserted is explained afterwards
/// (idempotency first: does the attempt id / code exist? then the fence; then the constraint), in
/// the same order as the model. `bumpGeneration` is its own transaction; it waits for every batch
/// holding the fence `FOR SHARE`, so no write fenced by the old generation commits after it.
public final class PostgresDurableStore: StorePort {
    private let pool: ConnectionPool<PostgresDriver>

    /// - Parameters:
    ///   - url: a libpq connection string or `postgresql://` URL.
    ///   - connectTimeoutSeconds: libpq's `connect_timeout` (at least 2).
    public init(url: String, settings: PoolSettings = PoolSettings(), connectTimeoutSeconds: Int = 3) {
        pool = ConnectionPool(name: "pg", settings: settings) {
            PostgresDriver(connection: PGConnection(url: url, connectTimeoutSeconds: connectTimeoutSeconds,
                                                    statements: PostgresDriver.statements))
        }
    }

    /// Closes every connection; later calls answer `.unavailable`.
    public func shutdown() { pool.shutdown() }

    public func execute(_ call: StoreCall, then complete: @escaping StoreCompletion) {
        let request: PGRequest
        switch call {
        case .durableWrite(let write): request = .write(write)
        case .durableQuery(let query): request = .query(query)
        case .durableBumpGeneration(let bump): request = .bump(bump)
        case .hotRead, .hotCommit, .hotInstall:
            adapterLog("pg: refusing a hot-store call")
            return complete(.failed(.unavailable))
        }
        pool.submit(request) { result in
            complete(result.storeReply { reply in
                switch reply {
                case .write(let reply): .durableWrite(reply)
                case .query(let reply): .durableQuery(reply)
                case .generation(let generation): .durableGeneration(generation)
                }
            })
        }
    }
}

enum PGRequest: Sendable {
    case write(DurableWrite)
    case query(DurableQuery)
    case bump(GenerationBump)
}

enum PGReply: Sendable {
    case write(DurableWriteReply)
    case query(DurableQueryReply)
    case generation(Generation)
}

/// The protocol of one connection: turns a batch of requests into sync groups and their results
/// into replies. Lives on the connection's thread.
final class PostgresDriver: ConnectionDriver {
    typealias Request = PGRequest
    typealias Reply = PGReply

    static let statements: [(name: String, sql: String)] = [
        ("fence", "SELECT generation FROM fence WHERE id = 1 FOR SHARE"),
        // One statement per kind of write for the whole batch: the rows arrive as parallel arrays.
        ("insert_attempts", """
            INSERT INTO checkout_attempts (attempt_id, sale_id, item_id, user_id, outcome, code, expires_at, attempted_at)
            SELECT a, s, i, u, o, c, e, t
            FROM unnest($1::text[], $2::bigint[], $3::int[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[],
                        $9::bigint[]) WITH ORDINALITY AS w(a, s, i, u, o, c, e, t, f, n)
            WHERE f IS NULL OR f = (SELECT generation FROM fence WHERE id = 1)
            ORDER BY n
            ON CONFLICT DO NOTHING RETURNING attempt_id
            """),
        // The user-limit backstop is the trigger of migrations/002_durable_user_limit.sql.
        ("insert_purchases", """
            INSERT INTO purchases (code, sale_id, item_id, user_id, purchased_at, user_limit)
            SELECT c, s, i, u, t, l
            FROM unnest($1::text[], $2::bigint[], $3::int[], $4::text[], $5::bigint[], $6::bigint[], $7::int[])
                 WITH ORDINALITY AS w(c, s, i, u, t, f, l, n)
            WHERE f IS NULL OR f = (SELECT generation FROM fence WHERE id = 1)
            ORDER BY n
            ON CONFLICT DO NOTHING RETURNING code
            """),
        ("attempt_exists", "SELECT 1 FROM checkout_attempts WHERE attempt_id = $1::text"),
        ("purchase_exists", "SELECT 1 FROM purchases WHERE code = $1::text"),
        ("bump", """
            UPDATE fence SET generation = greatest(generation, $1::bigint) + $2::bigint WHERE id = 1 RETURNING generation
            """),
        ("generation", "SELECT generation FROM fence WHERE id = 1"),
        ("hold_by_code", """
            SELECT user_id, expires_at FROM checkout_attempts
            WHERE code = $1::text AND outcome = 'held' AND expires_at IS NOT NULL ORDER BY seq LIMIT 1
            """),
        ("purchase_by_code", "SELECT user_id, purchased_at FROM purchases WHERE code = $1::text"),
        ("snapshot_purchases", """
            SELECT code, user_id, purchased_at, sale_id FROM purchases WHERE sale_id = ANY($1::bigint[]) ORDER BY seq
            """),
        ("snapshot_holds", """
            SELECT code, user_id, expires_at, sale_id FROM (
                SELECT DISTINCT ON (code) code, user_id, expires_at, sale_id, seq FROM checkout_attempts
                WHERE outcome = 'held' AND code IS NOT NULL AND sale_id = ANY($1::bigint[]) AND expires_at > $2::bigint
                ORDER BY code, seq) AS first_holds
            ORDER BY seq
            """),
        ("user_purchases", """
            SELECT code, user_id, purchased_at FROM purchases WHERE sale_id = $1::bigint AND user_id = $2::text ORDER BY item_id
            """),
    ]

    private let connection: PGConnection
    private var loggedDown = false

    init(connection: PGConnection) {
        self.connection = connection
    }

    func close() { connection.drop() }

    func execute(_ batch: [PGRequest], deadline: ContinuousClock.Instant) -> [Result<PGReply, StoreFailure>] {
        do throws(PGConnectionError) {
            try connection.ensureConnected()
            if loggedDown {
                adapterLog("postgres: connected again")
                loggedDown = false
            }
        } catch {
            if !loggedDown {
                adapterLog("postgres: cannot connect: \(error)")
                loggedDown = true
            }
            return batch.map { _ in .failure(.unavailable) }
        }

        var results = [Result<PGReply, StoreFailure>?](repeating: nil, count: batch.count)
        var writes: [(index: Int, write: DurableWrite)] = []
        var others: [(index: Int, group: [PGStatement])] = []
        for (index, request) in batch.enumerated() {
            switch request {
            case .write(let write): writes.append((index, write))
            case .query(let query): others.append((index, Self.statements(for: query)))
            case .bump(let bump):
                others.append((index, [PGStatement(name: "bump", params: [String(bump.above.rawValue), String(bump.stride)])]))
            }
        }
        // A consistent order of inserts across batches, so two batches never wait on each other's
        // unique-index entries in opposite orders.
        writes = BatchRules.durableWriteOrder(writes.map(\.write)).map { writes[$0] }

        var groups: [[PGStatement]] = []
        if !writes.isEmpty { groups.append(Self.writeGroup(writes.map(\.write))) }
        groups += others.map(\.group)

        let outcomes: [PGGroupOutcome]
        do throws(PGConnectionError) {
            outcomes = try connection.exchange(groups, deadline: deadline)
        } catch {
            adapterLog("postgres: batch of \(batch.count) failed: \(error)")
            // Something was sent: whether it committed is unknown.
            return batch.map { _ in .failure(.timeout) }
        }

        var next = 0
        if !writes.isEmpty {
            let replies = resolveWrites(writes.map(\.write), outcome: outcomes[0], deadline: deadline)
            for (slot, reply) in zip(writes, replies) { results[slot.index] = reply.map { .write($0) } }
            next = 1
        }
        for (slot, outcome) in zip(others, outcomes[next...]) {
            results[slot.index] = Self.reply(to: batch[slot.index], outcome: outcome)
        }
        return results.map { $0 ?? .failure(.unavailable) }
    }

    // MARK: Writes

    /// The fence read `FOR SHARE`, then one multi-row insert per kind of write present (attempts
    /// first), each returning the keys it inserted.
    static func writeGroup(_ writes: [DurableWrite]) -> [PGStatement] {
        var attempts: [[String?]] = Array(repeating: [], count: 9)
        var purchases: [[String?]] = Array(repeating: [], count: 7)
        for write in writes {
            switch write {
            case .attempt(let a, let fence):
                let row: [String?] = [
                    a.id.rawValue, String(a.sale.rawValue), String(a.item.rawValue), a.user.rawValue, a.outcome.rawValue,
                    a.code?.text, a.expiresAt.map { String($0.microseconds) }, String(a.attemptedAt.microseconds),
                    fence.map { String($0.rawValue) },
                ]
                for (column, value) in row.enumerated() { attempts[column].append(value) }
            case .purchase(let p, let fence, let userLimit):
                let row: [String?] = [
                    p.code.text, String(p.sale.rawValue), String(p.item.rawValue), p.user.rawValue,
                    String(p.purchasedAt.microseconds), fence.map { String($0.rawValue) }, String(userLimit),
                ]
                for (column, value) in row.enumerated() { purchases[column].append(value) }
            }
        }
        var group = [PGStatement(name: "fence", params: [])]
        if !attempts[0].isEmpty { group.append(PGStatement(name: "insert_attempts", params: attempts.map(arrayLiteral))) }
        if !purchases[0].isEmpty { group.append(PGStatement(name: "insert_purchases", params: purchases.map(arrayLiteral))) }
        return group
    }

    /// A PostgreSQL array literal of text elements: each quoted (backslash and quote escaped),
    /// `NULL` for a missing value.
    static func arrayLiteral(_ elements: [String?]) -> String {
        var bytes: [UInt8] = [UInt8(ascii: "{")]
        for (index, element) in elements.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            guard let element else {
                bytes += "NULL".utf8
                continue
            }
            bytes.append(UInt8(ascii: "\""))
            for byte in element.utf8 {
                if byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\"") { bytes.append(UInt8(ascii: "\\")) }
                bytes.append(byte)
            }
            bytes.append(UInt8(ascii: "\""))
        }
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Turns the committed group's results into the model's replies: inserted → `.written`;
    /// otherwise idempotency (exists?), then fence, then constraint.
    private func resolveWrites(_ writes: [DurableWrite], outcome: PGGroupOutcome,
                               deadline: ContinuousClock.Instant) -> [Result<DurableWriteReply, StoreFailure>] {
        let hasAttempts = writes.contains { if case .attempt = $0 { true } else { false } }
        let hasPurchases = writes.contains { if case .purchase = $0 { true } else { false } }
        let statements = 1 + (hasAttempts ? 1 : 0) + (hasPurchases ? 1 : 0)
        guard case .ok(let rows) = outcome, rows.count == statements,
            let generationText = rows[0].rows.first?.first ?? nil, let generation = Int64(generationText)
        else {
            if case .failed(let state, let message) = outcome {
                // The transaction was rolled back: nothing of this batch was written.
                if writes.count > 1 { return retryOneByOne(writes, deadline: deadline) }
                if state == "23514", case .purchase = writes[0] {
                    adapterLog("postgres: purchase refused by the user-limit backstop: \(message)")
                    return [.success(.rejected)]
                }
                adapterLog("postgres: write refused (\(state)): \(message)")
            } else {
                adapterLog("postgres: unexpected write batch result")
            }
            return writes.map { _ in .failure(.unavailable) }
        }

        // The keys each insert returned: a write whose key is there (the first of the batch with
        // that key, if a key repeats) was written by this batch.
        var insertedAttempts = Set(hasAttempts ? rows[1].rows.compactMap { $0.first ?? nil } : [])
        var insertedPurchases = Set(hasPurchases ? rows[statements - 1].rows.compactMap { $0.first ?? nil } : [])
        var replies = [Result<DurableWriteReply, StoreFailure>?](repeating: nil, count: writes.count)
        var checks: [(index: Int, statement: PGStatement)] = []
        for (index, write) in writes.enumerated() {
            let written = switch write {
            case .attempt(let attempt, _): insertedAttempts.remove(attempt.id.rawValue) != nil
            case .purchase(let purchase, _, _): insertedPurchases.remove(purchase.code.text) != nil
            }
            if written {
                replies[index] = .success(.written)
                continue
            }
            switch write {
            case .attempt(let attempt, let fence):
                if fence == nil || fence?.rawValue == generation {
                    replies[index] = .success(.alreadyPresent)  // the only unique key is the attempt id
                } else {
                    checks.append((index, PGStatement(name: "attempt_exists", params: [attempt.id.rawValue])))
                }
            case .purchase(let purchase, _, _):
                checks.append((index, PGStatement(name: "purchase_exists", params: [purchase.code.text])))
            }
        }
        if !checks.isEmpty {
            let answers: [PGGroupOutcome]
            do throws(PGConnectionError) {
                answers = try connection.exchange([checks.map(\.statement)], deadline: deadline)
            } catch {
                // Those rows were not inserted; only their explanation is missing.
                for check in checks { replies[check.index] = .failure(.unavailable) }
                return replies.map { $0 ?? .failure(.unavailable) }
            }
            guard case .ok(let found) = answers.first, found.count == checks.count else {
                for check in checks { replies[check.index] = .failure(.unavailable) }
                return replies.map { $0 ?? .failure(.unavailable) }
            }
            for (check, rows) in zip(checks, found) {
                if rows.count > 0 {
                    replies[check.index] = .success(.alreadyPresent)
                    continue
                }
                switch writes[check.index] {
                case .attempt: replies[check.index] = .success(.fenced)
                case .purchase(_, let fence, _):
                    let current = fence == nil || fence?.rawValue == generation
                    replies[check.index] = .success(current ? .rejected : .fenced)
                }
            }
        }
        return replies.map { $0 ?? .failure(.unavailable) }
    }

    /// After a batch transaction failed as a whole (a deadlock, a value the schema refuses), each
    /// write gets its own transaction so one bad write cannot fail the others.
    private func retryOneByOne(_ writes: [DurableWrite], deadline: ContinuousClock.Instant) -> [Result<DurableWriteReply, StoreFailure>] {
        let outcomes: [PGGroupOutcome]
        do throws(PGConnectionError) {
            outcomes = try connection.exchange(writes.map { Self.writeGroup([$0]) }, deadline: deadline)
        } catch {
            return writes.map { _ in .failure(.timeout) }
        }
        return zip(writes, outcomes).map { write, outcome in
            resolveWrites([write], outcome: outcome, deadline: deadline)[0]
        }
    }

    // MARK: Queries

    static func statements(for query: DurableQuery) -> [PGStatement] {
        switch query {
        case .codeHistory(let code):
            [PGStatement(name: "hold_by_code", params: [code.text]),
             PGStatement(name: "purchase_by_code", params: [code.text]),
             PGStatement(name: "generation", params: [])]
        case .snapshot(let sales, let after):
            [PGStatement(name: "snapshot_purchases", params: [bigintArray(sales)]),
             PGStatement(name: "snapshot_holds", params: [bigintArray(sales), String(after.microseconds)])]
        case .purchases(let sale, let user):
            [PGStatement(name: "user_purchases", params: [String(sale.rawValue), user.rawValue])]
        case .generation:
            [PGStatement(name: "generation", params: [])]
        }
    }

    static func bigintArray(_ sales: [SaleID]) -> String {
        "{" + sales.map { String($0.rawValue) }.joined(separator: ",") + "}"
    }

    static func reply(to request: PGRequest, outcome: PGGroupOutcome) -> Result<PGReply, StoreFailure> {
        guard case .ok(let rows) = outcome else {
            if case .failed(let state, let message) = outcome { adapterLog("postgres: \(request) failed (\(state)): \(message)") }
            return .failure(.unavailable)
        }
        do throws(DecodeError) {
            switch request {
            case .bump:
                return .success(.generation(try generation(rows, "bump")))
            case .query(.generation):
                return .success(.query(.generation(try generation(rows, "generation"))))
            case .query(.codeHistory(let code)):
                guard rows.count == 3 else { throw DecodeError("code history: \(rows.count) results") }
                let hold = try rows[0].rows.first.map { row throws(DecodeError) in
                    Hold(code: code, user: try user(row[0]), expiresAt: try instant(row[1]))
                }
                let purchase = try rows[1].rows.first.map { row throws(DecodeError) in
                    Purchase(code: code, user: try user(row[0]), purchasedAt: try instant(row[1]))
                }
                let current = try generation([rows[2]], "generation")
                return .success(.query(.codeHistory(CodeHistory(hold: hold, purchase: purchase, generation: current))))
            case .query(.snapshot(let sales, _)):
                guard rows.count == 2 else { throw DecodeError("snapshot: \(rows.count) results") }
                var purchasesBySale: [SaleID: [Purchase]] = [:]
                for row in rows[0].rows {
                    let purchase = Purchase(code: try code(row[0]), user: try user(row[1]), purchasedAt: try instant(row[2]))
                    purchasesBySale[try sale(row[3]), default: []].append(purchase)
                }
                var holdsBySale: [SaleID: [Hold]] = [:]
                for row in rows[1].rows {
                    let hold = Hold(code: try code(row[0]), user: try user(row[1]), expiresAt: try instant(row[2]))
                    holdsBySale[try sale(row[3]), default: []].append(hold)
                }
                var snapshot = DurableSnapshot(purchases: [], holds: [])
                for sale in sales {
                    snapshot.purchases += purchasesBySale[sale] ?? []
                    snapshot.holds += holdsBySale[sale] ?? []
                }
                return .success(.query(.snapshot(snapshot)))
            case .query(.purchases):
                guard rows.count == 1 else { throw DecodeError("purchases: \(rows.count) results") }
                let purchases = try rows[0].rows.map { row throws(DecodeError) in
                    Purchase(code: try code(row[0]), user: try user(row[1]), purchasedAt: try instant(row[2]))
                }
                return .success(.query(.purchases(purchases)))
            case .write:
                throw DecodeError("a write in a query group")
            }
        } catch {
            adapterLog("postgres: cannot decode the reply to \(request): \(error)")
            return .failure(.unavailable)
        }
    }

    /// The single generation value a `bump` or `generation` statement returns.
    static func generation(_ rows: [PGRows], _ statement: String) throws(DecodeError) -> Generation {
        guard let text = rows.first?.rows.first?.first ?? nil, let value = Int64(text) else {
            throw DecodeError("\(statement) returned no generation (is the fence row seeded?)")
        }
        return Generation(value)
    }

    static func user(_ text: String?) throws(DecodeError) -> UserID {
        guard let text, let user = UserID.parse(text) else { throw DecodeError("bad user id \(text ?? "NULL")") }
        return user
    }

    static func instant(_ text: String?) throws(DecodeError) -> Instant {
        guard let text, let value = Int64(text) else { throw DecodeError("bad instant \(text ?? "NULL")") }
        return Instant(microseconds: value)
    }

    static func code(_ text: String?) throws(DecodeError) -> Code {
        guard let text, let code = Code.parse(text) else { throw DecodeError("bad code \(text ?? "NULL")") }
        return code
    }

    static func sale(_ text: String?) throws(DecodeError) -> SaleID {
        guard let text, let value = Int64(text) else { throw DecodeError("bad sale id \(text ?? "NULL")") }
        return SaleID(value)
    }
}

struct DecodeError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
