// noop-server: the baseline of scripts/bench. One Hummingbird 2 route that does no work, built and
// served exactly like sale-server (same Hummingbird version, release build), so the server's
// throughput can be reported as a ratio of what the HTTP layer alone achieves on this machine.
//
// Like sale-server, it runs Swift concurrency's tasks on NIO's event loops; `--cooperative-pool`
// keeps Swift's own pool instead (to measure what that setting is worth).
//
//   noop-server [--port 8033] [--host 127.0.0.1] [--cooperative-pool]
import Hummingbird
import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

var port = 8033
var host = "127.0.0.1"
var onEventLoops = true
var args = CommandLine.arguments.dropFirst().makeIterator()
while let a = args.next() {
    switch a {
    case "--port": port = Int(args.next() ?? "") ?? port
    case "--host": host = args.next() ?? host
    case "--cooperative-pool": onEventLoops = false
    default:
        print("usage: noop-server [--port N] [--host H] [--cooperative-pool]")
        exit(2)
    }
}

if onEventLoops { NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor() }

let router = Router()
// The same shape of request as a checkout (POST with a query), answered with a small constant body.
router.post("/checkout") { _, _ -> String in "{}" }
router.get("/") { _, _ -> String in "{}" }
var logger = Logger(label: "noop-server")
logger.logLevel = .warning  // like sale-server under LOG_LEVEL=warning
let app = Application(router: router, configuration: .init(address: .hostname(host, port: port)), logger: logger)
try await app.runService()
