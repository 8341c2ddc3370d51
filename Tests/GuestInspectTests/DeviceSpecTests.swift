import GuestInspect
import Testing
import WispCore

/// Every spelling of a device that fstab, GRUB and `--partition` use, parsed into one
/// `DeviceSpec`; names that are no partition of the first disk are refused.
@Suite struct DeviceSpecTests {
    @Test func fstabForms() {
        let cases: [(String, DeviceSpec?)] = [
            ("UUID=0a2c0df2-25b1-4a5e-9d7e-5f1e2a3b4c5d", .fileSystemUUID("0a2c0df2-25b1-4a5e-9d7e-5f1e2a3b4c5d")),
            ("UUID=\"ABCD-1234\"", .fileSystemUUID("ABCD-1234")),
            ("LABEL=cloudimg-rootfs", .fileSystemLabel("cloudimg-rootfs")),
            ("PARTUUID=1d5fa5a4-9b3c-4d7a-8f2e-3c4b5a697887", .partitionUUID("1d5fa5a4-9b3c-4d7a-8f2e-3c4b5a697887")),
            ("PARTLABEL=EFI System", .partitionLabel("EFI System")),
            ("/dev/disk/by-uuid/44444444-0000-4000-8000-000000000004", .fileSystemUUID("44444444-0000-4000-8000-000000000004")),
            ("/dev/disk/by-label/my\\x20data", .fileSystemLabel("my data")),
            ("/dev/disk/by-partuuid/aaaaaaaa-0000-4000-8000-00000000e5f0", .partitionUUID("aaaaaaaa-0000-4000-8000-00000000e5f0")),
            ("/dev/disk/by-partlabel/EFI\\x20System", .partitionLabel("EFI System")),
            ("/dev/vda3", .partitionNumber(3)), ("/dev/sda1", .partitionNumber(1)), ("/dev/xvda15", .partitionNumber(15)),
            ("/dev/hda2", .partitionNumber(2)), ("/dev/nvme0n1p4", .partitionNumber(4)), ("/dev/mmcblk0p1", .partitionNumber(1)),
            ("/dev/vda", .partitionNumber(0)), ("/dev/nvme0n1", .partitionNumber(0)),
            // Another disk, device mapper, network and pseudo filesystems: not this disk.
            ("/dev/vdb1", nil), ("/dev/nvme1n1p1", nil), ("/dev/nvme0n1 1", nil), ("/dev/mmcblk0x1", nil),
            ("/dev/mapper/vg-root", nil), ("/dev/md0", nil), ("server:/export", nil), ("tmpfs", nil), ("proc", nil),
            ("UUID=", nil), ("/dev/disk/by-label/", nil), ("/dev/vda99999999999999999999", nil), ("uuid=x", nil),
        ]
        for (field, expected) in cases {
            #expect(DeviceSpec(fstab: field) == expected, "\(field)")
        }
    }

    @Test func selectorForms() throws {
        #expect(try DeviceSpec(selector: "15") == .partitionNumber(15))
        #expect(try DeviceSpec(selector: "0") == .partitionNumber(0))
        #expect(try DeviceSpec(selector: "UEFI") == .anyIdentifier("UEFI"))
        #expect(try DeviceSpec(selector: "-1") == .anyIdentifier("-1"))
        #expect(try DeviceSpec(selector: "5749-F00D") == .anyIdentifier("5749-F00D"))
        #expect(try DeviceSpec(selector: "label=boot") == .fileSystemLabel("boot"))
        #expect(try DeviceSpec(selector: "PartLabel=EFI System") == .partitionLabel("EFI System"))
        // An "=" in a bare name that is no known key keeps the whole text.
        #expect(try DeviceSpec(selector: "a=b") == .anyIdentifier("a=b"))
        #expect(try DeviceSpec(selector: "/dev/xvda2") == .partitionNumber(2))
        for bad in ["", "LABEL=", "/dev/vdb1", "/dev/mapper/x", "/dev/disk/by-id/ata-foo"] {
            #expect { try DeviceSpec(selector: bad) } throws: { ($0 as? WispError)?.kind == .usage }
        }
    }

    @Test func grubDevices() {
        #expect(DeviceSpec(grub: .fsUUID("ABCD-1234")) == .fileSystemUUID("ABCD-1234"))
        #expect(DeviceSpec(grub: .fsLabel("boot")) == .fileSystemLabel("boot"))
        #expect(DeviceSpec(grub: .partition(2)) == .partitionNumber(2))
        #expect(DeviceSpec(grub: .file("/boot/grub/grub.cfg")) == nil)
        #expect(DeviceSpec(grub: .unknown) == nil)
    }

    @Test func descriptionIsTheFstabSpelling() {
        #expect("\(DeviceSpec.fileSystemUUID("x"))" == "UUID=x")
        #expect("\(DeviceSpec.partitionLabel("EFI System"))" == "PARTLABEL=EFI System")
        #expect("\(DeviceSpec.partitionNumber(9))" == "9")
    }
}
