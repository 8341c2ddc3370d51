import WispCore

/// The 512-byte header of a hosted sparse extent ("KDMV"): monolithicSparse,
/// streamOptimized and the extents of twoGbMaxExtentSparse images. Little-endian, packed.
public struct VmdkSparseHeader: Sendable, Equatable {
    public static let magic: UInt32 = 0x564D_444B  // "KDMV"
    public static let gdAtEnd: UInt64 = 0xFFFF_FFFF_FFFF_FFFF
    public static let sector: UInt64 = 512

    public struct Flags: OptionSet, Sendable, Equatable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let validNewlineTest = Flags(rawValue: 1 << 0)
        public static let redundantGrainTable = Flags(rawValue: 1 << 1)
        public static let zeroGrainGTE = Flags(rawValue: 1 << 2)
        public static let compressed = Flags(rawValue: 1 << 16)
        public static let markers = Flags(rawValue: 1 << 17)
    }

    public var version: UInt32
    public var flags: Flags
    /// Sectors.
    public var capacity: UInt64
    public var grainSectors: UInt64
    public var descriptorOffset: UInt64
    public var descriptorSectors: UInt64
    public var gtesPerGT: UInt32
    public var rgdOffset: UInt64
    public var gdOffset: UInt64
    public var overheadSectors: UInt64
    public var uncleanShutdown: Bool
    public var compressAlgorithm: UInt16

    public var grainSize: UInt64 { grainSectors * Self.sector }
    public var isCompressed: Bool { flags.contains(.compressed) && compressAlgorithm == 1 }
    public var hasMarkers: Bool { flags.contains(.markers) }
    /// Bytes of guest data one grain table covers.
    public var bytesPerGT: UInt64 { UInt64(gtesPerGT) * grainSize }
    public var gdEntries: UInt64 {
        let capacityBytes = capacity * Self.sector
        return (capacityBytes + bytesPerGT - 1) / bytesPerGT
    }

    public init(capacity: UInt64, grainSectors: UInt64, flags: Flags, descriptorOffset: UInt64,
                descriptorSectors: UInt64, rgdOffset: UInt64, gdOffset: UInt64, overheadSectors: UInt64,
                compressAlgorithm: UInt16) {
        version = flags.contains(.compressed) ? 3 : 1
        self.flags = flags
        self.capacity = capacity
        self.grainSectors = grainSectors
        self.descriptorOffset = descriptorOffset
        self.descriptorSectors = descriptorSectors
        gtesPerGT = 512
        self.rgdOffset = rgdOffset
        self.gdOffset = gdOffset
        self.overheadSectors = overheadSectors
        uncleanShutdown = false
        self.compressAlgorithm = compressAlgorithm
    }

    /// Parses and checks a header; `fileSize` bounds the descriptor. Sizes are capped so
    /// no later computation can overflow or allocate without bound.
    public static func parse(_ b: [UInt8], name: String, fileSize: UInt64) throws -> VmdkSparseHeader {
        guard b.count >= 512 else { throw WispError.corrupt(name, "VMDK sparse header", "file shorter than 512 bytes") }
        func u32(_ o: Int) -> UInt32 { UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24 }
        func u64(_ o: Int) -> UInt64 { UInt64(u32(o)) | UInt64(u32(o + 4)) << 32 }
        guard u32(0) == magic else { throw WispError.corrupt(name, "VMDK sparse header", at: 0, "no KDMV magic") }
        var h = VmdkSparseHeader(capacity: u64(12), grainSectors: u64(20), flags: Flags(rawValue: u32(8)),
                                 descriptorOffset: u64(28), descriptorSectors: u64(36), rgdOffset: u64(48),
                                 gdOffset: u64(56), overheadSectors: u64(64),
                                 compressAlgorithm: UInt16(b[77]) | UInt16(b[78]) << 8)
        h.version = u32(4)
        h.gtesPerGT = u32(44)
        h.uncleanShutdown = b[72] != 0
        guard (1...3).contains(h.version) else {
            throw WispError.unsupported(name, "VMDK sparse extent version \(h.version)")
        }
        // Grains of 4 KiB to 1 MiB (VMware: 64 KiB; qemu-img accepts up to 1 MiB... 128 sectors by default).
        guard h.grainSectors >= 1, h.grainSectors <= 2048, h.grainSectors & (h.grainSectors - 1) == 0 else {
            throw WispError.corrupt(name, "VMDK sparse header grainSize", at: 20, "\(h.grainSectors) sectors is not a power of two up to 1 MiB")
        }
        guard h.gtesPerGT >= 1, h.gtesPerGT <= 4096 else {
            throw WispError.corrupt(name, "VMDK sparse header numGTEsPerGT", at: 44, "\(h.gtesPerGT) entries")
        }
        guard h.capacity <= (UInt64(1) << 41) else {  // 1 PiB
            throw WispError.corrupt(name, "VMDK sparse header capacity", at: 12, "\(h.capacity) sectors is more than 1 PiB")
        }
        if h.flags.contains(.compressed) && h.compressAlgorithm != 1 {
            throw WispError.unsupported(name, "VMDK compression algorithm \(h.compressAlgorithm) (only deflate, 1, exists)")
        }
        if h.descriptorSectors > 0 {
            guard h.descriptorSectors <= UInt64(VmdkDescriptor.maxSize) / Self.sector,
                  h.descriptorOffset < fileSize / Self.sector else {
                throw WispError.corrupt(name, "VMDK embedded descriptor", at: 28,
                                        "\(h.descriptorSectors) sectors at sector \(h.descriptorOffset) do not fit in the file")
            }
        }
        return h
    }

    /// The 512 bytes of this header.
    public func encoded() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 512)
        func put32(_ v: UInt32, _ o: Int) { for i in 0..<4 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
        func put64(_ v: UInt64, _ o: Int) { for i in 0..<8 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
        put32(Self.magic, 0)
        put32(version, 4)
        put32(flags.rawValue, 8)
        put64(capacity, 12)
        put64(grainSectors, 20)
        put64(descriptorOffset, 28)
        put64(descriptorSectors, 36)
        put32(gtesPerGT, 44)
        put64(rgdOffset, 48)
        put64(gdOffset, 56)
        put64(overheadSectors, 64)
        b[72] = uncleanShutdown ? 1 : 0
        b[73] = 0x0A; b[74] = 0x20; b[75] = 0x0D; b[76] = 0x0A
        b[77] = UInt8(truncatingIfNeeded: compressAlgorithm)
        b[78] = UInt8(truncatingIfNeeded: compressAlgorithm >> 8)
        return b
    }
}
