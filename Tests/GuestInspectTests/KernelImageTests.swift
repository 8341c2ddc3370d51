import Foundation
import GuestInspect
import Testing
import WispCompression
import WispCore
import WispTestSupport

@Suite struct KernelImageTests {
    @Test func bzImageHeader() throws {
        let k = FakeKernel.bzImage(version: "6.1.0-28-cloud-amd64")
        #expect(KernelImage.needsWholeFile(head: Array(k.prefix(KernelImage.headLength))) == false)
        let f = try KernelImage.facts(k, source: "vmlinuz")
        #expect(f.architecture == "x86_64")
        #expect(f.format == "bzImage")
        #expect(f.bootProtocol == "2.15")
        #expect(f.relocatable == true)
        #expect(f.has64BitEntry == true)
        #expect(f.versionString == "6.1.0-28-cloud-amd64 (wisp@test) #1 SMP")
        #expect(f.qemuDirectBoot)
    }

    @Test func fileAgreesWithOurBzImageReading() throws {
        // file(1) is an independent reader of the same header.
        let dir = try TemporaryDirectory()
        try Data(FakeKernel.bzImage(version: "6.12.3-arch1-1")).write(to: URL(fileURLWithPath: dir.file("vmlinuz")))
        let out = try ToolRunner.check("file", ["-b", dir.file("vmlinuz")]).stdoutText
        #expect(out.contains("Linux kernel x86 boot executable"))
        #expect(out.contains("6.12.3-arch1-1"))
    }

    @Test func oldProtocolHasNoVersionOrRelocation() throws {
        var k = FakeKernel.bzImage(version: "2.4.0", protocolVersion: 0x0204)
        k[0x234] = 0
        let f = try KernelImage.facts(k, source: "old")
        #expect(f.relocatable == nil)
        #expect(f.has64BitEntry == nil)
        #expect(f.architecture == "x86")
        #expect(f.bootProtocol == "2.04")
    }

    @Test func arm64ImageAndGzipImage() throws {
        let image = FakeKernel.arm64Image(version: "6.1.0-28-arm64")
        let plain = try KernelImage.facts(image, source: "Image")
        #expect(plain.architecture == "arm64")
        #expect(plain.format == "arm64 Image")
        #expect(plain.versionString?.hasPrefix("Linux version 6.1.0-28-arm64") == true)
        let dir = try TemporaryDirectory()
        let gz = try FakeKernel.compress(image, with: "gzip", in: dir.path)
        #expect(KernelImage.needsWholeFile(head: Array(gz.prefix(4096))))
        let f = try KernelImage.facts(gz, source: "vmlinuz")
        #expect(f.format == "gzip arm64 Image")
        #expect(f.qemuDirectBoot)
        #expect(f.versionString?.hasPrefix("Linux version 6.1.0-28-arm64") == true)
    }

    @Test(arguments: ["gzip", "zstd"])
    func efiZbootUnwraps(method: String) throws {
        let dir = try TemporaryDirectory()
        let image = FakeKernel.arm64Image(version: "6.12.0-0.rc1.fc42.aarch64")
        let payload = try FakeKernel.compress(image, with: method, in: dir.path)
        let zboot = FakeKernel.zboot(payload: payload, method: method)
        let f = try KernelImage.facts(zboot, source: "vmlinuz")
        #expect(f.format == "EFI zboot (\(method))")
        #expect(f.architecture == "arm64")
        #expect(f.versionString?.contains("6.12.0-0.rc1.fc42.aarch64") == true)
        let (m, inner) = try KernelImage.unwrapZboot(zboot, source: "vmlinuz")
        #expect(m == method)
        #expect(inner == image)
    }

    @Test func truncatedZbootIsAClearError() throws {
        var zboot = FakeKernel.zboot(payload: [1, 2, 3, 4], method: "gzip")
        zboot.putLE32(0x10000, at: 12)  // payload size past the end
        #expect {
            try KernelImage.facts(zboot, source: "vmlinuz")
        } throws: { error in
            "\(error)".contains("vmlinuz: EFI zboot header at offset 8: payload 512+65536 lies outside the 516-byte file")
        }
    }

    @Test func unknownFormatIsReportedNotCrashed() throws {
        let f = try KernelImage.facts([UInt8](repeating: 0x41, count: 100), source: "junk")
        #expect(f.format == "unknown")
        #expect(!f.qemuDirectBoot)
    }

    @Test func ukiSectionsAndHostileSectionTable() throws {
        let kernel = FakeKernel.bzImage(version: "6.11.4-301.fc41.x86_64")
        let uki = FakeKernel.uki(sections: [(".osrel", Array("ID=fedora\nVERSION_ID=41\n".utf8)),
                                            (".cmdline", Array("root=UUID=abc ro quiet\0".utf8)),
                                            (".uname", Array("6.11.4-301.fc41.x86_64".utf8)),
                                            (".linux", kernel), (".initrd", Array("initrd bytes".utf8))])
        let pe = try PEImage(uki, source: "x.efi")
        #expect(pe.architecture == "x86_64")
        #expect(pe.sectionBytes(".linux", bytes: uki) == kernel)
        #expect(pe.sectionText(".cmdline", bytes: uki) == "root=UUID=abc ro quiet")
        let f = try KernelImage.facts(uki, source: "x.efi")
        #expect(f.format == "unified kernel image")
        #expect(f.versionString == "6.11.4-301.fc41.x86_64")
        // A section pointing past the end of the file.
        var bad = uki
        bad.putLE32(0x7fff_0000, at: 0x80 + 24 + 240 + 20)
        #expect(throws: WispError.self) { try PEImage(bad, source: "bad.efi") }
    }
}
