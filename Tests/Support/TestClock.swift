import Engine
import Synchronization

/// A clock tests move by hand, so hold expiry and sale rollover need no waiting. The one test
/// clock of every test target.
public final class TestClock: Sendable {
    private let current: Mutex<Instant>

    public init(_ start: Instant) { current = Mutex(start) }

    public var now: Instant { current.withLock { $0 } }
    public func advance(_ span: TimeSpan) { current.withLock { $0 = $0 + span } }
    public func set(_ instant: Instant) { current.withLock { $0 = instant } }
    /// The clock as the function stores and servers take.
    public var function: @Sendable () -> Instant { { self.now } }
}
