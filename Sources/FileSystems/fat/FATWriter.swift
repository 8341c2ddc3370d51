import WispCore

/// Writes a FAT12/16/32 filesystem image from a `WriterTree`: long names (VFAT LFN entries
/// with their checksum), 8.3 aliases with "~N" tails, subdirectories, and a volume label in
/// both the boot sector and the root directory — what `truncate` + `mkfs.vfat -n CIDATA` +
/// `mcopy` make, in one step and without the tools.
///
/// The FAT type follows mkfs.vfat's choice for the image size unless one is forced: FAT32
/// from 512 MiB, else FAT12 while 2 KiB clusters number fewer than 4085, else FAT16.
public struct FATWriter: Sendable {
    public enum FATType: String, Sendable, CaseIterable {
        case fat12, fat16, fat32
    }

    /// Largest image: 64 GiB keeps a FAT32 table (32 KiB clusters) at 8 MiB of memory.
    public static let maximumSize: UInt64 = 64 << 30

    public var label: String
    /// Image size in bytes; nil picks the smallest image that holds the tree (at least 128 KiB,
    /// a multiple of 64 KiB), as cloud-localds does with `truncate -s 128K`.
    public var size: UInt64?
    public var fatType: FATType?
    /// Seconds since the epoch (UTC) for every entry's times; it also seeds the volume serial.
    public var timestamp: Int64
    public var volumeID: UInt32

    public init(label: String = "CIDATA", size: UInt64? = nil, fatType: FATType? = nil,
                timestamp: Int64, volumeID: UInt32? = nil) {
        self.label = label
        self.size = size
        self.fatType = fatType
        self.timestamp = timestamp
        self.volumeID = volumeID ?? UInt32(truncatingIfNeeded: timestamp &* 2_654_435_761)
    }

    /// Writes the image to `path` atomically; unused space stays sparse.
    public func write(_ tree: WriterTree, to path: String, permissions: UInt32 = 0o644) throws {
        let layout = try FATLayout(tree: tree, writer: self, source: path)
        let output = try AtomicOutput(path: path, permissions: permissions)
        do {
            for piece in layout.pieces() {
                try piece.bytes.withUnsafeBytes { try output.file.write($0, at: piece.offset) }
            }
            try output.file.truncate(to: layout.geometry.totalBytes)
            try output.commit()
        } catch {
            output.discard()
            throw error
        }
    }

    /// The chosen geometry for `tree` (type, cluster size, counts), without writing.
    public func geometry(for tree: WriterTree) throws -> FATGeometry {
        try FATLayout(tree: tree, writer: self, source: "FAT image").geometry
    }
}
