import ArgumentParser
import NIOCore
import NIOPosix

// Swift concurrency's tasks run on NIO's event loops, the threads that already do the HTTP I/O:
// a request's task then resumes where its bytes arrived instead of hopping to the cooperative
// pool and back (measured in docs/bench.md). It must happen before any task exists, hence a
// top-level `main.swift` rather than `@main`.
NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()

do {
    let command = try SaleServerCommand.parse()
    try await command.serve()
} catch {
    SaleServerCommand.exit(withError: error)
}
