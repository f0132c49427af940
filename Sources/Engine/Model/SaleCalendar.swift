/// Which sale is current at an instant, and when each sale starts and ends.
///
/// Sales exist by virtue of the clock: sale `n` covers `[n·L, (n+1)·L)` seconds of UTC time.
public struct SaleCalendar: Sendable, Equatable {
    public let saleLength: TimeSpan

    public init(saleLength: TimeSpan) {
        precondition(saleLength.microseconds > 0, "sale length is validated at configuration")
        self.saleLength = saleLength
    }

    public func sale(at instant: Instant) -> SaleID {
        SaleID(RFC3339.floorDiv(instant.microseconds, saleLength.microseconds))
    }

    public func start(of sale: SaleID) -> Instant { Instant(microseconds: sale.rawValue * saleLength.microseconds) }
    public func end(of sale: SaleID) -> Instant { Instant(microseconds: (sale.rawValue + 1) * saleLength.microseconds) }
}
