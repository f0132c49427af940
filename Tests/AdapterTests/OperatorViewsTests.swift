import Adapters
import Engine
import Foundation
import PostgresAdapter
import Testing

/// Migration 003 (operator views) applied to a database written by the previous schema (001 and
/// 002): the raw rows stay as they were, 002's user-limit trigger still works, and the views
/// answer with times equal to the microseconds written.
extension LiveStoreTests {
    @Test("Operator views over a database written by the previous schema")
    func operatorViews() async throws {
        let base = try #require(LiveStores.databaseURL)
        let schema = "ov_\(UInt64.random(in: 0...UInt64.max) % 1_000_000_000_000)"
        try Migrator.execute("CREATE SCHEMA \(schema)", connectionString: base)
        defer { _ = try? Migrator.execute("SET client_min_messages = warning; DROP SCHEMA \(schema) CASCADE", connectionString: base) }
        let url = "\(base)\(base.contains("?") ? "&" : "?")options=-csearch_path%3D\(schema)"

        // The previous schema: only 001 and 002, from a directory of their own.
        let previous = FileManager.default.temporaryDirectory.appendingPathComponent("ov-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: previous, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: previous) }
        let all = try FileManager.default.contentsOfDirectory(atPath: LiveStores.migrations)
        let old = all.filter { $0.hasPrefix("001_") || $0.hasPrefix("002_") }.sorted()
        try #require(old.count == 2, "expected 001 and 002 in \(all)")
        for file in old {
            try FileManager.default.copyItem(atPath: LiveStores.migrations + "/" + file,
                                             toPath: previous.appendingPathComponent(file).path)
        }
        #expect(try Migrator.apply(directory: previous.path, connectionString: url) == old.map { String($0.dropLast(4)) })
        #expect(try Migrator.execute("SELECT count(*) FROM pg_views WHERE schemaname = '\(schema)'", connectionString: url) == ["0"])

        // Rows written by the server's own durable store at that schema.
        let t0: Int64 = 1_700_000_000_123_457  // 2023-11-14 22:13:20.123457 UTC
        func at(_ offset: Int64) -> Instant { Instant(microseconds: t0 + offset) }
        var rng = SplitMix64(seed: 12)
        let sale = SaleID(7)
        func code(_ item: Int) -> Code { Code.generate(sale: sale, item: ItemID(item), using: &rng) }
        let codes = [code(1), code(2), code(3)]
        let u1 = UserID(unchecked: "alice"), u2 = UserID(unchecked: "bob"), u3 = UserID(unchecked: "carol")
        func attempt(_ item: Int, _ user: UserID, _ outcome: CheckoutOutcome, _ offset: Int64,
                     code: Code? = nil) -> CheckoutAttempt {
            CheckoutAttempt(id: AttemptID.generate(using: &rng), sale: sale, item: ItemID(item), user: user, outcome: outcome,
                            code: code, expiresAt: code.map { _ in at(offset + 120_000_000) }, attemptedAt: at(offset))
        }
        let attempts = [
            attempt(1, u1, .held, 0, code: codes[0]),
            attempt(2, u1, .held, 1, code: codes[1]),
            attempt(3, u2, .held, 2, code: codes[2]),
            attempt(1, u3, .itemHeld, 3),
            attempt(2, u3, .itemHeld, 4),
            attempt(1, u3, .itemSold, 500),
            attempt(4, u1, .userLimitReached, 600),
            attempt(5, u3, .soldOut, 900),
            attempt(6, u3, .soldOut, 901),
        ]
        let purchases = [
            Purchase(code: codes[0], user: u1, purchasedAt: at(100)),
            Purchase(code: codes[1], user: u1, purchasedAt: at(200)),
            Purchase(code: codes[2], user: u2, purchasedAt: at(300)),
        ]
        // A sale seen only through a purchase (no attempt row): still one row in `sales`.
        let lonely = Purchase(code: Code.generate(sale: SaleID(8), item: ItemID(9), using: &rng), user: u3,
                              purchasedAt: at(7_000))
        let store = PostgresDurableStore(url: url)
        defer { store.shutdown() }
        for write in attempts {
            #expect(try await store.write(.attempt(write, fence: nil)) == .written)
        }
        for write in purchases {
            #expect(try await store.write(.purchase(write, fence: nil, userLimit: 2)) == .written)
        }
        #expect(try await store.write(.purchase(lonely, fence: nil, userLimit: 2)) == .written)

        let rawAttempts = "SELECT attempt_id || ' ' || sale_id || ' ' || item_id || ' ' || user_id || ' ' || outcome || ' ' || coalesce(code, '-') || ' ' || coalesce(expires_at::text, '-') || ' ' || attempted_at FROM checkout_attempts ORDER BY seq"
        let rawPurchases = "SELECT code || ' ' || sale_id || ' ' || item_id || ' ' || user_id || ' ' || purchased_at || ' ' || coalesce(user_limit::text, '-') FROM purchases ORDER BY seq"
        let rawCounts = "SELECT sale_id || ' ' || user_id || ' ' || purchased FROM user_purchase_counts ORDER BY sale_id, user_id"
        let before = (try Migrator.execute(rawAttempts, connectionString: url), try Migrator.execute(rawPurchases, connectionString: url),
                      try Migrator.execute(rawCounts, connectionString: url))
        #expect(before.0.count == attempts.count && before.1.count == purchases.count + 1)
        #expect(before.2 == ["7 alice 2", "7 bob 1", "8 carol 1"])

        // The full directory: only 003 (and anything after it) is new.
        let applied = try Migrator.apply(directory: LiveStores.migrations, connectionString: url)
        #expect(applied.first == "003_operator_views")
        #expect(!applied.contains { $0.hasPrefix("001_") || $0.hasPrefix("002_") })

        // The raw tables are untouched.
        #expect(try Migrator.execute(rawAttempts, connectionString: url) == before.0)
        #expect(try Migrator.execute(rawPurchases, connectionString: url) == before.1)
        #expect(try Migrator.execute(rawCounts, connectionString: url) == before.2)

        func query(_ sql: String) throws -> [String] { try Migrator.execute(sql, connectionString: url) }
        // A timestamptz as UTC text to the microsecond, and back to microseconds by numeric (exact) arithmetic.
        func utc(_ column: String) -> String { "to_char(\(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')" }
        func micros(_ column: String) -> String { "(extract(epoch FROM \(column)) * 1000000)::bigint" }

        // attempts: every row, times equal to the microseconds written.
        #expect(try query("SELECT \(micros("attempted_at")) FROM attempts ORDER BY seq")
            == attempts.map { String($0.attemptedAt.microseconds) })
        #expect(try query("SELECT coalesce(\(micros("expires_at"))::text, '-') FROM attempts ORDER BY seq")
            == attempts.map { $0.expiresAt.map { String($0.microseconds) } ?? "-" })
        #expect(try query("SELECT \(utc("attempted_at")) FROM attempts ORDER BY seq LIMIT 1") == ["2023-11-14 22:13:20.123457"])
        #expect(try query("SELECT pg_typeof(attempted_at)::text FROM attempts LIMIT 1") == ["timestamp with time zone"])
        #expect(try query("SELECT attempt_id || ' ' || outcome FROM attempts ORDER BY seq")
            == attempts.map { "\($0.id.rawValue) \($0.outcome.rawValue)" })

        // sold_items: one row per purchase.
        #expect(try query("SELECT code || ' ' || user_id || ' ' || \(micros("purchased_at")) FROM sold_items ORDER BY seq")
            == (purchases + [lonely]).map { "\($0.code.text) \($0.user.rawValue) \($0.purchasedAt.microseconds)" })
        #expect(try query("SELECT \(utc("purchased_at")) FROM sold_items ORDER BY seq LIMIT 1") == ["2023-11-14 22:13:20.123557"])

        // sales: one row per sale id seen, from attempts or purchases.
        #expect(try query("""
            SELECT sale_id || ' ' || items_sold || ' ' || buyers || ' ' || attempts || ' ' || holds || ' '
                || \(micros("first_purchase_at")) || ' ' || \(micros("last_purchase_at")) || ' '
                || coalesce(\(micros("first_attempt_at"))::text, '-') || ' ' || coalesce(\(micros("last_attempt_at"))::text, '-') || ' '
                || coalesce(\(micros("first_sold_out_at"))::text, '-')
            FROM sales ORDER BY sale_id
            """) == [
                "7 3 2 9 3 \(t0 + 100) \(t0 + 300) \(t0) \(t0 + 901) \(t0 + 900)",
                "8 1 1 0 0 \(t0 + 7_000) \(t0 + 7_000) - - -",
            ])

        // refusals_by_reason: per sale and refusal, the count; held attempts are not refusals.
        #expect(try query("SELECT sale_id || ' ' || reason || ' ' || refusals FROM refusals_by_reason ORDER BY sale_id, reason") == [
            "7 item_held 2", "7 item_sold 1", "7 sold_out 2", "7 user_limit_reached 1",
        ])
        #expect(try query("SELECT \(micros("first_at")) || ' ' || \(micros("last_at")) FROM refusals_by_reason WHERE reason = 'sold_out'")
            == ["\(t0 + 900) \(t0 + 901)"])

        // user_purchases: per sale and user, the items bought.
        #expect(try query("SELECT sale_id || ' ' || user_id || ' ' || items_bought || ' ' || item_ids::text FROM user_purchases ORDER BY sale_id, user_id") == [
            "7 alice 2 {1,2}", "7 bob 1 {3}", "8 carol 1 {9}",
        ])

        // The helper functions the docs show.
        #expect(try query("SELECT \(utc("sale_start(7, interval '1 hour')"))") == ["1970-01-01 07:00:00.000000"])
        #expect(try query("SELECT timestamptz_to_micros(micros_to_timestamptz(\(t0)))") == ["\(t0)"])

        // 002's backstop still holds after 003: alice owns 2 items of sale 7, a third is refused.
        let third = Purchase(code: Code.generate(sale: sale, item: ItemID(4), using: &rng), user: u1, purchasedAt: at(800))
        #expect(try await store.write(.purchase(third, fence: nil, userLimit: 2)) == .rejected)
        #expect(try query("SELECT items_bought FROM user_purchases WHERE sale_id = 7 AND user_id = 'alice'") == ["2"])
    }
}
