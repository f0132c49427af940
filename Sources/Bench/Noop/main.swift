// noop-server: the baseline of scripts/bench. One Hummingbird 2 route that does no work, built and
// served exactly like sale-server (same Hummingbird version, release build), so the server's
// throughput can be reported as a ratio of what the HTTP layer alone achieves on this machine.
//
//   noop-server [--port 8033] [--host 127.0.0.1]
import Hummingbird
import Logging

#if canImport(Glibc)
import Glibc
#endif

var port = 8033
var host = "127.0.0.1"
var args = CommandLine.arguments.dropFirst().makeIterator()
while let a = args.next() {
    switch a {
    case "--port": port = Int(args.next() ?? "") ?? port
    case "--host": host = args.next() ?? host
    default:
        print("usage: noop-server [--port N] [--host H]")
        exit(2)
    }
}

let router = Router()
// The same shape of request as a checkout (POST with a query), answered with a small constant body.
router.post("/checkout") { _, _ -> String in "{}" }
router.get("/") { _, _ -> String in "{}" }
var logger = Logger(label: "noop-server")
logger.logLevel = .warning  // like sale-server under LOG_LEVEL=warning
let app = Application(router: router, configuration: .init(address: .hostname(host, port: port)), logger: logger)
try await app.runService()
