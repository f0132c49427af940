import Adapters
import Engine
import Foundation
import History
import Testing

@testable import Server

/// The crash drill's buyers (`sale-load --scenario drill`, Sources/Bench/Load/DrillBuyers.swift) against
/// two servers sharing their stores, one of which stops in the middle of the run: the buyers go on
/// through the other (new connections, requests in flight sent again), sell the sale out, and the
/// history they write is linearizable.
@Suite struct DrillBuyersTests {
    /// A sale length (a day or more) under which the current sale has ten minutes left at least.
    static func saleLength(now: Instant) -> Int64 {
        let seconds = now.microseconds / 1_000_000
        var length: Int64 = 86_400
        while length - seconds % length < 600 { length += 60 }
        return length
    }

    @Test func buyersSellOutThroughAnInstanceThatStops() async throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sale-load")
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "sale-load is built beside the tests")
        let length = Self.saleLength(now: WallClock.now())
        let environment = ["SALE_ITEMS": "60", "USER_LIMIT": "3", "HOLD_TTL": "2", "SALE_LENGTH": "\(length)"]
        // The history's times are the wall clock's, so the servers run on it too (not on a shifted test clock).
        let memory = InMemoryStores(clock: WallClock.now)
        let shared = WiredStores(stores: memory.stores, durable: false, mode: "shared in-memory", close: {})
        let stopping = try await RunningServer.start(environment: environment, stores: shared, clock: WallClock.now)
        let staying = try await RunningServer.start(environment: environment, stores: shared, clock: WallClock.now)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("drill-buyers-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let history = folder.appendingPathComponent("history.jsonl").path
        let result = folder.appendingPathComponent("buyers.json").path

        let buyers = Process()
        buyers.executableURL = binary
        buyers.arguments = [
            "--scenario", "drill", "--ports", "\(stopping.port),\(staying.port)", "--connections", "12", "--users", "30",
            "--items", "60", "--user-limit", "3", "--pace-seconds", "2", "--think-ms", "50", "--request-timeout", "2",
            "--max-seconds", "60", "--history", history, "--out", result,
        ]
        buyers.standardOutput = Pipe()
        try buyers.run()
        try await Task.sleep(for: .milliseconds(700))
        try await stopping.stop()
        while buyers.isRunning { try await Task.sleep(for: .milliseconds(100)) }
        let sale = try await staying.get("/sale")
        try await staying.stop()

        #expect(buyers.terminationStatus == 0)
        let report = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: result))) as? [String: Any])
        #expect(report["first_sold_out_s"] != nil, "the sale should sell out: \(report)")
        let errors = report["errors"] as? [String: Int] ?? [:]
        #expect(errors.keys.contains { $0 == "connect_failed" || $0.hasPrefix("closed") }, "no connection broke: \(errors)")
        #expect(errors["gave_up"] == nil)
        #expect(sale.text.contains("\"sold\":60"), "\(sale.text)")

        let (_, operations) = try HistoryFile.parse(String(contentsOfFile: history, encoding: .utf8))
        // Every answer is one operation; requests lost with their connection are operations without one.
        #expect(operations.filter { $0.complete != nil }.count == report["requests"] as? Int)
        let rules = HistoryRules(itemsPerSale: 60, userLimit: 3, holdTTL: 2_000_000, saleLength: length * 1_000_000, clockSkewAllowance: 2_000_000)
        let verdict = HistoryChecker(rules: rules).check(operations)
        #expect(verdict.isLinearizable, "\(verdict.violations.map(\.text))")
    }
}
