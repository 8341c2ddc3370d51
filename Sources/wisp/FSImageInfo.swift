import DiskImage
import Foundation
import GuestInspect
import WispCore

/// The guest part of `wisp image info`: the partition table and the filesystems found.
/// A table or filesystem Wisp cannot read is reported, never fatal to `image info`.
struct GuestDiskInfo: Encodable {
    var report: GuestDiskReport?
    var error: String?

    init(path: String, policy: ExternalReferencePolicy) {
        do {
            report = try GuestDisk(path: path, policy: policy).report
        } catch {
            self.error = ForeignErrorTranslation.sentence(error)
        }
    }

    var textLines: [String] {
        if let report { return Self.textLines(report) }
        return ["partition table: unreadable (\(error ?? "unknown error"))"]
    }

    /// One line per partition, with its filesystem, under a heading.
    static func textLines(_ report: GuestDiskReport) -> [String] {
        var lines: [String] = []
        if let iso = report.iso { lines += isoLines(iso) }
        switch report.scheme {
        case .none: lines.append("partition table: none (filesystem on the whole disk)")
        case .gpt, .mbr:
            lines.append("partition table: \(report.scheme.rawValue), \(report.sectorSize)-byte sectors"
                + (report.diskGUID.map { ", disk id \($0)" } ?? ""))
        }
        for warning in report.warnings { lines.append("  warning: \(warning)") }
        for p in report.partitions {
            var line = "  \(p.number == 0 ? "disk" : String(p.number)): \(ByteSize.format(p.size)) at \(p.startOffset)"
            if let typeName = p.typeName ?? p.typeCode { line += ", \(typeName)" }
            if let name = p.name { line += ", name \"\(name)\"" }
            if p.bootable { line += ", bootable" }
            if let fs = report.filesystems.first(where: { $0.partition == p.number }) {
                line += "; \(fs.type)"
                if let label = fs.label { line += " label \"\(label)\"" }
                if let uuid = fs.uuid { line += " uuid \(uuid)" }
                if let unreadable = fs.unreadable { line += " (\(unreadable))" }
            }
            lines.append(line)
        }
        return lines
    }
}

extension GuestDiskInfo {
    /// The CD image's volume, names, El Torito entries and hybrid table.
    static func isoLines(_ iso: ISOMediumReport) -> [String] {
        var lines = ["ISO 9660 volume \"\(iso.volumeID)\" (\(ByteSize.format(iso.volumeBytes)), \(iso.names) names"
            + (iso.hasJoliet && iso.names != "Joliet" ? ", Joliet too" : "") + ")"]
        if let catalog = iso.bootCatalog {
            lines.append("El Torito boot catalog at sector \(catalog.sector)" + (catalog.idString.isEmpty ? "" : " (\(catalog.idString))"))
            for entry in catalog.entries {
                var line = "  \(entry.platform.rawValue): \(entry.media) image at sector \(entry.loadSector), \(entry.sectorCount) x 512 bytes"
                if entry.platform == .uefi, let fs = iso.efiImageFileSystem {
                    line += ", an EFI system partition image (\(fs)" + (iso.efiImageLabel.map { " label \"\($0)\"" } ?? "") + ")"
                }
                if !entry.bootable { line += ", not bootable" }
                lines.append(line)
            }
        } else if let error = iso.bootCatalogError {
            lines.append("El Torito boot catalog: unreadable (\(error))")
        } else {
            lines.append("El Torito boot catalog: none (not bootable from a CD)")
        }
        if let table = iso.hybridPartitionTable {
            lines.append("isohybrid: the first sectors hold \(table == "mbr" ? "an MBR" : "a GPT") partition table too (boots from a USB stick)")
        }
        return lines
    }
}

/// `ImageInfo`'s JSON with the guest report added under "partitionTable" (or
/// "partitionTableError").
struct ImageInfoWithGuest<Info: Encodable>: Encodable {
    var info: Info
    var guest: GuestDiskInfo

    enum Keys: String, CodingKey { case partitionTable, partitionTableError }

    func encode(to encoder: any Encoder) throws {
        try info.encode(to: encoder)
        var container = encoder.container(keyedBy: Keys.self)
        try container.encodeIfPresent(guest.report, forKey: .partitionTable)
        try container.encodeIfPresent(guest.error, forKey: .partitionTableError)
    }
}
