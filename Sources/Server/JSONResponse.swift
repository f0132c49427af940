import Engine
import Hummingbird

/// A JSON value, written with a fixed key order (the order given), so bodies are deterministic.
enum JSON: Sendable {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case null
    case array([JSON])
    case object([(String, JSON)])

    static func int(_ value: Int) -> JSON { .int(Int64(value)) }

    func write(into out: inout String) {
        switch self {
        case .string(let s): JSON.writeString(s, into: &out)
        case .int(let v): out += String(v)
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        case .array(let values):
            out += "["
            for (i, value) in values.enumerated() {
                if i > 0 { out += "," }
                value.write(into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out += "," }
                JSON.writeString(key, into: &out)
                out += ":"
                value.write(into: &out)
            }
            out += "}"
        }
    }

    var text: String {
        var out = ""
        write(into: &out)
        return out
    }

    static func writeString(_ s: String, into out: inout String) {
        JSONText.appendQuoted(s, to: &out)
    }
}

extension Response {
    /// A JSON response.
    static func json(_ value: JSON, status: HTTPResponse.Status = .ok, headers extra: HTTPFields = [:]) -> Response {
        var headers = extra
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: value.text + "\n")))
    }

    /// The error shape of every error answer: `{"error": {"code", "message"}}`.
    static func error(_ error: APIError, headers: HTTPFields = [:]) -> Response {
        json(errorBody(error), status: HTTPResponse.Status(code: error.status), headers: headers)
    }

    static func errorBody(_ error: APIError) -> JSON {
        .object([("error", .object([("code", .string(error.code)), ("message", .string(error.message))]))])
    }
}

/// Error answers the server itself gives (routing and transport), in the same shape as the
/// engine's. Every code here is listed in `openapi.yaml`.
extension APIError {
    static let requestTooLarge = APIError(
        status: 413, code: "request_too_large", message: "the request body is larger than this server accepts (no endpoint takes one)")
    static let targetTooLong = APIError(
        status: 414, code: "uri_too_long", message: "the request target is longer than this server accepts")
    static let incompleteRequest = APIError(
        status: 400, code: "incomplete_request", message: "the request ended before its declared body; nothing was done")
    static let invalidSaleID = APIError(
        status: 400, code: "invalid_sale_id", message: "the sale id must be a non-negative integer of at most 18 digits")
    static let invalidItemIDPath = APIError(
        status: 400, code: "invalid_item_id", message: "the item id must be an integer from 1 to the number of items per sale")
    static let invalidUserIDPath = APIError(
        status: 400, code: "invalid_user_id", message: "user_id must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'")
    static let badRequest = APIError(status: 400, code: "bad_request", message: "the request is not acceptable")
    static let internalError = APIError(
        status: 500, code: "internal_error", message: "the server failed unexpectedly; nothing may have been done")
    /// `/health` while a shutdown drains the instance: the balancer should stop sending to it.
    static let draining = APIError(
        status: 503, code: "draining", message: "this instance is shutting down; it answers what it is sent until the drain ends")

    /// Every error code the server's own layer can answer (the engine's are found in its sources).
    static let serverCodes: [APIError] = [
        .requestTooLarge, .targetTooLong, .missingHost, .expectationFailed, .incompleteRequest, .invalidSaleID, .invalidItemIDPath,
        .invalidUserIDPath, .badRequest, .internalError, .notFound, .methodNotAllowed, .unavailable, .rateLimited, .tooManyHolds,
        .identityRequired, .identityInvalid, .identityExpired, .identityMismatch, .untrustedGateway, .draining,
    ]
}

/// Parses a decimal sale id (no sign, no leading zeros, at most 18 digits).
func parseSaleID<S: StringProtocol>(_ text: S) -> SaleID? {
    let utf8 = Array(text.utf8)
    guard !utf8.isEmpty, utf8.count <= 18, utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
        return nil
    }
    if utf8.count > 1 && utf8[0] == UInt8(ascii: "0") { return nil }
    return Int64(String(decoding: utf8, as: UTF8.self)).map(SaleID.init)
}
