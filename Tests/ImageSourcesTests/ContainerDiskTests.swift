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
    /// Several kernels: a unified kernel image in /usr/lib/modules/$KVER (Fedora's
    /// kernel-uki-virt), a plain one beside an initramfs, a UKI in /boot/EFI/Linux. Each gets
    /// a BLS entry (a UKI through `efi`), newest first as the default; every one can be
    /// chosen by id (`wisp run --entry`), and the UKI's plan is its sections with Wisp's
    /// root= instead of the UKI's own command line.
    @Test func everyKernelGetsAnEntryAndUnifiedImagesBootThroughEfi() async throws {
        let work = try TemporaryDirectory("wisp-container-kernels")
        let root = work.file("root")
        let fm = FileManager.default
        func put(_ path: String, _ bytes: [UInt8]) throws {
            try fm.createDirectory(atPath: (root + path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(bytes).write(to: URL(fileURLWithPath: root + path))
        }
        let uki = FakeKernel.uki(sections: [(".osrel", Array("ID=fedora\nVERSION_ID=42\n".utf8)), (".uname", Array("6.9.0-uki".utf8)),
                                            (".cmdline", Array("root=/dev/elsewhere ro".utf8)),
                                            (".linux", FakeKernel.bzImage(version: "6.9.0-uki")), (".initrd", Array(repeating: 7, count: 4096))])
        try put("/usr/lib/modules/6.9.0-uki/vmlinuz-virt.efi", uki)
        try put("/usr/lib/modules/6.1.0-plain/vmlinuz", FakeKernel.bzImage(version: "6.1.0-plain"))
        try put("/usr/lib/modules/6.1.0-plain/initramfs.img", Array(repeating: 9, count: 4096))
        try put("/boot/EFI/Linux/linux-5.10.0.efi", FakeKernel.uki(sections: [(".linux", FakeKernel.bzImage(version: "5.10.0"))]))
        try put("/usr/lib/bootc/kargs.d/10-a.toml", Array("kargs = [\"console=ttyS0\"]\n".utf8))
        try put("/etc/os-release", Array("NAME=Test\nID=test\n".utf8))
        try ToolRunner.check("umoci", ["init", "--layout", work.file("img")])
        try ToolRunner.check("umoci", ["new", "--image", work.file("img") + ":k"])
        try ToolRunner.check("umoci", ["insert", "--image", work.file("img") + ":k", root, "/"])
        let reference = "oci:\(work.file("img")):k"
        let image = try await OCIPuller(store: OCIBlobStore(root: work.file("store"))).pull(try OCIReference.parse(reference))
        let disk = work.file("disk.raw")
        let report = try ContainerDiskBuilder.build(image, reference: reference, options: ContainerDiskOptions(), requireKernel: true, to: disk)
        #expect(report.kernels.map(\.version) == ["6.9.0-uki", "6.1.0-plain", "linux-5.10.0"])
        #expect(report.kernels.map { $0.unified == true } == [true, false, true])
        #expect(report.bootEntry?.kernel.kernel == "/usr/lib/modules/6.9.0-uki/vmlinuz-virt.efi")
        #expect(!report.warnings.contains { $0.contains("initramfs") }, "a UKI carries its initrd: \(report.warnings)")
        try ContainerDiskJudge.checkWithRealTools(disk, work: work)

        let inspector = try GuestInspector(disk: try FileBlockDevice(path: disk))
        let guest = try inspector.inspect()
        #expect(guest.bootEntries.filter { $0.source == .bls }.map(\.id) == ["wisp-6.9.0-uki", "wisp-6.1.0-plain", "wisp-linux-5.10.0"])
        let plan = try inspector.bootPlan()
        #expect(plan.unifiedKernelImage == true && plan.kernelPath == "/usr/lib/modules/6.9.0-uki/vmlinuz-virt.efi")
        #expect(plan.commandLine == "root=UUID=\(report.filesystemUUID) rw console=ttyS0", "the UKI's own root= cannot name this disk")
        let plain = try inspector.bootPlan(entry: "wisp-6.1.0-plain")
        #expect(plain.kernelPath == "/usr/lib/modules/6.1.0-plain/vmlinuz" && plain.initrdPaths == ["/usr/lib/modules/6.1.0-plain/initramfs.img"])
        #expect(try inspector.bootPlan(entry: "wisp-linux-5.10.0").kernelPath == "/boot/EFI/Linux/linux-5.10.0.efi")
        #expect { try inspector.bootPlan(entry: "wisp-4.0") } throws: { ($0 as? WispError)?.kind == .notFound }
    }
    /// `rw` unless the image's kargs choose themselves; a UKI entry names it with `efi`.
    @Test func bootEntryText() throws {
        let uuid = UUID(uuidString: "12345678-1234-1234-1234-123456789ABC")!
        let plain = ContainerKernel(version: "6.1", kernel: "/usr/lib/modules/6.1/vmlinuz", initrd: "/usr/lib/modules/6.1/initramfs.img")
        #expect(ContainerBootEntry(kernel: plain, osName: "X", rootUUID: uuid, kernelArguments: ["quiet"]).options
                == ["root=UUID=12345678-1234-1234-1234-123456789abc", "rw", "quiet"])
        #expect(ContainerBootEntry(kernel: plain, osName: "X", rootUUID: uuid, kernelArguments: ["ro", "quiet"]).options
                == ["root=UUID=12345678-1234-1234-1234-123456789abc", "ro", "quiet"])
        let text = try ContainerBootEntry(kernel: plain, osName: "X", rootUUID: uuid, kernelArguments: []).text()
        #expect(text.contains("linux /usr/lib/modules/6.1/vmlinuz\ninitrd /usr/lib/modules/6.1/initramfs.img\n"))
        let uki = ContainerKernel(version: "6.9", kernel: "/boot/EFI/Linux/6.9.efi", initrd: nil, unified: true)
        let ukiText = try ContainerBootEntry(kernel: uki, osName: "X", rootUUID: uuid, kernelArguments: []).text()
        #expect(ukiText.contains("efi /boot/EFI/Linux/6.9.efi\n") && !ukiText.contains("linux ") && !ukiText.contains("initrd"))
        let hostile = ContainerKernel(version: "6.1", kernel: "/x\nlinux /evil", initrd: nil)
        #expect(throws: WispError.self) { try ContainerBootEntry(kernel: hostile, osName: "X", rootUUID: uuid, kernelArguments: []).text() }
    }
}
