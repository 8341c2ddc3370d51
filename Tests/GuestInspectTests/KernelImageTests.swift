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
        #expect(f.hasEntry64Bit == true)
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
        #expect(f.hasEntry64Bit == nil)
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

/// The guest architecture, read from kernels and from ELF executables.
@Suite struct GuestArchitectureDetectionTests {
    @Test func kernelsNameTheirArchitecture() throws {
        #expect(try KernelImage.facts(FakeKernel.bzImage(version: "6.1.0"), source: "k").guestArchitecture == .x86_64)
        let arm = try KernelImage.facts(FakeKernel.arm64Image(version: "6.1.0-28-arm64"), source: "Image")
        #expect(arm.guestArchitecture == .aarch64)
        // The arm64 Image header fields, as FakeKernel wrote them in the kernel's layout.
        #expect(arm.textOffset == 0x80000)
        #expect(arm.imageSize == 16 << 10)
        #expect(arm.imageFlags == 0xa)
        #expect(arm.compression == nil)
        var riscv = [UInt8](repeating: 0, count: 0x40)
        riscv.replaceSubrange(0x30..<0x34, with: Array("RSC\u{05}".utf8))
        #expect(try KernelImage.facts(riscv, source: "Image").guestArchitecture == .riscv64)
        // 32-bit x86 has no guest architecture Wisp names.
        var old = FakeKernel.bzImage(version: "2.4.0", protocolVersion: 0x0204)
        old[0x234] = 0
        #expect(try KernelImage.facts(old, source: "old").guestArchitecture == nil)
    }

    /// zboot as drivers/firmware/efi/libstub/zboot-header.S lays it out: "MZ\0\0", "zimg",
    /// payload offset, payload size, two reserved words, the compression name at 0x18,
    /// LINUX_PE_MAGIC at 0x38 and the PE header's offset at 0x3c; payloads by the real tools.
    @Test(arguments: ["gzip", "zstd"])
    func zbootWithTheKernelsHeaderLayout(method: String) throws {
        let dir = try TemporaryDirectory()
        let image = FakeKernel.arm64Image(version: "6.12.9-arm64")
        let payload = try FakeKernel.compress(image, with: method, in: dir.path)
        var zboot = FakeKernel.zboot(payload: payload, method: method)
        zboot.putLE32(0x8182_23cd, at: 0x38)  // LINUX_PE_MAGIC
        let f = try KernelImage.facts(zboot, source: "vmlinuz")
        #expect(f.guestArchitecture == .aarch64)
        #expect(f.compression == method)
        #expect(f.imageSize == 16 << 10)
        #expect(try KernelImage.unwrapZboot(zboot, source: "vmlinuz").kernel == image)
    }

    @Test func zbootWithoutADecoderIsUnsupported() {
        let zboot = FakeKernel.zboot(payload: [0x5d, 0, 0, 0x80, 0], method: "lzma")
        #expect {
            try KernelImage.unwrapZboot(zboot, source: "vmlinuz")
        } throws: { error in
            (error as? WispError)?.kind == .unsupported
        }
    }

    @Test func gzipArm64ImageIsDecompressedToTheBareImage() throws {
        let dir = try TemporaryDirectory()
        let image = FakeKernel.arm64Image(version: "6.1.0-28-arm64")
        let gz = try FakeKernel.compress(image, with: "gzip", in: dir.path)
        #expect(try KernelImage.gunzipArm64Image(gz, source: "vmlinuz") == image)
        #expect(try KernelImage.facts(gz, source: "vmlinuz").compression == "gzip")
        let notArm = try FakeKernel.compress(FakeKernel.bzImage(version: "6.1"), with: "gzip", in: dir.path)
        #expect(try KernelImage.gunzipArm64Image(notArm, source: "x") == nil)
    }

    /// Judge: the host's own /bin/true, as the host's kernel sees it.
    @Test func hostExecutableIsTheHostsArchitecture() throws {
        let head = Array(try Data(contentsOf: URL(fileURLWithPath: "/bin/true")).prefix(64))
        let header = try ELFHeader(head, source: "/bin/true")
        #expect(header.architecture == GuestArchitecture.host)
        #expect(header.architecture != nil)
    }

    /// An aarch64 ELF header built by hand (gABI: e_ident, e_type, e_machine = 183), and
    /// file(1) agreeing about what it is.
    @Test func aarch64ELFHeader() throws {
        var elf = [UInt8](repeating: 0, count: 64)
        elf.replaceSubrange(0..<4, with: [0x7f, 0x45, 0x4c, 0x46])
        elf[4] = 2; elf[5] = 1; elf[6] = 1  // ELFCLASS64, little endian, EV_CURRENT
        elf[16] = 3  // ET_DYN
        elf[18] = 183  // EM_AARCH64
        elf[20] = 1  // e_version
        #expect(try ELFHeader(elf, source: "init").architecture == .aarch64)
        let dir = try TemporaryDirectory()
        try Data(elf).write(to: URL(fileURLWithPath: dir.file("init")))
        #expect(try ToolRunner.check("file", ["-b", dir.file("init")]).stdoutText.contains("ARM aarch64"))
        var riscv = elf
        riscv[18] = 243
        #expect(try ELFHeader(riscv, source: "init").architecture == .riscv64)
        var be = elf
        be[5] = 2
        #expect(try ELFHeader(be, source: "init").architecture == nil)
    }

    @Test func hostileELFIsAnError() {
        for bytes in [[], [0x7f, 0x45, 0x4c, 0x46], [0x7f, 0x45, 0x4c, 0x46, 9, 1] + [UInt8](repeating: 0, count: 20),
                      Array("#!/bin/sh\n".utf8)] as [[UInt8]] {
            #expect(throws: WispError.self) { try ELFHeader(bytes, source: "init") }
        }
    }

    @Test func loongarchPEIsNamed() throws {
        let uki = FakeKernel.uki(sections: [(".linux", [1, 2, 3])], machine: 0x6264)
        #expect(try PEImage(uki, source: "x").architecture == "loongarch64")
    }
}
