// swift-tools-version:6.0
import PackageDescription

// One test target per module, named after it (FooTests tests Foo). Listed rather than
// discovered from the folders: SwiftPM caches evaluated manifests by content, so a discovered
// list can silently miss a suite.
let testFolders = [
    "WispCoreTests", "DiskImageTests", "PartitionsTests", "FileSystemsTests", "GuestInspectTests",
    "CloudInitTests", "OCITests", "ImageSourcesTests", "MachineTests", "MetadataServiceTests", "WispKitTests", "wispTests",
    "EndToEndTests",
]

let libraryModules: Set<String> = [
    "WispCore", "WispCompression", "DiskImage", "Partitions", "FileSystems", "GuestInspect",
    "CloudInit", "OCI", "ImageSources", "Machine", "MetadataService", "WispKit",
]

let swiftSettings: [SwiftSetting] = []

func testTarget(folder: String) -> Target {
    let module = String(folder.dropLast("Tests".count))
    var deps: [Target.Dependency] = [.target(name: "WispCore"), .target(name: "WispTestSupport")]
    if libraryModules.contains(module), module != "WispCore" {
        deps.append(.target(name: module))
    }
    if module == "FileSystems" {
        // Readers are also tested on the real test image, a qcow2 with a partition table.
        deps += [.target(name: "DiskImage"), .target(name: "Partitions")]
    }
    if module == "ImageSources" {
        // Downloads are tested against Wisp's own HTTP server on 127.0.0.1; disks built
        // from container images are read back with the partition, ext4 and guest readers.
        deps += [.target(name: "MetadataService"), .target(name: "OCI"), .target(name: "Partitions"),
                 .target(name: "FileSystems"), .target(name: "DiskImage"), .target(name: "GuestInspect")]
    }
    if module == "OCI" {
        // The registry client is tested against a token endpoint served by Wisp's HTTP server.
        deps.append(.target(name: "MetadataService"))
    }
    if module == "wisp" || module == "EndToEnd" {
        deps.append(.target(name: "WispKit"))
    }
    return .testTarget(name: folder, dependencies: deps, path: "Tests/\(folder)", swiftSettings: swiftSettings)
}

let package = Package(
    name: "Wisp",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "wisp", targets: ["wisp"]),
        .library(name: "WispKit", targets: ["WispKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CCrypt", path: "Sources/CCrypt", pkgConfig: "libcrypt",
                       providers: [.apt(["libcrypt-dev"])]),
        // SHA-256 of every pulled blob and layer: OpenSSL's is about 13x faster than
        // WispCore's portable one (figures in Sources/OCI/SHA256Digester.swift).
        .systemLibrary(name: "CCrypto", path: "Sources/CCrypto", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CArchive", path: "Sources/CArchive", pkgConfig: "libarchive",
                       providers: [.apt(["libarchive-dev"])]),
        // libvirt's C API: `wisp run --engine libvirt` (domains, storage pools, volume uploads).
        .systemLibrary(name: "CLibvirt", path: "Sources/CLibvirt", pkgConfig: "libvirt",
                       providers: [.apt(["libvirt-dev"])]),
        .target(name: "CLinux", path: "Sources/CLinux"),
        .target(name: "WispCore", dependencies: ["CLinux"], swiftSettings: swiftSettings),
        .target(name: "WispCompression", dependencies: ["WispCore", "CZlib", "CZstd"],
                swiftSettings: swiftSettings),
        .target(name: "DiskImage", dependencies: ["WispCore", "WispCompression"],
                swiftSettings: swiftSettings),
        .target(name: "Partitions", dependencies: ["WispCore"], swiftSettings: swiftSettings),
        .target(name: "FileSystems", dependencies: ["WispCore", "WispCompression"],
                swiftSettings: swiftSettings),
        .target(name: "GuestInspect",
                dependencies: ["WispCore", "WispCompression", "DiskImage", "Partitions", "FileSystems"],
                swiftSettings: swiftSettings),
        .target(name: "CloudInit",
                dependencies: ["WispCore", "FileSystems", "CCrypt", .product(name: "Yams", package: "Yams")],
                swiftSettings: swiftSettings),
        .target(name: "OCI", dependencies: ["WispCore", "CLinux", "CZlib", "CZstd", "CArchive", "CCrypto"],
                swiftSettings: swiftSettings),
        .target(name: "ImageSources", dependencies: ["WispCore", "CLinux", "DiskImage", "Partitions", "FileSystems", "OCI", "CArchive",
                                               "CCrypto", "CloudInit", .product(name: "Yams", package: "Yams")],
                // The catalog is a data file, compiled into the binary: no lookup at start-up.
                resources: [.embedInCode("Catalog/catalog.yaml")],
                swiftSettings: swiftSettings),
        .target(name: "Machine", dependencies: ["WispCore", "CLinux", "CLibvirt"], swiftSettings: swiftSettings),
        .target(name: "MetadataService",
                dependencies: ["WispCore", "CloudInit", "Machine"],
                swiftSettings: swiftSettings),
        .target(name: "WispKit",
                dependencies: [
                    "WispCore", "CLinux", "WispCompression", "DiskImage", "Partitions", "FileSystems",
                    "GuestInspect", "CloudInit", "OCI", "ImageSources", "Machine", "MetadataService",
                    .product(name: "Yams", package: "Yams"),
                ],
                swiftSettings: swiftSettings),
        // Shared by test targets only: runs the real tools that make fixtures and judge (and
        // records trees for the OCI judges, hence OCI).
        .target(name: "WispTestSupport", dependencies: ["CLinux", "WispCore", "OCI", "MetadataService"], swiftSettings: swiftSettings),
        .executableTarget(name: "wisp",
                          dependencies: ["WispKit", "WispCore", "DiskImage", "Partitions", "FileSystems", "GuestInspect", "CloudInit", "ImageSources", "Machine", "OCI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: swiftSettings),
    ] + testFolders.map { testTarget(folder: $0) },
    swiftLanguageModes: [.v6]
)
