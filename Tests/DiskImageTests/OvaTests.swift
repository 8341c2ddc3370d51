import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import DiskImage

/// OVA import (tar + OVF + manifest, the disk read from inside the archive) and export,
/// judged by tar, sha256sum and qemu-img.
@Suite struct OvaTests {
    static let ovf = """
        <?xml version="1.0"?>
        <Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
          <References><File ovf:href="disk.vmdk" ovf:id="file1"/></References>
          <DiskSection><Info>d</Info><Disk ovf:capacity="40" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/></DiskSection>
          <VirtualSystem ovf:id="vm"><VirtualHardwareSection>
            <Item><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
            <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>2048</rasd:VirtualQuantity></Item>
          </VirtualHardwareSection></VirtualSystem>
        </Envelope>
        """

    /// An OVA made by GNU tar from a qemu-img stream-optimized VMDK, with a `digest` manifest.
    static func makeOva(in dir: TemporaryDirectory, digest: String) throws -> (ova: String, raw: String) {
        let raw = try VmdkReadTests.source(in: dir)
        try Qemu.img("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, dir.file("disk.vmdk"))
        try Data(ovf.utf8).write(to: URL(fileURLWithPath: dir.file("vm.ovf")))
        var manifest = ""
        for file in ["vm.ovf", "disk.vmdk"] {
            let sum = try ToolRunner.check("\(digest.lowercased())sum", [dir.file(file)]).stdoutText.split(separator: " ")[0]
            manifest += "\(digest)(\(file))= \(sum)\n"
        }
        try Data(manifest.utf8).write(to: URL(fileURLWithPath: dir.file("vm.mf")))
        let ova = dir.file("vm.ova")
        try ToolRunner.check("tar", ["-C", dir.path, "--format=ustar", "-cf", ova, "vm.ovf", "disk.vmdk", "vm.mf"])
        return (ova, raw)
    }

    @Test(arguments: ["SHA256", "SHA1"])
    func importFromTar(digest: String) throws {
        let dir = try TemporaryDirectory()
        let (ova, raw) = try Self.makeOva(in: dir, digest: digest)
        let archive = try OvaArchive(path: ova)
        #expect(archive.descriptor.cpus == 2)
        #expect(archive.descriptor.memoryBytes == 2048 << 20)
        #expect(archive.descriptor.disks.first?.capacity == 40 << 20)
        #expect(archive.descriptor.disks.first?.href == "disk.vmdk")
        let disk = try DiskImageFile.open(ova)
        let reference = try FileBlockDevice(path: raw)
        #expect(disk.size == reference.size)
        #expect(try disk.read(at: 0, count: Int(disk.size)) == reference.read(at: 0, count: Int(reference.size)))
    }

    @Test func manifestMismatchRefused() throws {
        let dir = try TemporaryDirectory()
        let (_, _) = try Self.makeOva(in: dir, digest: "SHA256")
        try Data("SHA256(disk.vmdk)= \(String(repeating: "0", count: 64))\n".utf8).write(to: URL(fileURLWithPath: dir.file("vm.mf")))
        let ova = dir.file("bad.ova")
        try ToolRunner.check("tar", ["-C", dir.path, "-cf", ova, "vm.ovf", "disk.vmdk", "vm.mf"])
        do {
            _ = try DiskImageFile.open(ova)
            Issue.record("an OVA whose manifest does not match was opened")
        } catch let error as WispError {
            #expect(error.kind == .digestMismatch)
        }
    }

    @Test func exportReimportAndQemuReads() throws {
        let dir = try TemporaryDirectory()
        let raw = try VmdkReadTests.source(in: dir)
        let ova = dir.file("out.ova")
        try OvaWriter.export(try DiskImageFile.open(raw), to: ova, machine: .init(name: "test <vm>", cpus: 3, memoryMiB: 512))
        let archive = try OvaArchive(path: ova)
        #expect(archive.descriptor.cpus == 3)
        #expect(archive.descriptor.memoryBytes == 512 << 20)
        let reimported = try DiskImageFile.open(ova)
        #expect(try reimported.read(at: 0, count: Int(reimported.size)) == FileBlockDevice(path: raw).read(at: 0, count: Int(reimported.size)))
        // tar extracts it, sha256sum -c agrees with the manifest, qemu-img reads the VMDK.
        let out = dir.file("x")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try ToolRunner.check("tar", ["-C", out, "-xf", ova])
        let listing = try ToolRunner.check("tar", ["-tf", ova]).stdoutText.split(separator: "\n")
        #expect(listing.first == "out.ovf")
        let manifest = try String(contentsOfFile: "\(out)/out.mf", encoding: .utf8)
        let sha = manifest.replacingOccurrences(of: #"SHA256\((.*)\)= (.*)"#, with: "$2  $1", options: .regularExpression)
        try Data(sha.utf8).write(to: URL(fileURLWithPath: "\(out)/check.sha256"))
        #expect(try ToolRunner.run("sh", ["-c", "cd \(out) && sha256sum -c check.sha256"]).status == 0)
        try Qemu.check("\(out)/out-disk1.vmdk")
        try Qemu.compare(raw, "\(out)/out-disk1.vmdk")
    }

    @Test func hostileArchives() throws {
        let dir = try TemporaryDirectory()
        let (ova, _) = try Self.makeOva(in: dir, digest: "SHA256")
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: ova)))
        var rng = SplitMix64(seed: 9)
        for _ in 0..<100 {
            var bytes = original
            for _ in 0..<4 {
                let at = Int(rng.next() % 4096)
                bytes[at] = UInt8(truncatingIfNeeded: rng.next())
            }
            let path = dir.file("h.ova")
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            _ = try? DiskImageFile.open(path)
        }
        // An OVF with an entity bomb and absurd capacity.
        let bomb = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]><Envelope><DiskSection><Disk diskId=\"1\" fileRef=\"f\" capacity=\"99999999999999999999\"/></DiskSection>&c;</Envelope>"
        #expect(throws: WispError.self) { try OvfDescriptor.parse(Array(bomb.utf8), name: "bomb") }
        // Foundation's XMLParser crashes on a processing instruction without data; they are blanked first.
        let pis = "<?xml version=\"1.0\"?>\n<?x?><Envelope><?y?><References><File ovf:id=\"f\" ovf:href=\"d.vmdk\"/></References>"
            + "<DiskSection><Disk ovf:diskId=\"1\" ovf:fileRef=\"f\" ovf:capacity=\"1\" ovf:capacityAllocationUnits=\"byte * 2^30\"/></DiskSection></Envelope>"
        let parsed = try OvfDescriptor.parse(Array(pis.utf8), name: "pis")
        #expect(parsed.disks.map(\.capacity) == [1 << 30])
        #expect(throws: WispError.self) { try OvfDescriptor.parse(Array("<Envelope><?x".utf8), name: "open") }
    }

    /// Found by the ovf fuzz target: one byte that is not UTF-8 in a namespace prefix made
    /// Foundation's XMLParser trap (a force-unwrapped name). The descriptor is the one the
    /// real tar carries in the OVA; the hostile change is that byte.
    @Test func invalidUTF8InANameIsRefusedNotATrap() throws {
        let dir = try TemporaryDirectory()
        let (ova, _) = try Self.makeOva(in: dir, digest: "SHA256")
        let index = try TarIndex(FileBlockDevice(path: ova))
        let member = try #require(index.member("vm.ovf"))
        var descriptor = try FileBlockDevice(path: ova).read(at: member.offset, count: Int(member.size))
        #expect(try OvfDescriptor.parse(descriptor, name: "vm.ovf").disks.count == 1)
        let prefix = Array("xmlns:rasd".utf8)
        let at = try #require((0...(descriptor.count - prefix.count)).first { Array(descriptor[$0..<($0 + prefix.count)]) == prefix })
        descriptor.insert(0xFF, at: at + prefix.count)
        let error = #expect(throws: WispError.self) { try OvfDescriptor.parse(descriptor, name: "vm.ovf") }
        #expect(error?.kind == .corrupt)
        #expect(error?.message == "vm.ovf: OVF descriptor at offset \(at + prefix.count): is not valid UTF-8 (byte 0xff)")
    }

    /// Found by the ovf fuzz target: a declaration libxml cannot parse (`<?xml >`) followed
    /// by a processing instruction without data made Foundation's XMLParser read a NULL
    /// pointer (the preflight took both for one declaration and kept the instruction).
    @Test func malformedDeclarationIsRefusedNotACrash() throws {
        let dir = try TemporaryDirectory()
        let (ova, _) = try Self.makeOva(in: dir, digest: "SHA256")
        let index = try TarIndex(FileBlockDevice(path: ova))
        let member = try #require(index.member("vm.ovf"))
        let descriptor = String(decoding: try FileBlockDevice(path: ova).read(at: member.offset, count: Int(member.size)), as: UTF8.self)
        #expect(descriptor.hasPrefix("<?xml version=\"1.0\"?>"))
        let hostile = Array(descriptor.replacingOccurrences(of: "<?xml version=\"1.0\"?>", with: "<?xml ><?l?>").utf8)
        let error = #expect(throws: WispError.self) { try OvfDescriptor.parse(hostile, name: "vm.ovf") }
        #expect(error?.message == "vm.ovf: OVF descriptor at offset 0: a malformed XML declaration")
        // Declarations with every legal form of quoting and spacing still parse.
        for declaration in ["<?xml version='1.0' encoding=\"UTF-8\" standalone='yes'?>", "<?xml  version = \"1.0\" ?>"] {
            let fine = Array(descriptor.replacingOccurrences(of: "<?xml version=\"1.0\"?>", with: declaration).utf8)
            #expect(try OvfDescriptor.parse(fine, name: "vm.ovf").disks.count == 1)
        }
    }
}
