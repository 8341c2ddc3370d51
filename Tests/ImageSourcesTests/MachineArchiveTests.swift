import Foundation
import Testing
import DiskImage
import WispCore
import WispTestSupport
@testable import ImageSources

/// OVAs and Vagrant boxes as image sources: fixtures made by qemu-img, tar and gzip (and
/// sha256sum for OVA manifests); the disks Wisp unpacks into the cache are judged by
/// `qemu-img compare` against the originals.
@Suite struct MachineArchiveTests {
    /// A 4 MiB raw disk with a few MiB-spread non-zero pieces, and its qcow2.
    static func disk(_ dir: TemporaryDirectory, _ name: String, seed: UInt64) throws -> (raw: String, qcow2: String) {
        let raw = dir.file("\(name).raw")
        var bytes = [UInt8](repeating: 0, count: 4 << 20)
        var rng = SplitMix64(seed: seed)
        for piece in 0..<8 {
            let start = piece * (512 << 10) + Int(rng.next() % 4096)
            for i in 0..<8192 { bytes[start + i] = UInt8(truncatingIfNeeded: rng.next()) }
        }
        try Data(bytes).write(to: URL(fileURLWithPath: raw))
        let qcow2 = dir.file("\(name).qcow2")
        try ToolRunner.check("qemu-img", ["convert", "-q", "-f", "raw", "-O", "qcow2", raw, qcow2])
        return (raw, qcow2)
    }

    /// A box: `files` (name -> source path) put into a directory, tarred (gzipped unless plain).
    static func box(_ dir: TemporaryDirectory, _ name: String, files: [(String, String)], metadata: String?,
                    gzip: Bool = true, extraTarArguments: [String] = []) throws -> String {
        let content = dir.file("\(name).d")
        try FileManager.default.createDirectory(atPath: content, withIntermediateDirectories: true)
        var members: [String] = []
        if let metadata {
            try Data(metadata.utf8).write(to: URL(fileURLWithPath: "\(content)/metadata.json"))
            members.append("./metadata.json")
        }
        try Data("Vagrant.configure(\"2\") do |config| end\n".utf8).write(to: URL(fileURLWithPath: "\(content)/Vagrantfile"))
        members.append("./Vagrantfile")
        for (member, source) in files {
            try ToolRunner.check("cp", ["--sparse=always", source, "\(content)/\(member)"])
            members.append("./\(member)")
        }
        let box = dir.file("\(name).box")
        try ToolRunner.check("tar", ["-C", content] + extraTarArguments + [gzip ? "-czf" : "-cf", box] + members)
        return box
    }

    static func cache(_ dir: TemporaryDirectory) -> ImageCacheDirectory { ImageCacheDirectory(path: dir.file("cache")) }

    static func resolve(_ path: String, _ dir: TemporaryDirectory) async throws -> ResolvedImage {
        try await LocalFileSource(reference: path).resolve(ImageResolveContext(cache: cache(dir)))
    }

    static func expectKind(_ kind: WispError.Kind, _ what: String, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("\(what): accepted")
        } catch let error as WispError {
            #expect(error.kind == kind, "\(what): \(error)")
        } catch {
            Issue.record("\(what): \(error)")
        }
    }

    @Test func libvirtBoxUnpacksOnceAndQemuAgrees() async throws {
        let dir = try TemporaryDirectory("wisp-box")
        let (_, qcow2) = try Self.disk(dir, "a", seed: 1)
        let metadata = #"{"provider": "libvirt", "format": "qcow2", "virtual_size": 1}"#
        for gzip in [true, false] {
            let box = try Self.box(dir, gzip ? "gz" : "plain", files: [("box.img", qcow2)], metadata: metadata, gzip: gzip)
            #expect(MachineArchiveProbe.kind(of: box) == .box)
            let resolved = try await Self.resolve(box, dir)
            let archive = try #require(resolved.archive)
            #expect(archive.kind == .box && archive.provider == "libvirt")
            #expect(archive.sha256 == String(try ToolRunner.check("sha256sum", [box]).stdoutText.prefix(64)))
            #expect(resolved.path.hasPrefix(Self.cache(dir).path + "/archives/\(archive.sha256)/"))
            #expect(resolved.format == .qcow2 && resolved.origin == .machineArchive(reference: box) && resolved.origin.isFromOutside)
            try ToolRunner.check("qemu-img", ["compare", "-q", qcow2, resolved.path])
            // The second resolve reuses the entry: nothing is unpacked again.
            let announced = LockedValue(0)
            let again = try await LocalFileSource(reference: box).resolve(
                ImageResolveContext(cache: Self.cache(dir), announce: { _ in announced.withLock { $0 += 1 } }))
            #expect(again.path == resolved.path && announced.withLock { $0 } == 0)
        }
        // No staging directory is left behind.
        let entries = try FileManager.default.contentsOfDirectory(atPath: Self.cache(dir).path + "/archives")
        #expect(entries.allSatisfy { !$0.hasPrefix(".") }, "\(entries)")
    }

    @Test func virtualboxBoxConvertsItsVmdkAndTakesTheOvfMachine() async throws {
        let dir = try TemporaryDirectory("wisp-vbox")
        let (raw, _) = try Self.disk(dir, "v", seed: 2)
        let vmdk = dir.file("box-disk001.vmdk")
        try ToolRunner.check("qemu-img", ["convert", "-q", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, vmdk])
        let ovf = Self.ovf(disks: ["box-disk001.vmdk"], cpus: 3, memoryMiB: 768)
        let ovfPath = dir.file("box.ovf")
        try Data(ovf.utf8).write(to: URL(fileURLWithPath: ovfPath))
        let box = try Self.box(dir, "vbox", files: [("box.ovf", ovfPath), ("box-disk001.vmdk", vmdk)],
                               metadata: #"{"provider": "virtualbox"}"#)
        let resolved = try await Self.resolve(box, dir)
        let archive = try #require(resolved.archive)
        #expect(archive.provider == "virtualbox" && archive.cpus == 3 && archive.memoryBytes == 768 << 20)
        #expect(resolved.format == .qcow2)
        try ToolRunner.check("qemu-img", ["compare", "-q", "-f", "raw", raw, resolved.path])
    }

    static func ovf(disks: [String], cpus: Int, memoryMiB: Int) -> String {
        let files = disks.enumerated().map { #"<File ovf:href="\#($1)" ovf:id="file\#($0)"/>"# }.joined()
        let entries = disks.indices.map {
            #"<Disk ovf:capacity="4" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk\#($0)" ovf:fileRef="file\#($0)"/>"#
        }.joined()
        return """
            <?xml version="1.0"?>
            <Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
              <References>\(files)</References>
              <DiskSection><Info>d</Info>\(entries)</DiskSection>
              <VirtualSystem ovf:id="vm"><VirtualHardwareSection>
                <Item><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>\(cpus)</rasd:VirtualQuantity></Item>
                <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>\(memoryMiB)</rasd:VirtualQuantity></Item>
              </VirtualHardwareSection></VirtualSystem>
            </Envelope>
            """
    }

    @Test func ovaOfTwoDisksBecomesTwoQcow2s() async throws {
        let dir = try TemporaryDirectory("wisp-ova2")
        var raws: [String] = []
        for (index, name) in ["one", "two"].enumerated() {
            let (raw, _) = try Self.disk(dir, name, seed: UInt64(10 + index))
            try ToolRunner.check("qemu-img", ["convert", "-q", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, dir.file("\(name).vmdk")])
            raws.append(raw)
        }
        try Data(Self.ovf(disks: ["one.vmdk", "two.vmdk"], cpus: 2, memoryMiB: 1536).utf8).write(to: URL(fileURLWithPath: dir.file("vm.ovf")))
        var manifest = ""
        for file in ["vm.ovf", "one.vmdk", "two.vmdk"] {
            manifest += "SHA256(\(file))= \(try ToolRunner.check("sha256sum", [dir.file(file)]).stdoutText.prefix(64))\n"
        }
        try Data(manifest.utf8).write(to: URL(fileURLWithPath: dir.file("vm.mf")))
        let ova = dir.file("vm.ova")
        try ToolRunner.check("tar", ["-C", dir.path, "--format=ustar", "-cf", ova, "vm.ovf", "one.vmdk", "two.vmdk", "vm.mf"])
        #expect(MachineArchiveProbe.kind(of: ova) == .ova)
        let resolved = try await Self.resolve(ova, dir)
        let archive = try #require(resolved.archive)
        #expect(archive.kind == .ova && archive.disks.count == 2 && archive.cpus == 2 && archive.memoryBytes == 1536 << 20)
        for (raw, disk) in zip(raws, archive.disks) {
            try ToolRunner.check("qemu-img", ["compare", "-q", "-f", "raw", "-F", "qcow2", raw, disk])
        }
        // A plain disk image is not an archive and never touches the cache's archives.
        #expect(MachineArchiveProbe.kind(of: raws[0]) == nil)
    }

    @Test func hostileBoxesAreRefusedInASentence() async throws {
        let dir = try TemporaryDirectory("wisp-hostile-box")
        let (_, qcow2) = try Self.disk(dir, "h", seed: 3)
        let libvirt = #"{"provider": "libvirt", "format": "qcow2", "virtual_size": 1}"#

        // A name that climbs out of the archive (GNU tar keeps it with -P).
        let climbing = try Self.box(dir, "climb", files: [("box.img", qcow2)], metadata: libvirt,
                                    extraTarArguments: ["-P", "--transform", "s,^./box.img$,../../box.img,"])
        #expect(try ToolRunner.check("tar", ["-tzf", climbing]).stdoutText.contains("../../box.img"))
        await Self.expectKind(.corrupt, "a ../ name") { _ = try await Self.resolve(climbing, dir) }
        #expect(!FileManager.default.fileExists(atPath: dir.file("box.img")))

        // No disk at all; a disk that is a symbolic link; a provider Wisp does not read.
        let empty = try Self.box(dir, "empty", files: [], metadata: libvirt)
        await Self.expectKind(.corrupt, "no box.img") { _ = try await Self.resolve(empty, dir) }
        let linked = dir.file("link.d")
        try FileManager.default.createDirectory(atPath: linked, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(linked)/box.img", withDestinationPath: "/etc/passwd")
        try Data(libvirt.utf8).write(to: URL(fileURLWithPath: "\(linked)/metadata.json"))
        let linkBox = dir.file("link.box")
        try ToolRunner.check("tar", ["-C", linked, "-czf", linkBox, "metadata.json", "box.img"])
        await Self.expectKind(.corrupt, "box.img as a symlink") { _ = try await Self.resolve(linkBox, dir) }
        let vmware = try Self.box(dir, "vmware", files: [("box.img", qcow2)], metadata: #"{"provider": "vmware_desktop"}"#)
        await Self.expectKind(.unsupported, "vmware_desktop") { _ = try await Self.resolve(vmware, dir) }
        let wrongFormat = try Self.box(dir, "fmt", files: [("box.img", qcow2)], metadata: #"{"provider": "libvirt", "format": "raw"}"#)
        await Self.expectKind(.corrupt, "format raw but qcow2") { _ = try await Self.resolve(wrongFormat, dir) }

        // A box.img naming a host file as its backing file.
        let overlay = dir.file("overlay.qcow2")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", "-b", qcow2, "-F", "qcow2", overlay])
        let backed = try Self.box(dir, "backed", files: [("box.img", overlay)], metadata: libvirt)
        do {
            _ = try await Self.resolve(backed, dir)
            Issue.record("a box.img with a backing file was accepted")
        } catch let error as WispError {
            #expect(error.kind == .permissionDenied && error.message.contains(qcow2), "\(error)")
        }

        // metadata.json of 100 KiB.
        let huge = "{\"provider\": \"libvirt\", \"pad\": \"" + String(repeating: "x", count: 100 << 10) + "\"}"
        let hugeBox = try Self.box(dir, "huge", files: [("box.img", qcow2)], metadata: huge)
        await Self.expectKind(.corrupt, "huge metadata.json") { _ = try await Self.resolve(hugeBox, dir) }

        // Nothing half-made stays in the cache.
        let archives = Self.cache(dir).path + "/archives"
        let left = (try? FileManager.default.contentsOfDirectory(atPath: archives)) ?? []
        #expect(left.isEmpty, "\(left)")
    }

    @Test func decompressionBombsStopAtTheirBound() async throws {
        let dir = try TemporaryDirectory("wisp-bomb")
        // A qcow2 declaring 1 MiB, followed by 64 MiB of zeros (a few KiB gzipped).
        let small = dir.file("small.qcow2")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", small, "1M"])
        try ToolRunner.check("truncate", ["-s", "64M", small])
        let bomb = try Self.box(dir, "bomb", files: [("box.img", small)], metadata: #"{"provider": "libvirt"}"#)
        let bombSize = try FileBlockDevice(path: bomb).size
        #expect(bombSize <= 1 << 20)
        let started = Date()
        await Self.expectKind(.corrupt, "qcow2 past its declared size") { _ = try await Self.resolve(bomb, dir) }
        #expect(Date().timeIntervalSince(started) < 20)

        // 64 MiB of zeros in a member Wisp only reads past, under a 32 MiB total bound.
        let (_, qcow2) = try Self.disk(dir, "ok", seed: 4)
        let filler = dir.file("filler")
        try ToolRunner.check("truncate", ["-s", "64M", filler])
        let padded = try Self.box(dir, "padded", files: [("box.img", qcow2), ("padding.bin", filler)], metadata: #"{"provider": "libvirt"}"#)
        var archiveCache = MachineArchiveCache(cache: Self.cache(dir))
        archiveCache.limits.maxTotalBytes = 32 << 20
        do {
            _ = try archiveCache.importArchive(padded, kind: .box)
            Issue.record("a box past the total bound was accepted")
        } catch let error as WispError {
            #expect(error.kind == .corrupt, "\(error)")
        }
    }

    @Test func corruptedBoxesNeverTrapOrHang() async throws {
        let dir = try TemporaryDirectory("wisp-fuzz-box")
        let (_, qcow2) = try Self.disk(dir, "f", seed: 5)
        let good = try Self.box(dir, "good", files: [("box.img", qcow2)], metadata: #"{"provider": "libvirt", "virtual_size": 1}"#)
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        var rng = SplitMix64(seed: 12)
        let started = Date()
        for round in 0..<60 {
            var bytes = original
            for _ in 0..<(1 + round % 4) {
                let at = Int(rng.next() % UInt64(min(bytes.count, 8192)))
                bytes[at] = UInt8(truncatingIfNeeded: rng.next())
            }
            if round % 10 == 9 { bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count)))) }
            let path = dir.file("fuzz.box")
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let cache = ImageCacheDirectory(path: dir.file("cache-\(round)"))
            _ = try? MachineArchiveCache(cache: cache).importIfArchive(path)
        }
        #expect(Date().timeIntervalSince(started) < 60)
    }
}
