import Partitions

/// One partition as `wisp inspect` and `wisp image info` report it (JSON keys are these
/// names, camelCase like the rest of the inspect report).
public struct PartitionInfo: Codable, Sendable, Equatable {
    /// 1-based as Linux numbers them; 0 is the whole disk when it has no table.
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
    /// "EFI System", "Linux filesystem", ... when the type is a known one.
    public var typeName: String?
    public var bootable: Bool
    /// GPT attribute bits.
    public var attributes: UInt64

    public init(_ partition: Partition) {
        number = partition.number
        startOffset = partition.startOffset
        size = partition.size
        name = partition.name
        typeGUID = partition.typeGUID
        uniqueGUID = partition.uniqueGUID
        mbrType = partition.mbrType
        typeName = partition.typeName
        bootable = partition.bootable
        attributes = partition.attributes
    }

    /// The type as text whatever the scheme: the GPT type GUID or the MBR type byte in hex.
    public var typeCode: String? {
        if let typeGUID { return typeGUID }
        if let mbrType { return "0x" + String(mbrType, radix: 16) }
        return nil
    }
}
