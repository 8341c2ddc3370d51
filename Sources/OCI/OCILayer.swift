/// One verified layer of a pulled image, stored in the blob cache.
public struct OCILayer: Sendable, Hashable {
    public var descriptor: OCIDescriptor
    /// The digest of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    public var diffID: OCIDigest
    public var compression: LayerCompression
    /// The blob's file in the cache.
    public var path: String

    public init(descriptor: OCIDescriptor, diffID: OCIDigest, compression: LayerCompression, path: String) {
        self.descriptor = descriptor
        self.diffID = diffID
        self.compression = compression
        self.path = path
    }
}

/// Bounds on what a layer may expand to. A layer's uncompressed size is declared nowhere,
/// so it is bounded by a multiple of its compressed size: real layers compress 2-10x, and
/// the floor leaves room for small layers of very compressible files.
public struct OCILayerLimits: Sendable, Hashable {
    public var expansionRatio: UInt64 = 64
    public var floorBytes: UInt64 = 1 << 30

    public init(expansionRatio: UInt64 = 64, floorBytes: UInt64 = 1 << 30) {
        self.expansionRatio = expansionRatio
        self.floorBytes = floorBytes
    }

    func limit(compressedSize: UInt64) -> UInt64 {
        let (scaled, overflow) = compressedSize.multipliedReportingOverflow(by: expansionRatio)
        return overflow ? UInt64.max : max(scaled, floorBytes)
    }
}
