/// A point in time, in microseconds since the Unix epoch (UTC).
///
/// The engine never reads a clock: every decision receives the current instant from its driver,
/// which is the wall clock in production and a skewed virtual clock in the simulator.
public struct Instant: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var microseconds: Int64

    public init(microseconds: Int64) { self.microseconds = microseconds }

    public static func seconds(_ s: Int64) -> Instant { Instant(microseconds: s * 1_000_000) }

    public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.microseconds < rhs.microseconds }
    public static func + (lhs: Instant, rhs: TimeSpan) -> Instant { Instant(microseconds: lhs.microseconds + rhs.microseconds) }
    public static func - (lhs: Instant, rhs: TimeSpan) -> Instant { Instant(microseconds: lhs.microseconds - rhs.microseconds) }
    public static func - (lhs: Instant, rhs: Instant) -> TimeSpan { TimeSpan(microseconds: lhs.microseconds - rhs.microseconds) }

    public var description: String { RFC3339.format(self) }
}

/// A length of time in microseconds. (Named apart from the standard library's `Duration`, whose
/// attosecond representation is more than the engine needs.)
public struct TimeSpan: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var microseconds: Int64

    public init(microseconds: Int64) { self.microseconds = microseconds }

    public static func seconds(_ s: Int64) -> TimeSpan { TimeSpan(microseconds: s * 1_000_000) }
    public static func milliseconds(_ ms: Int64) -> TimeSpan { TimeSpan(microseconds: ms * 1_000) }
    public static let zero = TimeSpan(microseconds: 0)

    public static func < (lhs: TimeSpan, rhs: TimeSpan) -> Bool { lhs.microseconds < rhs.microseconds }
    public static func + (lhs: TimeSpan, rhs: TimeSpan) -> TimeSpan { TimeSpan(microseconds: lhs.microseconds + rhs.microseconds) }
    public static func * (lhs: TimeSpan, rhs: Int64) -> TimeSpan { TimeSpan(microseconds: lhs.microseconds * rhs) }

    public var seconds: Double { Double(microseconds) / 1_000_000 }
    public var description: String { "\(seconds)s" }
}

/// The one conversion between the standard library's `Duration` (what clocks, sleeps and
/// configuration speak) and the engine's microseconds.
extension Duration {
    /// Whole microseconds, rounded toward zero.
    public var wholeMicroseconds: Int64 { components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000 }
    /// Whole nanoseconds, rounded toward zero.
    public var wholeNanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
    /// Whole milliseconds, rounded toward zero.
    public var wholeMilliseconds: Int64 { components.seconds * 1_000 + components.attoseconds / 1_000_000_000_000_000 }
    /// Seconds, as a floating-point number (for reports).
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension TimeSpan {
    public init(_ duration: Duration) { self.init(microseconds: duration.wholeMicroseconds) }
    public var duration: Duration { .microseconds(microseconds) }
}
