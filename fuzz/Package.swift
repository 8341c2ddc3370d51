// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for every Wisp parser that takes outside bytes. A package of its own so
// the main package's build and test times do not change: `scripts/fuzz` builds it with
// `-sanitize=fuzzer,address` into fuzz/.build. One executable holds every target
// (`WISP_FUZZ_TARGET` picks one), so the instrumented libraries are linked once.
let package = Package(
    name: "WispFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "Wisp", path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "WispFuzz",
            dependencies: ["WispFuzzDriver", .product(name: "WispKit", package: "Wisp")],
            path: "Sources/WispFuzz"
        ),
        // The executable's entry point, in C: see driver.c.
        .target(name: "WispFuzzDriver", path: "Sources/WispFuzzDriver"),
    ],
    swiftLanguageModes: [.v6]
)
