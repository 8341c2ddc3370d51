extension Partition {
    /// One past the last byte.
    public var endOffset: UInt64 { startOffset &+ size }

    /// A human name for the partition type ("EFI System", "Linux filesystem", "Linux"), if known.
    public var typeName: String? {
        if let typeGUID { return PartitionTypeName.gpt(typeGUID) }
        if let mbrType { return PartitionTypeName.mbr(mbrType) }
        return nil
    }

    /// The type as text whatever the scheme: the GPT type GUID or the MBR type byte in hex.
    public var typeCode: String? {
        if let typeGUID { return typeGUID }
        if let mbrType { return "0x" + String(mbrType, radix: 16) }
        return nil
    }
}

extension Partition {
    /// An MBR extended partition: a container of logical partitions, holding no filesystem.
    public var isExtendedContainer: Bool {
        guard let mbrType else { return false }
        return MBRPartitionTable.extendedTypes.contains(mbrType)
    }
}
