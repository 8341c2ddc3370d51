import WispCore

/// Extended attributes as ext4 stores them: names as a prefix index plus the rest,
/// sorted by (index, name length, name), the ones that fit in the inode's spare 96 bytes
/// there and the others in one attribute block. POSIX ACLs are converted from the xattr
/// form (version 2, 8-byte entries) to ext4's compact one.
enum Ext4WriterXattrs {
    static let magic: UInt32 = 0xEA02_0000
    static let blockHeaderSize = 32
    static let entryHeaderSize = 16

    /// Longest prefix first, so "system.posix_acl_access" wins over "system.".
    private static let prefixes: [(name: String, index: UInt8)] = [
        ("system.posix_acl_access", 2), ("system.posix_acl_default", 3),
        ("user.", 1), ("trusted.", 4), ("security.", 6),
    ]

    /// Validated, encoded and sorted entries for `xattrs`.
    static func entries(_ xattrs: [String: [UInt8]], path: String) throws -> [Ext4XattrEntry] {
        var result: [Ext4XattrEntry] = []
        for (fullName, value) in xattrs {
            guard let prefix = prefixes.first(where: { fullName.hasPrefix($0.name) }) else {
                throw WispError.invalidArgument("\(path): extended attribute \"\(fullName)\" is not in a namespace ext4 stores (user., trusted., security., system.posix_acl_access, system.posix_acl_default)")
            }
            let rest = Array(fullName.utf8.dropFirst(prefix.name.utf8.count))
            let isACL = prefix.index == 2 || prefix.index == 3
            if isACL {
                guard rest.isEmpty else {
                    throw WispError.invalidArgument("\(path): extended attribute \"\(fullName)\" is not a POSIX ACL name")
                }
            } else {
                guard !rest.isEmpty, rest.count <= 255, !rest.contains(0) else {
                    throw WispError.invalidArgument("\(path): extended attribute name \"\(fullName)\" must have 1...255 bytes (no NUL) after its prefix")
                }
            }
            guard value.count <= Ext4Reader.maxXattrValue else {
                throw WispError.invalidArgument("\(path): extended attribute \"\(fullName)\" has a \(value.count)-byte value, more than \(Ext4Reader.maxXattrValue)")
            }
            let stored = isACL ? try ext4ACL(fromXattr: value, name: fullName, path: path) : value
            result.append(Ext4XattrEntry(index: prefix.index, name: rest, value: stored))
        }
        result.sort { a, b in
            if a.index != b.index { return a.index < b.index }
            if a.name.count != b.name.count { return a.name.count < b.name.count }
            return a.name.lexicographicallyPrecedes(b.name)
        }
        return result
    }

    static func entrySize(_ entry: Ext4XattrEntry) -> Int { (entryHeaderSize + entry.name.count + 3) & ~3 }
    static func valueSize(_ entry: Ext4XattrEntry) -> Int { (entry.value.count + 3) & ~3 }

    /// Splits sorted entries between the inode (as many as fit, in order) and a block.
    /// Throws when the block overflows too.
    static func split(_ entries: [Ext4XattrEntry], path: String) throws -> (inode: [Ext4XattrEntry], block: [Ext4XattrEntry]) {
        // Magic and the four-byte terminator come off the inode's spare bytes.
        var inodeRoom = Ext4WriterInode.xattrAreaSize - 8
        var blockRoom = Ext4WriterGeometry.blockSize - blockHeaderSize - 4
        var inInode: [Ext4XattrEntry] = []
        var inBlock: [Ext4XattrEntry] = []
        for entry in entries {
            let need = entrySize(entry) + valueSize(entry)
            if need <= inodeRoom && inBlock.isEmpty {
                inInode.append(entry)
                inodeRoom -= need
            } else if need <= blockRoom {
                inBlock.append(entry)
                blockRoom -= need
            } else {
                let total = entries.reduce(0) { $0 + entrySize($1) + valueSize($1) }
                throw WispError.invalidArgument("\(path): extended attributes take \(total) bytes, more than ext4 holds in an inode and one \(Ext4WriterGeometry.blockSize)-byte attribute block")
            }
        }
        return (inInode, inBlock)
    }

    /// The in-inode area: magic, entries, terminator, values packed down from the end
    /// (offsets count from the first entry).
    static func inodeArea(_ entries: [Ext4XattrEntry]) -> [UInt8] {
        guard !entries.isEmpty else { return [] }
        var area = [UInt8](repeating: 0, count: Ext4WriterInode.xattrAreaSize)
        area.putLE32(magic, at: 0)
        pack(entries, into: &area, entriesStart: 4, valuesBase: 4)
        return area
    }

    /// An attribute block for one inode (refcount 1), checksummed with its block number.
    static func block(_ entries: [Ext4XattrEntry], blockNumber: UInt64, filesystemSeed: UInt32) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: Ext4WriterGeometry.blockSize)
        block.putLE32(magic, at: 0)
        block.putLE32(1, at: 4)   // h_refcount
        block.putLE32(1, at: 8)   // h_blocks
        let hashes = pack(entries, into: &block, entriesStart: blockHeaderSize, valuesBase: 0)
        // ext4_xattr_rehash: the block hash folds the entry hashes.
        var blockHash: UInt32 = 0
        for hash in hashes {
            if hash == 0 { blockHash = 0; break }
            blockHash = (blockHash << 16) ^ (blockHash >> 16) ^ hash
        }
        block.putLE32(blockHash, at: 12)
        var crc = Ext4Checksums.crc32c(filesystemSeed, le64: blockNumber)
        crc = Ext4Checksums.crc32c(crc, block)
        block.putLE32(crc, at: 16)
        return block
    }

    /// Writes entries from `entriesStart` and values from the end of `area` downwards;
    /// value offsets are relative to `valuesBase`. Returns the entry hashes.
    @discardableResult
    private static func pack(_ entries: [Ext4XattrEntry], into area: inout [UInt8], entriesStart: Int,
                             valuesBase: Int) -> [UInt32] {
        var offset = entriesStart
        var valueEnd = area.count
        var hashes: [UInt32] = []
        for entry in entries {
            var valueOffset = 0
            if !entry.value.isEmpty {
                valueEnd -= valueSize(entry)
                area.replaceSubrange(valueEnd..<(valueEnd + entry.value.count), with: entry.value)
                valueOffset = valueEnd - valuesBase
            }
            let hash = entryHash(entry)
            hashes.append(hash)
            area[offset] = UInt8(entry.name.count)
            area[offset + 1] = entry.index
            area.putLE16(UInt16(valueOffset), at: offset + 2)
            area.putLE32(0, at: offset + 4)
            area.putLE32(UInt32(entry.value.count), at: offset + 8)
            area.putLE32(hash, at: offset + 12)
            area.replaceSubrange((offset + 16)..<(offset + 16 + entry.name.count), with: entry.name)
            offset += entrySize(entry)
        }
        return hashes
    }

    /// `ext4_xattr_hash_entry`: the name (unsigned chars), then the zero-padded value as
    /// little-endian words.
    static func entryHash(_ entry: Ext4XattrEntry) -> UInt32 {
        var hash: UInt32 = 0
        for byte in entry.name {
            hash = (hash << 5) ^ (hash >> 27) ^ UInt32(byte)
        }
        var padded = entry.value
        while padded.count % 4 != 0 { padded.append(0) }
        for i in stride(from: 0, to: padded.count, by: 4) {
            let word = UInt32(padded[i]) | UInt32(padded[i + 1]) << 8 | UInt32(padded[i + 2]) << 16 | UInt32(padded[i + 3]) << 24
            hash = (hash << 16) ^ (hash >> 16) ^ word
        }
        return hash
    }

    /// posix_acl_xattr (version 2: 4-byte header, 8-byte tag/perm/id entries) to ext4's
    /// form (version 1; owner, group, mask and other entries without the id).
    static func ext4ACL(fromXattr value: [UInt8], name: String, path: String) throws -> [UInt8] {
        let r = ByteReader(value, source: path, structure: "extended attribute \(name)")
        guard value.count >= 4, (value.count - 4) % 8 == 0, try r.u32le(0) == 2 else {
            throw WispError.invalidArgument("\(path): \(name) is not a POSIX ACL in xattr form (version 2, 8-byte entries)")
        }
        var out: [UInt8] = [1, 0, 0, 0]
        for o in stride(from: 4, to: value.count, by: 8) {
            let tag = try r.u16le(o)
            let perm = try r.u16le(o + 2)
            let id = try r.u32le(o + 4)
            var entry = [UInt8](repeating: 0, count: 4)
            entry.putLE16(tag, at: 0)
            entry.putLE16(perm, at: 2)
            switch tag {
            case 0x02, 0x08:
                var withID = entry + [0, 0, 0, 0]
                withID.putLE32(id, at: 4)
                out += withID
            case 0x01, 0x04, 0x10, 0x20:
                out += entry
            default:
                throw WispError.invalidArgument("\(path): \(name) has an unknown ACL tag 0x\(String(tag, radix: 16))")
            }
        }
        return out
    }
}
