import WispCore

/// An INODE_ITEM: size, link count, ownership, mode, device number and times.
struct BtrfsInode: Sendable {
    let size: UInt64
    /// Where the size field lives on the device, for error messages.
    let sizeOffset: UInt64
    let linkCount: UInt32
    let uid: UInt32
    let gid: UInt32
    let mode: UInt32
    let rdev: UInt64
    let flags: UInt64
    let atime: Timestamp
    let ctime: Timestamp
    let mtime: Timestamp

    static let itemSize = 160

    static func parse(_ r: ByteReader) throws -> BtrfsInode {
        guard r.count >= itemSize else { throw r.error(at: 0, "inode item of \(r.count) bytes, expected \(itemSize)") }
        func time(_ at: Int) throws -> Timestamp {
            let nanoseconds = try r.u32le(at + 8)
            guard nanoseconds < 1_000_000_000 else { throw r.error(at: at + 8, "nanoseconds \(nanoseconds) out of range") }
            return Timestamp(seconds: Int64(bitPattern: try r.u64le(at)), nanoseconds: nanoseconds)
        }
        return BtrfsInode(size: try r.u64le(16), sizeOffset: r.baseOffset &+ 16, linkCount: try r.u32le(40), uid: try r.u32le(44), gid: try r.u32le(48),
                          mode: try r.u32le(52), rdev: try r.u64le(56), flags: try r.u64le(64),
                          atime: try time(112), ctime: try time(124), mtime: try time(136))
    }

    /// Linux's MAX_LFS_FILESIZE: file offsets are signed 64-bit, so no btrfs file the kernel
    /// wrote is larger, whatever the u64 field can hold.
    static let maximumFileSize = UInt64(Int64.max)

    /// The size, refused with the limit named when no btrfs file can be that large.
    func checkedSize(inode: UInt64, source: String) throws -> UInt64 {
        guard size <= Self.maximumFileSize else {
            throw WispError.corrupt(source, "btrfs inode item of inode \(inode)", at: sizeOffset,
                                    "size \(size) exceeds the largest file btrfs can hold (\(Self.maximumFileSize) bytes: file offsets are signed 64-bit)")
        }
        return size
    }

    func stat(inode: UInt64) -> FileStat {
        let type = FileType(mode: mode)
        // The kernel stores its own dev_t: major in the bits above 20, minor below.
        let isDevice = type == .characterDevice || type == .blockDevice
        return FileStat(inode: inode, type: type, permissions: mode & 0o7777, uid: uid, gid: gid, size: size,
                        linkCount: linkCount, accessTime: atime, modificationTime: mtime, changeTime: ctime,
                        deviceMajor: isDevice ? UInt32(truncatingIfNeeded: rdev >> 20) : 0,
                        deviceMinor: isDevice ? UInt32(truncatingIfNeeded: rdev & 0xFFFFF) : 0)
    }
}

/// One entry of a DIR_ITEM, DIR_INDEX or XATTR_ITEM (several may share one item).
struct BtrfsDirEntry: Sendable {
    let location: BtrfsKey
    let type: UInt8
    let name: [UInt8]
    let data: [UInt8]

    static func parseAll(_ r: ByteReader) throws -> [BtrfsDirEntry] {
        var entries: [BtrfsDirEntry] = []
        var at = 0
        while at < r.count {
            let dataLength = Int(try r.u16le(at + 25)), nameLength = Int(try r.u16le(at + 27))
            guard nameLength >= 1, at + 30 + nameLength + dataLength <= r.count else {
                throw r.error(at: at + 25, "entry with a \(nameLength)-byte name and \(dataLength) bytes of data runs past the item")
            }
            entries.append(BtrfsDirEntry(location: try BtrfsKey.parse(r, at: at), type: try r.u8(at + 29),
                                         name: try r.array(at + 30, nameLength),
                                         data: try r.array(at + 30 + nameLength, dataLength)))
            at += 30 + nameLength + dataLength
        }
        return entries
    }

    var fileType: FileType? {
        switch type {
        case 1: return .regular
        case 2: return .directory
        case 3: return .characterDevice
        case 4: return .blockDevice
        case 5: return .fifo
        case 6: return .socket
        case 7: return .symlink
        default: return nil
        }
    }
}
