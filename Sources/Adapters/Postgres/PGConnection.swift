import CLibPQ
import Engine
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A prepared statement and its text parameters.
struct PGStatement {
    let name: String
    let params: [String?]
}

/// The rows of one statement's result, as text.
struct PGRows {
    var rows: [[String?]]
    var count: Int { rows.count }
}

/// What one sync group (the statements between two pipeline syncs, one implicit transaction)
/// answered.
enum PGGroupOutcome {
    case ok([PGRows])
    /// A statement failed; the whole group was rolled back.
    case failed(sqlstate: String, message: String)
}

enum PGConnectionError: Error {
    /// Could not connect (or prepare): nothing was sent.
    case connect(String)
    /// The connection broke after something was sent: the outcome is unknown.
    case io(String)
    /// The deadline passed after something was sent: the outcome is unknown.
    case timeout
}

/// One libpq connection in pipeline mode, non-blocking, with every statement prepared at connect.
///
/// Not `Sendable`: it lives on one worker thread (see `ConnectionPool`).
final class PGConnection {
    private var conn: OpaquePointer?
    private let url: String
    private let connectTimeoutSeconds: Int
    private let statements: [(name: String, sql: String)]

    init(url: String, connectTimeoutSeconds: Int, statements: [(name: String, sql: String)]) {
        self.url = url
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.statements = statements
    }

    deinit { drop() }

    func drop() {
        if let conn { PQfinish(conn) }
        conn = nil
    }

    func ensureConnected() throws(PGConnectionError) {
        if let conn, PQstatus(conn) == CONNECTION_OK { return }
        drop()
        // NULL-terminated, as PQconnectdbParams requires.
        let keywords: [String?] = ["dbname", "connect_timeout", "application_name", nil]
        let values: [String?] = [url, String(max(2, connectTimeoutSeconds)), "flash-sale", nil]
        let c: OpaquePointer? = withCStringArray(keywords) { k in
            withCStringArray(values) { v in PQconnectdbParams(k, v, 1) }
        }
        guard let c else { throw .connect("out of memory") }
        guard PQstatus(c) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(c))
            PQfinish(c)
            throw .connect(message.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        for statement in statements {
            let result = PQprepare(c, statement.name, statement.sql, 0, nil)
            let status = PQresultStatus(result)
            let message = String(cString: PQresultErrorMessage(result))
            PQclear(result)
            guard status == PGRES_COMMAND_OK else {
                PQfinish(c)
                throw .connect("prepare \(statement.name): \(message)")
            }
        }
        guard PQsetnonblocking(c, 1) == 0, PQenterPipelineMode(c) == 1 else {
            let message = String(cString: PQerrorMessage(c))
            PQfinish(c)
            throw .connect("pipeline mode: \(message)")
        }
        conn = c
    }

    /// Sends every group, each followed by a pipeline sync, in one write; then reads every
    /// group's results. One round trip for the whole batch.
    func exchange(_ groups: [[PGStatement]], deadline: ContinuousClock.Instant) throws(PGConnectionError) -> [PGGroupOutcome] {
        guard let conn else { throw .connect("not connected") }
        do throws(PGConnectionError) {
            for group in groups {
                for statement in group {
                    let sent = withCStringArray(statement.params) { params in
                        PQsendQueryPrepared(conn, statement.name, Int32(statement.params.count), params, nil, nil, 0)
                    }
                    guard sent == 1 else { throw PGConnectionError.io(errorMessage()) }
                }
                guard PQpipelineSync(conn) == 1 else { throw PGConnectionError.io(errorMessage()) }
            }
            try flush(conn, deadline: deadline)
            var outcomes: [PGGroupOutcome] = []
            outcomes.reserveCapacity(groups.count)
            for _ in groups {
                var rows: [PGRows] = []
                var failure: (String, String)?
                var previousWasNull = false
                while true {
                    guard let result = try nextResult(conn, deadline: deadline) else {
                        // One NULL ends each statement's results; two in a row means nothing more
                        // is coming although a sync is still expected: never spin on that.
                        if previousWasNull { throw PGConnectionError.io("pipeline out of step") }
                        previousWasNull = true
                        continue
                    }
                    previousWasNull = false
                    let status = PQresultStatus(result)
                    if status == PGRES_PIPELINE_SYNC {
                        PQclear(result)
                        break
                    }
                    switch status {
                    case PGRES_TUPLES_OK, PGRES_COMMAND_OK:
                        rows.append(extract(result))
                    case PGRES_PIPELINE_ABORTED:
                        if failure == nil { failure = ("", "pipeline aborted") }
                    default:
                        if failure == nil || failure?.0 == "" {
                            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? ""
                            failure = (state, String(cString: PQresultErrorMessage(result)))
                        }
                    }
                    PQclear(result)
                }
                if let failure {
                    outcomes.append(.failed(sqlstate: failure.0, message: failure.1.trimmingCharacters(in: .whitespacesAndNewlines)))
                } else {
                    outcomes.append(.ok(rows))
                }
            }
            return outcomes
        } catch {
            drop()
            throw error
        }
    }

    private func errorMessage() -> String {
        guard let conn else { return "not connected" }
        return String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func flush(_ conn: OpaquePointer, deadline: ContinuousClock.Instant) throws(PGConnectionError) {
        while true {
            let r = PQflush(conn)
            if r == 0 { return }
            if r < 0 { throw .io(errorMessage()) }
            // Output is still queued: wait until the socket takes more, reading meanwhile so that
            // neither side can block on a full buffer.
            let events = try wait(conn, events: Int16(POLLIN | POLLOUT), deadline: deadline)
            if events & Int16(POLLIN) != 0, PQconsumeInput(conn) == 0 { throw .io(errorMessage()) }
        }
    }

    private func nextResult(_ conn: OpaquePointer, deadline: ContinuousClock.Instant) throws(PGConnectionError) -> OpaquePointer? {
        while PQisBusy(conn) == 1 {
            _ = try wait(conn, events: Int16(POLLIN), deadline: deadline)
            guard PQconsumeInput(conn) == 1 else { throw .io(errorMessage()) }
        }
        if PQstatus(conn) != CONNECTION_OK { throw .io(errorMessage()) }
        return PQgetResult(conn)
    }

    private func wait(_ conn: OpaquePointer, events: Int16, deadline: ContinuousClock.Instant) throws(PGConnectionError) -> Int16 {
        let socket = PQsocket(conn)
        guard socket >= 0 else { throw .io("no socket") }
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { throw .timeout }
            let ms = Int32(clamping: max(1, left.wholeMilliseconds))
            var fd = pollfd(fd: socket, events: events, revents: 0)
            let r = poll(&fd, 1, ms)
            if r > 0 {
                if fd.revents & Int16(POLLNVAL) != 0 { throw .io("socket closed") }
                return fd.revents
            }
            if r < 0 && errno != EINTR { throw .io("poll: errno \(errno)") }
        }
    }

    private func extract(_ result: OpaquePointer) -> PGRows {
        let rowCount = Int(PQntuples(result))
        let fieldCount = Int(PQnfields(result))
        var rows: [[String?]] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(fieldCount)
            for field in 0..<fieldCount {
                if PQgetisnull(result, Int32(row), Int32(field)) == 1 {
                    values.append(nil)
                } else {
                    values.append(String(cString: PQgetvalue(result, Int32(row), Int32(field))))
                }
            }
            rows.append(values)
        }
        return PGRows(rows: rows)
    }
}

/// Calls `body` with a C array of C strings (NULL entries for nil), valid only during the call.
func withCStringArray<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies: [UnsafeMutablePointer<CChar>?] = strings.map { $0.flatMap { strdup($0) } }
    defer { for copy in copies { free(copy) } }
    // Never empty, so the buffer always has a base address (the count passed to libpq is separate).
    let pointers: [UnsafePointer<CChar>?] = copies.isEmpty ? [nil] : copies.map { $0.map { UnsafePointer($0) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    withCStringArray(strings.map { Optional($0) }, body)
}
