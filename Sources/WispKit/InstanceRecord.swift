import Foundation
import Machine

/// What `instance.json` holds: everything needed to start the instance again, and what
/// `wisp list` shows. Runtime facts (pid, state) are not stored here but read from the
/// pid file and QMP, so a killed Wisp or a host reboot cannot leave a stale "running".
public struct InstanceRecord: Sendable, Codable, Equatable {
    public var name: String
    /// As the user gave it (path or URL).
    public var image: String
    /// The local base image the overlay is backed by (never written).
    public var baseImagePath: String
    public var createdAt: Date
    public var spec: MachineSpec
    /// "direct" or "uefi".
    public var bootMode: String
    public var user: String
    public var hostname: String
    public var sshPort: UInt16
    /// "disk" or "http".
    public var cloudInit: String
    /// OS facts from the image, for naming and display ("debian 12").
    public var osName: String?

    public init(name: String, image: String, baseImagePath: String, createdAt: Date = Date(), spec: MachineSpec,
                bootMode: String, user: String, hostname: String, sshPort: UInt16, cloudInit: String, osName: String?) {
        self.name = name
        self.image = image
        self.baseImagePath = baseImagePath
        self.createdAt = createdAt
        self.spec = spec
        self.bootMode = bootMode
        self.user = user
        self.hostname = hostname
        self.sshPort = sshPort
        self.cloudInit = cloudInit
        self.osName = osName
    }
}

/// The files of one instance directory.
public struct InstanceFiles: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public var record: String { "\(directory)/instance.json" }
    public var overlay: String { "\(directory)/overlay.qcow2" }
    public var kernel: String { "\(directory)/vmlinuz" }
    public var initrd: String { "\(directory)/initrd.img" }
    public var seed: String { "\(directory)/seed.iso" }
    public var privateKey: String { "\(directory)/id_ed25519" }
    public var publicKey: String { "\(directory)/id_ed25519.pub" }
    public var hostKey: String { "\(directory)/ssh_host_ed25519_key" }
    public var knownHosts: String { "\(directory)/known_hosts" }
    public var serialLog: String { "\(directory)/serial.log" }
    public var qmpSocket: String { "\(directory)/qmp.sock" }
    public var consoleSocket: String { "\(directory)/console.sock" }
    public var pidFile: String { "\(directory)/qemu.pid" }
    public var uefiVars: String { "\(directory)/OVMF_VARS.fd" }
    public var lock: String { "\(directory)/lock" }
    public var qemuCommand: String { "\(directory)/qemu.cmdline" }

    public var runtimePaths: QEMUCommandLine.RuntimePaths {
        .init(qmpSocket: qmpSocket, consoleSocket: consoleSocket, serialLog: serialLog, pidFile: pidFile)
    }
}
