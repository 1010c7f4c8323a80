// swift-tools-version:6.1
import PackageDescription

// Computed, not a constant array: a constant `swiftSettings` may silently not apply (SwiftPM #6597).
func chorusSwiftSettings() -> [SwiftSetting] {
    [
        .swiftLanguageMode(.v6),
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("MemberImportVisibility"),
        .enableUpcomingFeature("InternalImportsByDefault"),
    ]
}

let package = Package(
    name: "chorus",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "chorus", targets: ["chorus"]),
        .executable(name: "fake-upstream", targets: ["fake-upstream"]),
    ],
    dependencies: [
        // One trait only: default traits make SwiftPM 6.3 rebuild Hummingbird on every build/test switch.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: ["ConfigurationSupport"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: ["YAML"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/postgres-kit.git", from: "2.17.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        // Only its bcrypt target is used (no traits requested, so Hummingbird's stay as above).
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/vapor/multipart-kit.git", from: "4.7.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // Declared command jobs: process groups and a SIGTERM-then-SIGKILL teardown, no shell.
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        // Already built for swift-subprocess; named so that FilePath may be imported directly.
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        // Traces (OTLP/HTTP only: the default OTLPGRPC trait would add gRPC to every build).
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
    ],
    targets: [
        // Domain types, events and pure stream logic. No I/O.
        .target(
            name: "ChorusCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: chorusSwiftSettings()
        ),
        // Upstream model providers: OpenAI-compatible HTTP, the local llama.cpp supervisor.
        .target(
            name: "ChorusProviders",
            dependencies: [
                "ChorusCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: chorusSwiftSettings()
        ),
        // Persistence: migrations and repositories over SQLKit (SQLite now, PostgreSQL next).
        .target(
            name: "ChorusStore",
            dependencies: [
                "ChorusCore",
                .product(name: "SQLKit", package: "sql-kit"),
                // SQLiteKit brings SQLiteNIO; `SQLiteHandle` calls the SQLite it vendors (module
                // VaporCSQLite) directly, so the process holds one copy of SQLite.
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: chorusSwiftSettings()
        ),
        // A small RESP2/RESP3 Redis client on SwiftNIO: exactly what Chorus uses (no Swift Redis package is available here).
        .target(
            name: "ChorusRedis",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: chorusSwiftSettings()
        ),
        // Configuration and the chat turn engine that ties providers to storage.
        .target(
            name: "ChorusRuntime",
            dependencies: [
                "ChorusCore", "ChorusProviders", "ChorusStore", "ChorusRedis",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: chorusSwiftSettings()
        ),
        // HTTP API (Hummingbird): routes, middleware, error mapping, application assembly.
        .target(
            name: "ChorusHTTP",
            dependencies: [
                "ChorusCore", "ChorusProviders", "ChorusStore", "ChorusRuntime", "ChorusRedis",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                // Reads the OpenAPI document (already built for ChorusRuntime's configuration).
                .product(name: "Yams", package: "Yams"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            // The chat page: HTML, CSS and JavaScript modules, served as they are (no build step);
            // the OpenAPI document, in YAML, served as JSON.
            resources: [.copy("Web"), .copy("OpenAPI")],
            swiftSettings: chorusSwiftSettings()
        ),
        // Assembly: the one place that builds Chorus, for `chorus serve`, `gateway`, `worker` and the tests.
        .target(
            name: "ChorusApp",
            dependencies: [
                "ChorusCore", "ChorusProviders", "ChorusStore", "ChorusRuntime", "ChorusRedis", "ChorusHTTP",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: chorusSwiftSettings()
        ),
        // Thin CLI: parses arguments and calls into the libraries.
        .executableTarget(
            name: "chorus",
            dependencies: [
                "ChorusCore", "ChorusProviders", "ChorusRuntime", "ChorusApp", "ChorusStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: chorusSwiftSettings()
        ),
        // A deterministic OpenAI-compatible upstream with fault injection, for tests and benchmarks.
        .target(
            name: "FakeUpstreamKit",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: chorusSwiftSettings()
        ),
        .executableTarget(
            name: "fake-upstream",
            dependencies: [
                "FakeUpstreamKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: chorusSwiftSettings()
        ),
        .testTarget(
            name: "ChorusCoreTests",
            dependencies: ["ChorusCore"],
            swiftSettings: chorusSwiftSettings()
        ),
        .testTarget(
            name: "ChorusStoreTests",
            dependencies: [
                "ChorusCore", "ChorusStore", .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: chorusSwiftSettings()
        ),
        .testTarget(
            name: "ChorusRedisTests",
            dependencies: ["ChorusRedis", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: chorusSwiftSettings()
        ),
        .testTarget(
            name: "ChorusProvidersTests",
            dependencies: [
                "ChorusCore", "ChorusProviders", "FakeUpstreamKit",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: chorusSwiftSettings()
        ),
        .testTarget(
            name: "ChorusRuntimeTests",
            dependencies: [
                "ChorusCore", "ChorusProviders", "ChorusRuntime", "ChorusStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: chorusSwiftSettings()
        ),
        .testTarget(
            name: "ChorusHTTPTests",
            dependencies: [
                "ChorusCore", "ChorusRuntime", "ChorusHTTP", "ChorusApp", "ChorusStore", "ChorusProviders", "FakeUpstreamKit",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: chorusSwiftSettings()
        ),
    ]
)
