import Foundation
import Testing

@testable import Server

/// `SHUTDOWN_DRAIN`: once a shutdown begins, the instance keeps answering for the drain, but
/// `/health` says `503 draining` (so a balancer stops sending) and every answer closes its
/// connection; then it stops.
@Suite struct DrainTests {
    @Test func aShutdownDrainsBeforeItStops() async throws {
        let server = try await RunningServer.start(environment: ["SHUTDOWN_DRAIN": "2"])
        #expect(try await server.get("/health").status == 200)
        let started = ContinuousClock.now
        await server.group.triggerGracefulShutdown()
        // The drain begins once the services after the application have been shut down (at once).
        var health = try await server.get("/health")
        for _ in 0..<20 where health.status == 200 {
            try await Task.sleep(for: .milliseconds(25))
            health = try await server.get("/health")
        }
        #expect(health.status == 503 && health.string("status") == "draining" && health.errorCode == "draining", "\(health)")
        #expect(health.header("connection")?.lowercased() == "close")
        let checkout = try await server.checkout("drew", 1)
        #expect(checkout.status == 200, "still serving while it drains: \(checkout)")
        #expect(checkout.header("connection")?.lowercased() == "close")
        try await server.task.value
        #expect(ContinuousClock.now - started >= .seconds(2), "stopped before the drain ended")
        await server.ownStores?.close()
    }
}
