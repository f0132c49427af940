import CLibPQ
import Foundation

/// Applies `migrations/*.sql` in file-name order, each in its own transaction, recording each in
/// `schema_migrations`. A session advisory lock serialises concurrent servers starting at once.
///
/// Synchronous (plain blocking libpq): call it at start-up or from a command, not from a request.
public enum Migrator {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// An arbitrary constant naming this service's migration lock.
    static let lockKey: Int64 = 0x0f1a_5a1e_0001

    /// Returns the versions applied by this call (empty when the schema was up to date).
    @discardableResult
    public static func apply(directory: String, connectionString: String) throws(Failure) -> [String] {
        let files: [String]
        do {
            files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql") }.sorted()
        } catch {
            throw Failure("cannot list migrations in \(directory): \(error)")
        }
        guard let conn = PQconnectdb(connectionString) else { throw Failure("out of memory") }
        defer { PQfinish(conn) }
        guard PQstatus(conn) == CONNECTION_OK else {
            throw Failure("cannot connect: \(String(cString: PQerrorMessage(conn)))")
        }
        try exec(conn, "SET client_min_messages = warning")
        try exec(conn, "SELECT pg_advisory_lock(\(lockKey))")
        defer { _ = try? exec(conn, "SELECT pg_advisory_unlock(\(lockKey))") }
        try exec(conn, """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version text PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now())
            """)
        let done = Set(try exec(conn, "SELECT version FROM schema_migrations"))
        var applied: [String] = []
        for file in files {
            let version = String(file.dropLast(4))
            guard !done.contains(version) else { continue }
            let sql: String
            do {
                sql = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
            } catch {
                throw Failure("cannot read \(file): \(error)")
            }
            try exec(conn, "BEGIN")
            do throws(Failure) {
                try exec(conn, sql)
                try exec(conn, "INSERT INTO schema_migrations (version) VALUES ($1)", [version])
                try exec(conn, "COMMIT")
            } catch {
                _ = try? exec(conn, "ROLLBACK")
                throw Failure("migration \(file): \(error)")
            }
            applied.append(version)
        }
        return applied
    }

    /// Runs one SQL text on a fresh connection and returns the first column of every row: for
    /// tools and tests (creating a schema, inspecting a table), never for requests.
    @discardableResult
    public static func execute(_ sql: String, connectionString: String) throws(Failure) -> [String] {
        guard let conn = PQconnectdb(connectionString) else { throw Failure("out of memory") }
        defer { PQfinish(conn) }
        guard PQstatus(conn) == CONNECTION_OK else {
            throw Failure("cannot connect: \(String(cString: PQerrorMessage(conn)))")
        }
        return try exec(conn, sql)
    }

    /// Runs `sql`; returns the first column of every row.
    @discardableResult
    static func exec(_ conn: OpaquePointer, _ sql: String, _ params: [String] = []) throws(Failure) -> [String] {
        let result: OpaquePointer?
        if params.isEmpty {
            result = PQexec(conn, sql)
        } else {
            result = withCStringArray(params) { PQexecParams(conn, sql, Int32(params.count), nil, $0, nil, nil, 0) }
        }
        guard let result else { throw Failure(String(cString: PQerrorMessage(conn))) }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            throw Failure(String(cString: PQresultErrorMessage(result)).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        var values: [String] = []
        if PQnfields(result) > 0 {
            for row in 0..<PQntuples(result) where PQgetisnull(result, row, 0) == 0 {
                values.append(String(cString: PQgetvalue(result, row, 0)))
            }
        }
        return values
    }
}
