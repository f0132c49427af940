import Adapters
import Dispatch
import Engine
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing

@testable import Server

#if canImport(Glibc)
import Glibc
#endif

// MARK: - A controllable clock

// `TestClock` (Tests/Support): a clock tests move by hand.

// MARK: - Which stores

/// The stores a flow test runs on: always the in-memory ones; PostgreSQL and Redis too when
/// `TEST_DATABASE_URL` and `TEST_REDIS_URL` are set (e.g. by `scripts/with-stores`).
enum StoreKind: String, Sendable, CustomStringConvertible {
    case memory
    case postgresRedis

    static var available: [StoreKind] {
        let env = ProcessInfo.processInfo.environment
        let real = (env["TEST_DATABASE_URL"]?.isEmpty == false) && (env["TEST_REDIS_URL"]?.isEmpty == false)
        return real ? [.memory, .postgresRedis] : [.memory]
    }

    var description: String { rawValue }

    /// The configuration that selects these stores.
    var environment: [String: String] {
        switch self {
        case .memory: return [:]
        case .postgresRedis:
            let env = ProcessInfo.processInfo.environment
            return [
                "DATABASE_URL": env["TEST_DATABASE_URL"] ?? "", "REDIS_URL": env["TEST_REDIS_URL"] ?? "",
                "MIGRATIONS_DIR": OpenAPITests.root.appendingPathComponent("migrations").path,
            ]
        }
    }

    /// Shared stores outlive a test (and a test run): each test gets sales of its own by running
    /// its clock a random whole number of days ahead, so it never meets another test's items.
    /// Every kind's clock is also aligned (`hourAlignment`), so no test meets an hourly
    /// rollover it did not ask for.
    var offset: TimeSpan {
        switch self {
        case .memory: return Self.hourAlignment
        case .postgresRedis: return Self.hourAlignment + .seconds(86_400) * Int64.random(in: 1...20_000)
        }
    }

    /// A shift, fixed once per test run, that puts the tests' "now" one minute after the start
    /// of a sale of the default length (an hour). A test on the wall clock would otherwise fail
    /// whenever CI happened to run it across the top of an hour (a checkout in one sale, the next
    /// request in the next); a run of the server tests lasts about a minute, far less than the
    /// 59 minutes this leaves.
    static let hourAlignment: TimeSpan = {
        let now = WallClock.now()
        let hourly = SaleCalendar(saleLength: SaleRules().saleLength)
        return (hourly.start(of: hourly.sale(at: now)) + .seconds(60)) - now
    }()

    /// The wall clock, shifted by a fresh offset.
    var clock: @Sendable () -> Instant {
        let offset = self.offset
        return { WallClock.now() + offset }
    }

    /// Initializes the shared PostgreSQL and Redis once, before any test server starts: the
    /// schema, and the hot store's first generation. Servers starting together on an empty Redis
    /// would each rebuild it from the sales near their own (shifted) clocks and could replace
    /// each other's state; in production all instances share one clock, so that cannot happen.
    static let sharedStoresReady = Task<Void, any Error> {
        let config = try ServerConfiguration.resolve(flags: [:], environment: StoreKind.postgresRedis.environment)
        let wired = try await StoreWiring.connect(config, logger: RunningServer.quietLogger)
        if case .hotRead(.uninitialized) = await wired.stores.execute(.hotRead(HotRead(keys: []))) {
            _ = await RequestDriver(stores: wired.stores, rules: config.rules, clock: WallClock.now).rebuild()
        }
        await wired.close()
    }

    /// A clock the test moves by hand, starting at this kind's "now".
    func testClock() -> TestClock { TestClock(clock()) }
}

// MARK: - A server running in this process, on a free port

/// One `sale-server` application listening on 127.0.0.1 on a free port, inside a service group
/// like the real binary's, talked to over real HTTP.
final class RunningServer: Sendable {
    let port: Int
    let group: ServiceGroup
    let task: Task<Void, any Error>
    let api: SaleAPI
    /// Stores this server connected itself, closed when it stops.
    let ownStores: WiredStores?

    init(port: Int, group: ServiceGroup, task: Task<Void, any Error>, api: SaleAPI, wired: WiredStores?) {
        self.port = port
        self.group = group
        self.task = task
        self.api = api
        self.ownStores = wired
    }

    /// Keeps metadata (like a real handler) but prints only critical messages.
    static let quietLogger: Logger = {
        var logger = Logger(label: "server-tests") { label in StreamLogHandler.standardError(label: label) }
        logger.logLevel = .critical
        return logger
    }()

    /// - Parameters:
    ///   - environment: configuration as the binary would read it (e.g. `["SALE_ITEMS": "5"]`).
    ///   - kind: which stores to run on, through the server's own store wiring.
    ///   - stores: stores to run on instead (to share them between servers).
    ///   - clock: the engine's clock; by default the kind's (the wall clock, shifted for shared stores).
    static func start(
        environment: [String: String] = [:], kind: StoreKind = .memory, stores: WiredStores? = nil,
        clock: (@Sendable () -> Instant)? = nil
    ) async throws -> RunningServer {
        // The per-client limits are on by default in the binary; here they are off unless a test
        // sets them, because every other test sends all its requests from 127.0.0.1 (AbuseTests
        // run them with the defaults).
        let limitsOff = ["CLIENT_CHECKOUT_RATE": "0", "CLIENT_MAX_HOLDS": "0"]
        var config = try ServerConfiguration.resolve(
            flags: ["HOST": "127.0.0.1", "PORT": "0"],
            environment: limitsOff.merging(environment) { $1 }.merging(kind.environment) { $1 })
        config.reconcileInterval = .milliseconds(200)
        if kind == .postgresRedis { try await StoreKind.sharedStoresReady.value }
        let wired: WiredStores
        let clock = clock ?? kind.clock
        if let stores { wired = stores } else { wired = try await StoreWiring.connect(config, logger: quietLogger, hotStoreClock: clock) }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let (app, api) = SaleApplication.make(
            config: config, wired: wired, logger: quietLogger, clock: clock,
            onServerRunning: { port in continuation.yield(port) })
        let group = SaleApplication.serviceGroup(app: app, config: config, logger: quietLogger, signals: [], drain: api.drain)
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw TestFailure("server did not start") }
        return RunningServer(port: port, group: group, task: task, api: api, wired: stores == nil ? wired : nil)
    }

    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
        await ownStores?.close()
    }

    // MARK: Requests

    /// - Parameter from: the loopback address to connect from (any of 127.0.0.0/8), so a test can
    ///   be several clients; 127.0.0.1 by default.
    func request(
        _ method: String, _ target: String, headers: [(String, String)] = [], body: [UInt8] = [], from source: String? = nil
    ) async throws -> HTTPReply {
        try await RawHTTP.send(port: port, method: method, target: target, headers: headers, body: body, from: source)
    }

    func post(_ target: String) async throws -> HTTPReply { try await request("POST", target) }
    func get(_ target: String) async throws -> HTTPReply { try await request("GET", target) }

    func checkout(_ user: String, _ item: Int) async throws -> HTTPReply { try await post("/checkout?user_id=\(user)&id=\(item)") }
    func purchase(_ code: String) async throws -> HTTPReply { try await post("/purchase?code=\(code)") }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body` against a fresh server and always stops it.
func withServer(
    environment: [String: String] = [:], kind: StoreKind = .memory, stores: WiredStores? = nil,
    clock: (@Sendable () -> Instant)? = nil, _ body: (RunningServer) async throws -> Void
) async throws {
    let server = try await RunningServer.start(environment: environment, kind: kind, stores: stores, clock: clock)
    do {
        try await body(server)
    } catch {
        try? await server.stop()
        throw error
    }
    try await server.stop()
}

// MARK: - A minimal HTTP/1.1 client over a plain socket

/// An HTTP response as received on the wire.
struct HTTPReply: Sendable, CustomStringConvertible {
    let status: Int
    let headers: [(name: String, value: String)]
    let body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
    func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }

    /// The body as a JSON object.
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
    }

    /// `error.code` of an error body, nil when the body does not have the error shape.
    var errorCode: String? {
        guard let error = json["error"] as? [String: Any], let code = error["code"] as? String, error["message"] is String
        else { return nil }
        return code
    }

    func string(_ key: String) -> String? { json[key] as? String }
    func int(_ key: String) -> Int? { (json[key] as? NSNumber)?.intValue }

    var description: String { "\(status) \(text)" }
}

/// Sends exactly the bytes of a request (so tests can send what a well-behaved client would
/// refuse to) and reads the response until the server closes the connection.
enum RawHTTP {
    static func send(
        port: Int, method: String, target: String, headers: [(String, String)], body: [UInt8], from source: String? = nil
    ) async throws -> HTTPReply {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if !body.isEmpty || method == "POST" || method == "PUT" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        let bytes = Array(head.utf8) + body
        return try await withCheckedThrowingContinuation { continuation in
            // A thread of its own: blocking in Dispatch's pool would starve the server's tasks,
            // which share that pool with Swift concurrency on Linux.
            let thread = Thread { continuation.resume(with: Result { try exchange(port: port, bytes: bytes, from: source) }) }
            thread.start()
        }
    }

    static func exchange(port: Int, bytes: [UInt8], from source: String? = nil) throws -> HTTPReply {
        let fd = try connectLoopback(port: port, from: source)
        defer { close(fd) }
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }  // the server may answer and close before reading everything
            sent += n
        }
        let received = readUntilClosed(fd)
        return try parse(received)
    }

    /// A TCP connection to 127.0.0.1:`port` with a 15 s receive timeout, from `source` (a loopback
    /// address) when given.
    static func connectLoopback(port: Int, from source: String? = nil) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket failed") }
        var timeout = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if let source {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(source)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else {
                close(fd)
                throw TestFailure("bind to \(source) failed")
            }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw TestFailure("connect to port \(port) failed")
        }
        return fd
    }

    /// Everything the server sends until it closes (or the receive timeout).
    static func readUntilClosed(_ fd: Int32) -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received += buffer[0..<n]
        }
        return received
    }

    /// Sends `bytes`, closes the sending side (the request is cut off there) and reads whatever
    /// comes back until the server closes.
    static func sendTruncated(port: Int, bytes: [UInt8]) throws -> [UInt8] {
        let fd = try connectLoopback(port: port)
        defer { close(fd) }
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        shutdown(fd, Int32(SHUT_WR))
        let received = readUntilClosed(fd)
        return received
    }

    static func parse(_ bytes: [UInt8]) throws -> HTTPReply {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let end = bytes.firstRange(of: separator) else {
            throw TestFailure("no HTTP response (\(bytes.count) bytes: \(String(decoding: bytes.prefix(200), as: UTF8.self)))")
        }
        let lines = String(decoding: bytes[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw TestFailure("bad status line \(lines[0])") }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var body = Array(bytes[end.upperBound...])
        if headers.contains(where: { $0.name.lowercased() == "transfer-encoding" && $0.value.lowercased().contains("chunked") }) {
            body = dechunk(body)
        }
        return HTTPReply(status: status, headers: headers, body: body)
    }

    static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            guard let lineEnd = bytes[i...].firstRange(of: Array("\r\n".utf8)) else { break }
            let sizeText = String(decoding: bytes[i..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";")[0]
            guard let size = Int(sizeText, radix: 16), size > 0 else { break }
            let start = lineEnd.upperBound
            out += bytes[start..<min(start + size, bytes.count)]
            i = start + size + 2
        }
        return out
    }
}
