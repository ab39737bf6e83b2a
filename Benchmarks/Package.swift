// swift-tools-version:6.2
import PackageDescription

// The benchmark, a package of its own (as postgres-nio keeps its Benchmarks/ apart) so that no
// build of the daemon compiles it. scripts/bench builds and runs it; it uses the projectionist
// package's libraries, the test fixtures included, from the directory above.
let package = Package(
    name: "projectionist-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "projectionist", path: ".."),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
    ],
    targets: [
        .executableTarget(
            name: "projectionist-bench",
            dependencies: [
                .product(name: "Postgres", package: "projectionist"),
                .product(name: "EventStore", package: "projectionist"),
                .product(name: "Projections", package: "projectionist"),
                .product(name: "ProjectionistApp", package: "projectionist"),
                .product(name: "Encryption", package: "projectionist"),
                .product(name: "TestSupport", package: "projectionist"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"),
                .enableUpcomingFeature("MemberImportVisibility"),
                .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
            ])
    ]
)
