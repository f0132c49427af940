import Engine
import Hummingbird
import Synchronization

/// The engine's `ClientLimits` behind a lock, with its refusals counted in `/metrics`.
///
/// Per instance: N instances behind a balancer give a client up to N times the per-instance
/// share (each instance sees only the requests the balancer sends it). Sharing it through Redis
/// would put a round trip and a write on the hot path of every checkout; see docs/server.md.
final class ClientLimiter: Sendable {
    private let limits: Mutex<ClientLimits>
    let metrics: ServerMetrics
    /// Both limits off (`CLIENT_CHECKOUT_RATE=0`, `CLIENT_MAX_HOLDS=0`): every checkout goes ahead
    /// untracked, which is not the table-full case `sale_client_limit_untracked_total` counts.
    let limitsNothing: Bool

    init(policy: ClientLimits.Policy, metrics: ServerMetrics) {
        limits = Mutex(ClientLimits(policy: policy))
        self.metrics = metrics
        limitsNothing = policy.limitsNothing
    }

    var policy: ClientLimits.Policy { limits.withLock { $0.policy } }

    /// Admits a checkout of `client`, or answers the refusal (`429` with `Retry-After`).
    func admitCheckout(_ client: ClientLimits.Client, now: Instant) -> Result<ClientLimits.Ticket, ClientLimitRefusal> {
        let (admission, tracked) = limits.withLock { limits in (limits.admitCheckout(client, now: now), limits.trackedClients) }
        if limitsNothing, case .admitted(let ticket) = admission { return .success(ticket) }
        metrics.clientLimitsTracked.record(Int64(tracked))
        switch admission {
        case .admitted(let ticket):
            if !ticket.tracked { metrics.clientLimitsUntracked.increment() }
            return .success(ticket)
        case .refused(let reason, let retryAfter):
            metrics.clientLimitRefusal(reason)
            return .failure(ClientLimitRefusal(reason: reason, retryAfter: retryAfter))
        }
    }

    func settle(_ ticket: ClientLimits.Ticket, hold: ClientLimits.Hold?, now: Instant) {
        guard ticket.tracked else { return }
        limits.withLock { $0.settle(ticket, hold: hold, now: now) }
    }

    func release(_ client: ClientLimits.Client, sale: SaleID, item: ItemID) {
        guard !limitsNothing else { return }
        limits.withLock { $0.release(client, sale: sale, item: item) }
    }
}

/// A checkout refused by the per-client limits.
struct ClientLimitRefusal: Error, Sendable {
    let reason: ClientLimits.Refusal
    let retryAfter: TimeSpan

    var error: APIError {
        switch reason {
        case .rateLimited: .rateLimited
        case .tooManyHolds: .tooManyHolds
        }
    }

    /// Whole seconds to wait, rounded up, at least 1 (RFC 9110 §10.2.3).
    var retryAfterSeconds: Int64 { max(1, (retryAfter.microseconds + 999_999) / 1_000_000) }

    var response: Response {
        var headers = HTTPFields()
        headers[.retryAfter] = String(retryAfterSeconds)
        return .error(error, headers: headers)
    }
}

extension APIError {
    static let rateLimited = APIError(
        status: 429, code: ClientLimits.Refusal.rateLimited.rawValue,
        message: "too many checkouts from this client; retry after the number of seconds in Retry-After")
    static let tooManyHolds = APIError(
        status: 429, code: ClientLimits.Refusal.tooManyHolds.rawValue,
        message: "this client holds as many unexpired items as one client may; buy them or wait for holds to expire (Retry-After)")
}
