// sale-load --history FILE: every request and its answer as one line of a client-visible history
// (docs/histories.md), for sale-history-check. Off by default: parsing each body costs the load
// generator CPU it otherwise spends on load.
import Foundation
import History
import NIOCore

/// One event loop's history lines; only touched on that loop.
struct HistoryRecorder {
    var lines: [String] = []

    /// Microseconds since the Unix epoch, by the wall clock (what the server's times are in).
    static func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1_000
    }

    /// The call a request URI makes, or nil for one the history does not judge.
    static func call(uri: String) -> HistoryOperation.Call? {
        guard let query = uri.split(separator: "?", maxSplits: 1).last, uri.contains("?") else { return nil }
        var fields: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        if uri.hasPrefix("/checkout"), let user = fields["user_id"], let item = fields["id"].flatMap({ Int64($0) }) {
            return .checkout(user: user, item: item, sale: nil)
        }
        if uri.hasPrefix("/purchase"), let code = fields["code"] { return .purchase(code: code) }
        return nil
    }

    mutating func answered(uri: String, client: String, invoke: Int64, complete: Int64, status: Int, body: ByteBuffer?) {
        guard var call = Self.call(uri: uri) else { return }
        let object = body.flatMap { try? JSONSerialization.jsonObject(with: Data($0.readableBytesView)) } as? [String: Any] ?? [:]
        let error = (object["error"] as? [String: Any])?["code"] as? String
        let answer: HistoryOperation.Answer
        switch (status, call) {
        case (200, .checkout(let user, let item, _)):
            guard let code = object["code"] as? String, let expires = (object["expires_at"] as? String).flatMap(HistoryFile.time) else {
                return record(call, client, invoke, complete, .unknown)
            }
            if let sale = object["sale_id"] as? Int { call = .checkout(user: user, item: item, sale: Int64(sale)) }
            answer = .held(code: code, expiresAt: expires)
        case (200, .purchase):
            guard let user = object["user_id"] as? String, let sale = object["sale_id"] as? Int, let item = object["item_id"] as? Int,
                let at = (object["purchased_at"] as? String).flatMap(HistoryFile.time)
            else { return record(call, client, invoke, complete, .unknown) }
            answer = .purchased(user: user, sale: Int64(sale), item: Int64(item), purchasedAt: at)
        case (403, _), (409, _):
            answer = error.flatMap(HistoryOperation.Refusal.init(rawValue:)).map { .refused($0) } ?? .ignored
        case (410, _): answer = .codeExpired
        case (404, _) where error == "unknown_code": answer = .unknownCode
        case (500..., _): answer = .unknown
        default: answer = .ignored
        }
        record(call, client, invoke, complete, answer)
    }

    /// A request that never got its answer (timed out, connection closed).
    mutating func unanswered(uri: String, client: String, invoke: Int64) {
        guard let call = Self.call(uri: uri) else { return }
        record(call, client, invoke, nil, .unknown)
    }

    private mutating func record(_ call: HistoryOperation.Call, _ client: String, _ invoke: Int64, _ complete: Int64?,
                                 _ answer: HistoryOperation.Answer) {
        lines.append(HistoryFile.line(HistoryOperation(client: client, call: call, invoke: invoke, complete: complete, answer: answer)))
    }

    static func write(_ lines: [String], to path: String) throws {
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }
}
