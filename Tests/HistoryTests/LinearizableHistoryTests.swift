import History
import Testing

/// Histories the sale's rules allow: the checker must accept every one (no false alarms).
@Suite("Linearizable histories are accepted")
struct LinearizableHistoryTests {
    typealias F = Fixture
    static let c1 = F.code(1, "one")
    static let c2 = F.code(1, "two")

    @Test func holdBuyThenOthersSeeItSold() {
        let verdict = F.verdict([
            F.checkout("alice", 1, 0, 0.1, F.held(Self.c1, expires: 30.05)),
            F.purchase("alice", Self.c1, 1, 1.1, F.bought("alice", item: 1, at: 1.05)),
            F.checkout("bob", 1, 2, 2.1, .refused(.itemSold)),
            F.readItem(1, 3, 3.1, .sold),
            F.readPurchases("alice", 4, 4.1, [1]),
            F.purchase("alice", Self.c1, 5, 5.1, F.bought("alice", item: 1, at: 1.05)),
        ])
        #expect(verdict.isLinearizable, "\(verdict.violations.map(\.text))")
        #expect(verdict.partitions == 3)
    }

    @Test func concurrentCheckoutsOneWinsTheOtherIsRefused() {
        let verdict = F.verdict([
            F.checkout("bob", 1, 0, 0.5, .refused(.itemHeld)),
            F.checkout("alice", 1, 0.1, 0.2, F.held(Self.c1, expires: 30.15)),
        ])
        #expect(verdict.isLinearizable, "\(verdict.violations.map(\.text))")
    }

    @Test func anExpiredHoldIsTakenOverAndItsCodeRefused() {
        let verdict = F.verdict([
            F.checkout("alice", 1, 0, 0.1, F.held(Self.c1, expires: 30.05)),
            F.readItem(1, 31, 31.1, .available),
            F.checkout("bob", 1, 33, 33.1, F.held(Self.c2, expires: 63.05)),
            F.purchase("alice", Self.c1, 34, 34.1, .codeExpired),
            F.readItem(1, 35, 35.1, .held(until: F.t(63.05))),
        ])
        #expect(verdict.isLinearizable, "\(verdict.violations.map(\.text))")
    }

    @Test func aCheckoutWithoutAnswerMayHoldTheItemAndBeRevealedLater() {
        let verdict = F.verdict([
            F.checkout("alice", 1, 0, nil, .unknown),
            F.checkout("bob", 1, 1, 1.1, .refused(.itemHeld)),
            F.checkout("alice", 1, 2, 2.1, F.held(Self.c1, expires: 30.02)),
        ])
        #expect(verdict.isLinearizable, "\(verdict.violations.map(\.text))")
    }

    @Test func aPurchaseAnswered503MayHaveBoughtTheItem() {
        let verdict = F.verdict([
            F.checkout("alice", 1, 0, 0.1, F.held(Self.c1, expires: 30.05)),
            F.purchase("alice", Self.c1, 1, 4, .unknown),
            F.checkout("bob", 1, 40, 40.1, .refused(.itemSold)),
            F.purchase("alice", Self.c1, 41, 41.1, F.bought("alice", item: 1, at: 1.2)),
        ])
        #expect(verdict.isLinearizable, "\(verdict.violations.map(\.text))")
    }

    @Test func moreCheckoutsThanTheLimitAtOnce() {
        let verdict = F.verdict([
            F.checkout("alice", 1, 0, 0.3, F.held(Self.c1, expires: 30.1)),
            F.checkout("alice", 2, 0, 0.3, F.held(F.code(2, "x"), expires: 30.2)),
            F.checkout("alice", 3, 0, 0.3, .refused(.userLimitReached)),
            // Once the holds are past expiry plus allowance, they no longer count.
            F.checkout("alice", 3, 40, 40.1, F.held(F.code(3, "y"), expires: 70.05)),
        ])
        #expect(verdict.isLinearizable, "\(verdict.violations.map(\.text))")
    }

    @Test func aHistoryFileRoundTrips() throws {
        let operations = [
            F.checkout("alice", 1, 0, 0.1, F.held(Self.c1, expires: 30.05)),
            F.checkout("bob", 1, 0.5, nil, .unknown),
            F.purchase("alice", Self.c1, 1, 1.1, F.bought("alice", item: 1, at: 1.05)),
            F.checkout("bob", 1, 2, 2.1, .refused(.itemSold)),
            F.readItem(1, 3, 3.1, .held(until: 5)),
            F.readPurchases("alice", 4, 4.1, [1]),
            HistoryOperation(client: "x", call: .readSale, invoke: 5, complete: 6, answer: .saleCounts(sale: 0, sold: 1, held: 0)),
        ]
        let text = ([HistoryFile.header(F.rules)] + operations.map(HistoryFile.line)).joined(separator: "\n")
        let parsed = try HistoryFile.parse(text)
        #expect(parsed.rules == F.rules)
        #expect(parsed.operations == operations)
    }

    @Test func serverTimesAreRead() throws {
        let line = #"{"op":"checkout","user":"b1","item":7,"invoke":"2026-12-03T12:00:00.5Z","complete":"2026-12-03T12:00:00.501234Z","#
            + #""status":200,"code":"493.7.AAAAAAAAAAAAAAAAAAAAAA","expires_at":"2026-12-03T12:01:00.500Z"}"#
        let op = try #require(try HistoryFile.parse(line).operations.first)
        #expect(op.complete.map { $0 - op.invoke } == 1_234)
        #expect(op.answer == .held(code: "493.7.AAAAAAAAAAAAAAAAAAAAAA", expiresAt: op.invoke + 60_000_000))
    }
}
