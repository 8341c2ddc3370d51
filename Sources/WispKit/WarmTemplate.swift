import Foundation
import Machine
import WispCore

/// A warm template (issue 19, part 3): a guest of one image booted once to ready under a
/// throwaway identity, its memory and devices saved, its disk frozen. Later runs of the same
/// shape restore a clone of it (`WarmClone`) instead of booting.
///
/// Its directory, `<data>/templates/<key>/` (owner-only), is the throwaway instance's own
/// directory after `InstanceSuspender.suspend`, with its runtime files removed:
/// `overlay.qcow2` (the frozen disk, a qcow2 overlay on the base image, 0400),
/// `suspend.state` and `suspend.json` (the machine state and its `SavedState` description
/// with the SHA-256, 0400), `id_ed25519` (the key Wisp logs into a fresh clone with, 0600),
/// `known_hosts` (the template's host key, which a fresh clone answers with until its identity
/// script replaces it), `OVMF_VARS.fd` for a UEFI guest, `instance.json` (the throwaway's
/// record) and `template.json` (this).
public struct WarmTemplate: Sendable, Codable, Equatable {
    public static let currentFormatVersion = 1
    /// The throwaway instance's name, so its hostname: the clone's script replaces it.
    public static let instanceName = "wisp-template"
    /// Every template and clone has this MAC: it is part of the NIC's saved state, and each
    /// instance has a user-mode network of its own, so sharing it conflicts with nothing.
    public static let macAddress = InstanceCreator.macAddress(for: instanceName)

    public var formatVersion: Int
    public var key: String
    public var shape: Shape
    /// The guest user the template was made for (its keys are replaced in every clone).
    public var user: String
    /// The accelerator QEMU ran the template under; its clones run under the same.
    public var accelerator: Accelerator
    public var createdAt: Date
    /// Seconds the template took to make: the throwaway's boot to a settled guest and the save.
    public var buildSeconds: Double
    public var stateBytes: UInt64

    /// What must be the same for a clone of the template to be the machine the user asked
    /// for: a saved state loads only into the same devices, and a disk is only the same disk
    /// when its base, size and boot are.
    public struct Shape: Sendable, Codable, Equatable {
        /// The base image: its SHA-256 when the source gave one, else its path, size and
        /// modification time (a local file is not hashed at every run: that costs seconds).
        public var image: String
        public var architecture: String
        public var cpus: Int
        public var memoryBytes: UInt64
        public var bootMode: String
        /// The kernel command line of a directly booted guest (it includes `--karg` values)
        /// and the boot entry asked for.
        public var kernelCommandLine: String
        public var entry: String?
        /// The instance's disk as the user asked for it (`--disk-size`, else the image's).
        public var diskBytes: UInt64
        public var machine: String
        /// The accelerator a run would choose (kvm or tcg).
        public var accelerator: String
        public var cloudInit: String
        public var user: String

        /// The directory name: SHA-256 of the shape's canonical JSON, 32 hex digits.
        public var key: String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let data = (try? encoder.encode(self)) ?? Data()
            var hasher = SHA256()
            hasher.update(Array(data))
            return String(SHA256.hex(hasher.finalize()).prefix(32))
        }
    }

    init(shape: Shape, user: String, accelerator: Accelerator, buildSeconds: Double, stateBytes: UInt64, createdAt: Date = Date()) {
        self.formatVersion = Self.currentFormatVersion
        self.key = shape.key
        self.shape = shape
        self.user = user
        self.accelerator = accelerator
        self.createdAt = createdAt
        self.buildSeconds = buildSeconds
        self.stateBytes = stateBytes
    }
}

/// The files of one template directory (the names the throwaway instance's files had).
public struct WarmTemplateFiles: Sendable {
    public let directory: String
    public init(directory: String) { self.directory = directory }

    /// The throwaway instance's files, under the names `InstanceSSH` and the suspender use.
    public var instance: InstanceFiles { InstanceFiles(directory: directory) }
    public var description: String { "\(directory)/template.json" }
    public var disk: String { instance.overlay }
    public var state: String { instance.savedState }
    public var stateDescription: String { instance.savedStateDescription }
    public var privateKey: String { instance.privateKey }
    public var knownHosts: String { instance.knownHosts }
    public var uefiVars: String { instance.uefiVars }
}
