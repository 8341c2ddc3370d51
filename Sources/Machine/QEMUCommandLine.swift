import Foundation
import WispCore

/// Builds QEMU's argv for a `MachineSpec` on the board of its architecture. Pure: no files
/// are touched, so the exact command line is unit-tested and shown by `wisp run
/// --dry-run`-style tooling. Everything architecture-specific comes from the board.
public struct QEMUCommandLine: Sendable {
    /// Where the running machine's control files live (all in the instance directory).
    public struct RuntimePaths: Sendable, Equatable {
        public var qmpSocket: String
        public var consoleSocket: String
        public var serialLog: String
        public var pidFile: String
        /// The SMBIOS type 1 table file (`-smbios file=`), written owner-only by the launcher
        /// when the spec has a serial: secrets in it never reach QEMU's argv.
        public var smbiosTable: String
        /// QEMU's own stdout and stderr when it is not daemonized (owner-only).
        public var qemuLog: String
        /// The SMBIOS type 11 table carrying systemd credentials (`-smbios file=`), written
        /// owner-only by the launcher when the spec has credentials and the guest sees SMBIOS.
        public var smbiosOEMTable: String?
        /// Where the virtiofsd of shared folder N listens (`virtiofs-N.sock` in the instance
        /// directory); nil when the machine has no shared folders.
        public var sharedFolderSocketDirectory: String?

        public init(qmpSocket: String, consoleSocket: String, serialLog: String, pidFile: String, smbiosTable: String, qemuLog: String,
                    smbiosOEMTable: String? = nil, sharedFolderSocketDirectory: String? = nil) {
            self.smbiosOEMTable = smbiosOEMTable
            self.sharedFolderSocketDirectory = sharedFolderSocketDirectory
            self.qmpSocket = qmpSocket
            self.consoleSocket = consoleSocket
            self.serialLog = serialLog
            self.pidFile = pidFile
            self.smbiosTable = smbiosTable
            self.qemuLog = qemuLog
        }
    }

    public let board: any Board
    public var executable: String
    public let spec: MachineSpec
    public var paths: RuntimePaths
    public var name: String
    /// Fork into the background once the machine is set up (QEMU's own `-daemonize`:
    /// setup errors such as a port in use still reach our stderr and exit status).
    public var daemonize: Bool
    /// QEMU's seccomp filter (`-sandbox on` with obsolete system calls, privilege changes,
    /// spawning and resource control denied). It cannot be combined with `-daemonize`
    /// (daemonizing needs fork and setsid), so a sandboxed QEMU is put in the background
    /// by `QEMULauncher` instead.
    public var sandbox: Bool
    /// Options appended as they are, for a machine restored rather than booted
    /// (`-incoming defer -S` to load a suspended guest's state, `-loadvm TAG`).
    public var restoreArguments: [String] = []

    /// `executable` nil means the board's binary name (a path from `HostQEMU.executable(for:)`
    /// is what `QEMULauncher` needs). Throws when `spec` asks for what its board lacks: an
    /// architecture without a board, an SMBIOS serial on a board without SMBIOS.
    public init(executable: String? = nil, spec: MachineSpec, paths: RuntimePaths,
                name: String, daemonize: Bool = false, sandbox: Bool = true) throws {
        let board = try Boards.for(spec.architecture)
        if spec.smbiosSerial != nil && !board.capabilities.supportsSMBIOS {
            throw WispError(.unsupported, "the \(spec.architecture.rawValue) board has no SMBIOS to carry the seed URL (use --cloud-init disk)")
        }
        if spec.smbiosSerial != nil, case .direct = spec.boot, !board.capabilities.smbiosWithDirectKernelBoot {
            throw WispError(.unsupported, "a directly booted \(spec.architecture.rawValue) kernel sees no SMBIOS to carry the seed URL (use --cloud-init disk, or boot through firmware)")
        }
        if !spec.sharedFolders.isEmpty && paths.sharedFolderSocketDirectory == nil {
            throw WispError.invalidArgument("shared folders need a directory for their virtiofsd sockets")
        }
        if !spec.credentials.isEmpty, Self.credentialTransport(board: board, boot: spec.boot) == .smbios, paths.smbiosOEMTable == nil {
            throw WispError.invalidArgument("systemd credentials over SMBIOS need a path for the OEM strings table")
        }
        self.board = board
        self.executable = executable ?? board.qemuBinary
        self.spec = spec
        self.paths = paths
        self.name = name
        self.daemonize = daemonize
        self.sandbox = sandbox && !daemonize
    }

    /// SMBIOS where the guest sees it (through firmware, or with a directly loaded kernel on
    /// boards whose firmware still runs first), else fw_cfg, which every QEMU board has.
    public static func credentialTransport(board: any Board, boot: BootMethod) -> CredentialTransport {
        guard board.capabilities.supportsSMBIOS else { return .firmwareConfig }
        if case .direct = boot, !board.capabilities.smbiosWithDirectKernelBoot { return .firmwareConfig }
        return .smbios
    }

    /// The id of the one user-mode netdev: `hostfwd_add` and `hostfwd_remove` name it.
    public static let userNetdevID = "net0"

    /// The memory backend shared with virtiofsd.
    static let sharedMemoryID = "wisp-mem"

    /// The vhost-user socket of shared folder `index`.
    public static func sharedFolderSocket(directory: String, index: Int) -> String { "\(directory)/virtiofs-\(index).sock" }

    /// QEMU option values are comma-separated; a literal comma is written twice.
    public static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: ",", with: ",,")
    }

    public var arguments: [String] {
        let e = Self.escape
        var args: [String] = [
            "-name", e(name),
            // No default NIC, VGA, floppy, CD-ROM or serial: every device is ours, fewer
            // devices to probe means a faster boot.
            "-nodefaults", "-no-user-config",
            // virtiofsd maps the guest's RAM to serve it: with shared folders, guest memory is
            // a shared memfd instead of QEMU's private anonymous memory.
            "-machine", board.machineArgument + (spec.sharedFolders.isEmpty ? "" : ",memory-backend=\(Self.sharedMemoryID)"),
            "-display", "none",
        ]
        if !spec.sharedFolders.isEmpty {
            args += ["-object", "memory-backend-memfd,id=\(Self.sharedMemoryID),size=\(max(UInt64(1), spec.memoryBytes >> 20))M,share=on"]
        }
        switch spec.accelerator {
        case .kvm: args += ["-accel", "kvm"]
        // No tb-size: QEMU's default translation cache (1 GiB, or an eighth of host memory)
        // holds a whole cloud-image boot. A 256 MiB cache was flushed three times before
        // SSH answered, and every flush throws away all translated code (`info jit`).
        case .tcg: args += ["-accel", "tcg,thread=multi"]
        }
        args += ["-cpu", board.cpuModel(for: spec.accelerator)]
        args += ["-smp", String(max(1, spec.cpus)), "-m", "\(max(UInt64(1), spec.memoryBytes >> 20))M"]

        switch spec.boot {
        case .direct(let direct):
            args += ["-kernel", direct.kernel]
            if let initrd = direct.initrd { args += ["-initrd", initrd] }
            args += ["-append", direct.commandLine]
        case .firmware(let firmware):
            args += ["-drive", "if=pflash,format=raw,unit=0,readonly=on,file=\(e(firmware.code))",
                     "-drive", "if=pflash,format=raw,unit=1,file=\(e(firmware.vars))"]
        case .bios:
            // No pflash: QEMU loads the board's own BIOS (SeaBIOS).
            break
        }
        if spec.smbiosSerial != nil {
            args += ["-smbios", "file=\(e(paths.smbiosTable))"]
        }
        if !spec.credentials.isEmpty {
            switch Self.credentialTransport(board: board, boot: spec.boot) {
            case .smbios:
                if let table = paths.smbiosOEMTable { args += ["-smbios", "file=\(e(table))"] }
            case .firmwareConfig:
                for credential in spec.credentials {
                    args += ["-fw_cfg", "name=opt/io.systemd.credentials/\(credential.name),file=\(e(credential.file))"]
                }
            }
        }

        // Firmware boots the CD-ROM when there is one, else the first disk; with -kernel QEMU
        // owns boot index 0 itself.
        let firmwareBoot: Bool
        if case .direct = spec.boot { firmwareBoot = false } else { firmwareBoot = true }
        if let cdrom = spec.cdrom {
            if let controller = board.devices.cdromController { args += ["-device", controller] }
            // Read-only at both nodes: the ISO is the user's file and is never written.
            args += Self.blockdevArguments(DiskAttachment(path: cdrom, format: .raw, readOnly: true), id: "cd0")
            args += ["-device", "\(board.devices.cdrom),drive=cd0" + (firmwareBoot ? ",bootindex=0" : "")]
        }
        for (index, disk) in spec.disks.enumerated() {
            args += Self.blockdevArguments(disk, id: "disk\(index)")
            let bootIndex = index == 0 && firmwareBoot ? (spec.cdrom == nil ? ",bootindex=0" : ",bootindex=1") : ""
            args += ["-device", "\(board.devices.block),drive=disk\(index)" + bootIndex]
        }

        var netdev = "user,id=\(Self.userNetdevID)"
        for forward in spec.forwards { netdev += ",hostfwd=\(forward.hostfwd)" }
        let nic = [board.devices.network, "netdev=\(Self.userNetdevID)", "mac=\(spec.macAddress)"] + board.devices.networkProperties
        args += ["-netdev", netdev, "-device", nic.joined(separator: ",")]
        args += ["-device", board.devices.rng]
        for (index, _) in spec.sharedFolders.enumerated() {
            guard let directory = paths.sharedFolderSocketDirectory else { break }
            args += ["-chardev", "socket,id=fs\(index),path=\(e(Self.sharedFolderSocket(directory: directory, index: index)))",
                     "-device", "\(board.devices.sharedFolder),chardev=fs\(index),tag=\(SharedFolder.tag(index))"]
        }
        // A guest panic pauses the machine, so QMP reports `guest-panicked` (state crashed)
        // instead of the VM silently rebooting.
        if let panic = board.capabilities.panicDevice {
            args += ["-device", panic, "-action", "panic=pause"]
        }

        // The serial console: a socket `wisp console` attaches to, logged to a file that
        // `wisp logs` and the boot progress read.
        args += ["-chardev", "socket,id=serial0,path=\(e(paths.consoleSocket)),server=on,wait=off,logfile=\(e(paths.serialLog)),logappend=on",
                 "-serial", "chardev:serial0"]
        args += ["-chardev", "socket,id=qmp0,path=\(e(paths.qmpSocket)),server=on,wait=off",
                 "-mon", "chardev=qmp0,mode=control"]
        args += restoreArguments
        args += ["-pidfile", paths.pidFile]
        if sandbox {
            args += ["-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"]
        }
        if daemonize { args.append("-daemonize") }
        return args
    }

    /// One disk as a `-blockdev` graph: a `file` node and a format node per layer, the top
    /// named `id`, each format node's `backing` naming the next layer's node and the last
    /// one's `null`, so QEMU opens exactly the files Wisp resolved and checked, with the
    /// format Wisp read (never probed, never the names recorded inside the images).
    static func blockdevArguments(_ disk: DiskAttachment, id: String) -> [String] {
        let layers = [DiskLayer(path: disk.path, format: disk.format, dataFile: disk.dataFile)] + disk.backing
        var args: [String] = []
        // Bottom up: a node must exist before a node above names it.
        for (depth, layer) in layers.enumerated().reversed() {
            let isTop = depth == 0
            let node = isTop ? id : "\(id)-backing\(depth)"
            let readOnly = !isTop || disk.readOnly
            var file: [String: Any] = ["driver": "file", "filename": layer.path, "node-name": "\(node)-file",
                                       "read-only": readOnly]
            if !readOnly { file["discard"] = "unmap" }
            args += ["-blockdev", json(file)]
            var format: [String: Any] = ["driver": layer.format.rawValue, "node-name": node, "file": "\(node)-file",
                                         "read-only": readOnly]
            if !readOnly { format["discard"] = "unmap" }
            if layer.format == .qcow2 {
                format["backing"] = depth + 1 < layers.count ? "\(id)-backing\(depth + 1)" as Any : NSNull()
                if let dataFile = layer.dataFile {
                    args += ["-blockdev", json(["driver": "file", "filename": dataFile, "node-name": "\(node)-data",
                                                "read-only": readOnly])]
                    format["data-file"] = "\(node)-data"
                }
            }
            args += ["-blockdev", json(format)]
        }
        return args
    }

    /// QEMU's JSON option syntax, keys sorted so the command line is stable.
    static func json(_ object: [String: Any]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return "{}"
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// The command as a shell would show it (for messages and logs).
    public var shellCommand: String {
        ([executable] + arguments).map { arg in
            arg.allSatisfy({ $0.isLetter || $0.isNumber || "-_=./:,@".contains($0) }) ? arg : "'" + arg.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }.joined(separator: " ")
    }
}
