import OCI
import WispCore

/// A kernel found in a container image's merged tree, with its initrd, as guest paths
/// from the root filesystem's root (where the BLS entry that names it lives).
public struct ContainerKernel: Sendable, Equatable, Codable {
    public var version: String
    /// "/usr/lib/modules/6.1.0-18-amd64/vmlinuz" or "/boot/vmlinuz-6.1.0-18-amd64".
    public var kernel: String
    public var initrd: String?
    /// A unified kernel image (a PE file with .linux, .initrd and .cmdline sections): booted
    /// through a BLS `efi` line, its initrd inside it. nil in reports of older Wisp.
    public var unified: Bool?

    public init(version: String, kernel: String, initrd: String?, unified: Bool? = nil) {
        self.version = version
        self.kernel = kernel
        self.initrd = initrd
        self.unified = unified
    }

    /// Where kernels live, newest first: bootc's layout (`/usr/lib/modules/$KVER/vmlinuz`
    /// with `initramfs.img` beside it; bootc and ostree images keep nothing in /boot) and
    /// the classic one (`/boot/vmlinuz-$KVER` with Debian's `initrd.img-$KVER` or Fedora's
    /// `initramfs-$KVER.img`). When both hold the same version, bootc's wins: /boot of a
    /// bootc image is a mount point, not the image's content. Unified kernel images count
    /// where no plain kernel of their version is: `/usr/lib/modules/$KVER/*.efi` (Fedora's
    /// kernel-uki-virt) and `/boot/EFI/Linux/*.efi` (systemd-boot's place, versioned by
    /// file name).
    public static func find(in tree: MergedRootFS) -> [ContainerKernel] {
        var found: [String: ContainerKernel] = [:]
        func isRegular(_ path: String) -> Bool {
            guard let resolved = tree.resolve(RootFSPath(String(path.dropFirst()))),
                  case .regular(let size) = tree.entry(at: resolved) else { return false }
            return size > 0
        }
        if let modules = tree.resolve(RootFSPath("usr/lib/modules")), let names = tree.childNames(of: modules) {
            for name in names {
                guard let version = safeVersion(name) else { continue }
                let kernel = "/usr/lib/modules/\(version)/vmlinuz"
                guard isRegular(kernel) else { continue }
                let initrd = "/usr/lib/modules/\(version)/initramfs.img"
                found[version] = ContainerKernel(version: version, kernel: kernel, initrd: isRegular(initrd) ? initrd : nil)
            }
        }
        if let boot = tree.resolve(RootFSPath("boot")), let names = tree.childNames(of: boot) {
            let prefix = Array("vmlinuz-".utf8)
            for name in names where name.starts(with: prefix) {
                guard let version = safeVersion(Array(name.dropFirst(prefix.count))), found[version] == nil else { continue }
                let kernel = "/boot/vmlinuz-\(version)"
                guard isRegular(kernel) else { continue }
                let initrd = ["/boot/initrd.img-\(version)", "/boot/initramfs-\(version).img"].first(where: isRegular)
                found[version] = ContainerKernel(version: version, kernel: kernel, initrd: initrd)
            }
        }
        func unifiedImages(in directory: String) -> [String] {
            guard let dir = tree.resolve(RootFSPath(String(directory.dropFirst()))), let names = tree.childNames(of: dir) else { return [] }
            return names.compactMap { name in
                guard name.count > 4, name.suffix(4).map({ $0 | 0x20 }) == Array(".efi".utf8),
                      let stem = safeVersion(Array(name.dropLast(4))) else { return nil }
                let path = "\(directory)/\(stem)\(String(decoding: name.suffix(4), as: UTF8.self))"
                return isRegular(path) ? path : nil
            }.sorted()
        }
        if let modules = tree.resolve(RootFSPath("usr/lib/modules")), let names = tree.childNames(of: modules) {
            for name in names {
                guard let version = safeVersion(name), found[version] == nil,
                      let uki = unifiedImages(in: "/usr/lib/modules/\(version)").first else { continue }
                found[version] = ContainerKernel(version: version, kernel: uki, initrd: nil, unified: true)
            }
        }
        for uki in unifiedImages(in: "/boot/EFI/Linux") {
            let version = String(uki.dropFirst("/boot/EFI/Linux/".count).dropLast(4))
            if found[version] == nil { found[version] = ContainerKernel(version: version, kernel: uki, initrd: nil, unified: true) }
        }
        return found.values.sorted { VersionCompare.compare($0.version, $1.version) > 0 }
    }

    /// A version that can stand in a path and a file name unquoted: kernel release strings
    /// are letters, digits and `.-_+~`; anything else (a hostile or odd name) is skipped.
    static func safeVersion(_ bytes: [UInt8]) -> String? {
        guard !bytes.isEmpty, bytes.count <= 128, bytes != Array(".".utf8), bytes != Array("..".utf8),
              bytes.allSatisfy({ b in
                  (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || Array("._-+~".utf8).contains(b)
              }) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}
