import FileSystems
import Partitions
import WispCore

/// What `wisp image info` says about a CD image: its volume, which names it carries, its
/// El Torito boot catalog (BIOS and UEFI entries, and the EFI system partition image the
/// UEFI entry loads), and whether its first sectors also hold an MBR or GPT (isohybrid:
/// the same file boots from a USB stick).
public struct ISOMediumReport: Codable, Sendable, Equatable {
    public var volumeID: String
    public var systemID: String
    /// The names read: "Rock Ridge", "Joliet" or "ISO 9660".
    public var names: String
    public var hasJoliet: Bool
    public var volumeBytes: UInt64
    public var bootCatalog: ElToritoCatalog?
    public var bootCatalogError: String?
    /// The filesystem of the UEFI entry's image ("vfat"), and its label.
    public var efiImageFileSystem: String?
    public var efiImageLabel: String?
    /// "mbr" or "gpt" when the image is isohybrid.
    public var hybridPartitionTable: String?
}

extension GuestDisk {
    /// The CD image's report, when the image is one (nil for ordinary disks).
    public var isoReport: ISOMediumReport? {
        guard let iso = mediumVolume?.fileSystem as? ISO9660Reader else { return nil }
        var report = ISOMediumReport(volumeID: iso.volumeID, systemID: iso.systemID, names: iso.hierarchy.rawValue,
                                     hasJoliet: iso.hasJoliet, volumeBytes: iso.volumeBytes,
                                     hybridPartitionTable: table.scheme == .none ? nil : table.scheme.rawValue)
        if let sector = iso.bootCatalogSector {
            do {
                let catalog = try ElToritoCatalog.read(device, sector: sector)
                report.bootCatalog = catalog
                if let efi = try catalog.efiImage(on: device), let kind = try FileSystemProbe.probe(efi) {
                    report.efiImageFileSystem = kind.rawValue
                    report.efiImageLabel = (try? FileSystemOpener.open(efi, as: kind))?.label
                }
            } catch {
                report.bootCatalogError = Self.reason(error)
            }
        }
        return report
    }
}

extension GuestDisk {
    /// The filesystem of the El Torito UEFI entry's image (the EFI system partition a CD
    /// boots from under UEFI), when the image is a CD and Wisp can read it: its GRUB
    /// configuration and loader entries name the live system's kernel on the medium.
    public var elToritoEFIFileSystem: (any FileSystem)? {
        guard let iso = mediumVolume?.fileSystem as? ISO9660Reader, let sector = iso.bootCatalogSector,
              let catalog = try? ElToritoCatalog.read(device, sector: sector),
              let efi = try? catalog.efiImage(on: device), let kind = try? FileSystemProbe.probe(efi) else { return nil }
        return try? FileSystemOpener.open(efi, as: kind)
    }
}
