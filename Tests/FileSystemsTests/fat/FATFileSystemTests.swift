import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import FileSystems

@Suite struct FATFileSystemTests {
    @Test(arguments: [12, 16, 32])
    func readsEveryFileMtoolsWrote(fatBits: Int) throws {
        let fixture = try FATFixture(fatBits: fatBits)
        let device = try FileBlockDevice(path: fixture.image)
        #expect(try FileSystemProbe.probe(device) == .vfat)
        let fs = try #require(try FileSystemOpener.open(device) as? FATFileSystem)
        #expect(fs.variantName == "FAT\(fatBits)")
        let expected = try TreeSnapshot.host(fixture.source)
        let actual = try TreeSnapshot.guest(fs)
        #expect(actual.items.keys.sorted() == expected.items.keys.sorted())
        for (path, item) in expected.items {
            let found = actual.items[path]
            #expect(found == item, "\(path)")
        }
        // blkid is the judge of label, serial and FAT type.
        let blkid = try ToolRunner.check("blkid", ["-p", "-o", "export", fixture.image]).stdoutText
        let fields = Dictionary(blkid.split(separator: "\n").compactMap { line -> (String, String)? in
            let parts = line.split(separator: "=", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }, uniquingKeysWith: { a, _ in a })
        #expect(fs.label == fields["LABEL"])
        #expect(fs.uuid == fields["UUID"])
        #expect(fields["VERSION"] == fs.variantName)
    }

    @Test func metadataMatchesTheSource() throws {
        let fixture = try FATFixture(fatBits: 16)
        let fs = try FATFileSystem(device: FileBlockDevice(path: fixture.image))
        let lower = try fs.stat(path: "/lower.txt")
        #expect(lower.type == .regular)
        #expect(lower.modificationTime.seconds == 1_600_000_000)
        #expect(lower.permissions == 0o755)
        let root = try fs.stat(inode: fs.rootInode)
        #expect(root.type == .directory)
        let many = try fs.stat(path: "/many")
        #expect(many.type == .directory)
        #expect(many.linkCount == 2)
        #expect(root.linkCount == 2 + 4)   // a, empty dir, frag, many
        // Every file's mtime agrees with the host's within FAT's 2-second resolution.
        for name in try fs.list(directory: fs.resolve("/frag").inode).map(\.name) {
            let host = try FileManager.default.attributesOfItem(atPath: "\(fixture.source)/frag/\(name)")
            let hostTime = (host[.modificationDate] as? Date)?.timeIntervalSince1970 ?? -1
            let guest = try fs.stat(path: "/frag/\(name)").modificationTime.seconds
            #expect(abs(Double(guest) - hostTime) < 2.0, "\(name)")
        }
        // Inode numbers are stable directory entry offsets.
        let again = try fs.resolve("/a/b/c/d/e/deep file.txt").inode
        #expect(again == (try fs.resolve("/a/b/c/d/e/deep file.txt").inode))
        #expect(again % 32 == 0)
        // Ranged reads inside a fragmented file.
        let whole = try fs.readFile("/frag/fragmented.bin")
        let inode = try fs.resolve("/frag/fragmented.bin").inode
        #expect(try fs.read(inode: inode, offset: 12345, count: 20000) == Array(whole[12345..<32345]))
        #expect(try fs.read(inode: inode, offset: 59_990, count: 100).count == 10)
        #expect(try fs.read(inode: inode, offset: 70_000, count: 100).isEmpty)
    }

    @Test func shortNamesDecodeCodePage437AndCaseFlags() {
        #expect(FATName.cp437High.count == 128)
        var raw = Array("README  TXT".utf8)
        #expect(FATName.displayShortName(raw, caseFlags: 0) == "README.TXT")
        #expect(FATName.displayShortName(raw, caseFlags: 0x08) == "readme.TXT")
        #expect(FATName.displayShortName(raw, caseFlags: 0x18) == "readme.txt")
        raw = [0x43, 0x41, 0x46, 0x82, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20]
        #expect(FATName.displayShortName(raw, caseFlags: 0) == "CAFé")
        raw[0] = 0x05
        #expect(FATName.displayShortName(raw, caseFlags: 0) == "σAFé")
        #expect(FATName.shortNameChecksum(Array("MIXED   TXT".utf8)) == 70)   // computed independently in Python
        // 2020-09-13 12:26:40 UTC in FAT's encoding.
        let date: UInt16 = (40 << 9) | (9 << 5) | 13, time: UInt16 = (12 << 11) | (26 << 5) | 20
        #expect(FATTime.timestamp(date: date, time: time).seconds == 1_600_000_000)
        #expect(FATTime.timestamp(date: 0xFFFF, time: 0xFFFF).seconds > 0)
    }

    @Test func fragmentedFileReallyIsFragmented() throws {
        let fixture = try FATFixture(fatBits: 12)
        let fs = try FATFileSystem(device: FileBlockDevice(path: fixture.image))
        let inode = try fs.resolve("/frag/fragmented.bin").inode
        let record = try fs.record(inode: inode)
        let runs = try fs.fat.runs(from: record.firstCluster, what: "test")
        #expect(runs.count > 1)
    }

    @Test func longNameWithBadChecksumFallsBackToShortName() throws {
        let fixture = try FATFixture(fatBits: 16)
        let device = try FileBlockDevice(path: fixture.image, writable: true)
        let boot = try FATBootSector.parse(device)
        var root = try device.read(at: boot.rootDirOffset, count: Int(boot.rootDirBytes))
        // Find the short entry MIXED   TXT and break the checksum of the LFN entry before it.
        let short = Array("MIXED   TXT".utf8)
        let index = try #require(stride(from: 0, to: root.count, by: 32).first { Array(root[$0..<($0 + 11)]) == short })
        #expect(root[index - 32 + 11] == 0x0F)
        root[index - 32 + 13] ^= 0xFF
        try device.write(root, at: boot.rootDirOffset)
        let fs = try FATFileSystem(device: device)
        let names = try fs.list(directory: fs.rootInode).map(\.name)
        #expect(names.contains("MIXED.TXT"))
        #expect(!names.contains("MiXed.Txt"))
        #expect(names.contains("lower.txt"))
        // mtools agrees: it shows no long name for it either.
        let mdir = try ToolRunner.check("mdir", ["-i", fixture.image, "::/"], environment: FATFixture.mtoolsEnvironment).stdoutText
        #expect(!mdir.contains("MiXed.Txt"))
    }

    @Test func chainLoopIsAnErrorNotAHang() throws {
        let fixture = try FATFixture(fatBits: 16)
        let device = try FileBlockDevice(path: fixture.image, writable: true)
        let fs = try FATFileSystem(device: device)
        let inode = try fs.resolve("/big.bin").inode
        let record = try fs.record(inode: inode)
        let runs = try fs.fat.runs(from: record.firstCluster, what: "test")
        // Make the 10th cluster of the chain link back to the first.
        var cluster = record.firstCluster
        for _ in 0..<9 { cluster = try fs.fat.entry(cluster) }
        var link = [UInt8](repeating: 0, count: 2)
        link.putLE16(UInt16(record.firstCluster), at: 0)
        try device.write(link, at: fs.boot.fatOffset + UInt64(cluster) * 2)
        #expect(runs.count >= 1)
        let reopened = try FATFileSystem(device: device)
        // The file now has only 10 clusters before the loop; its chain must error on a
        // full walk and its size is never bigger than the chain can address.
        #expect(throws: WispError.self) { _ = try reopened.fat.runs(from: record.firstCluster, what: "test") }
        let size = try reopened.stat(inode: inode).size
        #expect(size == 700_000)
        // Reading follows the looping chain only as far as the size needs: bounded, no hang.
        #expect(try reopened.read(inode: inode, offset: 0, count: 700_000).count == 700_000)
    }

    @Test(arguments: [12, 16, 32])
    func seededCorruptionNeverCrashesOrHangs(fatBits: Int) throws {
        let fixture = try FATFixture(fatBits: fatBits)
        let pristineDevice = try FileBlockDevice(path: fixture.image)
        let boot = try FATBootSector.parse(pristineDevice)
        // The metadata: boot sector, FAT, root directory and the first data clusters
        // (where mtools put the subdirectories).
        let metadataEnd = Int(min(boot.dataOffset + 64 * boot.clusterSize, pristineDevice.size))
        let pristine = try pristineDevice.read(at: 0, count: metadataEnd)
        let regions: [Range<Int>] = [0..<512, Int(boot.fatOffset)..<Int(boot.fatOffset + min(boot.fatBytes, 8192)),
                                     Int(boot.rootDirOffset)..<metadataEnd]
        let device = try FileBlockDevice(path: fixture.image, writable: true)
        var generator = SplitMix64(seed: UInt64(fatBits) * 7919)
        var opened = 0, walked = 0
        let seeds = 150
        for _ in 0..<seeds {
            var bytes = pristine
            for _ in 0..<Int.random(in: 1...8, using: &generator) {
                let region = regions[Int.random(in: 0..<regions.count, using: &generator)]
                guard !region.isEmpty else { continue }
                bytes[Int.random(in: region, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            try device.write(bytes, at: 0)
            do {
                let fs = try FATFileSystem(device: device)
                opened += 1
                _ = try TreeSnapshot.guest(fs)
                walked += 1
            } catch is WispError {
                // A clear error is an acceptable outcome; a trap or a hang is not.
            }
        }
        #expect(opened > 0)
        #expect(walked <= opened)
        print("FAT\(fatBits) corruption: \(seeds) seeds, \(opened) opened, \(walked) walked without error")
    }
}

