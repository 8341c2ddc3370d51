import Foundation
import ImageSources
import Machine
import Testing
import WispCore
import WispTestSupport
@testable import WispKit

/// `wisp images prune`: what no instance uses goes, what an instance is based on stays,
/// and the bytes freed are counted.
@Suite struct CatalogPruneTests {
    static func cached(_ cache: CatalogCache, name: String, build: String, bytes: Int, lastUsed: Date) throws -> CachedCatalogImage {
        let resolution = CatalogResolution(name: name, distribution: "debian", release: "13", architecture: "x86_64", build: build,
                                           url: "https://cloud.debian.org/images/cloud/trixie/\(build)/\(name)-\(build).qcow2",
                                           checksumURL: "https://cloud.debian.org/images/cloud/trixie/\(build)/SHA512SUMS",
                                           algorithm: .sha512, digest: String(repeating: "0", count: 128), trust: .checksumOnly)
        let record = CachedCatalogImage(resolution: resolution, file: "\(name)-x86_64-\(build).qcow2", sha256: String(repeating: "1", count: 64),
                                        size: UInt64(bytes), downloaded: lastUsed, lastUsed: lastUsed)
        try Data(repeating: 7, count: bytes).write(to: URL(fileURLWithPath: cache.diskPath(record)))
        try cache.write(record)
        return record
    }

    @Test func pruneKeepsImagesInstancesUse() throws {
        let dir = try TemporaryDirectory("wisp-prune")
        let paths = WispPaths(environment: ["HOME": dir.path, "XDG_DATA_HOME": dir.file("data"), "XDG_CACHE_HOME": dir.file("cache"),
                                            "XDG_CONFIG_HOME": dir.file("config")])
        let images = CatalogImages(paths: paths)
        let cache = images.cache
        try cache.create()
        let day: TimeInterval = 86400
        let now = Date()
        let old = try Self.cached(cache, name: "debian-13", build: "20250801-2100", bytes: 1 << 20, lastUsed: now - 40 * day)
        let used = try Self.cached(cache, name: "debian-13", build: "20250814-2204", bytes: 2 << 20, lastUsed: now - 40 * day)
        let other = try Self.cached(cache, name: "debian-12", build: "20250804-2194", bytes: 3 << 20, lastUsed: now - day)
        // An instance based on the newer debian-13 build.
        let store = InstanceStore(paths: paths)
        let name = try store.claim(requested: "web", base: "debian-13")
        let spec = MachineSpec(cpus: 1, memoryBytes: 1 << 30, disks: [DiskAttachment(path: store.files(name).directory + "/disk.qcow2", format: .qcow2)],
                               forwards: [], boot: .direct(DirectBoot(kernel: "/k", initrd: "/i", commandLine: "ro")), accelerator: .tcg)
        try store.save(InstanceRecord(name: name, image: "debian-13", baseImagePath: cache.diskPath(used), spec: spec, bootMode: .direct,
                                      user: "me", hostname: name, sshPort: 2222, cloudInit: .disk, osName: "debian 13"))
        #expect(images.users()[URL(fileURLWithPath: cache.diskPath(used)).standardizedFileURL.path] == ["web"])

        // Default: only builds a newer one replaced.
        var pruned = images.prune(all: false, olderThan: nil, now: now)
        #expect(pruned.removed.map(\.resolution.build) == ["20250801-2100"])
        #expect(pruned.bytes >= 1 << 20)
        #expect(!FileManager.default.fileExists(atPath: cache.diskPath(old)))
        // --older-than 30d: debian-12 was used yesterday, the old debian-13 is in use.
        pruned = images.prune(all: false, olderThan: 30 * day, now: now)
        #expect(pruned.removed.isEmpty && pruned.kept.map(\.instances) == [["web"]])
        // --all: everything no instance uses, partial downloads included.
        try FileManager.default.createDirectory(atPath: cache.path + "/.staging", withIntermediateDirectories: true)
        try Data(repeating: 1, count: 4096).write(to: URL(fileURLWithPath: cache.path + "/.staging/abc-x.qcow2.part"))
        pruned = images.prune(all: true, olderThan: nil, now: now)
        #expect(pruned.removed.map(\.resolution.name) == ["debian-12"])
        #expect(pruned.partials == 1)
        #expect(pruned.bytes >= (3 << 20) + 4096)
        #expect(!FileManager.default.fileExists(atPath: cache.diskPath(other)))
        #expect(FileManager.default.fileExists(atPath: cache.diskPath(used)))
        #expect(cache.images().map(\.resolution.build) == ["20250814-2204"])
    }
}
