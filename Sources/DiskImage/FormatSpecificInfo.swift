import WispCore

/// `wisp image info`'s "format-specific" object: qemu-img info's `{type, data}` with
/// qemu's keys where qemu reports the same thing (qcow2, vmdk). qemu-img reports nothing
/// format-specific for vpc, vhdx and vdi; for those Wisp fills `data` with its own keys in
/// the same style.
public struct FormatSpecificInfo: Codable, Sendable, Equatable {
    /// The format as qemu names it ("qcow2", "vmdk", "vpc", "vhdx", "vdi").
    public var type: String
    public var data: FormatSpecificData

    public init(type: String, data: FormatSpecificData) {
        self.type = type
        self.data = data
    }
}

/// The fields of one format's `data`; those of other formats stay nil and are left out
/// of the JSON.
public struct FormatSpecificData: Codable, Sendable, Equatable {
    // qcow2, as qemu.
    public var compat: String?
    public var compressionType: String?
    public var lazyRefcounts: Bool?
    public var refcountBits: Int?
    public var corrupt: Bool?
    public var extendedL2: Bool?
    // vmdk, as qemu.
    public var cid: UInt32?
    public var parentCID: UInt32?
    public var createType: String?
    public var extents: [VmdkExtentInfo]?
    // vpc, vhdx, vdi: Wisp's.
    public var subformat: String?
    public var blockSize: UInt64?
    public var logicalSectorSize: UInt32?
    public var physicalSectorSize: UInt32?
    public var allocatedBlocks: Int?
    public var uuid: String?
    public var parentUUID: String?
    public var parentLocators: [ParentLocatorInfo]?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case compat
        case compressionType = "compression-type"
        case lazyRefcounts = "lazy-refcounts"
        case refcountBits = "refcount-bits"
        case corrupt
        case extendedL2 = "extended-l2"
        case cid
        case parentCID = "parent-cid"
        case createType = "create-type"
        case extents
        case subformat
        case blockSize = "block-size"
        case logicalSectorSize = "logical-sector-size"
        case physicalSectorSize = "physical-sector-size"
        case allocatedBlocks = "allocated-blocks"
        case uuid
        case parentUUID = "parent-uuid"
        case parentLocators = "parent-locators"
    }
}

/// One VMDK extent, as qemu-img info lists it.
public struct VmdkExtentInfo: Codable, Sendable, Equatable {
    public var virtualSize: UInt64
    public var filename: String
    public var clusterSize: UInt64?
    /// "" for the hosted sparse file itself (qemu's monolithicSparse), else the
    /// descriptor's extent type (FLAT, SPARSE, ZERO, VMFS...).
    public var format: String
    public var compressed: Bool?

    enum CodingKeys: String, CodingKey {
        case virtualSize = "virtual-size"
        case filename
        case clusterSize = "cluster-size"
        case format
        case compressed
    }
}

/// A differencing VHD or VHDX image's recorded parent name.
public struct ParentLocatorInfo: Codable, Sendable, Equatable {
    /// VHD platform code or VHDX locator key.
    public var key: String
    public var path: String
}

extension FormatSpecificInfo {
    /// The format-specific report for a chain member, from what the resolver read, plus
    /// (VMDK) each sparse extent's header for its grain size.
    static func describe(_ member: BackingChain.Member) throws -> (info: FormatSpecificInfo, clusterSize: Int?)? {
        var d = FormatSpecificData()
        if let h = member.qcow2Header {
            d.compat = h.version == 2 ? "0.10" : "1.1"
            d.compressionType = h.compressionType.rawValue
            d.lazyRefcounts = h.lazyRefcounts
            d.refcountBits = h.refcountBits
            d.corrupt = h.isCorrupt
            d.extendedL2 = h.hasExtendedL2
            return (FormatSpecificInfo(type: "qcow2", data: d), h.clusterSize)
        }
        if let v = member.vmdk {
            d.cid = v.descriptor.cid
            d.parentCID = v.descriptor.parentCID
            d.createType = v.subformat
            var extents: [VmdkExtentInfo] = []
            var firstGrain: UInt64?
            for (i, e) in v.descriptor.extents.enumerated() {
                let file = v.extentFiles[i]
                var info = VmdkExtentInfo(virtualSize: e.sectors &* 512, filename: file?.name ?? member.name,
                                          format: v.isMonolithicSparse ? "" : e.type.rawValue)
                if e.type == .sparse || e.type == .vmfsSparse || v.isMonolithicSparse {
                    let device = try FileBlockDevice(file: try BackingChain.openChecked(
                        path: file?.path ?? member.path, name: file?.name ?? member.name,
                        identity: file?.identity ?? member.identity, type: .regular, writable: false))
                    let head = try device.readStructure("VMDK sparse header", at: 0, count: 512)
                    let sparse = try VmdkSparseHeader.parse(head, name: device.name, fileSize: device.size)
                    info.clusterSize = sparse.grainSize
                    if sparse.isCompressed { info.compressed = true }
                    if firstGrain == nil { firstGrain = sparse.grainSize }
                }
                extents.append(info)
            }
            d.extents = extents
            return (FormatSpecificInfo(type: "vmdk", data: d), firstGrain.map { Int($0) })
        }
        if let b = member.blockMapped {
            d.subformat = b.subformat
            d.blockSize = b.blockSize
            d.logicalSectorSize = b.logicalSectorSize
            d.physicalSectorSize = b.physicalSectorSize
            d.allocatedBlocks = b.allocatedBlocks
            d.uuid = b.uuid
            d.parentUUID = b.parentUUID
            if !b.parentLocators.isEmpty { d.parentLocators = b.parentLocators.map { ParentLocatorInfo(key: $0.key, path: $0.path) } }
            // A fixed VHD is raw data and a footer: no blocks, no cluster size (as qemu-img).
            if member.format == .vhd && b.subformat == "fixed" {
                d.blockSize = nil
                d.allocatedBlocks = nil
                return (FormatSpecificInfo(type: member.format.qemuDriverName, data: d), nil)
            }
            return (FormatSpecificInfo(type: member.format.qemuDriverName, data: d), Int(b.blockSize))
        }
        return nil
    }

    /// The "format specific information:" lines of the text report.
    var textLines: [String] {
        var lines = ["format specific information:"]
        let d = data
        if let v = d.compat { lines.append("    compat: \(v)") }
        if let v = d.createType { lines.append("    create type: \(v)") }
        if let v = d.cid { lines.append("    cid: \(v)") }
        if let v = d.parentCID { lines.append("    parent cid: \(v)") }
        if let v = d.subformat { lines.append("    subformat: \(v)") }
        if let v = d.blockSize { lines.append("    block size: \(v)") }
        if let v = d.logicalSectorSize { lines.append("    logical sector size: \(v)") }
        if let v = d.physicalSectorSize { lines.append("    physical sector size: \(v)") }
        if let v = d.allocatedBlocks { lines.append("    allocated blocks: \(v)") }
        if let v = d.uuid { lines.append("    uuid: \(v)") }
        if let v = d.parentUUID { lines.append("    parent uuid: \(v)") }
        for l in d.parentLocators ?? [] { lines.append("    parent locator \(l.key): \(l.path)") }
        for (i, e) in (d.extents ?? []).enumerated() {
            lines.append("    extent \(i + 1): \(e.filename) \(e.format.isEmpty ? "(the image itself)" : e.format) \(e.virtualSize) bytes"
                         + (e.clusterSize.map { ", cluster size \($0)" } ?? "") + (e.compressed == true ? ", compressed" : ""))
        }
        return lines
    }
}
