// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "projectionist",
    platforms: [.macOS(.v15)],  // only so the code type-checks on a Mac; we ship Linux
    products: [
        .library(name: "Postgres", targets: ["Postgres"]),
    ],
    dependencies: [],
    targets: [
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"]), .brew(["libpq"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .target(name: "Postgres", dependencies: ["CLibPQ"]),
        .target(name: "TestSupport", dependencies: ["Postgres"]),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres", "TestSupport"]),
    ]
)

for target in package.targets where [.regular, .executable, .test].contains(target.type) {
    target.swiftSettings = (target.swiftSettings ?? []) + [
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("MemberImportVisibility"),
        .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
    ]
}
