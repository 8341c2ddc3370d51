import Foundation
import WispCore
import WispTestSupport

/// A bootc-style Debian image made at test time from the test image's root filesystem
/// (extracted with `wisp fs get`): kernel and initramfs under /usr/lib/modules/$KVER/,
/// an empty /boot, an empty fstab (the root comes from the kernel command line, as in
/// bootc images), a kargs.d file, sshd enabled, networking by systemd-networkd with DHCP,
/// and cloud-init removed, so Wisp must provision it through systemd credentials (or,
/// with `cloudInit`, kept: the same image provisioned through the NoCloud seed). umoci
/// makes the layout and skopeo the oci-archive. Kept per test image in the temporary
/// directory (building takes about a minute).
struct BootcImageFixture {
    let directory: String
    var archive: String { "\(directory)/debian-bootc.tar" }
    /// The argument the image's kargs.d file adds to the kernel command line.
    static let kargsMarker = "wisp.e2e=kargs-d"

    static func get(wisp: String, cloudInit: Bool = false) throws -> BootcImageFixture {
        let image = try TestImage.path()
        let directory = try CachedFixtureDirectory.get("wisp-e2e-bootc-fixture\(cloudInit ? "-cloud-init" : "")",
                                                       stamp: (image as NSString).lastPathComponent, marker: "debian-bootc.tar") { building in
            try ToolRunner.check("bash", ["-c", script, "fixture", building, image, wisp, kargsMarker, cloudInit ? "keep" : "remove"])
        }
        return BootcImageFixture(directory: directory)
    }

    static let script = #"""
    set -euo pipefail
    cd "$1"; image=$2; wisp=$3
    """# + "\n" + BootcLayoutScript.lines + "\n" + #"""
    printf 'kargs = ["%s"]\n' "$4" > root/usr/lib/bootc/kargs.d/10-wisp-e2e.toml
    echo '# bootc: the root is named on the kernel command line' > root/etc/fstab
    if [ "$5" = keep ]; then
      umoci init --layout img >/dev/null && umoci new --image img:debian >/dev/null
      umoci insert --image img:debian root / >/dev/null && rm -rf root
      skopeo copy --quiet oci:img:debian oci-archive:debian-bootc.tar && rm -rf img
      exit 0
    fi
    # No cloud-init: its package files, configuration, units and generator.
    rm -rf root/etc/cloud root/var/lib/cloud root/usr/bin/cloud-init* root/usr/lib/python3/dist-packages/cloudinit \
      root/usr/lib/systemd/system/cloud-* root/usr/lib/systemd/system-generators/cloud-init-generator \
      root/etc/network/interfaces.d/*
    find root/etc/systemd/system -name 'cloud-*' -exec rm -rf {} +
    # The network as bootc images bring it: a DHCP .network file and systemd-networkd enabled.
    mkdir -p root/etc/systemd/network root/etc/systemd/system/multi-user.target.wants \
      root/etc/systemd/system/sockets.target.wants root/etc/systemd/system/network-online.target.wants
    printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' > root/etc/systemd/network/80-dhcp.network
    ln -sf /usr/lib/systemd/system/systemd-networkd.service root/etc/systemd/system/multi-user.target.wants/
    ln -sf /usr/lib/systemd/system/systemd-networkd.socket root/etc/systemd/system/sockets.target.wants/
    ln -sf /usr/lib/systemd/system/systemd-networkd-wait-online.service root/etc/systemd/system/network-online.target.wants/
    test -e root/usr/sbin/sshd
    test -L root/etc/systemd/system/multi-user.target.wants/ssh.service
    umoci init --layout img >/dev/null
    umoci new --image img:debian >/dev/null
    umoci insert --image img:debian root / >/dev/null
    rm -rf root
    skopeo copy --quiet oci:img:debian oci-archive:debian-bootc.tar
    rm -rf img
    """#
}
