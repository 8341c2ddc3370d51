import WispCore

/// Extended attributes: in the inode after its extra fields (`ext4_xattr_ibody_header`)
/// and in one external block (`ext4_xattr_header`, shared between inodes, checksummed
/// with its block number under metadata_csum). Large values may live in their own
/// ea_inode. Names are stored as an index (the prefix) plus the rest.
struct Ext4XattrEntry: Sendable {
    var index: UInt8
    var name: [UInt8]
    var value: [UInt8]
}

extension Ext4Reader {
    static let xattrMagic: UInt32 = 0xEA02_0000
    /// Linux's XATTR_SIZE_MAX: no value is larger.
    static let maxXattrValue = 65536

    static let xattrPrefixes: [UInt8: String] = [
        1: "user.", 2: "system.posix_acl_access", 3: "system.posix_acl_default", 4: "trusted.",
        5: "lustre.", 6: "security.", 7: "system.", 8: "system.richacl", 10: "gnu.",
    ]

    /// Every attribute by full name, as listxattr would show it: `system.data` (inline file
    /// data) is not an attribute to users, and POSIX ACLs are converted from ext4's compact
    /// form to the `posix_acl_xattr` form getfattr shows.
    func extendedAttributes(_ inode: Ext4Inode) throws -> [String: [UInt8]] {
        var result: [String: [UInt8]] = [:]
        var all = try inodeBodyXattrs(inode, resolveValueInodes: true)
        all += try xattrBlockEntries(inode)
        for entry in all {
            guard let prefix = Self.xattrPrefixes[entry.index] else { continue }
            let name = prefix + String(decoding: entry.name, as: UTF8.self)
            if name == "system.data" { continue }
            if entry.index == 2 || entry.index == 3 {
                result[name] = try posixACL(fromExt4: entry.value, inode: inode)
            } else {
                result[name] = entry.value
            }
        }
        return result
    }

    /// The `system.data` value of an inline-data inode (its bytes past the first 60),
    /// always from the inode body, never through another inode, so it cannot recurse.
    func inlineDataAttribute(_ inode: Ext4Inode) throws -> [UInt8]? {
        try inodeBodyXattrs(inode, resolveValueInodes: false)
            .first { $0.index == 7 && $0.name == Array("data".utf8) }?.value
    }

    private func inodeBodyXattrs(_ inode: Ext4Inode, resolveValueInodes: Bool) throws -> [Ext4XattrEntry] {
        guard let start = inode.inodeXattrOffset else { return [] }
        let r = ByteReader(inode.raw, source: device.name, structure: "ext4 inode \(inode.number) extended attributes",
                           baseOffset: inode.offset)
        guard try r.u32le(start) == Self.xattrMagic else { return [] }
        let first = start + 4
        return try parseXattrEntries(r, entriesStart: first, valuesBase: first, end: inode.raw.count,
                                     inode: inode, resolveValueInodes: resolveValueInodes)
    }

    private func xattrBlockEntries(_ inode: Ext4Inode) throws -> [Ext4XattrEntry] {
        let block = inode.fileACL
        guard block != 0 else { return [] }
        let inodeReader = ByteReader(inode.raw, source: device.name, structure: "ext4 inode \(inode.number)",
                                     baseOffset: inode.offset)
        try checkPhysicalRange(block, 1, inodeReader, at: 0x68, what: "extended attribute block")
        let bytes = try readBlock(block)
        let r = ByteReader(bytes, source: device.name,
                           structure: "ext4 extended attribute block \(block) (inode \(inode.number))",
                           baseOffset: block * UInt64(superblock.blockSize))
        let magic = try r.u32le(0)
        guard magic == Self.xattrMagic else {
            throw r.error(at: 0, "magic is 0x\(String(magic, radix: 16)), expected 0xea020000")
        }
        let blocks = try r.u32le(8)
        guard blocks == 1 else { throw r.error(at: 8, "attribute block claims to span \(blocks) blocks, expected 1") }
        if superblock.features.metadataChecksums {
            var crc = Ext4Checksums.crc32c(superblock.checksumSeed, le64: block)
            crc = Ext4Checksums.crc32c(crc, try r.slice(0, 16))
            crc = Ext4Checksums.crc32c(crc, [0, 0, 0, 0])
            crc = Ext4Checksums.crc32c(crc, try r.slice(20, r.count - 20))
            let stored = try r.u32le(16)
            guard stored == crc else {
                throw r.error(at: 16, "extended attribute block checksum mismatch: stored \(Ext4Checksums.hex(stored)), computed \(Ext4Checksums.hex(crc))")
            }
        }
        return try parseXattrEntries(r, entriesStart: 32, valuesBase: 0, end: r.count, inode: inode,
                                     resolveValueInodes: true)
    }

    /// Entries from `entriesStart` up to a zero word, values at `valuesBase + e_value_offs`,
    /// all inside `[0, end)`.
    private func parseXattrEntries(_ r: ByteReader, entriesStart: Int, valuesBase: Int, end: Int, inode: Ext4Inode,
                                   resolveValueInodes: Bool) throws -> [Ext4XattrEntry] {
        var entries: [Ext4XattrEntry] = []
        var o = entriesStart
        while true {
            guard o + 4 <= end else { throw r.error(at: o, "attribute list runs past its area without a terminator") }
            if try r.u32le(o) == 0 { break }
            guard o + 16 <= end else { throw r.error(at: o, "attribute entry header runs past its area") }
            let nameLength = Int(try r.u8(o))
            let index = try r.u8(o + 1)
            let valueOffset = Int(try r.u16le(o + 2))
            let valueInode = try r.u32le(o + 4)
            let valueSize = try r.u32le(o + 8)
            guard o + 16 + nameLength <= end else { throw r.error(at: o, "attribute name of \(nameLength) bytes runs past its area") }
            let name = try r.array(o + 16, nameLength)
            var value: [UInt8] = []
            if valueInode != 0 {
                if resolveValueInodes {
                    value = try valueFromAttributeInode(valueInode, size: valueSize, owner: inode, r, at: o + 4)
                } else {
                    throw r.error(at: o + 4, "attribute value is in inode \(valueInode) where it must be stored inline")
                }
            } else if valueSize > 0 {
                let valueStart = valuesBase + valueOffset
                guard valueSize <= UInt32(Self.maxXattrValue), valueStart >= o + 4, valueStart + Int(valueSize) <= end else {
                    throw r.error(at: o + 2, "attribute value of \(valueSize) bytes at \(valueOffset) lies outside its area")
                }
                value = try r.array(valueStart, Int(valueSize))
            }
            entries.append(Ext4XattrEntry(index: index, name: name, value: value))
            o += (16 + nameLength + 3) & ~3
        }
        return entries
    }

    /// A value stored in its own inode (ea_inode feature): that inode's data is the value.
    private func valueFromAttributeInode(_ number: UInt32, size: UInt32, owner: Ext4Inode, _ r: ByteReader,
                                         at offset: Int) throws -> [UInt8] {
        guard superblock.features.hasIncompatible(Ext4Features.eaInode) else {
            throw r.error(at: offset, "attribute value points at inode \(number) but the filesystem lacks ea_inode")
        }
        guard size <= UInt32(Self.maxXattrValue) else {
            throw r.error(at: offset, "attribute value of \(size) bytes exceeds the \(Self.maxXattrValue)-byte limit")
        }
        let valueInode = try inode(UInt64(number))
        guard valueInode.isExtendedAttributeInode, !valueInode.hasInlineData, valueInode.type == .regular else {
            throw r.error(at: offset, "attribute value inode \(number) is not an ea_inode")
        }
        guard valueInode.size == UInt64(size) else {
            throw r.error(at: offset, "attribute value inode \(number) holds \(valueInode.size) bytes, the entry says \(size)")
        }
        return try contents(valueInode, offset: 0, count: Int(size))
    }

    /// ext4 stores POSIX ACLs compactly (version 1, 4-byte entries for the owner, group,
    /// mask and other, 8-byte ones for named users and groups); the xattr interface speaks
    /// version 2 with 8-byte entries throughout.
    private func posixACL(fromExt4 value: [UInt8], inode: Ext4Inode) throws -> [UInt8] {
        let r = ByteReader(value, source: device.name, structure: "ext4 inode \(inode.number) POSIX ACL")
        guard try r.u32le(0) == 1 else { throw r.error(at: 0, "ACL version is not 1") }
        var out: [UInt8] = [2, 0, 0, 0]
        var o = 4
        while o < value.count {
            let tag = try r.u16le(o)
            let perm = try r.u16le(o + 2)
            var id: UInt32 = 0xFFFF_FFFF
            switch tag {
            case 0x02, 0x08:
                id = try r.u32le(o + 4)
                o += 8
            case 0x01, 0x04, 0x10, 0x20:
                o += 4
            default:
                throw r.error(at: o, "unknown ACL tag 0x\(String(tag, radix: 16))")
            }
            var entry = [UInt8](repeating: 0, count: 8)
            entry.putLE16(tag, at: 0)
            entry.putLE16(perm, at: 2)
            entry.putLE32(id, at: 4)
            out += entry
        }
        return out
    }
}
