import Foundation
import WispCore
import WispTestSupport
@testable import FileSystems

/// Builds FAT images the way users do: a generated source tree copied in with mtools onto
/// a volume made by mkfs.vfat, then fragmented by deleting and re-adding files. The source
/// tree is kept in step, so it is the judge of what the reader must find.
struct FATFixture {
    let directory: TemporaryDirectory
    let image: String
    let source: String

    /// mtools must see UTF-8 names and write times as UTC, like the reader reads them.
    static let mtoolsEnvironment = ["LC_ALL": "C.UTF-8", "TZ": "UTC", "MTOOLS_SKIP_CHECK": "1"]

    init(fatBits: Int, label: String = "WISPTEST") throws {
        directory = try TemporaryDirectory("fat\(fatBits)")
        image = directory.file("fat.img")
        source = directory.file("src")
        try Self.makeTree(source)
        switch fatBits {
        case 12: try ToolRunner.check("mkfs.vfat", ["-C", "-F", "12", "-n", label, image, "4000"])
        case 16: try ToolRunner.check("mkfs.vfat", ["-C", "-F", "16", "-n", label, image, "20000"])
        default: try ToolRunner.check("mkfs.vfat", ["-C", "-F", "32", "-s", "1", "-S", "512", "-n", label, image, "40000"])
        }
        let top = try FileManager.default.contentsOfDirectory(atPath: source).sorted().map { "\(source)/\($0)" }
        try mtools("mcopy", ["-s", "-m", "-i", image] + top + ["::/"])
        try fragment()
    }

    func mtools(_ tool: String, _ arguments: [String]) throws {
        try ToolRunner.check(tool, arguments, environment: Self.mtoolsEnvironment)
    }

    static func pseudoRandomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }

    static func write(_ path: String, _ bytes: [UInt8], mtime: Date? = nil) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw WispError(.io, "\(path): cannot write fixture")
        }
        if let mtime {
            try FileManager.default.setAttributes([.modificationDate: mtime], ofItemAtPath: path)
        }
    }

    static func makeTree(_ root: String) throws {
        let when = Date(timeIntervalSince1970: 1_600_000_000)   // 2020-09-13 12:26:40 UTC
        try write("\(root)/lower.txt", Array("all lowercase short name\n".utf8), mtime: when)
        try write("\(root)/UPPER.TXT", Array("upper\n".utf8))
        try write("\(root)/MiXed.Txt", Array("mixed case needs a long name\n".utf8))
        try write("\(root)/café.txt", Array("an OEM short name\n".utf8))
        try write("\(root)/日本語のファイル名.txt", Array("日本語\n".utf8))
        try write("\(root)/Ünïcödé long name with spaces.data", pseudoRandomBytes(5000, seed: 1))
        try write("\(root)/name.with.many.dots.tar.gz", pseudoRandomBytes(100, seed: 2))
        try write("\(root)/empty", [])
        try write("\(root)/a/b/c/d/e/deep file.txt", Array("deep\n".utf8))
        try FileManager.default.createDirectory(atPath: "\(root)/empty dir", withIntermediateDirectories: true)
        try write("\(root)/big.bin", pseudoRandomBytes(700_000, seed: 3))
        for i in 0..<150 {
            try write("\(root)/many/a rather long file name number \(i).txt", Array("file \(i)\n".utf8))
        }
    }

    /// Writes small files, deletes every other one, and then adds files that must fill
    /// the holes: their chains jump around the volume.
    func fragment() throws {
        for i in 0..<12 {
            let path = "\(source)/frag/piece\(i).bin"
            try Self.write(path, Self.pseudoRandomBytes(5000, seed: UInt64(100 + i)))
        }
        try mtools("mmd", ["-i", image, "::/frag"])
        for i in 0..<12 {
            try mtools("mcopy", ["-m", "-i", image, "\(source)/frag/piece\(i).bin", "::/frag/piece\(i).bin"])
        }
        for i in stride(from: 0, to: 12, by: 2) {
            try mtools("mdel", ["-i", image, "::/frag/piece\(i).bin"])
            try FileManager.default.removeItem(atPath: "\(source)/frag/piece\(i).bin")
        }
        let fragmented = "\(source)/frag/fragmented.bin"
        try Self.write(fragmented, Self.pseudoRandomBytes(60_000, seed: 7))
        try mtools("mcopy", ["-m", "-i", image, fragmented, "::/frag/fragmented.bin"])
    }
}

/// Every file and directory under a root, by path, as the judge compares them.
struct TreeSnapshot: Equatable, CustomStringConvertible {
    struct Item: Equatable {
        var isDirectory: Bool
        var size: UInt64
        var bytes: [UInt8]
    }
    var items: [String: Item] = [:]

    var description: String { items.keys.sorted().joined(separator: "\n") }

    static func host(_ root: String) throws -> TreeSnapshot {
        var snapshot = TreeSnapshot()
        let enumerator = FileManager.default.enumerator(atPath: root)
        while let relative = enumerator?.nextObject() as? String {
            let path = "\(root)/\(relative)"
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            let bytes = isDirectory.boolValue ? [] : Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            snapshot.items["/" + relative] = Item(isDirectory: isDirectory.boolValue, size: UInt64(bytes.count), bytes: bytes)
        }
        return snapshot
    }

    /// Walks `fs` from the root, reading every file in 64 KiB pieces, with a visited set
    /// and depth limit so corrupt volumes with directory cycles still end.
    static func guest(_ fs: any FileSystem) throws -> TreeSnapshot {
        var snapshot = TreeSnapshot()
        var visited: Set<UInt64> = [fs.rootInode]
        func walk(_ inode: UInt64, _ prefix: String, depth: Int) throws {
            guard depth < 32 else { return }
            for entry in try fs.list(directory: inode) {
                let path = prefix + "/" + entry.name
                let info = try fs.stat(inode: entry.inode)
                if info.type == .directory {
                    snapshot.items[path] = Item(isDirectory: true, size: 0, bytes: [])
                    if visited.insert(entry.inode).inserted { try walk(entry.inode, path, depth: depth + 1) }
                } else {
                    var bytes: [UInt8] = []
                    var offset: UInt64 = 0
                    while true {
                        let piece = try fs.read(inode: entry.inode, offset: offset, count: 65536)
                        bytes += piece
                        offset += UInt64(piece.count)
                        if piece.count < 65536 { break }
                    }
                    snapshot.items[path] = Item(isDirectory: false, size: info.size, bytes: bytes)
                }
            }
        }
        try walk(fs.rootInode, "", depth: 0)
        return snapshot
    }
}
