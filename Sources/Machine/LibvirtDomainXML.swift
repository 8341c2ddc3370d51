import WispCore

/// A `MachineSpec` as a libvirt domain definition: the same board, CPUs, memory, boot plan
/// (a directly loaded kernel, initrd and command line, or UEFI firmware with a per-domain
/// variable store), disks and SSH forward that `QEMUCommandLine` gives QEMU. Pure: paths are
/// those on the libvirt host (volumes of Wisp's pool), so the XML is unit-tested and printed
/// by `wisp export libvirt`.
///
/// The network is QEMU's user-mode stack with its host forwards, passed through libvirt's
/// `qemu:commandline` namespace: libvirt 9.0 (Debian 12) offers `<interface type='user'>`
/// with `<portForward>` only with the passt backend (another package and daemon, not tried
/// here); QEMU's user-mode network keeps the forward and the guest's view (10.0.2.x, the
/// host at 10.0.2.2, where phone_home goes) exactly as with Wisp's own QEMU. libvirt marks
/// such a domain "tainted: custom-argv" in its log.
public struct LibvirtDomainXML: Sendable {
    /// One disk: the file on the libvirt host, its format, and the backing chain below it
    /// as libvirt must open it (stated explicitly, ending with an empty `<backingStore/>`, so
    /// libvirt never follows a name recorded inside an image).
    public struct Disk: Sendable, Equatable {
        public var path: String
        public var format: DiskFormat
        public var readOnly: Bool
        public var backing: [DiskLayer]

        public init(path: String, format: DiskFormat, readOnly: Bool = false, backing: [DiskLayer] = []) {
            self.path = path
            self.format = format
            self.readOnly = readOnly
            self.backing = backing
        }
    }

    public enum Boot: Sendable, Equatable {
        case direct(kernel: String, initrd: String?, commandLine: String)
        /// libvirt copies `varsTemplate` into its own nvram directory at the first start and
        /// deletes the copy on undefine.
        case firmware(loader: String, varsTemplate: String)
    }

    public var name: String
    public var spec: MachineSpec
    public var disks: [Disk]
    public var boot: Boot
    /// Where virtlogd writes the serial console (a file on the libvirt host); nil: a pty only.
    public var serialLog: String?
    /// `kvm`, or `qemu` (TCG) when the host has no usable KVM.
    public var domainType: String { spec.accelerator == .kvm ? "kvm" : "qemu" }

    public init(name: String, spec: MachineSpec, disks: [Disk], boot: Boot, serialLog: String?) {
        self.name = name
        self.spec = spec
        self.disks = disks
        self.boot = boot
        self.serialLog = serialLog
    }

    public static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "'": out += "&apos;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    /// The user-mode netdev and its NIC, as QEMU arguments (the same values as
    /// `QEMUCommandLine`'s).
    public func networkArguments(board: any Board) -> [String] {
        var netdev = "user,id=\(QEMUCommandLine.userNetdevID)"
        for forward in spec.forwards { netdev += ",hostfwd=\(forward.hostfwd)" }
        // A fixed slot on the root bus: libvirt places its own devices at explicit addresses
        // from slot 1 up, and QEMU would otherwise give this NIC the first free slot before
        // libvirt's devices are created (q35 and virt both name their root bus pcie.0).
        let nic = [board.devices.network, "netdev=\(QEMUCommandLine.userNetdevID)", "mac=\(spec.macAddress)", "bus=pcie.0", "addr=0x18"]
            + board.devices.networkProperties
        return ["-netdev", netdev, "-device", nic.joined(separator: ",")]
    }

    public func xml() throws -> String {
        let board = try Boards.for(spec.architecture)
        let e = Self.escape
        var x = "<domain type='\(domainType)' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n"
        x += "  <name>\(e(name))</name>\n"
        x += "  <memory unit='MiB'>\(max(UInt64(1), spec.memoryBytes >> 20))</memory>\n"
        x += "  <vcpu>\(max(1, spec.cpus))</vcpu>\n"
        if let serial = spec.smbiosSerial {
            x += "  <sysinfo type='smbios'>\n    <system>\n      <entry name='serial'>\(e(serial))</entry>\n    </system>\n  </sysinfo>\n"
        }
        x += "  <os>\n"
        x += "    <type arch='\(spec.architecture.rawValue)' machine='\(e(board.machineType))'>hvm</type>\n"
        switch boot {
        case .direct(let kernel, let initrd, let commandLine):
            x += "    <kernel>\(e(kernel))</kernel>\n"
            if let initrd { x += "    <initrd>\(e(initrd))</initrd>\n" }
            x += "    <cmdline>\(e(commandLine))</cmdline>\n"
        case .firmware(let loader, let varsTemplate):
            x += "    <loader readonly='yes' type='pflash'>\(e(loader))</loader>\n"
            x += "    <nvram template='\(e(varsTemplate))'/>\n"
        }
        if spec.smbiosSerial != nil { x += "    <smbios mode='sysinfo'/>\n" }
        x += "  </os>\n"
        // ACPI: the power button `wisp stop` presses. No VMware port and no HPET, as the
        // board's QEMU options say (x86 only).
        x += "  <features>\n    <acpi/>\n"
        if board.machineOptions.contains("vmport=off") { x += "    <vmport state='off'/>\n" }
        if spec.architecture == .aarch64 { x += "    <gic version='max'/>\n" }
        x += "  </features>\n"
        switch spec.accelerator {
        case .kvm: x += "  <cpu mode='host-passthrough'/>\n"
        case .tcg: x += "  <cpu mode='maximum'/>\n"
        }
        if board.machineOptions.contains("hpet=off") {
            x += "  <clock offset='utc'>\n    <timer name='hpet' present='no'/>\n  </clock>\n"
        }
        x += "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n"
        // A panicked guest stays as it is (state crashed), as QEMU's panic=pause does.
        x += "  <on_crash>preserve</on_crash>\n"
        x += "  <devices>\n"
        for (index, disk) in disks.enumerated() {
            x += diskXML(disk, index: index, firmwareBoot: { if case .firmware = boot { return true } else { return false } }())
        }
        x += "    <serial type='pty'>\n"
        if let serialLog { x += "      <log file='\(e(serialLog))' append='on'/>\n" }
        x += "      <target port='0'/>\n    </serial>\n"
        x += "    <console type='pty'>\n      <target type='serial' port='0'/>\n    </console>\n"
        x += "    <rng model='virtio'>\n      <backend model='random'>/dev/urandom</backend>\n    </rng>\n"
        if board.capabilities.panicDevice == "pvpanic" { x += "    <panic model='isa'/>\n" }
        x += "    <memballoon model='none'/>\n"
        x += "  </devices>\n"
        x += "  <qemu:commandline>\n"
        for argument in networkArguments(board: board) { x += "    <qemu:arg value='\(e(argument))'/>\n" }
        x += "  </qemu:commandline>\n"
        x += "</domain>\n"
        return x
    }

    /// vda, vdb, ... vdz, vdaa (the target names libvirt wants; the guest sees virtio order).
    static func targetName(_ index: Int) -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        var n = index
        var name = ""
        repeat {
            name = String(letters[n % 26]) + name
            n = n / 26 - 1
        } while n >= 0
        return "vd" + name
    }

    private func diskXML(_ disk: Disk, index: Int, firmwareBoot: Bool) -> String {
        let e = Self.escape
        var x = "    <disk type='file' device='disk'>\n"
        x += "      <driver name='qemu' type='\(disk.format.rawValue)'\(disk.readOnly ? "" : " discard='unmap'")/>\n"
        x += "      <source file='\(e(disk.path))'/>\n"
        var indent = "      "
        for layer in disk.backing {
            x += "\(indent)<backingStore type='file'>\n"
            indent += "  "
            x += "\(indent)<format type='\(layer.format.rawValue)'/>\n"
            x += "\(indent)<source file='\(e(layer.path))'/>\n"
        }
        // The chain ends here: nothing recorded inside the last image is followed.
        if disk.format == .qcow2 || !disk.backing.isEmpty { x += "\(indent)<backingStore/>\n" }
        for _ in disk.backing {
            indent.removeLast(2)
            x += "\(indent)</backingStore>\n"
        }
        x += "      <target dev='\(Self.targetName(index))' bus='virtio'/>\n"
        if disk.readOnly { x += "      <readonly/>\n" }
        if index == 0 && firmwareBoot { x += "      <boot order='1'/>\n" }
        x += "    </disk>\n"
        return x
    }
}
