import Foundation
import OCI
import WispCore
import WispTestSupport

/// The Debian test image's root filesystem as a bootc-style OCI image: extracted with
/// `wisp fs get` (Wisp's own readers), kernel and initrd moved to /usr/lib/modules/$KVER/
/// (vmlinuz, initramfs.img), /boot's GRUB files dropped as a bootc image has none, kargs.d
/// files added, then umoci makes the layout and skopeo the oci-archive; `umoci unpack` of
/// the same layout is the judge. Building takes about a minute, so it is kept in the
/// temporary directory per test image and rebuilt only when the image changes.
struct DebianBootcFixture {
    let directory: String
    var archive: String { "\(directory)/debian-bootc.tar" }
    var kernelVersion: String {
        (try? String(contentsOfFile: "\(directory)/kver", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    func umociRecords() throws -> [String: RootFSRecord] {
        try HostTree.records("\(directory)/bundle/rootfs")
    }

    private static let shared = Result { try DebianBootcFixture.make() }
    static func get() throws -> DebianBootcFixture { try shared.get() }

    private static func make() throws -> DebianBootcFixture {
        let image = try TestImage.path()
        let wisp = ProcessInfo.processInfo.environment["WISP_BINARY"] ?? TestImage.repositoryRoot + "/.build/debug/wisp"
        guard FileManager.default.isExecutableFile(atPath: wisp) else {
            throw WispError.notFound("\(wisp) is missing: build it first (swift build --build-tests), or set WISP_BINARY")
        }
        let stamp = (image as NSString).lastPathComponent
        let directory = FileManager.default.temporaryDirectory.path + "/wisp-oci-debian-bootc-fixture/\(stamp)"
        if FileManager.default.fileExists(atPath: "\(directory)/kver") { return DebianBootcFixture(directory: directory) }
        let building = directory + ".building-\(getpid())"
        try? FileManager.default.removeItem(atPath: building)
        try FileManager.default.createDirectory(atPath: building, withIntermediateDirectories: true)
        try ToolRunner.check("bash", ["-c", script, "fixture", building, image, wisp])
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.moveItem(atPath: building, toPath: directory)
        return DebianBootcFixture(directory: directory)
    }

    static let script = #"""
    set -euo pipefail
    cd "$1"
    "$3" fs get "$2" / -o root
    kver=$(cd root/boot && ls vmlinuz-* | sed 's/^vmlinuz-//' | sort -V | tail -1)
    mkdir -p "root/usr/lib/modules/$kver" root/usr/lib/bootc/kargs.d
    mv "root/boot/vmlinuz-$kver" "root/usr/lib/modules/$kver/vmlinuz"
    mv "root/boot/initrd.img-$kver" "root/usr/lib/modules/$kver/initramfs.img"
    rm -rf root/boot/grub root/vmlinuz* root/initrd.img*
    printf '# serial console for wisp\nkargs = ["console=ttyS0,115200", "quiet"]\n' > root/usr/lib/bootc/kargs.d/10-console.toml
    printf 'kargs = ["arm-only=1"]\nmatch-architectures = ["aarch64"]\n' > root/usr/lib/bootc/kargs.d/20-arm.toml
    umoci init --layout img
    umoci new --image img:debian
    umoci insert --image img:debian root /
    rm -rf root
    skopeo copy --quiet oci:img:debian oci-archive:debian-bootc.tar
    umoci unpack --image img:debian bundle
    rm -rf img
    echo "$kver" > kver
    """#
}
