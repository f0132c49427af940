// noop-server: the baseline of scripts/bench. One Hummingbird 2 route that does no work, built and
// served exactly like sale-server (same Hummingbird version, release build), so the server's
// throughput can be reported as a ratio of what the HTTP layer alone achieves on this machine.
//
// Like sale-server, it runs Swift concurrency's tasks on NIO's event loops; `--cooperative-pool`
// keeps Swift's own pool instead (to measure what that setting is worth).
//
//   noop-server [--port 8033] [--host 127.0.0.1] [--cooperative-pool]
import ArgumentParser
import Hummingbird
import Logging
import NIOCore
import NIOPosix


/// The command line of `noop-server`.
struct NoopServerOptions: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "noop-server", abstract: "The do-nothing baseline of scripts/bench.")
    @Option(help: "Port to listen on.") var port = 8033
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Flag(help: "Run Swift concurrency's tasks on its own cooperative pool instead of NIO's event loops.") var cooperativePool = false
}

let options = NoopServerOptions.parseOrExit()
let port = options.port
let host = options.host
let onEventLoops = !options.cooperativePool

if onEventLoops { NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor() }

let router = Router()
// The same shape of request as a checkout (POST with a query), answered with a small constant body.
router.post("/checkout") { _, _ -> String in "{}" }
router.get("/") { _, _ -> String in "{}" }
var logger = Logger(label: "noop-server")
logger.logLevel = .warning  // like sale-server under LOG_LEVEL=warning
let app = Application(router: router, configuration: .init(address: .hostname(host, port: port)), logger: logger)
try await app.runService()
