import WispCore

/// Disk image container formats Wisp knows by their magic.
public enum ImageFormat: String, Sendable, Codable, CaseIterable {
    case raw, qcow2, vhd, vhdx, vmdk, vdi

    /// Identifies the format of `device` from its first bytes (and, for VHD, its footer).
    /// Binary content nothing claims is raw, as with qemu-img; but disk formats Wisp does
    /// not read are refused (`.unsupported`, naming the format) and content that is no disk
    /// image at all (text, HTML, archives, compressed files, less than a sector) is refused
    /// (`.invalidArgument`), so such a file never boots or converts as a raw disk. A caller
    /// who knows better says the format and this probe is never asked.
    public static func probe(_ device: any BlockDevice) throws -> ImageFormat {
        let headLength = Int(min(device.size, UInt64(ForeignContent.sniffLength)))
        let head = try device.read(at: 0, count: headLength)
        func starts(with magic: String) -> Bool { starts(bytes: Array(magic.utf8)) }
        func starts(bytes m: [UInt8]) -> Bool {
            head.count >= m.count && Array(head[0..<m.count]) == m
        }
        // The qcow2 magic ends in byte 0xFB, which is not ASCII: compare bytes. Version 1
        // (qcow) shares it and is refused below.
        if starts(bytes: [0x51, 0x46, 0x49, 0xFB]), !starts(bytes: [0x51, 0x46, 0x49, 0xFB, 0, 0, 0, 1]) { return .qcow2 }
        if starts(with: "vhdxfile") { return .vhdx }
        // COWD (ESX vmfsSparse) is VMDK too: the VMDK reader names it and refuses it.
        if starts(with: "KDMV") || starts(with: "COWD") || isVmdkDescriptor(head) { return .vmdk }
        if starts(with: "conectix") { return .vhd }
        if head.count >= 68, Array(head[64..<68]) == [0x7F, 0x10, 0xDA, 0xBE] { return .vdi }
        let tail = device.size >= 512 ? try device.read(at: device.size - 512, count: 512) : nil
        if let tail, Array(tail[0..<8]) == Array("conectix".utf8) { return .vhd }
        if let format = ForeignContent.unsupportedFormat(head: head, tail: tail) {
            throw WispError(.unsupported, "\(device.name) is \(format), which Wisp does not read; \(ForeignContent.advice(for: format, name: device.name))")
        }
        // An OVA is a tar too; the OVA reader takes it before any probe that matters.
        if OvaArchive.isOva(device) { return .raw }
        if let reason = ForeignContent.notADiskImage(head: head, size: device.size, name: device.name) {
            throw WispError.invalidArgument(reason)
        }
        return .raw
    }

    /// qemu's test for a VMDK text descriptor: comment lines and lines of spaces (an empty
    /// line ends the test, as in qemu), then "version=1", "2" or "3" on a line of its own.
    static func isVmdkDescriptor(_ head: [UInt8]) -> Bool {
        if head.starts(with: Array("# Disk DescriptorFile".utf8)) { return true }
        for line in head.split(separator: 0x0A, omittingEmptySubsequences: false) {
            var text = String(decoding: line, as: UTF8.self)
            if text.hasSuffix("\r") { text.removeLast() }
            if text.hasPrefix("#") { continue }
            if text.hasPrefix(" "), text.allSatisfy({ $0 == " " }) { continue }
            return ["version=1", "version=2", "version=3"].contains(text)
        }
        return false
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
