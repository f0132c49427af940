import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization

/// Whether this instance is draining: a shutdown began, and it still serves, but tells its
/// balancer to stop sending (`/health` answers `503 draining`) and closes each connection after
/// its answer, so that no request is sent on a kept-alive connection the instance is about to close.
final class DrainState: Sendable {
    private let draining = Atomic(false)

    var isDraining: Bool { draining.load(ordering: .relaxed) }
    func begin() { draining.store(true, ordering: .relaxed) }
}

/// The first step of a graceful shutdown behind a balancer (`SHUTDOWN_DRAIN`): for that long the
/// instance keeps accepting and answering while `/health` fails, so the balancer takes it out of
/// rotation; only then does the server stop accepting and let requests in flight finish
/// (`SHUTDOWN_GRACE`). The service group shuts services down in reverse order, one after the
/// other: this one is listed after the application, so its drain runs first.
struct ShutdownDrain: Service {
    let state: DrainState
    let delay: Duration
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        guard delay > .zero else { return }
        state.begin()
        logger.notice(
            "draining: /health answers 503 so the balancer stops sending; still serving until the drain ends",
            metadata: ["drain_s": "\(delay.components.seconds)"])
        try? await Task.sleep(for: delay)
    }
}

/// Adds `Connection: close` to every answer while the instance drains.
struct DrainMiddleware: RouterMiddleware {
    typealias Context = SaleRequestContext
    let state: DrainState

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        if state.isDraining { response.headers[.connection] = "close" }
        return response
    }
}
