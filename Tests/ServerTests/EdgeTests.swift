import Engine
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import Server

/// The HTTP edges of issue 14, over a raw socket: request ids, parameters and paths checked
/// alike on every route.
@Suite struct EdgeTests {
    /// Ids are 128 random bits: distinct, fixed-length, and with no order a client could count.
    @Test func requestIDsAreRandom() async throws {
        try await withServer { server in
            var ids: [String] = []
            for _ in 0..<20 {
                let reply = try await server.get("/health")
                ids.append(try #require(reply.header("x-request-id")))
            }
            #expect(Set(ids).count == ids.count)
            #expect(ids.allSatisfy { $0.count == 22 && Base64URL.decode($0)?.count == 16 }, "\(ids)")
            // A counter, even from a random start, would leave consecutive ids a small step apart.
            let numbers = ids.map { id in (Base64URL.decode(id) ?? []).suffix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
            let steps = zip(numbers, numbers.dropFirst()).map { $1 &- $0 }
            #expect(steps.filter { $0 < 1_000_000 }.isEmpty, "ids look sequential: \(ids)")
            // Errors carry one too.
            #expect(try await server.get("/nope").header("x-request-id")?.count == 22)
        }
    }

    /// Unknown and repeated parameters are refused on the GET routes too, HEAD included.
    @Test func everyRouteChecksItsParameters() async throws {
        try await withServer { server in
            let cases: [(String, String)] = [
                ("/sale?x=1", "unknown_parameter"), ("/health?verbose", "unknown_parameter"), ("/metrics?name=a", "unknown_parameter"),
                ("/sales/1/items/1?foo=1", "unknown_parameter"), ("/sales/1/items/1/image.svg?v=2", "unknown_parameter"),
                ("/users/a/purchases?sale=1&sale=2", "duplicate_parameter"), ("/users/a/purchases?limit=5", "unknown_parameter"),
                ("/sale?%zz", "malformed_query"), ("/sale?" + String(repeating: "x", count: 3_000), "query_too_long"),
            ]
            for (target, code) in cases {
                let reply = try await server.get(target)
                #expect(reply.status == 400 && reply.errorCode == code, "\(target) → \(reply)")
                #expect(try await server.request("HEAD", target).status == 400, "HEAD \(target)")
            }
            // Without parameters they still answer.
            for target in ["/sale", "/health", "/metrics", "/sales/1/items/1", "/sales/1/items/1/image.svg", "/users/a/purchases?sale=1"] {
                #expect(try await server.get(target).status == 200, "\(target)")
            }
        }
    }

    /// A percent-escape in a path segment is decoded as in a query, then validated.
    @Test func pathSegmentsAreDecodedLikeQueries() async throws {
        try await withServer { server in
            let code = try #require(try await server.checkout("alice", 42).string("code"))
            let bought = try await server.purchase(code)
            let sale = try #require(bought.int("sale_id"))
            let mine = try await server.get("/users/al%69ce/purchases")
            #expect(mine.status == 200 && mine.string("user_id") == "alice" && (mine.json["purchases"] as? [Any])?.count == 1, "\(mine)")
            let item = try await server.get("/sales/\(sale)/items/%34%32")
            #expect(item.status == 200 && item.int("item_id") == 42 && item.string("status") == "sold", "\(item)")
            let cases: [(String, String)] = [
                ("/users/a%zz/purchases", "malformed_path"), ("/users/%FF/purchases", "malformed_path"),
                ("/users/%C3%A9/purchases", "invalid_user_id"), ("/users/a%2Fb/purchases", "invalid_user_id"),
                ("/users/a+b/purchases", "invalid_user_id"),  // '+' is a plus in a path, and not allowed in a user id
                ("/sales/1%/items/1", "malformed_path"), ("/sales/%31/items/0", "invalid_item_id"),
            ]
            for (target, code) in cases {
                let reply = try await server.get(target)
                #expect(reply.status == 400 && reply.errorCode == code, "\(target) → \(reply)")
            }
        }
    }
}

/// A raw connection driven by hand, on a thread of its own (blocking calls must not run on the
/// server's executor).
final class RawConnection {
    let fd: Int32

    init(port: Int) throws { fd = try RawHTTP.connectLoopback(port: port) }
    deinit { close(fd) }

    func send(_ text: String) { send(Array(text.utf8)) }
    func send(_ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }

    /// Reads until `done` says the bytes so far are enough, the server closes, or `seconds` pass.
    /// - Returns: the bytes, and whether the server closed the connection.
    func read(seconds: Int = 5, until done: ([UInt8]) -> Bool = { _ in false }) -> (bytes: [UInt8], closed: Bool) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while !done(received) {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return (received, true) }
            if n < 0 { return (received, false) }  // timeout
            received += buffer[0..<n]
        }
        return (received, false)
    }

    /// True once `bytes` hold `count` whole responses (framed by Content-Length).
    static func hasResponses(_ bytes: [UInt8], _ count: Int) -> Bool {
        var rest = bytes[...]
        for _ in 0..<count {
            guard let end = rest.firstRange(of: Array("\r\n\r\n".utf8)) else { return false }
            let head = String(decoding: rest[..<end.lowerBound], as: UTF8.self).lowercased()
            let length = head.components(separatedBy: "\r\n").first { $0.hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
            guard rest[end.upperBound...].count >= length else { return false }
            rest = rest[(end.upperBound + length)...]
        }
        return true
    }
}

/// Runs blocking socket work on a thread of its own.
func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}

/// Connection handling, over a raw socket: closing, `Host`, `Expect`, oversized bodies however
/// framed, and the decoder's own rejections in the error shape.
@Suite struct ConnectionEdgeTests {
    @Test func http10IsAnsweredAndClosed() async throws {
        try await withServer { server in
            let port = server.port
            let (bytes, closed, seconds) = try await onThread { () -> ([UInt8], Bool, Double) in
                let connection = try RawConnection(port: port)
                let start = Date()
                connection.send("GET /health HTTP/1.0\r\n\r\n")
                let (bytes, closed) = connection.read(seconds: 10)
                return (bytes, closed, Date().timeIntervalSince(start))
            }
            let reply = try RawHTTP.parse(bytes)
            #expect(reply.status == 200 && reply.header("connection") == "close", "\(reply)")
            #expect(String(decoding: bytes.prefix(8), as: UTF8.self) == "HTTP/1.0")
            #expect(closed && seconds < 3, "closed: \(closed) after \(seconds) s")
        }
    }

    @Test func connectionCloseIsHonouredAndEchoed() async throws {
        try await withServer { server in
            let port = server.port
            for value in ["close", "Close", "keep-alive, close"] {
                let (bytes, closed) = try await onThread { () -> ([UInt8], Bool) in
                    let connection = try RawConnection(port: port)
                    connection.send("GET /health HTTP/1.1\r\nHost: x\r\nConnection: \(value)\r\n\r\n")
                    return connection.read(seconds: 10)
                }
                let reply = try RawHTTP.parse(bytes)
                #expect(reply.status == 200 && reply.header("connection") == "close" && closed, "\(value): \(reply), closed \(closed)")
            }
        }
    }

    /// HTTP/1.1 stays open between requests (two on one connection), then closes when asked.
    @Test func keepAliveServesSeveralRequests() async throws {
        try await withServer { server in
            let port = server.port
            let (first, second, closed) = try await onThread { () -> ([UInt8], [UInt8], Bool) in
                let connection = try RawConnection(port: port)
                connection.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                let (first, closedEarly) = connection.read(seconds: 5) { RawConnection.hasResponses($0, 1) }
                if closedEarly { return (first, [], true) }
                connection.send("GET /sale HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                let (second, closed) = connection.read(seconds: 5)
                return (first, second, closed)
            }
            #expect(try RawHTTP.parse(first).status == 200)
            #expect(try RawHTTP.parse(first).header("connection") == nil)
            #expect(try RawHTTP.parse(second).status == 200 && closed)
        }
    }

    @Test func http11NeedsExactlyOneHost() async throws {
        try await withServer { server in
            let port = server.port
            for head in ["GET /health HTTP/1.1\r\n\r\n", "GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"] {
                let (bytes, closed) = try await onThread { () -> ([UInt8], Bool) in
                    let connection = try RawConnection(port: port)
                    connection.send(head)
                    return connection.read(seconds: 10)
                }
                let reply = try RawHTTP.parse(bytes)
                #expect(reply.status == 400 && reply.errorCode == "missing_host" && closed, "\(reply)")
                #expect(reply.header("x-request-id")?.count == 22)
            }
            // HTTP/1.0 does not need one.
            let old = try await onThread { () -> [UInt8] in
                let connection = try RawConnection(port: port)
                connection.send("GET /health HTTP/1.0\r\n\r\n")
                return connection.read(seconds: 10).bytes
            }
            #expect(try RawHTTP.parse(old).status == 200)
            let metrics = try await server.get("/metrics").text
            #expect(metrics.contains(#"http_requests_total{route="unmatched",method="GET",status="400",outcome="missing_host"} 2"#), "\(metrics)")
        }
    }

    /// `Expect: 100-continue` is answered before the body is sent; other expectations are `417`.
    @Test func expectContinue() async throws {
        try await withServer { server in
            let port = server.port
            let (interim, final) = try await onThread { () -> ([UInt8], [UInt8]) in
                let connection = try RawConnection(port: port)
                connection.send("POST /checkout?user_id=ed&id=5 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
                let (interim, _) = connection.read(seconds: 2) { $0.firstRange(of: Array("\r\n\r\n".utf8)) != nil }
                connection.send("hello")
                let (final, _) = connection.read(seconds: 5) { RawConnection.hasResponses($0, 1) }
                return (interim, final)
            }
            #expect(String(decoding: interim, as: UTF8.self).hasPrefix("HTTP/1.1 100 Continue\r\n"), "\(String(decoding: interim, as: UTF8.self))")
            #expect(try RawHTTP.parse(final).status == 200, "\(String(decoding: final, as: UTF8.self))")
            let refused = try await onThread { () -> [UInt8] in
                let connection = try RawConnection(port: port)
                connection.send("POST /checkout?user_id=ed&id=6 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 200-ok\r\n\r\n")
                return connection.read(seconds: 5).bytes
            }
            let reply = try RawHTTP.parse(refused)
            #expect(reply.status == 417 && reply.errorCode == "expectation_failed", "\(reply)")
            // A body announced over the limit gets no 100, but its 413 at once.
            let big = try await onThread { () -> [UInt8] in
                let connection = try RawConnection(port: port)
                connection.send("POST /checkout?user_id=ed&id=7 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n")
                return connection.read(seconds: 5).bytes
            }
            let tooBig = try RawHTTP.parse(big)
            #expect(tooBig.status == 413 && tooBig.errorCode == "request_too_large", "\(tooBig)")
        }
    }

    /// Over 64 KiB is `413` whether announced by `Content-Length` or sent chunked.
    @Test func oversizedBodiesHoweverFramed() async throws {
        try await withServer { server in
            let port = server.port
            let chunk = String(repeating: "z", count: 16 * 1024)
            let chunked = (0..<6).map { _ in String(chunk.count, radix: 16) + "\r\n" + chunk + "\r\n" }.joined() + "0\r\n\r\n"
            let (bytes, closed) = try await onThread { () -> ([UInt8], Bool) in
                let connection = try RawConnection(port: port)
                connection.send("POST /checkout?user_id=fay&id=8 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
                return connection.read(seconds: 10)
            }
            let reply = try RawHTTP.parse(bytes)
            #expect(reply.status == 413 && reply.errorCode == "request_too_large" && closed, "\(reply)")
            #expect(reply.header("connection") == "close")
            // Nothing was held.
            #expect(try await server.checkout("gus", 8).status == 200)
            // A small chunked body is fine (and ignored).
            let small = try await onThread { () -> [UInt8] in
                let connection = try RawConnection(port: port)
                connection.send(
                    "POST /checkout?user_id=fay&id=9 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                        + "5\r\nhello\r\n0\r\n\r\n")
                return connection.read(seconds: 10).bytes
            }
            #expect(try RawHTTP.parse(small).status == 200)
        }
    }

    /// What the HTTP decoder refuses gets the error shape, a request id and a count too.
    @Test func decoderRejectionsAreAnsweredInTheErrorShape() async throws {
        try await withServer { server in
            let port = server.port
            let manyHeaders = (0..<120).map { "X-H\($0): v\r\n" }.joined()
            let heads: [[UInt8]] = [
                Array("FOO /health HTTP/1.1\r\nHost: x\r\n\r\n".utf8),
                Array("GET /he".utf8) + [0xC3, 0xA9] + Array("alth HTTP/1.1\r\nHost: x\r\n\r\n".utf8),
                Array("GET /health HTTP/1.1\r\nHost: x\r\n\(manyHeaders)\r\n".utf8),
                Array("GET /health HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n".utf8),
            ]
            for head in heads {
                let (bytes, closed) = try await onThread { () -> ([UInt8], Bool) in
                    let connection = try RawConnection(port: port)
                    connection.send(head)
                    return connection.read(seconds: 10)
                }
                let reply = try RawHTTP.parse(bytes)
                let shown = String(decoding: head.prefix(40), as: UTF8.self)
                #expect(reply.status == 400 && reply.errorCode == "bad_request" && closed, "\(shown) → \(reply)")
                #expect(reply.header("x-request-id")?.count == 22, "\(shown)")
            }
            let metrics = try await server.get("/metrics").text
            #expect(metrics.contains(#"http_requests_total{route="unmatched",method="other",status="400",outcome="bad_request"} 4"#), "\(metrics)")
        }
    }
}

/// Shutdown is bounded: a stalled upload cannot hold the process past `SHUTDOWN_GRACE`.
@Suite struct ShutdownTests {
    @Test func aStalledUploadCannotDelayShutdownPastTheGrace() async throws {
        let server = try await RunningServer.start(environment: ["SHUTDOWN_GRACE": "1"])
        let port = server.port
        // Headers and 2 of 10 declared body bytes, then nothing.
        let stalled = Task {
            try await onThread { () -> [UInt8] in
                let connection = try RawConnection(port: port)
                connection.send("POST /checkout?user_id=slow&id=3 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
                return connection.read(seconds: 20).bytes
            }
        }
        try await Task.sleep(for: .milliseconds(300))  // the request is in the handler, waiting for its body
        let start = ContinuousClock.now
        try await server.stop()
        let took = ContinuousClock.now - start
        #expect(took < .seconds(4), "shutdown took \(took) with a 1 s grace")
        #expect(took >= .milliseconds(900), "the stalled request was cut before its grace: \(took)")
        // The stalled request was not acted on: whatever it got, it is not a hold.
        let answer = String(decoding: try await stalled.value, as: UTF8.self)
        #expect(!answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
    }

    @Test func shutdownGraceIsConfigurable() throws {
        #expect(try ServerConfiguration.resolve(flags: [:], environment: [:]).shutdownGrace == .seconds(10))
        #expect(try ServerConfiguration.resolve(flags: ["SHUTDOWN_GRACE": "3"], environment: [:]).shutdownGrace == .seconds(3))
        #expect(throws: ConfigurationError.self) { try ServerConfiguration.resolve(flags: [:], environment: ["SHUTDOWN_GRACE": "-1"]) }
    }
}
