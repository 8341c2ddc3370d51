import Testing
import Machine
import WispCore

@Suite struct QEMUCommandLineTests {
    let paths = QEMUCommandLine.RuntimePaths(qmpSocket: "/i/qmp.sock", consoleSocket: "/i/console.sock",
                                             serialLog: "/i/serial.log", pidFile: "/i/qemu.pid",
                                             smbiosTable: "/i/smbios-type1.bin", qemuLog: "/i/qemu.log")

    func value(after option: String, in args: [String]) -> [String] {
        args.indices.filter { args[$0] == option && $0 + 1 < args.count }.map { args[$0 + 1] }
    }

    @Test func directBootUnderTCG() throws {
        let spec = MachineSpec(cpus: 2, memoryBytes: 2 << 30,
                               disks: [DiskAttachment(path: "/i/overlay.qcow2", format: .qcow2),
                                       DiskAttachment(path: "/i/seed.iso", format: .raw, readOnly: true)],
                               forwards: [PortForward(hostPort: 2222, guestPort: 22), PortForward(hostAddress: "0.0.0.0", hostPort: 8080, guestPort: 80)],
                               boot: .direct(DirectBoot(kernel: "/i/vmlinuz", initrd: "/i/initrd.img", commandLine: "root=UUID=x ro console=ttyS0 ds=nocloud")),
                               accelerator: .tcg, macAddress: "52:54:00:aa:bb:cc")
        let args = try QEMUCommandLine(spec: spec, paths: paths, name: "wisp-t").arguments
        #expect(value(after: "-accel", in: args) == ["tcg,thread=multi"])
        #expect(value(after: "-cpu", in: args) == ["max"])
        #expect(value(after: "-smp", in: args) == ["2"])
        #expect(value(after: "-m", in: args) == ["2048M"])
        #expect(value(after: "-kernel", in: args) == ["/i/vmlinuz"])
        #expect(value(after: "-initrd", in: args) == ["/i/initrd.img"])
        #expect(value(after: "-append", in: args) == ["root=UUID=x ro console=ttyS0 ds=nocloud"])
        #expect(value(after: "-drive", in: args).isEmpty)
        #expect(value(after: "-blockdev", in: args) == [
            #"{"discard":"unmap","driver":"file","filename":"/i/overlay.qcow2","node-name":"disk0-file","read-only":false}"#,
            #"{"backing":null,"discard":"unmap","driver":"qcow2","file":"disk0-file","node-name":"disk0","read-only":false}"#,
            #"{"driver":"file","filename":"/i/seed.iso","node-name":"disk1-file","read-only":true}"#,
            #"{"driver":"raw","file":"disk1-file","node-name":"disk1","read-only":true}"#,
        ])
        #expect(value(after: "-netdev", in: args) == ["user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:0.0.0.0:8080-:80"])
        #expect(value(after: "-device", in: args).contains("virtio-net-pci,netdev=net0,mac=52:54:00:aa:bb:cc,romfile="))
        #expect(value(after: "-device", in: args).contains("virtio-rng-pci"))
        #expect(value(after: "-device", in: args).contains("pvpanic"))
        #expect(value(after: "-action", in: args) == ["panic=pause"])
        #expect(value(after: "-mon", in: args) == ["chardev=qmp0,mode=control"])
        // Sandboxed, so not daemonized (QEMU's seccomp filter denies the fork and setsid).
        #expect(!args.contains("-daemonize"))
        #expect(value(after: "-sandbox", in: args) == ["on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"])
        #expect(args.contains("-nodefaults"))
        #expect(!args.contains("-nographic"))
        #expect(!args.contains { $0.contains("pflash") })
        // -kernel takes boot index 0 itself; a disk claiming it stops QEMU.
        #expect(!args.contains { $0.contains("bootindex") })
    }

    @Test func uefiUnderKVMWithCommasEscaped() throws {
        let spec = MachineSpec(cpus: 1, memoryBytes: 512 << 20,
                               disks: [DiskAttachment(path: "/odd,dir/overlay.qcow2", format: .qcow2)],
                               boot: .firmware(UEFIFirmware(code: "/usr/share/OVMF/OVMF_CODE_4M.fd", vars: "/i/OVMF_VARS.fd")),
                               accelerator: .kvm, smbiosSerial: "ds=nocloud;s=http://10.0.2.2:8000/")
        let args = try QEMUCommandLine(spec: spec, paths: paths, name: "n", daemonize: false, sandbox: false).arguments
        #expect(value(after: "-accel", in: args) == ["kvm"])
        #expect(value(after: "-cpu", in: args) == ["host"])
        #expect(value(after: "-drive", in: args) == [
            "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
            "if=pflash,format=raw,unit=1,file=/i/OVMF_VARS.fd",
        ])
        // JSON needs no comma escaping.
        #expect(value(after: "-blockdev", in: args).first?.contains(#""filename":"/odd,dir/overlay.qcow2""#) == true)
        // The serial (which carries the listener's token) is read from a file, never argv.
        #expect(value(after: "-smbios", in: args) == ["file=/i/smbios-type1.bin"])
        #expect(!args.contains { $0.contains("10.0.2.2") })
        #expect(!args.contains("-sandbox"))
        #expect(!args.contains("-kernel"))
        #expect(value(after: "-device", in: args).contains("virtio-blk-pci,drive=disk0,bootindex=0"))
        #expect(!args.contains("-daemonize"))
    }

    /// The whole argv of the x86_64 board, pinned word for word, so a board refactoring
    /// cannot change it unnoticed. (Against the first release: disks are `-blockdev`
    /// graphs, the SMBIOS serial comes from a file, QEMU is sandboxed and not daemonized.)
    @Test func x86BoardArgvIsPinned() throws {
        let direct = MachineSpec(cpus: 2, memoryBytes: 2 << 30,
                                 disks: [DiskAttachment(path: "/i/overlay.qcow2", format: .qcow2),
                                         DiskAttachment(path: "/i/seed.iso", format: .raw, readOnly: true)],
                                 forwards: [PortForward(hostPort: 2222, guestPort: 22), PortForward(hostAddress: "0.0.0.0", hostPort: 8080, guestPort: 80)],
                                 boot: .direct(DirectBoot(kernel: "/i/vmlinuz", initrd: "/i/initrd.img", commandLine: "root=UUID=x ro console=ttyS0 ds=nocloud")),
                                 accelerator: .tcg, macAddress: "52:54:00:aa:bb:cc")
        let directLine = try QEMUCommandLine(spec: direct, paths: paths, name: "wisp-t")
        #expect(directLine.executable == "qemu-system-x86_64")
        #expect(directLine.board.architecture == .x86_64)
        #expect(directLine.arguments == [
            "-name", "wisp-t", "-nodefaults", "-no-user-config", "-machine", "q35,vmport=off,hpet=off", "-display", "none",
            "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2", "-m", "2048M",
            "-kernel", "/i/vmlinuz", "-initrd", "/i/initrd.img", "-append", "root=UUID=x ro console=ttyS0 ds=nocloud",
            "-blockdev", #"{"discard":"unmap","driver":"file","filename":"/i/overlay.qcow2","node-name":"disk0-file","read-only":false}"#,
            "-blockdev", #"{"backing":null,"discard":"unmap","driver":"qcow2","file":"disk0-file","node-name":"disk0","read-only":false}"#,
            "-device", "virtio-blk-pci,drive=disk0",
            "-blockdev", #"{"driver":"file","filename":"/i/seed.iso","node-name":"disk1-file","read-only":true}"#,
            "-blockdev", #"{"driver":"raw","file":"disk1-file","node-name":"disk1","read-only":true}"#,
            "-device", "virtio-blk-pci,drive=disk1",
            "-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:0.0.0.0:8080-:80",
            "-device", "virtio-net-pci,netdev=net0,mac=52:54:00:aa:bb:cc,romfile=",
            "-device", "virtio-rng-pci", "-device", "pvpanic", "-action", "panic=pause",
            "-chardev", "socket,id=serial0,path=/i/console.sock,server=on,wait=off,logfile=/i/serial.log,logappend=on",
            "-serial", "chardev:serial0",
            "-chardev", "socket,id=qmp0,path=/i/qmp.sock,server=on,wait=off", "-mon", "chardev=qmp0,mode=control",
            "-pidfile", "/i/qemu.pid",
            "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
        ])

        let uefi = MachineSpec(cpus: 1, memoryBytes: 512 << 20,
                               disks: [DiskAttachment(path: "/odd,dir/overlay.qcow2", format: .qcow2)],
                               boot: .firmware(UEFIFirmware(code: "/usr/share/OVMF/OVMF_CODE_4M.fd", vars: "/i/OVMF_VARS.fd")),
                               accelerator: .kvm, smbiosSerial: "ds=nocloud;s=http://10.0.2.2:8000/")
        #expect(try QEMUCommandLine(spec: uefi, paths: paths, name: "n", daemonize: true).arguments == [
            "-name", "n", "-nodefaults", "-no-user-config", "-machine", "q35,vmport=off,hpet=off", "-display", "none",
            "-accel", "kvm", "-cpu", "host", "-smp", "1", "-m", "512M",
            "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
            "-drive", "if=pflash,format=raw,unit=1,file=/i/OVMF_VARS.fd",
            "-smbios", "file=/i/smbios-type1.bin",
            "-blockdev", #"{"discard":"unmap","driver":"file","filename":"/odd,dir/overlay.qcow2","node-name":"disk0-file","read-only":false}"#,
            "-blockdev", #"{"backing":null,"discard":"unmap","driver":"qcow2","file":"disk0-file","node-name":"disk0","read-only":false}"#,
            "-device", "virtio-blk-pci,drive=disk0,bootindex=0",
            "-netdev", "user,id=net0",
            "-device", "virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56,romfile=",
            "-device", "virtio-rng-pci", "-device", "pvpanic", "-action", "panic=pause",
            "-chardev", "socket,id=serial0,path=/i/console.sock,server=on,wait=off,logfile=/i/serial.log,logappend=on",
            "-serial", "chardev:serial0",
            "-chardev", "socket,id=qmp0,path=/i/qmp.sock,server=on,wait=off", "-mon", "chardev=qmp0,mode=control",
            "-pidfile", "/i/qemu.pid", "-daemonize",
        ])
    }

    /// The whole argv of the aarch64 board, pinned word for word: virt with the newest GIC,
    /// virtio on PCI, pvpanic-pci, the PL011 console through the same -serial chardev.
    @Test func aarch64BoardArgvIsPinned() throws {
        let direct = MachineSpec(architecture: .aarch64, cpus: 2, memoryBytes: 2 << 30,
                                 disks: [DiskAttachment(path: "/i/overlay.qcow2", format: .qcow2),
                                         DiskAttachment(path: "/i/seed.iso", format: .raw, readOnly: true)],
                                 forwards: [PortForward(hostPort: 2222, guestPort: 22)],
                                 boot: .direct(DirectBoot(kernel: "/i/Image", initrd: "/i/initrd.img", commandLine: "root=UUID=x ro console=ttyAMA0 ds=nocloud")),
                                 accelerator: .tcg, macAddress: "52:54:00:aa:bb:cc")
        let directLine = try QEMUCommandLine(spec: direct, paths: paths, name: "wisp-a")
        #expect(directLine.executable == "qemu-system-aarch64")
        #expect(directLine.board.architecture == .aarch64)
        #expect(directLine.arguments == [
            "-name", "wisp-a", "-nodefaults", "-no-user-config", "-machine", "virt,gic-version=max", "-display", "none",
            "-accel", "tcg,thread=multi", "-cpu", "max,pauth-impdef=on", "-smp", "2", "-m", "2048M",
            "-kernel", "/i/Image", "-initrd", "/i/initrd.img", "-append", "root=UUID=x ro console=ttyAMA0 ds=nocloud",
            "-blockdev", #"{"discard":"unmap","driver":"file","filename":"/i/overlay.qcow2","node-name":"disk0-file","read-only":false}"#,
            "-blockdev", #"{"backing":null,"discard":"unmap","driver":"qcow2","file":"disk0-file","node-name":"disk0","read-only":false}"#,
            "-device", "virtio-blk-pci,drive=disk0",
            "-blockdev", #"{"driver":"file","filename":"/i/seed.iso","node-name":"disk1-file","read-only":true}"#,
            "-blockdev", #"{"driver":"raw","file":"disk1-file","node-name":"disk1","read-only":true}"#,
            "-device", "virtio-blk-pci,drive=disk1",
            "-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22",
            "-device", "virtio-net-pci,netdev=net0,mac=52:54:00:aa:bb:cc,romfile=",
            "-device", "virtio-rng-pci", "-device", "pvpanic-pci", "-action", "panic=pause",
            "-chardev", "socket,id=serial0,path=/i/console.sock,server=on,wait=off,logfile=/i/serial.log,logappend=on",
            "-serial", "chardev:serial0",
            "-chardev", "socket,id=qmp0,path=/i/qmp.sock,server=on,wait=off", "-mon", "chardev=qmp0,mode=control",
            "-pidfile", "/i/qemu.pid",
            "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
        ])

        let uefi = MachineSpec(architecture: .aarch64, cpus: 1, memoryBytes: 1 << 30,
                               disks: [DiskAttachment(path: "/i/overlay.qcow2", format: .qcow2)],
                               boot: .firmware(UEFIFirmware(code: "/usr/share/AAVMF/AAVMF_CODE.fd", vars: "/i/AAVMF_VARS.fd")),
                               accelerator: .kvm, smbiosSerial: "ds=nocloud;s=http://10.0.2.2:8000/")
        #expect(try QEMUCommandLine(spec: uefi, paths: paths, name: "n").arguments == [
            "-name", "n", "-nodefaults", "-no-user-config", "-machine", "virt,gic-version=max", "-display", "none",
            "-accel", "kvm", "-cpu", "host", "-smp", "1", "-m", "1024M",
            "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd",
            "-drive", "if=pflash,format=raw,unit=1,file=/i/AAVMF_VARS.fd",
            "-smbios", "file=/i/smbios-type1.bin",
            "-blockdev", #"{"discard":"unmap","driver":"file","filename":"/i/overlay.qcow2","node-name":"disk0-file","read-only":false}"#,
            "-blockdev", #"{"backing":null,"discard":"unmap","driver":"qcow2","file":"disk0-file","node-name":"disk0","read-only":false}"#,
            "-device", "virtio-blk-pci,drive=disk0,bootindex=0",
            "-netdev", "user,id=net0",
            "-device", "virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56,romfile=",
            "-device", "virtio-rng-pci", "-device", "pvpanic-pci", "-action", "panic=pause",
            "-chardev", "socket,id=serial0,path=/i/console.sock,server=on,wait=off,logfile=/i/serial.log,logappend=on",
            "-serial", "chardev:serial0",
            "-chardev", "socket,id=qmp0,path=/i/qmp.sock,server=on,wait=off", "-mon", "chardev=qmp0,mode=control",
            "-pidfile", "/i/qemu.pid",
            "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
        ])
    }

    /// A directly booted arm64 kernel finds no SMBIOS tables (only UEFI publishes them), so
    /// an SMBIOS serial there is refused instead of silently never reaching the guest.
    @Test func aarch64DirectBootRefusesSMBIOSSerial() {
        let spec = MachineSpec(architecture: .aarch64, cpus: 1, memoryBytes: 512 << 20,
                               boot: .direct(DirectBoot(kernel: "/k", initrd: nil, commandLine: "")),
                               smbiosSerial: "ds=nocloud;s=http://10.0.2.2:8000/")
        #expect {
            try QEMUCommandLine(spec: spec, paths: paths, name: "a")
        } throws: { error in
            (error as? WispError)?.kind == .unsupported
        }
    }

    @Test func everyDiskFormatReachesQEMUByItsDriverName() throws {
        let spec = MachineSpec(cpus: 1, memoryBytes: 512 << 20,
                               disks: DiskFormat.allCases.map { DiskAttachment(path: "/d.\($0.rawValue)", format: $0) },
                               boot: .direct(DirectBoot(kernel: "/k", initrd: nil, commandLine: "")))
        let nodes = value(after: "-blockdev", in: try QEMUCommandLine(spec: spec, paths: paths, name: "d").arguments)
        for format in DiskFormat.allCases {
            #expect(nodes.contains { $0.contains(#""driver":"\#(format.rawValue)""#) }, "\(format)")
        }
    }

    @Test func architectureWithoutABoardIsRefused() {
        for architecture in [GuestArchitecture.riscv64, .loongarch64] {
            let spec = MachineSpec(architecture: architecture, cpus: 1, memoryBytes: 512 << 20)
            #expect {
                try QEMUCommandLine(spec: spec, paths: paths, name: "a")
            } throws: { error in
                guard let error = error as? WispError else { return false }
                return error.kind == .unsupported && error.message.contains("no board for \(architecture.rawValue) yet")
            }
        }
    }
}

@Suite struct PortForwardTests {
    @Test func parsesDockerSpelling() throws {
        #expect(try PortForward.parse("8080:80") == PortForward(hostAddress: "127.0.0.1", hostPort: 8080, guestPort: 80))
        #expect(try PortForward.parse("0.0.0.0:2222:22") == PortForward(hostAddress: "0.0.0.0", hostPort: 2222, guestPort: 22))
        #expect(try PortForward.parse("8080:80").hostfwd == "tcp:127.0.0.1:8080-:80")
    }

    @Test func rejectsNonsense() {
        for bad in ["80", "a:80", "8080:0", "70000:80", "1.2.3:80:80", "::80", "1:2:3:4", "256.0.0.1:80:80", ""] {
            #expect(throws: (any Error).self, "\(bad)") { try PortForward.parse(bad) }
        }
    }
}

@Suite struct BootPhaseTests {
    @Test func phasesFromSerialLog() {
        #expect(BootPhase.detect(in: "") == .starting)
        #expect(BootPhase.detect(in: "BdsDxe: loading Boot0001\r\n") == .firmware)
        #expect(BootPhase.detect(in: "[    0.000000] Linux version 6.1.0-28-cloud-amd64\n") == .kernel)
        #expect(BootPhase.detect(in: "[    0.000000] Linux version 6.1\n[    5.1] cloud-init[301]: Cloud-init v. 22.4.2 running 'init-local'") == .cloudInit)
        #expect(BootPhase.tail(of: "a\n\n\u{1B}b\nc\n", lines: 2) == "b\nc")
    }
}
