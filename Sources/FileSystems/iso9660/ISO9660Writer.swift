import WispCore

/// Writes an ISO 9660 image with Rock Ridge (POSIX names, modes, times, symlinks) and Joliet
/// (UCS-2 names) from a `WriterTree` — what `genisoimage -volid cidata -joliet -rock` makes
/// for cloud-localds, without the tool. Output is deterministic for a fixed `timestamp`.
///
/// Layout (2048-byte sectors): 16 empty system-area sectors, the primary volume descriptor,
/// the Joliet supplementary descriptor, the terminator, the four path tables, the primary
/// directories, the Joliet directories, the SUSP continuation areas, then file data (shared
/// by both hierarchies).
public struct ISO9660Writer: Sendable {
    public static let sectorSize = 2048
    /// One extent holds at most 4 GiB - 1 bytes; larger files would need multi-extent records.
    public static let maximumFileSize = 0xFFFF_F800
    /// Level 1 allows eight directory levels without Rock Ridge relocation (RE/CL/PL), which
    /// this writer does not implement; deeper trees are refused.
    public static let maximumDirectoryDepth = 8

    public var volumeID: String
    public var systemID: String
    public var applicationID: String
    /// Seconds since the epoch (UTC) stamped on every record and descriptor.
    public var timestamp: Int64
    public var rockRidge: Bool
    public var joliet: Bool

    public init(volumeID: String = "cidata", timestamp: Int64, systemID: String = "LINUX",
                applicationID: String = "WISP", rockRidge: Bool = true, joliet: Bool = true) {
        self.volumeID = volumeID
        self.timestamp = timestamp
        self.systemID = systemID
        self.applicationID = applicationID
        self.rockRidge = rockRidge
        self.joliet = joliet
    }

    /// Writes the image to `path` atomically (temp file, fsync, rename) with `permissions`.
    public func write(_ tree: WriterTree, to path: String, permissions: UInt32 = 0o644) throws {
        let layout = try ISO9660Layout(tree: tree, writer: self, source: path)
        let output = try AtomicOutput(path: path, permissions: permissions)
        do {
            try layout.write(to: output.file)
            try output.commit()
        } catch {
            output.discard()
            throw error
        }
    }

    /// The whole image in memory (tests, small seeds).
    public func image(_ tree: WriterTree) throws -> [UInt8] {
        let layout = try ISO9660Layout(tree: tree, writer: self, source: "ISO image")
        return layout.bytes()
    }
}
