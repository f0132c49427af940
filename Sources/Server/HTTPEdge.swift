import Engine
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// The server's HTTP/1.1 connection: Hummingbird's own `HTTP1Channel` pipeline, with the one
/// handler that decides connection-level behaviour (`HTTPEdgeHandler`) placed where it can still
/// see the HTTP version and the raw head, before Hummingbird's conversion to version-less types.
struct SaleHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    let rejections: EdgeRejections
    let idleTimeout: Duration

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderFieldSize = ServerLimits.maxHeadBytes
            limits.maxHeaderListSize = ServerLimits.maxHeadBytes
            limits.maxHeaderFieldCount = ServerLimits.maxHeaderFields
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits)
            try channel.pipeline.syncOperations.addHandler(HTTPEdgeHandler(rejections: rejections))
            try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(idleTimeout: idleTimeout, logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}

/// Logs and counts the requests the connection handler answers itself (before any route), like
/// `ObservabilityMiddleware` does for the others: every rejection has an id, a line and a count.
final class EdgeRejections: Sendable {
    let metrics: ServerMetrics
    let logger: Logger

    init(metrics: ServerMetrics, logger: Logger) {
        self.metrics = metrics
        self.logger = logger
    }

    /// Records a rejection; returns the request id it was given.
    func record(_ error: APIError, method: String?, detail: String) -> String {
        let id = RequestIDs.random()
        let label = method.flatMap { ObservabilityMiddleware.knownMethods.contains($0) ? $0 : nil } ?? "other"
        metrics.request(route: "unmatched", method: label, status: error.status, outcome: error.code, nanoseconds: 0)
        logger.info(
            "request",
            metadata: [
                "hb.request.id": .string(id), "method": .string(method ?? "-"), "route": "unmatched",
                "status": .stringConvertible(error.status), "outcome": .string(error.code), "detail": .string(detail),
            ])
        return id
    }
}

/// Connection-level HTTP/1.1 rules, in one place (RFC 9112):
/// - a response is the last on its connection when its request was HTTP/1.0, or said
///   `Connection: close`, or the response itself says so (after a refused body); the response
///   then carries `Connection: close` and the connection is closed once it is written (its
///   input is drained for a moment first, so the client reads the answer rather than a reset);
/// - HTTP/1.1 requires exactly one `Host` (`400 missing_host`);
/// - `Expect: 100-continue` gets its interim `100 Continue` (any other expectation: `417`);
/// - a head the decoder cannot parse (bad method, raw bytes in the target, folded or too many
///   headers) is answered here in the error shape, with a request id, a log line and a count,
///   instead of the framework's bare `400`.
final class HTTPEdgeHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// One request received and not yet answered.
    struct Pending {
        let version: HTTPVersion
        let keepAlive: Bool
        /// Answered here instead of being passed on.
        var rejection: (error: APIError, id: String)?
    }

    let rejections: EdgeRejections
    var pending = CircularBuffer<Pending>()
    /// Nothing more is read: a rejection or a last response is due.
    var discarding = false
    /// The request being read is the connection's last: read nothing after its end.
    var readingLastRequest = false
    /// The response being written ends the connection.
    var closeAfterResponse = false
    var closed = false

    /// How long a closing connection keeps draining input before it is cut.
    static let linger: TimeAmount = .seconds(2)

    init(rejections: EdgeRejections) { self.rejections = rejections }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard !discarding else { return }
        guard case .head(let head) = part else {
            if case .end = part, readingLastRequest { discarding = true }
            context.fireChannelRead(data)
            return
        }
        let keepAlive = head.isKeepAlive && Self.isHTTP11(head.version)
        var request = Pending(version: head.version, keepAlive: keepAlive)
        if let (error, detail) = Self.check(head) {
            request.rejection = (error, rejections.record(error, method: head.method.rawValue, detail: detail))
            discarding = true
            pending.append(request)
            if pending.count == 1 { writeRejection(context: context) }
            return
        }
        if !keepAlive { readingLastRequest = true }  // its body is read, nothing after it
        pending.append(request)
        if pending.count == 1, Self.expectsContinue(head), Self.declaredLength(head) <= ServerLimits.maxBodyBytes {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        context.fireChannelRead(data)
    }

    /// The refusal of a head the routes must not see, if any, with a detail for the log.
    static func check(_ head: HTTPRequestHead) -> (APIError, String)? {
        if head.version.major != 1 { return (.badRequest, "HTTP version \(head.version)") }
        if isHTTP11(head.version) {
            let hosts = head.headers["host"]
            if hosts.count != 1 || hosts[0].isEmpty { return (.missingHost, "\(hosts.count) Host headers") }
        }
        let expectations = head.headers["expect"]
        if !expectations.isEmpty, isHTTP11(head.version), !expectsContinue(head) {
            return (.expectationFailed, "Expect: \(expectations.joined(separator: ", ").prefix(40))")
        }
        return nil
    }

    /// HTTP/1.1 or a later 1.x: persistent by default, `Host` required.
    static func isHTTP11(_ version: HTTPVersion) -> Bool { version.major == 1 && version.minor >= 1 }

    static func expectsContinue(_ head: HTTPRequestHead) -> Bool {
        let values = head.headers["expect"]
        return values.count == 1 && values[0].lowercased() == "100-continue"
    }

    static func declaredLength(_ head: HTTPRequestHead) -> Int {
        head.headers["content-length"].first.flatMap { Int($0) } ?? 0
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parseError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        guard !discarding else { return }
        discarding = true
        guard pending.isEmpty else {
            // In the middle of a request being answered (a body cut off, or garbage in it): its
            // handler must see the failure, so that it refuses the request instead of acting on
            // a partial one (`incomplete_request`), and nothing can follow on this connection.
            context.fireErrorCaught(error)
            return
        }
        let id = rejections.record(.badRequest, method: nil, detail: "unparsable request: \(parseError)")
        pending.append(Pending(version: .http1_1, keepAlive: false, rejection: (.badRequest, id)))
        writeRejection(context: context)
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head):
            guard let request = pending.first else {
                context.write(data, promise: promise)
                return
            }
            let responseSaysClose = head.headers[canonicalForm: "connection"].contains { $0.lowercased() == "close" }
            closeAfterResponse = !request.keepAlive || responseSaysClose
            if closeAfterResponse {
                discarding = true
                head.headers.replaceOrAdd(name: "connection", value: "close")
            }
            if !Self.isHTTP11(request.version) && request.version.major == 1 { head.version = request.version }
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            context.write(data, promise: promise)
            guard !pending.isEmpty else { return }
            pending.removeFirst()
            if closeAfterResponse {
                context.flush()
                lingerThenClose(context: context)
            } else if pending.first?.rejection != nil {
                writeRejection(context: context)
            }
        }
    }

    /// Answers the first pending request, which was refused here, and ends the connection.
    func writeRejection(context: ChannelHandlerContext) {
        guard let request = pending.first, let (error, id) = request.rejection else { return }
        var body = context.channel.allocator.buffer(capacity: 160)
        body.writeString(JSON.errorLine(error))
        let headers = HTTPHeaders([
            ("content-type", "application/json; charset=utf-8"), ("cache-control", "no-store"), ("content-length", String(body.readableBytes)),
            ("connection", "close"), ("x-request-id", id),
        ])
        let version = request.version.major == 1 ? request.version : .http1_1
        let status = HTTPResponseStatus(statusCode: error.status)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        pending.removeAll()
        lingerThenClose(context: context)
    }

    /// Closes the output (the client sees the end of the response), keeps discarding input for a
    /// moment so that a client still sending its body reads the answer instead of a reset, then
    /// closes.
    func lingerThenClose(context: ChannelHandlerContext) {
        guard !closed else { return }
        closed = true
        discarding = true
        context.close(mode: .output, promise: nil)
        let channel = context.channel
        context.eventLoop.scheduleTask(in: Self.linger) { channel.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        context.fireChannelInactive()
    }
}

extension APIError {
    static let missingHost = APIError(
        status: 400, code: "missing_host", message: "an HTTP/1.1 request needs exactly one Host header")
    static let expectationFailed = APIError(
        status: 417, code: "expectation_failed", message: "the only expectation this server meets is Expect: 100-continue")
}

extension JSON {
    /// The error body as the routes write it.
    static func errorLine(_ error: APIError) -> String { Response.errorBody(error).text + "\n" }
}
