import Adapters
import Engine
import Foundation
import Synchronization
import Testing

@testable import Server

/// Health, metrics, images, several instances on shared stores, the hot store losing its data,
/// and configuration.
@Suite struct OperationsTests {
    @Test func health() async throws {
        try await withServer { server in
            let reply = try await server.get("/health")
            #expect(reply.status == 200, "\(reply)")
            #expect(reply.string("status") == "ok")
            #expect(reply.json["ready"] as? Bool == true && reply.json["live"] as? Bool == true)
            #expect(reply.json["durable"] as? Bool == false)
            let stores = try #require(reply.json["stores"] as? [String: String])
            #expect(stores == ["hot": "ok", "durable": "ok"])
            #expect(reply.header("x-request-id")?.isEmpty == false)
        }
    }

    @Test func metrics() async throws {
        try await withServer { server in
            _ = try await server.checkout("mia", 1)  // reads first: nothing is remembered yet
            _ = try await server.checkout("noah", 1)  // remembered as held: a refusal reads first
            _ = try await server.checkout("olivia", 2)  // never seen: committed on the guess "free"
            _ = try await server.get("/nope")
            let reply = try await server.get("/metrics")
            #expect(reply.status == 200)
            #expect(reply.header("content-type")?.hasPrefix("text/plain") == true)
            let text = reply.text
            #expect(text.contains(#"http_requests_total{route="/checkout",method="POST",status="200",outcome="held"} 2"#), "\(text)")
            // 1, or 2 when a reconcile pass (every 200 ms here) told the instance the hot store's
            // generation before mia's checkout, which a busy test run can delay that long.
            #expect(
                text.contains(#"sale_guessed_commits_total{result="committed"} 1"#)
                    || text.contains(#"sale_guessed_commits_total{result="committed"} 2"#))
            #expect(text.contains(#"sale_guessed_commits_total{result="refused"} 0"#))
            #expect(text.contains(#"http_requests_total{route="/checkout",method="POST",status="409",outcome="item_held"} 1"#))
            #expect(text.contains(#"http_requests_total{route="unmatched",method="GET",status="404",outcome="not_found"} 1"#))
            #expect(text.contains(#"http_request_duration_seconds_bucket{route="/checkout",outcome="held",le="#))
            #expect(text.contains("sale_items_held 2"))
            #expect(text.contains("sale_items_sold 0"))
            #expect(text.contains("sale_items 10000"))
        }
    }

    @Test func itemImage() async throws {
        try await withServer { server in
            let sale = try #require(try await server.get("/sale").int("sale_id"))
            let item = try await server.get("/sales/\(sale)/items/3")
            let url = try #require(item.string("image_url"))
            let image = try await server.get(url)
            #expect(image.status == 200)
            #expect(image.header("content-type") == "image/svg+xml")
            #expect(image.text.hasPrefix("<svg") && image.text.hasSuffix("</svg>"))
            #expect(image.text == Catalog(seed: 0).imageSVG(sale: SaleID(Int64(sale)), item: ItemID(3)))
            // HEAD works on every GET route.
            #expect(try await server.request("HEAD", url).status == 200)
        }
    }

    @Test func catalogSeedChangesNames() async throws {
        try await withServer(environment: ["CATALOG_SEED": "7"]) { server in
            let name = try await server.get("/sales/1/items/1").string("name")
            #expect(name == Catalog(seed: 7).name(sale: SaleID(1), item: ItemID(1)))
        }
    }

    /// Two instances on different ports sharing the same stores race for the same items:
    /// exactly one winner per item, and the user limit holds across both.
    @Test func twoInstancesShareInMemoryStores() async throws {
        let memory = InMemoryStores(clock: StoreKind.memory.clock)
        let wired = WiredStores(stores: memory.stores, durable: false, mode: "shared in-memory (test)", close: {})
        try await withServer(environment: ["USER_LIMIT": "3"], stores: wired) { a in
            try await withServer(environment: ["USER_LIMIT": "3"], stores: wired) { b in
                #expect(a.port != b.port)
                try await raceTwoInstances(a, b)
            }
        }
    }

    /// The same on PostgreSQL and Redis: two servers, each with its own connections.
    @Test(.enabled(if: StoreKind.available.contains(.postgresRedis)))
    func twoInstancesSharePostgresAndRedis() async throws {
        let clock = StoreKind.postgresRedis.clock  // one shared offset: both serve the same sales
        try await withServer(environment: ["USER_LIMIT": "3"], kind: .postgresRedis, clock: clock) { a in
            try await withServer(environment: ["USER_LIMIT": "3"], kind: .postgresRedis, clock: clock) { b in
                #expect(a.port != b.port)
                try await raceTwoInstances(a, b)
            }
        }
    }

    /// The hot store loses everything while the server runs: the next read rebuilds it from
    /// the durable store, purchases and live holds included.
    @Test func hotStoreLoss() async throws {
        let memory = InMemoryStores(clock: StoreKind.memory.clock)
        let wired = WiredStores(stores: memory.stores, durable: false, mode: "in-memory (test)", close: {})
        try await withServer(stores: wired) { server in
            let sold = try #require(try await server.checkout("olga", 1).string("code"))
            #expect(try await server.purchase(sold).status == 200)
            let held = try #require(try await server.checkout("olga", 2).string("code"))
            memory.loseHotState()
            let summary = try await server.get("/sale")
            #expect(summary.status == 200, "\(summary)")
            let items = try #require(summary.json["items"] as? [String: Any])
            #expect(items["sold"] as? Int == 1 && items["held"] as? Int == 1)
            #expect(try await server.checkout("pete", 2).errorCode == "item_held")
            #expect(try await server.purchase(held).status == 200)
            memory.loseHotState()
            #expect(try await server.checkout("pete", 1).errorCode == "item_sold")
        }
    }

    @Test func gracefulShutdownFinishesInFlightRequests() async throws {
        let server = try await RunningServer.start()
        async let replies = withThrowingTaskGroup(of: HTTPReply.self) { group in
            for user in 0..<8 { group.addTask { try await server.checkout("late\(user)", user + 1) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        try await Task.sleep(for: .milliseconds(5))
        try await server.stop()
        // Requests either completed normally or were never accepted; none got a 5xx.
        if let done = try? await replies {
            #expect(done.allSatisfy { $0.status == 200 })
        }
    }
}

/// The race used on every shared store: 8 items, 6 users per item split over two instances,
/// then one user trying 6 items at once on both instances with a limit of 3.
func raceTwoInstances(_ a: RunningServer, _ b: RunningServer) async throws {
    let replies = try await withThrowingTaskGroup(of: (Int, HTTPReply).self) { group in
        for item in 1...8 {
            for user in 0..<6 {
                let server = user % 2 == 0 ? a : b
                group.addTask { (item, try await server.checkout("r\(item)-\(user)", item)) }
            }
        }
        return try await group.reduce(into: []) { $0.append($1) }
    }
    for item in 1...8 {
        let forItem = replies.filter { $0.0 == item }.map(\.1)
        #expect(forItem.filter { $0.status == 200 }.count == 1, "item \(item): \(forItem)")
        #expect(forItem.allSatisfy { $0.status == 200 || $0.errorCode == "item_held" })
    }
    // Every winner can buy, on either instance, exactly once.
    for (index, reply) in replies.filter({ $0.1.status == 200 }).enumerated() {
        let code = try #require(reply.1.string("code"))
        let buyer = index % 2 == 0 ? b : a
        #expect(try await buyer.purchase(code).status == 200)
        #expect(try await (index % 2 == 0 ? a : b).purchase(code).status == 200)
    }
    let greedy = try await withThrowingTaskGroup(of: HTTPReply.self) { group in
        for item in 11...16 { group.addTask { try await (item % 2 == 0 ? a : b).checkout("greedy", item) } }
        return try await group.reduce(into: []) { $0.append($1) }
    }
    #expect(greedy.filter { $0.status == 200 }.count == 3, "\(greedy)")
    #expect(greedy.allSatisfy { $0.status == 200 || $0.errorCode == "user_limit_reached" })
}

@Suite struct ConfigurationTests {
    @Test func defaults() throws {
        let config = try ServerConfiguration.resolve(flags: [:], environment: [:])
        #expect(config.port == 8032 && config.host == "0.0.0.0")
        #expect(config.rules == SaleRules())
        #expect(config.databaseURL == nil && config.logLevel == .info)
    }

    @Test func environmentAndFlags() throws {
        let env = [
            "PORT": "9000", "SALE_ITEMS": "50", "SALE_LENGTH": "120", "USER_LIMIT": "2", "HOLD_TTL": "5", "CATALOG_SEED": "99",
            "LOG_LEVEL": "DEBUG", "CLOCK_SKEW_ALLOWANCE_MS": "250", "DATABASE_URL": "", "PG_CONNECTIONS": "3",
            "REDIS_CONNECTIONS": "5",
        ]
        let config = try ServerConfiguration.resolve(flags: ["PORT": "9001", "USER_LIMIT": "4"], environment: env)
        #expect(config.port == 9001)  // the flag wins
        #expect(config.rules.userLimit == 4)
        #expect(config.rules.itemsPerSale == 50 && config.rules.saleLength == .seconds(120) && config.rules.holdTTL == .seconds(5))
        #expect(config.rules.catalogSeed == 99 && config.rules.clockSkewAllowance == .milliseconds(250))
        #expect(config.logLevel == .debug)
        #expect(config.postgresConnections == 3 && config.redisConnections == 5)
        #expect(config.databaseURL == nil)  // empty counts as unset
    }

    @Test(arguments: [
        ("PORT", "http"), ("PORT", "70000"), ("SALE_ITEMS", "0"), ("SALE_ITEMS", "ten"), ("SALE_LENGTH", "0"),
        ("SALE_LENGTH", "1.5"), ("USER_LIMIT", "-1"), ("HOLD_TTL", "0"), ("CATALOG_SEED", "-3"), ("LOG_LEVEL", "loud"),
        ("CLOCK_SKEW_ALLOWANCE_MS", "-1"), ("REDIS_URL", "redis://localhost"), ("PG_CONNECTIONS", "0"),
        ("REDIS_CONNECTIONS", "65"),
    ])
    func badValues(name: String, value: String) throws {
        #expect(throws: ConfigurationError.self) { try ServerConfiguration.resolve(flags: [:], environment: [name: value]) }
        do {
            _ = try ServerConfiguration.resolve(flags: [:], environment: [name: value])
        } catch {
            #expect(error.message.contains(name), "\(error.message)")
        }
    }

    /// The binary refuses a bad value, and stores it cannot reach, with a clear message and a
    /// non-zero exit (it never falls back to memory).
    @Test func binaryRefusesBadConfiguration() throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sale-server")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else { return }
        for (env, expected) in [
            (["SALE_ITEMS": "lots"], "SALE_ITEMS must be an integer"),
            (["HOLD_TTL": "0"], "HOLD_TTL must be an integer"),
            (["DATABASE_URL": "postgresql://postgres@127.0.0.1:1/postgres"], "set both"),
            (
                ["DATABASE_URL": "postgresql://postgres@127.0.0.1:1/postgres", "REDIS_URL": "redis://127.0.0.1:1"],
                "PostgreSQL (DATABASE_URL): could not apply the migrations"
            ),
        ] {
            let process = Process()
            process.executableURL = binary
            process.environment = env
            process.arguments = ["--port", "0"]
            let stderr = Pipe()
            process.standardError = stderr
            process.standardOutput = Pipe()
            try process.run()
            process.waitUntilExit()
            let message = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(process.terminationStatus != 0)
            #expect(message.contains(expected), "\(message)")
        }
    }
}

/// Stores that can be switched to fail every call, like a Redis or PostgreSQL that went away.
final class SwitchableStores: StorePort {
    let base = InMemoryStores(clock: StoreKind.memory.clock)
    let hotDown = Mutex(false)
    let durableDown = Mutex(false)

    var wired: WiredStores { WiredStores(stores: Stores(hot: self, durable: self), durable: false, mode: "switchable (test)", close: {}) }

    func execute(_ call: StoreCall, then complete: @escaping StoreCompletion) {
        if call.isHot ? hotDown.withLock({ $0 }) : durableDown.withLock({ $0 }) { return complete(.failed(.unavailable)) }
        base.execute(call, then: complete)
    }
}

@Suite struct StoreFailureTests {
    /// A store that does not answer: `503 store_unavailable` (never a 500, never a promise),
    /// counted in the metrics, shown by `/health`; service resumes when it comes back.
    @Test func unavailableStores() async throws {
        let stores = SwitchableStores()
        try await withServer(stores: stores.wired) { server in
            let code = try #require(try await server.checkout("quinn", 1).string("code"))

            stores.hotDown.withLock { $0 = true }
            for reply in [try await server.checkout("quinn", 2), try await server.purchase(code), try await server.get("/sale")] {
                #expect(reply.status == 503 && reply.errorCode == "store_unavailable", "\(reply)")
            }
            let sale = try await server.get("/users/quinn/purchases")
            #expect(sale.status == 200)  // the durable store still answers
            let health = try await server.get("/health")
            #expect(health.status == 503 && health.errorCode == "store_unavailable", "\(health)")
            #expect((health.json["stores"] as? [String: String])?["hot"] == "unavailable")
            let metrics = try await server.get("/metrics").text
            #expect(metrics.contains(#"sale_store_errors_total{store="hot",operation="read",kind="unavailable"}"#), "\(metrics)")
            #expect(metrics.contains(#"status="503",outcome="store_unavailable""#))
            stores.hotDown.withLock { $0 = false }

            stores.durableDown.withLock { $0 = true }
            // The hold is decided in the hot store but never acknowledged without its durable record.
            let undurable = try await server.checkout("quinn", 3)
            #expect(undurable.status == 503 && undurable.errorCode == "store_unavailable", "\(undurable)")
            #expect(try await server.get("/users/quinn/purchases").errorCode == "store_unavailable")
            #expect(try await server.get("/health").status == 503)
            stores.durableDown.withLock { $0 = false }

            #expect(try await server.purchase(code).status == 200)
            #expect(try await server.get("/health").status == 200)
        }
    }
}
