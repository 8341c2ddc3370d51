import Foundation
import WispCore

/// A host directory shared with the guest over virtio-fs (`wisp run --mount
/// HOST_DIR[:GUEST_DIR][:ro]`), served by a virtiofsd of its own and mounted by the guest
/// at `guestPath` at every boot.
///
/// Why virtio-fs and not virtio-9p: Debian's cloud kernels (linux-image-cloud-*, the test
/// image's) are built without 9p (`# CONFIG_NET_9P is not set`) but with virtiofs, as are
/// Ubuntu's, Fedora's and every distribution kernel since Linux 5.4; QEMU's own 9p server
/// is also several times slower. virtio-fs needs the guest's RAM shared with virtiofsd
/// (`QEMUCommandLine` then backs memory with a shared memfd).
public struct SharedFolder: Sendable, Codable, Equatable {
    /// Absolute, symlink-free host directory.
    public var hostPath: String
    /// Absolute path in the guest.
    public var guestPath: String
    public var readOnly: Bool

    public init(hostPath: String, guestPath: String, readOnly: Bool = false) {
        self.hostPath = hostPath
        self.guestPath = guestPath
        self.readOnly = readOnly
    }

    /// The virtio-fs tag of the `index`th folder, what the guest mounts ("wisp0").
    public static func tag(_ index: Int) -> String { "wisp\(index)" }

    /// Parses `HOST_DIR[:GUEST_DIR][:ro]` (`:rw` also accepted); GUEST_DIR defaults to the
    /// host path, as Lima mounts the home directory. Paths may hold spaces but not ':'.
    /// The host directory must exist; it is made absolute and symlink-free here, so the
    /// record names what virtiofsd will serve.
    public static func parse(_ text: String, currentDirectory: String = FileManager.default.currentDirectoryPath) throws -> SharedFolder {
        var parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var readOnly = false
        if parts.count >= 2, let last = parts.last, last == "ro" || last == "rw" {
            readOnly = last == "ro"
            parts.removeLast()
        }
        guard (1...2).contains(parts.count), !parts[0].isEmpty, parts.count == 1 || !parts[1].isEmpty else {
            throw WispError.usage("--mount \(text): expected HOST_DIR[:GUEST_DIR][:ro], e.g. ~/src:/src:ro")
        }
        let absolute = parts[0].hasPrefix("/") ? parts[0] : currentDirectory + "/" + parts[0]
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw WispError.notFound("--mount \(text): \(parts[0]) is not a directory on this host")
        }
        let host = URL(fileURLWithPath: absolute).resolvingSymlinksInPath().standardizedFileURL.path
        let guest = parts.count == 2 ? parts[1] : host
        guard guest.hasPrefix("/") else {
            throw WispError.usage("--mount \(text): the guest directory \(guest) must be an absolute path")
        }
        let components = guest.split(separator: "/")
        guard !components.contains(where: { $0 == ".." || $0 == "." }),
              !guest.contains(where: { $0.asciiValue.map { $0 < 0x20 || $0 == 0x7F } ?? false }) else {
            throw WispError.usage("--mount \(text): the guest directory \(guest) must be a plain absolute path (no '.', '..' or control characters)")
        }
        let normalized = "/" + components.joined(separator: "/")
        guard normalized != "/" else { throw WispError.usage("--mount \(text): the guest's root directory cannot be replaced by a shared folder") }
        return SharedFolder(hostPath: host, guestPath: normalized, readOnly: readOnly)
    }

    /// Refuses two folders on one guest path (the second would hide the first).
    public static func checkDistinct(_ folders: [SharedFolder]) throws {
        var seen = Set<String>()
        for folder in folders where !seen.insert(folder.guestPath).inserted {
            throw WispError.usage("--mount: two folders would be mounted on \(folder.guestPath) in the guest")
        }
    }
}
