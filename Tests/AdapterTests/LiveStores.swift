import AdapterSupport
import Adapters
import Engine
import Foundation
import PostgresAdapter
import RedisAdapter
import Testing

/// The real servers the live tests run against, from the environment `scripts/with-stores` sets.
/// Without them every live test is skipped with this reason.
enum LiveStores {
    static let databaseURL = ProcessInfo.processInfo.environment["TEST_DATABASE_URL"]
    static let redisURL = ProcessInfo.processInfo.environment["TEST_REDIS_URL"]
    static let pgRestart = ProcessInfo.processInfo.environment["TEST_PG_RESTART"]
    static let redisRestart = ProcessInfo.processInfo.environment["TEST_REDIS_RESTART"]

    static var available: Bool { databaseURL != nil && redisURL != nil }
    static let skipReason: Comment = "needs TEST_DATABASE_URL and TEST_REDIS_URL: run under scripts/with-stores"

    /// The migrations directory of this package.
    static var migrations: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("migrations").path
    }

    /// A fresh schema with the migrations applied; returns a connection URL that uses it.
    static func freshDatabase() throws -> String {
        let base = try #require(databaseURL)
        let schema = "t_\(UInt64.random(in: 0...UInt64.max) % 1_000_000_000_000)"
        try Migrator.execute("CREATE SCHEMA \(schema)", connectionString: base)
        let separator = base.contains("?") ? "&" : "?"
        let url = "\(base)\(separator)options=-csearch_path%3D\(schema)"
        try Migrator.apply(directory: migrations, connectionString: url)
        return url
    }

    /// A Redis store with its own key prefix, on a Redis emptied first.
    /// - Parameter clock: the store's clock; by default the tests' (`now()`), whose shift Redis's
    ///   own `TIME` would not follow.
    static func freshRedis(settings: PoolSettings = PoolSettings(), installChunk: Int = 2_000,
                           clock: @escaping @Sendable () -> Instant = { LiveStores.now() }) async throws -> RedisHotStore {
        let url = try #require(redisURL)
        let store = RedisHotStore(url: url, settings: settings,
                                  keyPrefix: "t\(UInt32.random(in: 0...UInt32.max))", installChunk: installChunk, clock: clock)
        _ = try await store.command(["FLUSHALL"])
        return store
    }

    /// Runs one of the restart scripts `with-stores` wrote, on a thread of its own (posix_spawn and
    /// waitpid: `Process.waitUntilExit` can hang when called from a concurrency thread).
    static func run(_ script: String) async throws {
        let status: Int32 = await withCheckedContinuation { continuation in
            let thread = Thread {
                var pid: pid_t = 0
                let argv: [UnsafeMutablePointer<CChar>?] = [strdup(script), nil]
                defer { for arg in argv { free(arg) } }
                guard posix_spawn(&pid, script, nil, nil, argv, environ) == 0 else {
                    continuation.resume(returning: -1)
                    return
                }
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                continuation.resume(returning: status)
            }
            thread.start()
        }
        #expect(status == 0, "\(script) failed with status \(status)")
    }

    /// The tests' clock: the wall clock shifted, once per run, to one minute after the start of
    /// a sale of the default length (an hour), so a test that takes seconds (a Redis restart)
    /// never straddles a rollover by the chance of when CI ran it.
    static func now() -> Instant { wallClock() + hourAlignment }

    private static let hourAlignment: TimeSpan = {
        let now = wallClock()
        let hourly = SaleCalendar(saleLength: SaleRules().saleLength)
        return (hourly.start(of: hourly.sale(at: now)) + .seconds(60)) - now
    }()

    private static func wallClock() -> Instant {
        Instant(microseconds: Int64((Date().timeIntervalSince1970 * 1_000_000).rounded()))
    }
}

/// Every test that touches the real servers: one serialized suite, because FLUSHALL and
/// restarts affect every connection.
@Suite(.serialized, .enabled(if: LiveStores.available, LiveStores.skipReason))
struct LiveStoreTests {}
