import WispCore

/// Where a tree starts: the logical address of its root node and that node's level.
struct BtrfsTreeRoot: Sendable, Equatable {
    var bytenr: UInt64
    var level: UInt8
    /// For fs trees: the objectid of the subvolume's top directory (256).
    var rootDirID: UInt64 = 256
}

/// One verified tree block (node or leaf). The header has been checked: checksum, own
/// address, filesystem UUID, level and item count; item keys are strictly increasing.
struct BtrfsNode: Sendable {
    static let headerSize = 101
    static let leafItemSize = 25
    static let keyPointerSize = 33

    let bytes: [UInt8]
    let logical: UInt64
    let level: UInt8
    let count: Int
    let reader: ByteReader

    static func parse(_ bytes: [UInt8], logical: UInt64, physical: UInt64, expectedLevel: UInt8,
                      superblock sb: BtrfsSuperblock, source: String) throws -> BtrfsNode {
        let r = ByteReader(bytes, source: source, structure: "btrfs tree block at logical \(logical)", baseOffset: physical)
        let stored = try r.u32le(0)
        let computed = CRC32C.checksum(bytes[32...])
        guard stored == computed else {
            throw r.error(at: 0, "crc32c mismatch (stored 0x\(String(stored, radix: 16)), computed 0x\(String(computed, radix: 16)))")
        }
        guard try r.array(32, 16) == sb.metadataUUID else { throw r.error(at: 32, "block belongs to another filesystem (fsid mismatch)") }
        guard try r.u64le(48) == logical else {
            throw r.error(at: 48, "block records its address as \(try r.u64le(48)), expected \(logical)")
        }
        let level = try r.u8(100)
        guard level == expectedLevel else { throw r.error(at: 100, "level \(level), expected \(expectedLevel)") }
        let count = Int(try r.u32le(96))
        let itemSize = level == 0 ? leafItemSize : keyPointerSize
        guard count <= (bytes.count - headerSize) / itemSize, level == 0 || count >= 1 else {
            throw r.error(at: 96, "\(count) items do not fit a \(bytes.count)-byte \(level == 0 ? "leaf" : "node")")
        }
        let node = BtrfsNode(bytes: bytes, logical: logical, level: level, count: count, reader: r)
        var previous: BtrfsKey?
        for i in 0..<count {
            let key = try node.key(i)
            if let previous, !(previous < key) { throw r.error(at: headerSize + i * itemSize, "key \(key) does not follow \(previous)") }
            previous = key
            if level == 0 {
                let (offset, size) = try node.itemLocation(i)
                guard offset >= headerSize + count * leafItemSize || size == 0 else {
                    throw r.error(at: headerSize + i * leafItemSize + 17, "item data at \(offset) overlaps the item headers")
                }
            }
        }
        return node
    }

    func key(_ index: Int) throws -> BtrfsKey {
        try BtrfsKey.parse(reader, at: BtrfsNode.headerSize + index * (level == 0 ? BtrfsNode.leafItemSize : BtrfsNode.keyPointerSize))
    }

    /// Byte range of a leaf item's data within the block.
    func itemLocation(_ index: Int) throws -> (offset: Int, size: Int) {
        let at = BtrfsNode.headerSize + index * BtrfsNode.leafItemSize
        let offset = Int(try reader.u32le(at + 17)) + BtrfsNode.headerSize, size = Int(try reader.u32le(at + 21))
        guard offset <= bytes.count, size <= bytes.count - offset else {
            throw reader.error(at: at + 17, "item data \(offset)+\(size) runs past the block")
        }
        return (offset, size)
    }

    func item(_ index: Int) throws -> ByteReader {
        let (offset, size) = try itemLocation(index)
        return try reader.sub(offset, size, structure: "btrfs leaf item")
    }

    func childPointer(_ index: Int) throws -> UInt64 {
        try reader.u64le(BtrfsNode.headerSize + index * BtrfsNode.keyPointerSize + 17)
    }
}
