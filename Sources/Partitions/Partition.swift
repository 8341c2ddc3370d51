import WispCore

public enum PartitionScheme: String, Sendable, Codable {
    case gpt, mbr
    /// A filesystem directly on the whole disk, no table.
    case none
}

/// One partition as the table describes it. GUIDs are lowercase text in the usual
/// 8-4-4-4-12 form.
public struct Partition: Sendable, Codable, Equatable {
    /// 1-based, as Linux numbers them (sda1; logical MBR partitions start at 5).
    public var number: Int
    public var startOffset: UInt64
    public var size: UInt64
    /// GPT partition name (PARTLABEL).
    public var name: String?
    public var typeGUID: String?
    /// GPT unique partition GUID (PARTUUID).
    public var uniqueGUID: String?
    /// MBR type byte.
    public var mbrType: UInt8?
    public var bootable: Bool
    public var attributes: UInt64

    public init(number: Int, startOffset: UInt64, size: UInt64, name: String? = nil, typeGUID: String? = nil,
                uniqueGUID: String? = nil, mbrType: UInt8? = nil, bootable: Bool = false, attributes: UInt64 = 0) {
        self.number = number
        self.startOffset = startOffset
        self.size = size
        self.name = name
        self.typeGUID = typeGUID
        self.uniqueGUID = uniqueGUID
        self.mbrType = mbrType
        self.bootable = bootable
        self.attributes = attributes
    }

    /// The partition's bytes as a device of their own.
    public func device(on disk: any BlockDevice) throws -> SliceBlockDevice {
        // Readers name the device in every error, with offsets counted from its start:
        // the name says so, and where the partition begins on the disk.
        let name = startOffset == 0 ? "\(disk.name) partition \(number)"
            : "\(disk.name) partition \(number) (offsets from its start, disk byte \(startOffset))"
        return try SliceBlockDevice(base: disk, start: startOffset, size: size, name: name)
    }
}
