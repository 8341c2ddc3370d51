import WispCore

/// Disk image container formats Wisp knows by their magic.
public enum ImageFormat: String, Sendable, Codable, CaseIterable {
    case raw, qcow2, vhd, vhdx, vmdk, vdi

    /// Identifies the format of `device` from its first bytes (and, for VHD, its footer).
    /// Anything unrecognised is raw, as with qemu-img.
    public static func probe(_ device: any BlockDevice) throws -> ImageFormat {
        let headLength = Int(min(device.size, 512))
        let head = try device.read(at: 0, count: headLength)
        func starts(with magic: String) -> Bool { starts(bytes: Array(magic.utf8)) }
        func starts(bytes m: [UInt8]) -> Bool {
            head.count >= m.count && Array(head[0..<m.count]) == m
        }
        // The qcow2 magic ends in byte 0xFB, which is not ASCII: compare bytes.
        if starts(bytes: [0x51, 0x46, 0x49, 0xFB]) { return .qcow2 }
        if starts(with: "vhdxfile") { return .vhdx }
        if starts(with: "KDMV") || starts(with: "# Disk DescriptorFile") { return .vmdk }
        if starts(with: "conectix") { return .vhd }
        if head.count >= 68, Array(head[64..<68]) == [0x7F, 0x10, 0xDA, 0xBE] { return .vdi }
        if device.size >= 512 {
            let footer = try device.read(at: device.size - 512, count: 8)
            if footer == Array("conectix".utf8) { return .vhd }
        }
        return .raw
    }

    /// QEMU's block driver for this format (VHD's is called "vpc").
    public var qemuDriverName: String { self == .vhd ? "vpc" : rawValue }

    /// The format a QEMU driver name stands for, as qcow2 headers record backing formats;
    /// nil for anything else (protocol drivers such as "file" or "nbd" included).
    public init?(qemuDriverName: String) {
        switch qemuDriverName {
        case "vpc": self = .vhd
        case "vhd": return nil
        default:
            guard let format = ImageFormat(rawValue: qemuDriverName) else { return nil }
            self = format
        }
    }
}
