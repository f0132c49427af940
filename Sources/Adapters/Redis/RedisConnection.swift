import AdapterSupport
import CHiredis
import Engine
import Foundation

/// A Redis reply, copied out of hiredis.
public enum RedisValue: Hashable, Sendable {
    case string(String)
    case integer(Int64)
    case array([RedisValue])
    case null
    case status(String)
    case error(String)
}

/// A Lua script, loaded with SCRIPT LOAD on every (re)connection and run with EVALSHA.
struct RedisScript: Sendable, Hashable {
    let name: String
    let source: String
}

enum RedisRequest: Sendable {
    case command([String])
    case script(RedisScript, keys: [String], args: [String])
}

/// Where Redis is: `redis://host:port[/db]`.
public struct RedisEndpoint: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var database: Int

    public init(host: String = "127.0.0.1", port: Int = 6379, database: Int = 0) {
        self.host = host
        self.port = port
        self.database = database
    }

    /// Parses `redis://host[:port][/db]`; nil when malformed.
    public static func parse(_ url: String) -> RedisEndpoint? {
        guard url.hasPrefix("redis://") else { return nil }
        var rest = Substring(url.dropFirst("redis://".count))
        var endpoint = RedisEndpoint()
        if let slash = rest.firstIndex(of: "/") {
            let db = rest[rest.index(after: slash)...]
            if !db.isEmpty {
                guard let value = Int(db), value >= 0 else { return nil }
                endpoint.database = value
            }
            rest = rest[..<slash]
        }
        if let at = rest.lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }  // no auth support: ignored
        if let colon = rest.lastIndex(of: ":") {
            guard let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else { return nil }
            endpoint.port = port
            rest = rest[..<colon]
        }
        if !rest.isEmpty { endpoint.host = String(rest) }
        return endpoint
    }
}

/// One hiredis connection, confined to its worker thread. Sends a whole batch with
/// `redisAppendCommandArgv` × n, then reads `redisGetReply` × n: one round trip.
///
/// On every (re)connection it learns the server's `run_id` (new at every Redis restart, and
/// different on a promoted replica) and passes it to every script as `ARGV[1]`: the scripts
/// serve only contents installed on that very server (see `LuaScripts`). It also refuses a
/// Redis that may evict keys (`maxmemory-policy` other than `noeviction`): an evicted record
/// would silently free a held item or forget a user's holds.
final class RedisDriver: ConnectionDriver {
    typealias Request = RedisRequest
    typealias Reply = RedisValue

    private let endpoint: RedisEndpoint
    private let connectTimeout: Duration
    private let scripts: [RedisScript]
    private var context: UnsafeMutablePointer<redisContext>?
    private var shas: [RedisScript: String] = [:]
    /// The connected server's `run_id`.
    private var serverID = ""
    private var loggedDown = false

    init(endpoint: RedisEndpoint, connectTimeout: Duration, scripts: [RedisScript]) {
        self.endpoint = endpoint
        self.connectTimeout = connectTimeout
        self.scripts = scripts
    }

    deinit { close() }

    func close() {
        if let context { redisFree(context) }
        context = nil
    }

    func execute(_ batch: [RedisRequest], deadline: ContinuousClock.Instant) -> [Result<RedisValue, StoreFailure>] {
        do throws(ConnectError) {
            try ensureConnected(deadline: deadline)
            if loggedDown {
                adapterLog("redis: connected again")
                loggedDown = false
            }
        } catch {
            if !loggedDown {
                adapterLog("redis: cannot connect to \(endpoint.host):\(endpoint.port): \(error.message)")
                loggedDown = true
            }
            return batch.map { _ in .failure(.unavailable) }
        }
        guard setTimeout(until: deadline) else {
            close()
            return batch.map { _ in .failure(.timeout) }
        }
        let (requests, spans) = CommitBatching.fold(batch)
        var results = exchange(requests.map(argv))
        // A script the server forgot (SCRIPT FLUSH): run it with EVAL, which also caches it again.
        for (index, request) in requests.enumerated() {
            guard case .success(.error(let message)) = results[index], message.hasPrefix("NOSCRIPT"),
                case .script(let script, let keys, let args) = request
            else { continue }
            results[index] = exchange([["EVAL", script.source, String(keys.count)] + keys + [serverID] + args])[0]
        }
        return CommitBatching.unfold(results, spans: spans)
    }

    private func argv(_ request: RedisRequest) -> [String] {
        switch request {
        case .command(let argv): argv
        case .script(let script, let keys, let args):
            ["EVALSHA", shas[script] ?? "unloaded", String(keys.count)] + keys + [serverID] + args
        }
    }

    /// Appends every command, then reads every reply. After an I/O error the connection is
    /// dropped and the unanswered commands answer `.timeout` (they may have run).
    private func exchange(_ commands: [[String]]) -> [Result<RedisValue, StoreFailure>] {
        guard let context else { return commands.map { _ in .failure(.unavailable) } }
        for command in commands {
            let appended = withArgv(command) { argc, argv, lengths in redisAppendCommandArgv(context, argc, argv, lengths) }
            guard appended == REDIS_OK else {
                adapterLog("redis: append failed: \(errorString())")
                close()
                return commands.map { _ in .failure(.unavailable) }  // nothing was sent yet
            }
        }
        var results: [Result<RedisValue, StoreFailure>] = []
        results.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
                adapterLog("redis: connection lost: \(errorString())")
                close()
                while results.count < commands.count { results.append(.failure(.timeout)) }
                return results
            }
            results.append(.success(Self.convert(raw.assumingMemoryBound(to: redisReply.self))))
            freeReplyObject(raw)
        }
        return results
    }

    struct ConnectError: Error {
        let message: String
    }

    private func ensureConnected(deadline: ContinuousClock.Instant) throws(ConnectError) {
        if let context, context.pointee.err == 0 { return }
        close()
        guard let c = redisConnectWithTimeout(endpoint.host, Int32(endpoint.port), Self.timeval(connectTimeout)) else {
            throw ConnectError(message: "out of memory")
        }
        context = c
        guard c.pointee.err == 0 else {
            let message = errorString()
            close()
            throw ConnectError(message: message)
        }
        guard setTimeout(until: deadline) else {
            close()
            throw ConnectError(message: "cannot set timeouts")
        }
        var setup: [[String]] = []
        if endpoint.database != 0 { setup.append(["SELECT", String(endpoint.database)]) }
        setup += scripts.map { ["SCRIPT", "LOAD", $0.source] }
        setup.append(["INFO", "server"])
        setup.append(["CONFIG", "GET", "maxmemory-policy"])
        var replies = exchange(setup)
        let policyReply = replies.popLast()
        let infoReply = replies.popLast()
        let loads = replies.suffix(scripts.count)
        let ok = replies.allSatisfy { reply in
            guard case .success(let value) = reply else { return false }
            if case .error = value { return false }
            return true
        }
        guard context != nil, ok else {
            close()
            throw ConnectError(message: "setup failed: \(replies)")
        }
        guard case .success(.string(let info))? = infoReply, let runID = Self.runID(fromInfo: info) else {
            close()
            throw ConnectError(message: "INFO server gave no run_id: \(String(describing: infoReply))")
        }
        if case .success(.array(let pair))? = policyReply, pair.count == 2, case .string(let policy) = pair[1], policy != "noeviction" {
            close()
            throw ConnectError(message: "maxmemory-policy is \(policy); this service needs noeviction (an evicted key would free a held item)")
        }
        serverID = runID
        shas = [:]
        for (script, reply) in zip(scripts, loads) {
            if case .success(.string(let sha)) = reply { shas[script] = sha }
        }
    }

    /// The `run_id:` line of an `INFO server` reply.
    static func runID(fromInfo info: String) -> String? {
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("run_id:") {  // "\r\n" is one Character
            let id = line.dropFirst("run_id:".count)
            return id.isEmpty ? nil : String(id)
        }
        return nil
    }

    private func setTimeout(until deadline: ContinuousClock.Instant) -> Bool {
        guard let context else { return false }
        let left = ContinuousClock.now.duration(to: deadline)
        guard left > .zero else { return false }
        return redisSetTimeout(context, Self.timeval(left)) == REDIS_OK
    }

    private func errorString() -> String {
        guard let context else { return "no connection" }
        let errstr = context.pointee.errstr
        let text = withUnsafeBytes(of: errstr) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        return "\(text) (err \(context.pointee.err))"
    }

    static func timeval(_ duration: Duration) -> Foundation.timeval {
        let micros = max(1000, duration.wholeMicroseconds)
        return Foundation.timeval(tv_sec: Int(micros / 1_000_000), tv_usec: Int(micros % 1_000_000))
    }

    static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING: return .string(text(r.str, r.len))
        case REDIS_REPLY_STATUS: return .status(text(r.str, r.len))
        case REDIS_REPLY_ERROR: return .error(text(r.str, r.len))
        case REDIS_REPLY_INTEGER: return .integer(r.integer)
        case REDIS_REPLY_NIL: return .null
        case REDIS_REPLY_ARRAY:
            var values: [RedisValue] = []
            values.reserveCapacity(r.elements)
            for index in 0..<r.elements {
                if let element = r.element?[index] { values.append(convert(element)) } else { values.append(.null) }
            }
            return .array(values)
        default: return .error("unknown reply type \(r.type)")
        }
    }

    static func text(_ pointer: UnsafeMutablePointer<CChar>?, _ length: Int) -> String {
        guard let pointer else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
    }
}

/// Calls `body` with hiredis's argv form (pointers and lengths) of `arguments`: every argument's
/// bytes in one buffer (lengths are explicit, so an argument may hold any byte), one allocation
/// for all of them instead of one per argument.
func withArgv<R>(_ arguments: [String], _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R) -> R {
    var lengths: [Int] = []
    lengths.reserveCapacity(arguments.count + 1)
    var bytes: [UInt8] = []
    for argument in arguments {
        lengths.append(argument.utf8.count)
        bytes.append(contentsOf: argument.utf8)
    }
    // A sentinel each, so no array is ever empty and every buffer below has an address.
    lengths.append(0)
    bytes.append(0)
    var pointers: [UnsafePointer<CChar>?] = []
    pointers.reserveCapacity(lengths.count)
    return bytes.withUnsafeBufferPointer { buffer in
        guard let start = buffer.baseAddress else { preconditionFailure("a non-empty array has an address") }
        var next = UnsafeRawPointer(start).assumingMemoryBound(to: CChar.self)
        for length in lengths {
            pointers.append(next)
            next += length
        }
        return pointers.withUnsafeMutableBufferPointer { p in
            lengths.withUnsafeBufferPointer { l in
                guard let argv = p.baseAddress, let argvLengths = l.baseAddress else {
                    preconditionFailure("non-empty arrays have addresses")
                }
                return body(Int32(arguments.count), argv, argvLengths)
            }
        }
    }
}
