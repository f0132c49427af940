import History
import Testing

/// The classic non-linearizable histories, in the sale's terms: each must be rejected, with a
/// witness that names the broken partition and holds only the operations that matter.
@Suite("Non-linearizable histories are rejected")
struct ViolatingHistoryTests {
    typealias F = Fixture
    static let c1 = F.code(1, "one")
    static let c2 = F.code(1, "two")

    func expectViolation(_ operations: [HistoryOperation], subject: String, witnessAtMost: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        let verdict = F.verdict(operations)
        #expect(!verdict.isLinearizable, "accepted", sourceLocation: sourceLocation)
        let violation = verdict.violations.first { $0.subject.contains(subject) }
        #expect(violation != nil, "no violation on \(subject): \(verdict.violations.map(\.text))", sourceLocation: sourceLocation)
        if let violation {
            #expect(violation.witness.count <= witnessAtMost, "\(violation.text)", sourceLocation: sourceLocation)
            #expect(violation.text.contains(subject), sourceLocation: sourceLocation)
        }
    }

    /// Stale read: the item shows available after its purchase was acknowledged.
    @Test func staleRead() {
        expectViolation([
            F.checkout("alice", 1, 0, 0.1, F.held(Self.c1, expires: 30.05)),
            F.purchase("alice", Self.c1, 1, 1.1, F.bought("alice", item: 1, at: 1.05)),
            F.checkout("carol", 2, 1.5, 1.6, F.held(F.code(2, "z"), expires: 31.55)),  // unrelated noise
            F.readItem(1, 2, 2.1, .available),
        ], subject: "item 1 of sale 0", witnessAtMost: 3)
    }

    /// Lost update: an acknowledged purchase is overwritten by a later hold of another user.
    @Test func lostUpdate() {
        expectViolation([
            F.checkout("alice", 1, 0, 0.1, F.held(Self.c1, expires: 30.05)),
            F.purchase("alice", Self.c1, 1, 1.1, F.bought("alice", item: 1, at: 1.05)),
            F.checkout("bob", 1, 40, 40.1, F.held(Self.c2, expires: 70.05)),
        ], subject: "item 1 of sale 0", witnessAtMost: 3)
    }

    /// Double hold: two users handed live holds on one item at overlapping times.
    @Test func doubleHold() {
        expectViolation([
            F.checkout("alice", 1, 0, 0.1, F.held(Self.c1, expires: 30.05)),
            F.checkout("dave", 3, 1, 1.1, .refused(.itemHeld)),  // noise on another item
            F.checkout("bob", 1, 5, 5.1, F.held(Self.c2, expires: 35.05)),
        ], subject: "item 1 of sale 0", witnessAtMost: 2)
    }

    /// A purchase seen succeeding after a 410 for the same code (each alone would be allowed:
    /// the refusal falls within the clock slack of the expiry).
    @Test func purchaseAfterRefusalOfTheSameCode() {
        expectViolation([
            F.checkout("alice", 1, 0, 0.1, F.held(Self.c1, expires: 30)),
            F.purchase("alice", Self.c1, 29, 29.2, .codeExpired),
            F.purchase("alice", Self.c1, 29.5, 29.9, F.bought("alice", item: 1, at: 29.6)),
        ], subject: "item 1 of sale 0", witnessAtMost: 3)
    }

    @Test func liveCodeRefusedAsExpired() {
        expectViolation([
            F.checkout("alice", 1, 0, 0.1, F.held(Self.c1, expires: 30.05)),
            F.purchase("alice", Self.c1, 10, 10.1, .codeExpired),
        ], subject: "item 1 of sale 0", witnessAtMost: 2)
    }

    @Test func purchaseDecidedAfterExpiry() {
        expectViolation([
            F.checkout("alice", 1, 0, 0.1, F.held(Self.c1, expires: 30)),
            F.purchase("alice", Self.c1, 29.5, 30.5, F.bought("alice", item: 1, at: 30.2)),
        ], subject: "item 1 of sale 0", witnessAtMost: 2)
    }

    @Test func handedOutCodeAnsweredUnknown() {
        expectViolation([
            F.checkout("alice", 1, 0, 0.1, F.held(Self.c1, expires: 30.05)),
            F.purchase("mallory", Self.c1, 1, 1.1, .unknownCode),
        ], subject: "item 1 of sale 0", witnessAtMost: 2)
    }

    @Test func codeBoughtForAnotherUser() {
        expectViolation([
            F.checkout("alice", 1, 0, 0.1, F.held(Self.c1, expires: 30.05)),
            F.purchase("mallory", Self.c1, 1, 1.1, F.bought("mallory", item: 1, at: 1.05)),
        ], subject: "item 1 of sale 0", witnessAtMost: 2)
    }

    @Test func itemSoldWithNothingSold() {
        expectViolation([
            F.checkout("alice", 1, 0, 0.1, F.held(Self.c1, expires: 30.05)),
            F.checkout("bob", 1, 1, 1.1, .refused(.itemSold)),
        ], subject: "item 1 of sale 0", witnessAtMost: 2)
    }

    @Test func holdsBeyondTheLimit() {
        expectViolation([
            F.checkout("alice", 1, 0, 0.1, F.held(Self.c1, expires: 30.05)),
            F.checkout("alice", 2, 1, 1.1, F.held(F.code(2, "x"), expires: 31.05)),
            F.checkout("alice", 3, 2, 2.1, F.held(F.code(3, "y"), expires: 32.05)),
        ], subject: "user alice in sale 0", witnessAtMost: 3)
    }

    @Test func limitReachedWithRoomLeft() {
        expectViolation([
            F.checkout("alice", 1, 0, 0.1, F.held(Self.c1, expires: 30.05)),
            F.checkout("alice", 2, 1, 1.1, .refused(.userLimitReached)),
        ], subject: "user alice in sale 0", witnessAtMost: 2)
    }

    @Test func purchasesReadMissesAnAcknowledgedPurchase() {
        expectViolation([
            F.checkout("alice", 1, 0, 0.1, F.held(Self.c1, expires: 30.05)),
            F.purchase("alice", Self.c1, 1, 1.1, F.bought("alice", item: 1, at: 1.05)),
            F.readPurchases("alice", 2, 2.1, []),
        ], subject: "user alice in sale 0", witnessAtMost: 2)
    }

    @Test func soldOutWhileItemsWereLeft() {
        expectViolation([
            F.checkout("alice", 1, 0, 0.1, F.held(Self.c1, expires: 30.05)),
            F.purchase("alice", Self.c1, 1, 1.1, F.bought("alice", item: 1, at: 1.05)),
            F.checkout("bob", 1, 2, 2.1, .refused(.soldOut)),
        ], subject: "checkout", witnessAtMost: 1)
    }

    /// The search itself, on a toy register: a read of a value never written has no order.
    @Test func searchOnARegister() {
        struct Register: SequentialSpecification {
            var initialState: Int { 0 }
            func successors(of state: Int, applying op: (write: Int?, read: Int?)) -> [Int] {
                if let value = op.write { return [value] }
                return op.read == state ? [state] : []
            }
        }
        let search = LinearizabilitySearch(Register())
        let good: [TimedOperation<(write: Int?, read: Int?)>] = [
            TimedOperation((write: 1, read: nil), invoke: 0, complete: 10), TimedOperation((write: nil, read: 1), invoke: 5, complete: 6),
            TimedOperation((write: nil, read: 0), invoke: 1, complete: 2),
        ]
        if case .linearizable(let order) = search.check(good) { #expect(order == [2, 0, 1]) } else { Issue.record("not linearizable") }
        let bad: [TimedOperation<(write: Int?, read: Int?)>] = [
            TimedOperation((write: 1, read: nil), invoke: 0, complete: 1), TimedOperation((write: nil, read: 0), invoke: 2, complete: 3),
        ]
        #expect(search.check(bad) == .notLinearizable(longestPrefix: 1))
    }
}
