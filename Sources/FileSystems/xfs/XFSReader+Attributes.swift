import WispCore

extension XFSReader {
    // Attribute entry flags (XFS_ATTR_*).
    static let attrLocal: UInt8 = 0x01
    static let attrRoot: UInt8 = 0x02
    static let attrSecure: UInt8 = 0x04
    static let attrParent: UInt8 = 0x08
    static let attrIncomplete: UInt8 = 0x80
    /// XATTR_SIZE_MAX: larger values are corruption, not allocations.
    static let maxAttrValue = 65536

    /// Extended attributes by their Linux names. XFS keeps the namespace in entry flags
    /// (none = user., ROOT = trusted., SECURE = security.); POSIX ACLs live as trusted
    /// SGI_ACL_FILE / SGI_ACL_DEFAULT in XFS's own layout and are returned as
    /// system.posix_acl_access / _default in the Linux xattr layout.
    public func xattrs(inode number: UInt64) throws -> [String: [UInt8]] {
        let node = try inode(number)
        guard let format = node.attrFormat else { return [:] }
        var raw: [(flags: UInt8, name: [UInt8], value: [UInt8])] = []
        switch format {
        case .local: raw = try shortformAttributes(node)
        case .extents, .btree: raw = try blockAttributes(node)
        case .device:
            throw WispError.corrupt(source, "XFS attribute fork of inode \(number)", at: node.attrForkOffset, "device format")
        }
        var result: [String: [UInt8]] = [:]
        for entry in raw where entry.flags & (Self.attrIncomplete | Self.attrParent) == 0 {
            let name = String(decoding: entry.name, as: UTF8.self)
            if entry.flags & Self.attrSecure != 0 {
                result["security." + name] = entry.value
            } else if entry.flags & Self.attrRoot != 0 {
                if name == "SGI_ACL_FILE", let acl = Self.linuxACL(entry.value) {
                    result["system.posix_acl_access"] = acl
                } else if name == "SGI_ACL_DEFAULT", let acl = Self.linuxACL(entry.value) {
                    result["system.posix_acl_default"] = acl
                } else {
                    result["trusted." + name] = entry.value
                }
            } else {
                result["user." + name] = entry.value
            }
        }
        return result
    }

    /// xfs_acl (be32 count, entries of be32 tag, be32 id, be16 perm, pad) to the Linux
    /// posix_acl xattr (le32 version 2, entries of le16 tag, le16 perm, le32 id).
    static func linuxACL(_ value: [UInt8]) -> [UInt8]? {
        guard value.count >= 4 else { return nil }
        let r = ByteReader(value, source: "", structure: "")
        guard let count = try? Int(r.u32be(0)), count <= 1024, value.count >= 4 + count * 12 else { return nil }
        var out = [UInt8](repeating: 0, count: 4 + count * 8)
        out.putLE32(2, at: 0)
        for i in 0..<count {
            guard let tag = try? r.u32be(4 + i * 12), let id = try? r.u32be(8 + i * 12),
                  let perm = try? r.u16be(12 + i * 12) else { return nil }
            out.putLE16(UInt16(truncatingIfNeeded: tag), at: 4 + i * 8)
            out.putLE16(perm, at: 6 + i * 8)
            out.putLE32(id, at: 8 + i * 8)
        }
        return out
    }

    /// xfs_attr_sf_hdr (be16 totsize, count, pad) + entries (namelen, valuelen, flags,
    /// name, value).
    func shortformAttributes(_ node: XFSInode) throws -> [(flags: UInt8, name: [UInt8], value: [UInt8])] {
        let r = ByteReader(node.attrFork, source: source, structure: "XFS shortform attributes of inode \(node.number)",
                           baseOffset: node.attrForkOffset)
        let total = Int(try r.u16be(0))
        guard total >= 4, total <= node.attrFork.count else {
            throw r.error(at: 0, "total size \(total) does not fit the \(node.attrFork.count)-byte fork")
        }
        let count = Int(try r.u8(2))
        var position = 4
        var result: [(flags: UInt8, name: [UInt8], value: [UInt8])] = []
        for _ in 0..<count {
            let nameLength = Int(try r.u8(position)), valueLength = Int(try r.u8(position + 1))
            let flags = try r.u8(position + 2)
            guard position + 3 + nameLength + valueLength <= total else {
                throw r.error(at: position, "entry runs past the \(total)-byte attribute area")
            }
            result.append((flags, try r.array(position + 3, nameLength), try r.array(position + 3 + nameLength, valueLength)))
            position += 3 + nameLength + valueLength
        }
        return result
    }

    /// Leaf or node (da btree) attribute forks: descend to the leftmost leaf, then follow
    /// the sibling chain.
    func blockAttributes(_ node: XFSInode) throws -> [(flags: UInt8, name: [UInt8], value: [UInt8])] {
        let extents = try self.extents(of: node, fork: .attr)
        let v5 = sb.isV5
        let leafMagic: UInt16 = v5 ? 0x3BEE : 0xFBEE
        let nodeMagic: UInt16 = v5 ? 0x3EBE : 0xFEBE
        var block: UInt64 = 0
        var visited = Set<UInt64>()
        var result: [(flags: UInt8, name: [UInt8], value: [UInt8])] = []
        var expectedLevel: Int?
        while true {
            guard visited.insert(block).inserted, visited.count <= 1 << 20 else {
                throw WispError.corrupt(source, "XFS attribute fork of inode \(node.number)", "block \(block) is reached twice (a cycle)")
            }
            let structure = "XFS attribute block \(block) of inode \(node.number)"
            let (bytes, offset) = try readMapped(extents, first: block, count: 1, inode: node.number, what: structure)
            let r = ByteReader(bytes, source: source, structure: structure, baseOffset: offset)
            let magic = try r.u16be(8)
            guard magic == leafMagic || magic == nodeMagic else {
                throw r.error(at: 8, "magic 0x\(String(magic, radix: 16)) is neither an attribute leaf nor a node")
            }
            if v5 {
                try verifyV5(bytes, at: offset, structure: structure, crcAt: 12, blknoAt: 16, uuidAt: 32,
                             ownerAt: 48, owner: node.number)
            }
            if magic == nodeMagic {
                let header = v5 ? 64 : 16
                let count = Int(try r.u16be(header - (v5 ? 8 : 4)))
                let level = Int(try r.u16be(header - (v5 ? 6 : 2)))
                guard count >= 1, count <= (bytes.count - header) / 8, level >= 1, level <= 5,
                      expectedLevel == nil || expectedLevel == level else {
                    throw r.error(at: header - 4, "node with \(count) entries at level \(level)")
                }
                expectedLevel = level - 1
                block = UInt64(try r.u32be(header + 4))
                continue
            }
            guard expectedLevel == nil || expectedLevel == 0 else {
                throw r.error(at: 8, "leaf found where a level \(expectedLevel ?? 0) node belongs")
            }
            expectedLevel = 0
            try parseAttributeLeaf(r, inode: node, extents: extents, into: &result)
            let next = UInt64(try r.u32be(0))
            if next == 0 { break }
            block = next
        }
        return result
    }

    func parseAttributeLeaf(_ r: ByteReader, inode node: XFSInode, extents: [XFSExtent],
                            into result: inout [(flags: UInt8, name: [UInt8], value: [UInt8])]) throws {
        let v5 = sb.isV5
        let header = v5 ? 80 : 32
        let countAt = v5 ? 56 : 12
        let count = Int(try r.u16be(countAt))
        guard count <= (r.count - header) / 8 else { throw r.error(at: countAt, "\(count) entries do not fit the block") }
        for i in 0..<count {
            let entry = header + i * 8
            let nameIndex = Int(try r.u16be(entry + 4))
            let flags = try r.u8(entry + 6)
            guard nameIndex >= header + count * 8, nameIndex < r.count else {
                throw r.error(at: entry + 4, "name offset \(nameIndex) lies outside the name area")
            }
            if flags & Self.attrLocal != 0 {
                let valueLength = Int(try r.u16be(nameIndex))
                let nameLength = Int(try r.u8(nameIndex + 2))
                let name = try r.array(nameIndex + 3, nameLength)
                let value = try r.array(nameIndex + 3 + nameLength, valueLength)
                result.append((flags, name, value))
            } else {
                let valueBlock = UInt64(try r.u32be(nameIndex))
                let valueLength = Int(try r.u32be(nameIndex + 4))
                let nameLength = Int(try r.u8(nameIndex + 8))
                let name = try r.array(nameIndex + 9, nameLength)
                guard valueLength <= Self.maxAttrValue else {
                    throw r.error(at: nameIndex + 4, "remote value of \(valueLength) bytes exceeds \(Self.maxAttrValue)")
                }
                if flags & Self.attrIncomplete != 0 { continue }
                result.append((flags, name, try remoteAttributeValue(node, extents: extents, block: valueBlock, length: valueLength)))
            }
        }
    }

    /// Remote values span whole fs blocks; on v5 each block starts with an XARM header.
    func remoteAttributeValue(_ node: XFSInode, extents: [XFSExtent], block first: UInt64, length: Int) throws -> [UInt8] {
        guard length > 0 else { return [] }
        let blockSize = Int(sb.blockSize)
        let v5 = sb.isV5
        let space = v5 ? blockSize - 56 : blockSize
        let blocks = (length + space - 1) / space
        let (bytes, _) = try readMapped(extents, first: first, count: UInt64(blocks), inode: node.number,
                                        what: "XFS remote attribute value of inode \(node.number)")
        guard v5 else { return Array(bytes[0..<length]) }
        var value: [UInt8] = []
        value.reserveCapacity(length)
        for i in 0..<blocks {
            let chunk = Array(bytes[(i * blockSize)..<((i + 1) * blockSize)])
            // Each block may sit in a different extent (readMapped checked all are mapped).
            let index = firstExtent(in: extents, endingAfter: first + UInt64(i))
            guard index < extents.count, extents[index].fileBlock <= first + UInt64(i),
                  let offset = sb.byteOffset(fsBlock: extents[index].startBlock + (first + UInt64(i) - extents[index].fileBlock)) else {
                throw WispError.corrupt(source, "XFS remote attribute value of inode \(node.number)", "block \(first + UInt64(i)) is not mapped")
            }
            let structure = "XFS remote attribute block of inode \(node.number)"
            let r = ByteReader(chunk, source: source, structure: structure, baseOffset: offset)
            guard try r.u32be(0) == 0x5841_524D else { throw r.error(at: 0, "magic is not XARM") }
            try verifyV5(chunk, at: offset, structure: structure, crcAt: 12, blknoAt: 40, uuidAt: 16,
                         ownerAt: 32, owner: node.number)
            let chunkOffset = Int(try r.u32be(4)), chunkBytes = Int(try r.u32be(8))
            guard chunkOffset == value.count, chunkBytes >= 1, chunkBytes <= space, chunkBytes <= length - value.count else {
                throw r.error(at: 4, "chunk of \(chunkBytes) bytes at \(chunkOffset) does not continue a \(length)-byte value")
            }
            value += chunk[56..<(56 + chunkBytes)]
        }
        return value
    }
}
