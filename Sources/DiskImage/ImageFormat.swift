import WispCore

/// Disk image container formats Wisp knows by their magic.
public enum ImageFormat: String, Sendable, Codable, CaseIterable {
    case raw, qcow2, vhd, vhdx, vmdk

    /// Identifies the format of `device` from its first bytes (and, for VHD, its footer).
    /// Anything unrecognised is raw, as with qemu-img.
    public static func probe(_ device: any BlockDevice) throws -> ImageFormat {
        let headLength = Int(min(device.size, 512))
        let head = try device.read(at: 0, count: headLength)
        func starts(with magic: String) -> Bool {
            let m = Array(magic.utf8)
            return head.count >= m.count && Array(head[0..<m.count]) == m
        }
        if starts(with: "QFI\u{FB}") { return .qcow2 }
        if starts(with: "vhdxfile") { return .vhdx }
        if starts(with: "KDMV") || starts(with: "# Disk DescriptorFile") { return .vmdk }
        if starts(with: "conectix") { return .vhd }
        if device.size >= 512 {
            let footer = try device.read(at: device.size - 512, count: 8)
            if footer == Array("conectix".utf8) { return .vhd }
        }
        return .raw
    }
}
