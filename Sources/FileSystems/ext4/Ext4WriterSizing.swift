import WispCore

/// A size and inode count for an image that will hold a known tree with room to spare.
public struct Ext4ImagePlan: Sendable, Equatable {
    public var size: UInt64
    public var inodeCount: UInt32

    public init(size: UInt64, inodeCount: UInt32) {
        self.size = size
        self.inodeCount = inodeCount
    }
}

extension Ext4Writer {
    /// Plans an image for `entryCount` entries (everything a tar scan counts, directories
    /// included, removed ones too), `directoryCount` of them directories, and `fileBytes`
    /// of regular-file contents: every block the writer can need (each file's last partial
    /// block, directory blocks and their index, extent and attribute blocks, inode tables,
    /// the journal, bitmaps and descriptors), then `headroomPercent` more space and half
    /// as many inodes again, rounded up to whole MiB.
    public static func plan(fileBytes: UInt64, entryCount: Int, directoryCount: Int,
                            headroomPercent: Int = 20) throws -> Ext4ImagePlan {
        guard entryCount >= 0, directoryCount >= 0, directoryCount <= entryCount else {
            throw WispError.invalidArgument("ext4 image plan: \(directoryCount) directories among \(entryCount) entries makes no sense")
        }
        guard (0...1000).contains(headroomPercent) else {
            throw WispError.invalidArgument("ext4 image plan: headroom \(headroomPercent)% is outside 0...1000")
        }
        let blockSize = UInt64(Ext4WriterGeometry.blockSize)
        let entries = UInt64(entryCount)
        let inodes = entries + entries / 2 + 1024
        guard inodes <= UInt64(UInt32.max) / 2, fileBytes <= Ext4WriterGeometry.maximumBlocks * blockSize else {
            throw WispError.invalidArgument("ext4 image plan: \(entryCount) entries and \(fileBytes) bytes are beyond what the writer makes")
        }
        let dataBlocks = (fileBytes + blockSize - 1) / blockSize + entries
        // Names average well under 40 bytes; index blocks and half-full leaves on top.
        let directoryBlocks = UInt64(directoryCount) * 2 + entries * 48 / blockSize + 8
        let otherBlocks = entries / 16 + 64
        let inodeTableBlocks = inodes * UInt64(Ext4WriterGeometry.inodeSize) / blockSize
        let content = dataBlocks + directoryBlocks + otherBlocks + inodeTableBlocks
        var blocks = content + content * UInt64(headroomPercent) / 100
        // Journal, bitmaps and descriptors depend on the size they are part of.
        for _ in 0..<2 {
            let probe = max(blocks, Ext4WriterGeometry.minimumBlocks)
            let groups = (probe + Ext4WriterGeometry.blocksPerGroup - 1) / Ext4WriterGeometry.blocksPerGroup
            let journal = Ext4WriterGeometry.journalBlocks(forFilesystemBlocks: probe)
            blocks = content + content * UInt64(headroomPercent) / 100 + journal + groups * 4 + 256
        }
        var size = max(blocks * blockSize, 32 << 20)
        size = (size + (1 << 20) - 1) / (1 << 20) * (1 << 20)
        // Many inodes in little space can exceed what a group's inode table holds: grow
        // until the geometry takes them.
        for _ in 0..<64 {
            if (try? Ext4WriterGeometry(byteSize: size, requestedInodes: UInt32(inodes), source: "plan")) != nil {
                return Ext4ImagePlan(size: size, inodeCount: UInt32(inodes))
            }
            size = (size + size / 8 + (1 << 20) - 1) / (1 << 20) * (1 << 20)
        }
        throw WispError.invalidArgument("ext4 image plan: found no geometry for \(entryCount) entries and \(fileBytes) bytes")
    }
}
