// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]
/// The engine, the store models and the simulator are optimised even in debug builds, so that the
/// simulation sweeps of `swift test` run at release speed (they are CPU-bound and pure), with
/// `assert` kept (`-assert-config Debug`): every check the tests and the simulator rely on runs.
let fast: [SwiftSetting] = strict + [.unsafeFlags(["-O", "-assert-config", "Debug"], .when(configuration: .debug))]

let package = Package(
    name: "flash-sale",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sale-sim", targets: ["SaleSimCLI"]),
        .executable(name: "sale-history-check", targets: ["SaleHistoryCheck"]),
        .executable(name: "sale-server", targets: ["Server"]),
        .library(name: "PostgresAdapter", targets: ["PostgresAdapter"]),
        .library(name: "RedisAdapter", targets: ["RedisAdapter"]),
        .executable(name: "adapter-bench", targets: ["AdapterBench"]),
        .executable(name: "sale-load", targets: ["SaleLoad"]),
        .executable(name: "noop-server", targets: ["NoopServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // HMAC-SHA256 for signed user identities (issue 14); the range accepts the 4.x already in the graph.
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        // Header names (already in the graph through Hummingbird), named directly by the identity code.
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        // The HTTP/1 conversion handler, to build the server's own connection pipeline (HTTPEdge.swift).
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.20.0"),
        // A real YAML parser for the OpenAPI test, which reads openapi.yaml and holds the running server to it.
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        // Every business rule, pure and deterministic: standard library only.
        .target(name: "Engine", path: "Sources/Engine", swiftSettings: fast),
        // The reference semantics of the storage ports: pure, synchronous, shared by the simulator,
        // the in-memory adapter and the contract tests.
        .target(name: "StoreModel", dependencies: ["Engine"], path: "Sources/Adapters/Model", swiftSettings: fast),
        // Async ports and the driver that runs engine state machines against them; the in-memory stores.
        .target(name: "Adapters", dependencies: ["Engine", "StoreModel"], path: "Sources/Adapters/Runtime", swiftSettings: strict),
        // Client-visible histories and their linearizability checker (docs/histories.md): standard library only
        // (and the engine's JSON escaping).
        .target(name: "History", dependencies: ["Engine"], path: "Sources/History/Checker", swiftSettings: fast),
        .executableTarget(
            name: "SaleHistoryCheck", dependencies: ["History", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/History/CLI", swiftSettings: strict),
        // The deterministic simulator.
        .target(
            name: "Simulator",
            dependencies: ["Engine", "StoreModel", "History"],
            path: "Sources/Sim/Simulator",
            swiftSettings: fast
        ),
        .executableTarget(
            name: "SaleSimCLI",
            dependencies: ["Simulator", "Engine", "History", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/Sim/CLI",
            swiftSettings: strict
        ),
        // The production HTTP server: a thin translation between HTTP and the engine.
        .executableTarget(
            name: "Server",
            dependencies: [
                "Engine", "Adapters", "AdapterSupport", "PostgresAdapter", "RedisAdapter",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
            ],
            path: "Sources/Server",
            // Compiled into the binary (SwiftPM generates `PackageResources`), so the server serves them
            // wherever it runs from. Resources/openapi.yaml is a link to the repository's openapi.yaml.
            resources: [.embedInCode("Resources/openapi.yaml"), .embedInCode("Resources/live.html")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "Server", "Engine", "Adapters", "History", "TestSupport", "PostgresAdapter", "RedisAdapter",
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Tests/ServerTests",
            swiftSettings: strict
        ),
        // The real stores (issue 3): libpq and hiredis as system libraries, one adapter target each.
        .systemLibrary(name: "CLibPQ", path: "Sources/Adapters/CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        // No pkg-config for hiredis: its .pc file adds -D_FILE_OFFSET_BITS=64, which SwiftPM
        // refuses with a warning on every build; the shim includes <hiredis/hiredis.h> by path.
        .systemLibrary(name: "CHiredis", path: "Sources/Adapters/CHiredis", providers: [.apt(["libhiredis-dev"])]),
        // Dedicated connection threads, job queues and batching, shared by both adapters.
        .target(name: "AdapterSupport", dependencies: ["Engine", "StoreModel", "Adapters"], path: "Sources/Adapters/Support", swiftSettings: strict),
        .target(
            name: "PostgresAdapter",
            dependencies: ["Engine", "StoreModel", "Adapters", "AdapterSupport", "CLibPQ"],
            path: "Sources/Adapters/Postgres",
            swiftSettings: strict
        ),
        .target(
            name: "RedisAdapter",
            dependencies: ["Engine", "Adapters", "AdapterSupport", "CHiredis"],
            path: "Sources/Adapters/Redis",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "AdapterBench",
            dependencies: [
                "Engine", "Adapters", "AdapterSupport", "PostgresAdapter", "RedisAdapter",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Adapters/Bench",
            swiftSettings: strict
        ),
        .testTarget(
            name: "AdapterTests",
            dependencies: ["Engine", "StoreModel", "Adapters", "AdapterSupport", "PostgresAdapter", "RedisAdapter"],
            path: "Tests/AdapterTests",
            swiftSettings: strict
        ),
        // Benchmarks (issue 5): a load generator of its own (SwiftNIO HTTP/1.1 client, not the server's code
        // path) and a do-nothing Hummingbird route as the baseline it is compared with.
        .executableTarget(
            name: "SaleLoad",
            dependencies: [
                "History",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Sources/Bench/Load",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "NoopServer",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Bench/Noop",
            swiftSettings: strict
        ),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "StoreModel", "Adapters", "TestSupport"], path: "Tests/EngineTests", swiftSettings: strict),
        // What several test targets share (the test clock).
        .target(name: "TestSupport", dependencies: ["Engine"], path: "Tests/Support", swiftSettings: strict),
        .testTarget(name: "HistoryTests", dependencies: ["History"], path: "Tests/HistoryTests", swiftSettings: strict),
        .testTarget(name: "SimTests", dependencies: ["Simulator", "Engine", "StoreModel"], path: "Tests/SimTests", swiftSettings: strict),
    ]
)
