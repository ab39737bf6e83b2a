// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "projectionist",
    platforms: [.macOS(.v15)],  // only so the code type-checks on a Mac; we ship Linux
    products: [
        .executable(name: "projectionist", targets: ["projectionist"]),
        .library(name: "Postgres", targets: ["Postgres"]),
        .library(name: "EventStore", targets: ["EventStore"]),
        .library(name: "Projections", targets: ["Projections"]),
        .library(name: "Encryption", targets: ["Encryption"]),
        // For the benchmark in Benchmarks/, a package of its own: the command line as a library,
        // and the fixtures it shares with the tests.
        .library(name: "ProjectionistApp", targets: ["ProjectionistApp"]),
        .library(name: "TestSupport", targets: ["TestSupport"]),
    ],
    dependencies: [  // lower bounds = the versions we verified against
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),  // Hummingbird's; one event loop thread
    ],
    targets: [
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"]), .brew(["libpq"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CMalloc"),  // glibc's <malloc.h>: arena limit and trimming
        .target(name: "Postgres", dependencies: ["CLibPQ"]),
        .plugin(name: "GitCommitPlugin", capability: .buildTool(), path: "Sources/GitCommitPlugin"),
        .target(name: "BuildInfo", plugins: ["GitCommitPlugin"]),  // the version, and the commit built from
        .target(name: "EventStore", dependencies: ["Postgres"]),
        .target(name: "Encryption", dependencies: ["Postgres", "EventStore", .product(name: "Crypto", package: "swift-crypto")]),
        .target(
            name: "Projections",
            dependencies: [
                "Postgres", "EventStore", "Encryption", .target(name: "CMalloc", condition: .when(platforms: [.linux])),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]),
        .target(
            name: "ProjectionistApp",
            dependencies: [
                "Postgres", "EventStore", "Projections", "Systemd", "Encryption", "BuildInfo",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),  // .sigterm, .sigint
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),  // HTTPParserError, handled as Hummingbird does
            ]),
        .executableTarget(
            name: "projectionist",
            dependencies: ["ProjectionistApp", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            linkerSettings: [
                // A smaller resident set for the daemon: lld packs its 100,000 relative relocations
                // (RELR, glibc 2.36+) instead of 2.5 MB of RELA read at every start, and no Swift
                // symbol goes into the dynamic symbol table (nothing looks them up there).
                .unsafeFlags(
                    ["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker", "--no-export-dynamic"],
                    .when(platforms: [.linux]))
            ]),
        .target(
            name: "Systemd",
            dependencies: [
                .target(name: "CSystemd", condition: .when(platforms: [.linux])),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .executableTarget(name: "projectionist-demo", dependencies: ["Postgres", "TestSupport"]),
        .target(
            name: "TestSupport",
            dependencies: ["Postgres", "EventStore", "Projections", .product(name: "Logging", package: "swift-log")]),
        // What a test needs (a server, time of its own); scripts/test selects by these tags.
        .target(name: "TestTraits", path: "Tests/TestTraits"),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres", "TestSupport", "TestTraits"]),
        .testTarget(name: "EncryptionTests", dependencies: ["Encryption", "EventStore", "Postgres", "TestSupport", "TestTraits"]),
        .testTarget(name: "EventStoreTests", dependencies: ["EventStore", "Postgres", "Projections", "TestSupport", "TestTraits"]),
        .testTarget(
            name: "ProjectionsTests",
            dependencies: [
                "Projections", "EventStore", "Postgres", "Encryption", "TestSupport", "TestTraits",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .testTarget(
            name: "SystemdTests",
            dependencies: [
                "Systemd", .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .testTarget(
            name: "ProjectionistTests",
            dependencies: ["ProjectionistApp", "Projections", "EventStore", "Postgres", "Encryption", "TestSupport", "BuildInfo", "TestTraits"]),
    ]
)

for target in package.targets where [.regular, .executable, .test].contains(target.type) {
    target.swiftSettings = (target.swiftSettings ?? []) + [
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("MemberImportVisibility"),
        .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
    ]
}
