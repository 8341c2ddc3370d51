import Foundation
import GuestInspect
import Testing
import WispCore
import WispTestSupport

/// A grub.cfg beside BLS entries it does not include (no `blscfg`): which loader names the
/// default depends on what the GRUB scanner found, the one fact the scanners pass on.
@Suite struct BootLoaderOrderTests {
    static let machine = "3f1e0c0a9f0b4d6e8e2c1a7b5d9c0e11"
    static let versions = ["6.11.4-301.fc41.x86_64", "6.10.3-200.fc41.x86_64"]

    /// A /boot with two BLS entries, grubenv's saved_entry naming the older one, and `grubCfg`.
    func disk(_ layout: GuestLayout, grubCfg: String) throws -> String {
        var tree: [String: GuestLayout.Node] = [
            "/grub2/grub.cfg": .text(grubCfg),
            "/grub2/grubenv": .file(GuestLayout.grubenv(["saved_entry": "\(Self.machine)-\(Self.versions[1])"])),
        ]
        for v in Self.versions {
            tree["/loader/entries/\(Self.machine)-\(v).conf"] = .text(LayoutTests.blsEntry(v, options: "root=UUID=\(LayoutTests.rootUUID) ro bls"))
            tree["/vmlinuz-\(v)"] = .file(FakeKernel.bzImage(version: v))
            tree["/initramfs-\(v).img"] = .text("initramfs \(v)")
        }
        let boot = try layout.ext4(tree, uuid: LayoutTests.bootUUID, label: "boot")
        let root = try layout.ext4(LayoutTests.fedoraRootTree(fstabRoot: "ext4 defaults"), uuid: LayoutTests.rootUUID, label: "root")
        return try LayoutTests().fedoraDisk(layout, boot: boot, root: root)
    }

    @Test func grubMenuWithoutBlscfgNamesTheDefaultAndBLSEntriesFollow() throws {
        let layout = try GuestLayout("grub-beside-bls")
        let v = Self.versions[0]
        let grub = """
            set default=0
            menuentry 'Custom kernel' --id custom {
            	linux /vmlinuz-\(v) root=UUID=\(LayoutTests.rootUUID) ro custom
            	initrd /initramfs-\(v).img
            }
            """
        let (_, report) = try LayoutTests().inspect(try disk(layout, grubCfg: grub))
        #expect(report.bootEntries.map(\.source) == [.grubConfig, .bls, .bls])
        #expect(report.bootEntries.map(\.id) == ["custom", "\(Self.machine)-\(Self.versions[0])", "\(Self.machine)-\(Self.versions[1])"])
        #expect(report.bootEntries.map(\.kernel) == ["/boot/vmlinuz-\(v)"] + Self.versions.map { "/boot/vmlinuz-\($0)" })
        // GRUB boots: its default wins over the BLS entry grubenv's saved_entry names.
        #expect(report.defaultEntry == 0)
        #expect(!report.defaultReason.contains("saved_entry"))
        #expect(report.bootEntries[0].commandLine == "root=UUID=\(LayoutTests.rootUUID) ro custom")
    }

    @Test func grubMenuWithoutALinuxEntryLeavesTheDefaultToBLS() throws {
        let layout = try GuestLayout("grub-no-linux")
        let grub = """
            menuentry 'UEFI Firmware Settings' --id uefi-firmware {
            	fwsetup
            }
            """
        let (_, report) = try LayoutTests().inspect(try disk(layout, grubCfg: grub))
        #expect(report.bootEntries.map(\.source) == [.bls, .bls])
        let d = try #require(report.defaultEntry)
        #expect(report.bootEntries[d].version == Self.versions[1])
        #expect(report.defaultReason == "grubenv saved_entry=\(Self.machine)-\(Self.versions[1]) names this BLS entry")
        #expect(report.warnings.contains("/boot/grub2/grub.cfg: no menu entry boots a Linux kernel"))
    }

    @Test func sourcesKeepTheirJSONNames() throws {
        let encoded = try JSONEncoder().encode(BootEntrySource.allCases)
        #expect(String(decoding: encoded, as: UTF8.self) == #"["grub.cfg","bls","extlinux","uki","kernel-install","scan"]"#)
    }
}
