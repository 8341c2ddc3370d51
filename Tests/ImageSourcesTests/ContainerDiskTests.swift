import Foundation
import GuestInspect
import ImageSources
import OCI
import Testing
import WispCore
import WispTestSupport

/// Container images to disks, judged by umoci (the tree), sgdisk (the table), e2fsck (the
/// filesystem) and Wisp's guest inspection (the boot entry `wisp run` will boot).
@Suite(.serialized) struct ContainerDiskTests {
    /// The synthetic layers (whiteouts, opaque directories, hard links across layers,
    /// xattrs, devices, sparse files, long names) through every local transport.
    @Test func syntheticLayersBecomeTheTreeUmociUnpacks() async throws {
        let fixture = try SharedFixture.get()
        let work = try TemporaryDirectory("wisp-container-disk")
        let archive = work.file("docker.tar")
        try fixture.copy(to: "docker-archive:\(archive):fixture:base")
        for reference in ["oci:\(fixture.layout):\(OCIFixture.tag)", "docker-archive:\(archive)"] {
            let image = try await OCIPuller(store: OCIBlobStore(root: work.file("store"))).pull(try OCIReference.parse(reference))
            let disk = work.file("disk.raw")
            let report = try ContainerDiskBuilder.build(image, reference: reference, options: ContainerDiskOptions(), to: disk)
            #expect(report.kernels.isEmpty && report.bootEntry == nil)
            #expect(report.warnings.contains { $0.contains("no kernel") }, "\(report.warnings)")
            try ContainerDiskJudge.checkWithRealTools(disk, work: work)
            var ours = try ContainerDiskJudge.records(disk)
            // umoci refuses to set security.selinux ("forbidden xattr"); Wisp keeps it.
            #expect(ours["pax/xattrs"]?.xattrs["security.selinux"] == Array("system_u:object_r:bin_t:s0".utf8))
            ours["pax/xattrs"]?.xattrs["security.selinux"] = nil
            #expect(fixture.judgeRecords.count > 40)
            let diff = ContainerDiskJudge.treeDifferences(disk: ours, umoci: fixture.judgeRecords)
            #expect(diff.isEmpty, "\(reference): \(diff.count) paths differ from umoci:\n\(diff.prefix(20).joined(separator: "\n"))")
            #expect(ours["hl/passwd-link"]?.links == ["etc/passwd", "hl/passwd-link"], "hard link across layers")
            #expect(ours["dev/loop0"]?.kind == "block 7,0" && ours["old/a"] == nil && ours["opq/lower1"] == nil)
            try FileManager.default.removeItem(atPath: disk)
        }
    }

    /// --bootable semantics: an image without a kernel is refused and nothing is left.
    @Test func requiringAKernelRefusesAnImageWithoutOne() async throws {
        let fixture = try SharedFixture.get()
        let work = try TemporaryDirectory("wisp-container-disk")
        let image = try await OCIPuller(store: OCIBlobStore(root: work.file("store")))
            .pull(try OCIReference.parse("oci:\(fixture.layout):\(OCIFixture.tag)"))
        let disk = work.file("disk.raw")
        #expect { try ContainerDiskBuilder.build(image, reference: "fixture", options: ContainerDiskOptions(), requireKernel: true, to: disk) }
            throws: { ($0 as? WispError)?.kind == .notFound }
        #expect(try FileManager.default.contentsOfDirectory(atPath: work.path).filter { $0.hasPrefix("disk") }.isEmpty)
        // A --size too small for the content is refused before anything is written.
        #expect { try ContainerDiskBuilder.build(image, reference: "fixture", options: ContainerDiskOptions(size: 4 << 20), to: disk) }
            throws: { ($0 as? WispError)?.kind == .invalidArgument }
    }

    /// The Debian test image's root arranged as a bootc image (kernel and initramfs under
    /// /usr/lib/modules/$KVER, two kargs.d files, one for aarch64 only), as an oci-archive.
    @Test func debianBootcImageBecomesABootableDisk() async throws {
        let fixture = try DebianBootcFixture.get()
        let work = try TemporaryDirectory("wisp-container-disk")
        let cache = ContainerDiskCache(images: ImageCacheDirectory(path: work.file("images")), store: OCIBlobStore(root: work.file("store")))
        let reference = "oci-archive:\(fixture.archive)"
        let base = try await cache.baseDisk(for: reference, requireKernel: true)
        #expect(base.built)
        let again = try await cache.baseDisk(for: reference, requireKernel: true)
        #expect(!again.built && again.path == base.path && again.report == base.report, "the second call uses the cache")
        let report = base.report
        let kernel = try #require(report.kernels.first)
        #expect(kernel.kernel == "/usr/lib/modules/\(fixture.kernelVersion)/vmlinuz")
        #expect(kernel.initrd == "/usr/lib/modules/\(fixture.kernelVersion)/initramfs.img")
        #expect(report.kernelArguments == ["console=ttyS0,115200", "quiet"], "match-architectures = [aarch64] is skipped on x86_64")

        try ContainerDiskJudge.checkWithRealTools(base.path, work: work)
        let diff = ContainerDiskJudge.treeDifferences(disk: try ContainerDiskJudge.records(base.path), umoci: try fixture.umociRecords())
        #expect(diff.isEmpty, "\(diff.count) paths differ from umoci:\n\(diff.prefix(20).joined(separator: "\n"))")

        // What `wisp inspect`, `wisp kernel extract` and `wisp run` read: the default entry
        // is Wisp's BLS entry and the boot plan is its kernel, initrd and options.
        let inspector = try GuestInspector(disk: try FileBlockDevice(path: base.path))
        let guest = try inspector.inspect()
        let entry = try #require(guest.defaultEntry.map { guest.bootEntries[$0] })
        #expect(entry.source == .bls && entry.configPath == "/boot/loader/entries/wisp-\(fixture.kernelVersion).conf")
        #expect(guest.filesystems.first?.uuid == report.filesystemUUID)
        #expect(guest.partitions.first?.typeGUID == "4f68bce3-e8cd-4db1-96e7-fbcaf984b709")
        let plan = try inspector.bootPlan()
        #expect(plan.kernelPath == kernel.kernel && plan.initrdPaths == [kernel.initrd!])
        #expect(plan.commandLine == "root=UUID=\(report.filesystemUUID) rw console=ttyS0,115200 quiet")
        #expect(guest.kernel?.qemuDirectBoot == true)
    }
}
