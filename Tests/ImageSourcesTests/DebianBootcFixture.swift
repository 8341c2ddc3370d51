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
        let directory = try CachedFixtureDirectory.get("wisp-oci-debian-bootc-fixture", stamp: (image as NSString).lastPathComponent,
                                                       marker: "kver") { building in
            try ToolRunner.check("bash", ["-c", script, "fixture", building, image, wisp])
        }
        return DebianBootcFixture(directory: directory)
    }

    static let script = #"""
    set -euo pipefail
    cd "$1"; image=$2; wisp=$3
    """# + "\n" + BootcLayoutScript.lines + "\n" + #"""
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
