import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import DiskImage

/// Disk formats Wisp does not read are refused by name; files that are no disk image at
/// all are refused with one sentence; genuine raw disks (zeros, MBR, GPT, bare
/// filesystems, ISO 9660, noise) still probe as raw. Samples qemu-img can write come from
/// qemu-img; the others are built here from their format descriptions, and qemu-img info
/// confirms it recognises each built sample as that format.
@Suite struct ForeignContentTests {
    static func write(_ path: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static func refusal(_ path: String) -> WispError? {
        do {
            _ = try DiskImageFile.probe(path)
            return nil
        } catch let error as WispError {
            return error
        } catch {
            return WispError(.failed, "\(error)")
        }
    }

    /// What qemu-img probes the file as.
    static func qemuFormat(_ path: String) throws -> String? {
        let r = try ToolRunner.run("qemu-img", ["info", "--output=json", path])
        let json = try? JSONSerialization.jsonObject(with: Data(r.stdoutText.utf8)) as? [String: Any]
        return json?["format"] as? String
    }

    static func be(_ v: UInt64, _ width: Int) -> [UInt8] { (0..<width).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64(width - 1 - $0))) } }
    static func le(_ v: UInt64, _ width: Int) -> [UInt8] { (0..<width).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }
    static func padded(_ s: String, _ n: Int) -> [UInt8] { Array(s.utf8) + [UInt8](repeating: 0, count: n - s.utf8.count) }

    /// Formats qemu-img creates itself.
    @Test(arguments: [("parallels", "Parallels"), ("qed", "QED"), ("qcow", "qcow (version 1)")])
    func qemuWrittenFormatsAreRefusedByName(format: String, named: String) throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("disk.img")
        try Qemu.img("create", "-q", "-f", format, path, "16M")
        let error = try #require(Self.refusal(path))
        #expect(error.kind == .unsupported)
        #expect(error.message.contains("is a \(named) disk image, which Wisp does not read"), "\(error.message)")
        // Every command path goes through the chain resolver; so does open.
        #expect(throws: WispError.self) { _ = try DiskImageFile.open(path) }
    }

    @Test func luksIsRefusedByName() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("secret.luks")
        // cryptsetup with a fixed PBKDF count: qemu-img's luks benchmark fails on a loaded
        // machine ("Unable to get accurate CPU usage").
        try ToolRunner.check("truncate", ["-s", "8M", path])
        try ToolRunner.check("cryptsetup", ["luksFormat", "--type", "luks1", "--batch-mode", "--pbkdf-force-iterations", "1000",
                                            "--key-file=-", path], input: Data("pw".utf8))
        let error = try #require(Self.refusal(path))
        #expect(error.kind == .unsupported && error.message.contains("LUKS-encrypted volume"), "\(error.message)")
    }

    /// Bochs growing image header (qemu's bochs.c layout): magic, type, subtype, version 2.0,
    /// header size, catalog of one 512-byte-extent entry.
    @Test func bochsIsRefusedByName() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("disk.bochs")
        var h = Self.padded("Bochs Virtual HD Image", 32) + Self.padded("Redolog", 16) + Self.padded("Growing", 16)
        h += Self.le(0x0002_0000, 4) + Self.le(512, 4)
        h += Self.le(1, 4) + Self.le(1, 4) + Self.le(4096, 4) + Self.le(0, 4) + Self.le(4096, 8)
        h += [UInt8](repeating: 0, count: 512 - h.count)
        try Self.write(path, h + [0xFF, 0xFF, 0xFF, 0xFF] + [UInt8](repeating: 0, count: 508))
        #expect(try Self.qemuFormat(path) == "bochs")
        let error = try #require(Self.refusal(path))
        #expect(error.kind == .unsupported && error.message.contains("a Bochs disk image"), "\(error.message)")
    }

    /// cloop v2: qemu's 128-byte shell header, then block size and count (big-endian), then
    /// the offsets table.
    @Test func cloopIsRefusedByName() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("disk.cloop")
        let script = "#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"
        var b = Self.padded(script, 128) + Self.be(512, 4) + Self.be(1, 4)
        let dataStart = UInt64(b.count + 16)
        b += Self.be(dataStart, 8) + Self.be(dataStart + 8, 8) + [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]
        try Self.write(path, b)
        #expect(try Self.qemuFormat(path) == "cloop")
        let error = try #require(Self.refusal(path))
        #expect(error.kind == .unsupported && error.message.contains("a cloop compressed image"), "\(error.message)")
    }

    /// DMG (UDIF): data, then the 512-byte "koly" trailer (version 4, header size 512).
    @Test func dmgIsRefusedByName() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("disk.dmg")
        var koly = Array("koly".utf8) + Self.be(4, 4) + Self.be(512, 4)
        koly += [UInt8](repeating: 0, count: 512 - koly.count)
        try Self.write(path, [UInt8](repeating: 0x33, count: 4096) + koly)
        let error = try #require(Self.refusal(path))
        #expect(error.kind == .unsupported && error.message.contains("an Apple disk image (DMG)"), "\(error.message)")
    }

    @Test func androidSparseIsRefusedByName() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("system.simg")
        let header = [0x3A, 0xFF, 0x26, 0xED, 0x01, 0x00, 0x00, 0x00] + Self.le(28, 2) + Self.le(12, 2) + Self.le(4096, 4)
        try Self.write(path, header + [UInt8](repeating: 0, count: 1024))
        let error = try #require(Self.refusal(path))
        #expect(error.kind == .unsupported && error.message.contains("simg2img"), "\(error.message)")
    }

    /// Real files made by real tools: each refused with one sentence saying what it is.
    @Test func nonDiskFilesAreRefusedWithOneSentence() throws {
        let dir = try TemporaryDirectory()
        let notes = dir.file("notes.txt")
        try Data(String(repeating: "Remember: the VM needs 2 GiB of memory. Grüße\n", count: 200).utf8).write(to: URL(fileURLWithPath: notes))
        let html = dir.file("debian.qcow2")
        try Data("<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>\n".utf8).write(to: URL(fileURLWithPath: html))
        try ToolRunner.check("tar", ["-cf", dir.file("bundle.tar"), "-C", dir.path, "notes.txt"])
        var cases: [(String, String)] = [
            (notes, "notes.txt is a text file, not a disk image"),
            (html, "is an HTML page"),
            (dir.file("bundle.tar"), "is a tar archive, not a disk image; extract the disk image from it first (tar -xf"),
        ]
        // Compressors on a binary disk image: what downloads actually look like.
        let raw = dir.file("disk.raw")
        try ToolRunner.check("truncate", ["-s", "4M", raw])
        try ToolRunner.check("sgdisk", ["-q", "-n", "1:2048:", raw])
        for (tool, suffix, args, says) in [("gzip", "gz", ["-k"], "gunzip -k"), ("xz", "xz", ["-k", "-0"], "xz -dk"),
                                           ("zstd", "zst", ["-q", "-k"], "zstd -d"), ("bzip2", "bz2", ["-k"], "bunzip2 -k")] {
            try ToolRunner.check(tool, args + [raw])
            cases.append((raw + "." + suffix, "-compressed file, not a disk image; decompress it first (\(says) \(raw).\(suffix))"))
        }
        try ToolRunner.check("zip", ["-q", "-j", dir.file("disk.zip"), raw])
        cases.append((dir.file("disk.zip"), "is a zip archive"))
        try Self.write(dir.file("tiny.img"), [0x00, 0x01, 0x02, 0xFF, 0xFE])
        cases.append((dir.file("tiny.img"), "tiny.img is 5 bytes, shorter than one 512-byte sector"))
        try Self.write(dir.file("empty.img"), [])
        cases.append((dir.file("empty.img"), "is 0 bytes"))
        for (path, says) in cases {
            let error = try #require(Self.refusal(path), "\(path) was not refused")
            #expect(error.kind == .invalidArgument, "\(path): \(error.kind)")
            #expect(error.message.contains(says), "\(path): \(error.message)")
            #expect(!error.message.dropLast().contains("\n"), "one sentence: \(error.message)")
            #expect(throws: WispError.self) { _ = try ImageInfo.read(path: path) }
        }
        // Saying the format is the way out for anyone who really means raw.
        #expect(try DiskImageFile.open(notes, format: .raw).size > 0)
    }

    /// What genuine raw disks look like: none may be refused.
    @Test func genuineRawDisksStayRaw() throws {
        let dir = try TemporaryDirectory()
        var disks: [String] = []
        func make(_ name: String, _ size: String = "8M") throws -> String {
            let p = dir.file(name)
            try ToolRunner.check("truncate", ["-s", size, p])
            disks.append(p)
            return p
        }
        _ = try make("zeros.raw")
        try ToolRunner.check("sgdisk", ["-q", "-n", "1:2048:", try make("gpt.raw")])
        try ToolRunner.check("sfdisk", ["-q", try make("mbr.raw")], input: Data("2048,,L\n".utf8))
        try ToolRunner.check("mkfs.ext4", ["-q", "-F", try make("ext4.raw")])
        try ToolRunner.check("mkfs.vfat", [try make("fat.raw")])
        try ToolRunner.check("mkfs.xfs", ["-q", "-f", try make("xfs.raw", "300M")])
        let isoDir = dir.file("iso-tree")
        try FileManager.default.createDirectory(atPath: isoDir, withIntermediateDirectories: false)
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: isoDir + "/README.txt"))
        let iso = dir.file("seed.iso")
        try ToolRunner.check("xorriso", ["-as", "mkisofs", "-quiet", "-V", "cidata", "-o", iso, isoDir])
        disks.append(iso)
        var rng = SplitMix64(seed: 12)
        let noise = dir.file("noise.raw")
        try Self.write(noise, (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &rng) })
        disks.append(noise)
        // A test pattern at the start (qemu-io write -P 0x42): printable, but not text.
        try Qemu.io(try make("pattern.raw"), format: "raw", "write -P 0x42 0 1M")
        try Self.write(dir.file("sector.raw"), [UInt8](repeating: 0, count: 512))
        disks.append(dir.file("sector.raw"))
        for disk in disks {
            #expect(Self.refusal(disk) == nil, "\(disk): \(Self.refusal(disk)?.message ?? "")")
            #expect(try DiskImageFile.probe(disk) == .raw, "\(disk)")
            #expect(try Self.qemuFormat(disk) == "raw", "\(disk)")
        }
    }

    /// A VMDK text descriptor need not start with "# Disk DescriptorFile": qemu takes
    /// comments and blank lines, then "version=N". It is VMDK, not a text file.
    @Test func descriptorWithoutTheUsualFirstLineIsVmdk() throws {
        let dir = try TemporaryDirectory()
        let flat = dir.file("disk-flat.vmdk")
        try ToolRunner.check("truncate", ["-s", "1M", flat])
        let descriptor = dir.file("disk.vmdk")
        try Data("""
            # written by hand
            \u{20}
            version=1
            CID=fffffffe
            parentCID=ffffffff
            createType="monolithicFlat"

            RW 2048 FLAT "disk-flat.vmdk" 0

            ddb.adapterType = "ide"

            """.utf8).write(to: URL(fileURLWithPath: descriptor))
        #expect(try Self.qemuFormat(descriptor) == "vmdk")
        #expect(try DiskImageFile.probe(descriptor) == .vmdk)
        #expect(try DiskImageFile.open(descriptor).size == 1 << 20)
    }
}
