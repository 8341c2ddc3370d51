import Foundation
import Testing
import DiskImage
import Partitions
import WispCore
import WispTestSupport
@testable import FileSystems

/// The ext4 root (p1) of the real Debian test image (scripts/make-test-image), read through
/// the qcow2 reader and the GPT: fails, never skips, without WISP_TEST_IMAGE.
@Suite struct Ext4TestImageTests {
    @Test func rootOfTheTestImage() throws {
        let disk = try DiskImageFile.open(try TestImage.path())
        let table = try PartitionTable.read(from: disk)
        let p1 = try #require(table.partition(number: 1))
        let fs = try Ext4Reader(device: try p1.device(on: disk))
        #expect(fs.typeName == "ext4")
        #expect(fs.uuid == "57495350-0001-4000-8000-000000000001")
        #expect(fs.warnings.isEmpty)
        let osRelease = String(decoding: try fs.readFile("/etc/os-release"), as: UTF8.self)
        #expect(osRelease.contains("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\""))
        let usrBin = try fs.resolve("/usr/bin").inode
        let entries = try fs.list(directory: usrBin)
        #expect(entries.count > 200)
        for name in ["bash", "ls", "cloud-init", "ssh"] {
            #expect(entries.contains { $0.name == name }, "/usr/bin/\(name)")
        }
        for entry in entries {
            let info = try fs.stat(inode: entry.inode)
            #expect(info.type == entry.type, "/usr/bin/\(entry.name): entry type matches the inode")
            if info.type == .symlink { #expect(try !fs.readlink(inode: entry.inode).isEmpty) }
        }
        // /bin is a symlink to usr/bin on Debian 12 (merged /usr).
        #expect(try fs.resolve("/bin/bash").inode == (try fs.resolve("/usr/bin/bash").inode))
        let bash = try fs.readFile("/usr/bin/bash")
        #expect(bash.starts(with: [0x7F, 0x45, 0x4C, 0x46]), "bash is an ELF file")
    }
}
