#if canImport(Glibc)
import Glibc
#endif
import DiskImage
import Foundation
import ImageSources
import WispCore

/// VMDK, VHD, VHDX and VDI bases (and chains that mix them with qcow2) become a qcow2 in the
/// cache before `wisp run` boots them, so QEMU only ever opens qcow2 and raw files Wisp made
/// or checked. Why not QEMU's own drivers: its vpc driver has no differencing VHDs and its
/// vhdx driver no differencing VHDX, a VMDK descriptor makes QEMU open the extent files it
/// names (Wisp checked them, but the blockdev graph would have to spell every extent out),
/// and stream-optimized grains are inflated on every read. Wisp's converter writes the
/// qcow2 on both cores, sparse, in about the time QEMU takes to read the image once.
///
/// Entries are `<images>/converted/<key>.qcow2`, the key a SHA-256 over each chain member's
/// path, device, inode, size and modification time: an image changed in place gets a new
/// entry, an unchanged one is converted once. The entry appears atomically, and is made
/// under a lock per key (`.<key>.lock`), so concurrent runs convert it once.
struct ForeignFormatCache {
    let directory: String

    init(images: String) { directory = images + "/converted" }

    static func needsConversion(_ chain: BackingChain) -> Bool {
        chain.members.contains { ![.qcow2, .raw].contains($0.format) }
    }

    /// The cached qcow2 holding what `chain` reads, converted now if it is not there yet.
    func qcow2(for chain: BackingChain, progress: (String) -> Void) throws -> String {
        let key = try Self.key(chain)
        let path = "\(directory)/\(key).qcow2"
        if FileManager.default.fileExists(atPath: path) {
            progress("using the qcow2 converted earlier from \(chain.top.path) (\(chain.top.format.rawValue))")
            return path
        }
        try ImageCacheDirectory(path: directory).create()
        // Two runs of the same base at once: one converts, the other waits and then uses it.
        let lock = try FileLock.exclusive("\(directory)/.\(key).lock", waiting: { _ in
            progress("waiting for another wisp that is converting \(chain.top.path)")
        })
        defer { lock.release() }
        if FileManager.default.fileExists(atPath: path) { return path }
        progress("converting \(chain.top.path) (\(chain.top.format.rawValue)) to qcow2 in the cache, once")
        // ImageConverter writes through AtomicOutput: the entry is whole or absent.
        try ImageConverter.convert(input: try DiskImageFile.open(chain), to: path, options: ConvertOptions(format: .qcow2))
        return path
    }

    static func key(_ chain: BackingChain) throws -> String {
        var hasher = SHA256()
        hasher.update(Array("wisp converted base 1\0".utf8))
        for member in chain.members {
            // A VMDK descriptor's extents are the data: their changes count too.
            let extents = member.vmdk?.extentFiles.compactMap { $0?.path } ?? []
            for file in [member.path] + (member.dataFile.map { [$0.path] } ?? []) + extents {
                var st = stat()
                guard stat(file, &st) == 0 else { throw WispError.posix("stat", file, errno: errno) }
                hasher.update(Array("\(file)\0\(member.format.rawValue)\0\(st.st_dev)\0\(st.st_ino)\0\(st.st_size)\0\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)\0".utf8))
            }
        }
        return SHA256.hex(hasher.finalize())
    }
}
