import WispCore

/// One block group descriptor: where the group's inode table lives and whether it was
/// ever initialised. Bitmaps are a writer's concern and are not decoded.
struct Ext4GroupDescriptor: Sendable {
    static let inodeUninitialized: UInt16 = 0x1

    var group: UInt32
    var inodeTable: UInt64
    var flags: UInt16

    /// Decodes `bytes` (one descriptor of `superblock.descriptorSize` bytes, found at
    /// `offset` of the device), verifies its checksum and that its inode table lies
    /// inside the filesystem.
    init(_ bytes: ArraySlice<UInt8>, group: UInt32, offset: UInt64, superblock sb: Ext4Superblock,
         source: String) throws {
        let r = ByteReader(Array(bytes), source: source, structure: "ext4 group descriptor \(group)",
                           baseOffset: offset)
        let is64 = sb.descriptorSize >= 64
        let stored = try r.u16le(0x1E)
        if sb.features.metadataChecksums {
            var crc = Ext4Checksums.crc32c(sb.checksumSeed, le32: group)
            crc = Ext4Checksums.crc32c(crc, try r.slice(0, 0x1E))
            crc = Ext4Checksums.crc32c(crc, [0, 0])
            crc = Ext4Checksums.crc32c(crc, try r.slice(0x20, sb.descriptorSize - 0x20))
            let computed = UInt16(truncatingIfNeeded: crc)
            guard stored == computed else {
                throw r.error(at: 0x1E, "group descriptor checksum mismatch: stored 0x\(String(stored, radix: 16)), computed 0x\(String(computed, radix: 16))")
            }
        } else if sb.features.groupDescriptorChecksums {
            var crc = Ext4Checksums.crc16(0xFFFF, sb.uuidBytes)
            crc = Ext4Checksums.crc16(crc, Ext4Checksums.littleEndian32(group))
            crc = Ext4Checksums.crc16(crc, try r.slice(0, 0x1E))
            if is64 { crc = Ext4Checksums.crc16(crc, try r.slice(0x20, sb.descriptorSize - 0x20)) }
            guard stored == crc else {
                throw r.error(at: 0x1E, "group descriptor crc16 mismatch: stored 0x\(String(stored, radix: 16)), computed 0x\(String(crc, radix: 16))")
            }
        }
        self.group = group
        inodeTable = UInt64(try r.u32le(0x8)) | (is64 ? UInt64(try r.u32le(0x28)) << 32 : 0)
        flags = try r.u16le(0x12)
        let tableEnd = inodeTable.addingReportingOverflow(sb.inodeTableBlocks)
        guard inodeTable > UInt64(sb.firstDataBlock), !tableEnd.overflow, tableEnd.partialValue <= sb.blocksCount else {
            throw r.error(at: 0x8, "inode table at block \(inodeTable) (\(sb.inodeTableBlocks) blocks) lies outside the filesystem's \(sb.blocksCount) blocks")
        }
        if !sb.features.metadataChecksums && !sb.features.groupDescriptorChecksums {
            // Without checksummed descriptors the uninit flags are meaningless (old kernels
            // never set them), exactly as the kernel ignores them.
            flags = 0
        }
    }

    var inodeTableUninitialized: Bool { flags & Self.inodeUninitialized != 0 }
}

/// The group descriptor table, read lazily one descriptor block at a time (a 16 TiB
/// filesystem has megabytes of them; opening a file touches one or two) and cached.
final class Ext4GroupTable: Sendable {
    let device: any BlockDevice
    let superblock: Ext4Superblock
    private let cache = LockedValue<[UInt32: Ext4GroupDescriptor]>([:])
    private static let cacheLimit = 65_536

    init(device: any BlockDevice, superblock: Ext4Superblock) {
        self.device = device
        self.superblock = superblock
    }

    func descriptor(_ group: UInt32) throws -> Ext4GroupDescriptor {
        if let cached = cache.withLock({ $0[group] }) { return cached }
        let sb = superblock
        guard group < sb.groupCount else {
            throw WispError.corrupt(device.name, "ext4 group descriptor table", "group \(group) does not exist (the filesystem has \(sb.groupCount))")
        }
        let perBlock = sb.blockSize / sb.descriptorSize
        let blockIndex = UInt64(group) / UInt64(perBlock)
        let block = sb.descriptorBlockLocation(blockIndex)
        guard block < sb.blocksCount else {
            throw WispError.corrupt(device.name, "ext4 group descriptor table", "descriptor block \(blockIndex) would be at block \(block), past the end of the filesystem")
        }
        let offset = block * UInt64(sb.blockSize)
        let bytes = try device.read(at: offset, count: sb.blockSize)
        var decoded: [UInt32: Ext4GroupDescriptor] = [:]
        let first = blockIndex * UInt64(perBlock)
        for i in 0..<perBlock {
            // 64-bit arithmetic: the last descriptor block may reach past group 2^32 - 1.
            guard first + UInt64(i) < UInt64(sb.groupCount) else { break }
            let g = UInt32(first + UInt64(i))
            let start = i * sb.descriptorSize
            let slice = bytes[start..<(start + sb.descriptorSize)]
            // Only the descriptor asked for must be valid; a damaged neighbour is
            // reported when someone needs it.
            if let d = try? Ext4GroupDescriptor(slice, group: g, offset: offset + UInt64(start), superblock: sb, source: device.name) {
                decoded[g] = d
            } else if g == group {
                _ = try Ext4GroupDescriptor(slice, group: g, offset: offset + UInt64(start), superblock: sb, source: device.name)
            }
        }
        guard let wanted = decoded[group] else {
            throw WispError.corrupt(device.name, "ext4 group descriptor \(group)", "could not be decoded")
        }
        cache.withLock { c in
            if c.count + decoded.count > Self.cacheLimit { c.removeAll(keepingCapacity: true) }
            c.merge(decoded) { a, _ in a }
        }
        return wanted
    }
}
