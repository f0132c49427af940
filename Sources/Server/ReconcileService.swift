import Adapters
import Engine
import Logging
import ServiceLifecycle

/// Runs the engine's reconcile pass every few seconds (rolling forward purchases a crash left
/// half-done, and rebuilding the hot store if it lost its data), until graceful shutdown.
struct ReconcileService: Service {
    let driver: RequestDriver
    let interval: Duration
    let metrics: ServerMetrics
    let logger: Logger

    func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await Task.sleep(for: interval) } catch { return }  // cancelled: shutting down
                switch await driver.reconcile() {
                case .reconciled(let count):
                    metrics.reconcileRun("ok")
                    if count > 0 {
                        metrics.reconciled.increment(by: Int64(count))
                        logger.notice("reconcile rolled purchases forward", metadata: ["count": "\(count)"])
                    }
                case .failed:
                    metrics.reconcileRun("failed")
                    logger.warning("reconcile pass failed; retrying at the next interval")
                }
            }
        }
    }
}
