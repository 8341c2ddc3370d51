import WispCore

/// GUIDs as GPT stores them: the first three fields little-endian, the last two big-endian
/// ("mixed-endian"), printed lowercase in the 8-4-4-4-12 form that blkid and sgdisk use.
public enum GUIDText {
    public static func format<C: Collection>(_ bytes: C) -> String where C.Element == UInt8, C.Index == Int {
        let b = Array(bytes)
        guard b.count == 16 else { return "" }
        let order = [3, 2, 1, 0, -1, 5, 4, -1, 7, 6, -1, 8, 9, -1, 10, 11, 12, 13, 14, 15]
        var text = ""
        text.reserveCapacity(36)
        for index in order {
            if index < 0 {
                text.append("-")
            } else {
                text.append(hexDigits[Int(b[index] >> 4)])
                text.append(hexDigits[Int(b[index] & 0xF)])
            }
        }
        return text
    }

    public static func isZero<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        bytes.allSatisfy { $0 == 0 }
    }

    private static let hexDigits: [Character] = Array("0123456789abcdef")
}

/// Names for the partition types a cloud image is likely to hold, for humans only: code
/// never decides anything from these strings.
public enum PartitionTypeName {
    public static func gpt(_ guid: String) -> String? {
        gptNames[guid.lowercased()]
    }

    public static func mbr(_ type: UInt8) -> String? {
        mbrNames[type]
    }

    static let gptNames: [String: String] = [
        "c12a7328-f81f-11d2-ba4b-00a0c93ec93b": "EFI System",
        "21686148-6449-6e6f-744e-656564454649": "BIOS boot",
        "0fc63daf-8483-4772-8e79-3d69d8477de4": "Linux filesystem",
        "4f68bce3-e8cd-4db1-96e7-fbcaf984b709": "Linux root (x86-64)",
        "44479540-f297-41b2-9af7-d131d5f0458a": "Linux root (x86)",
        "b921b045-1df0-41c3-af44-4c6f280d3fae": "Linux root (ARM64)",
        "8484680c-9521-48c6-9c11-b0720656f69e": "Linux /usr (x86-64)",
        "b0e01050-ee5f-4390-949a-9101b17104e9": "Linux /usr (ARM64)",
        "bc13c2ff-59e6-4262-a352-b275fd6f7172": "Linux extended boot",
        "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f": "Linux swap",
        "e6d6d379-f507-44c2-a23c-238f2a3df928": "Linux LVM",
        "a19d880f-05fc-4d3b-a006-743f0f84911e": "Linux RAID",
        "933ac7e1-2eb4-4f13-b844-0e14e2aef915": "Linux /home",
        "3b8f8425-20e0-4f3b-907f-1a25a76f98e8": "Linux /srv",
        "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7": "Microsoft basic data",
        "e3c9e316-0b5c-4db8-817d-f92df00215ae": "Microsoft reserved",
        "de94bba4-06d1-4d40-a16a-bfd50179d6ac": "Windows recovery",
        "6a898cc3-1dd2-11b2-99a6-080020736631": "ZFS",
        "516e7cba-6ecf-11d6-8ff8-00022d09712b": "FreeBSD ZFS",
        "9e1a2d38-c612-4316-aa26-8b49521e5a8b": "PowerPC PReP boot",
    ]

    static let mbrNames: [UInt8: String] = [
        0x01: "FAT12", 0x04: "FAT16 <32M", 0x05: "Extended", 0x06: "FAT16", 0x07: "HPFS/NTFS/exFAT",
        0x0B: "W95 FAT32", 0x0C: "W95 FAT32 (LBA)", 0x0E: "W95 FAT16 (LBA)", 0x0F: "W95 Extended (LBA)",
        0x82: "Linux swap", 0x83: "Linux", 0x85: "Linux extended", 0x8E: "Linux LVM",
        0xA5: "FreeBSD", 0xEE: "GPT protective", 0xEF: "EFI System", 0xFD: "Linux RAID autodetect",
    ]
}
