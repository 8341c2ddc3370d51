import Foundation
import WispCore
import DiskImage
import CloudInit

/// The seam between `wisp run` and the image, inspection and seed layers: everything the
/// orchestration needs from them goes through here, in the layers' own APIs.
enum RunIntegration {
    struct BootFacts: Sendable {
        var kernel: String
        var initrd: String?
        var commandLine: String
        var osID: String?
        var osVersionID: String?
    }

    /// The image's format, read from its magic (never guessed from the file name).
    static func probeFormat(_ path: String) throws -> ImageFormat {
        let device = try FileBlockDevice(path: path, writable: false)
        return try ImageFormat.probe(device)
    }

    static func virtualSize(_ path: String) throws -> UInt64 {
        try DiskImageFile.open(path, format: nil, writable: false).size
    }

    /// A qcow2 overlay backed by `base`, at least `size` bytes (the guest's growpart grows
    /// its root partition into the rest).
    static func createOverlay(base: String, baseFormat: ImageFormat, overlay: String, size: UInt64) throws {
        throw WispError.unsupported(overlay, "qcow2 overlays are not available until the disk image layer lands")
    }

    /// Kernel, initrd and command line from the image's own boot entries, copied into
    /// `directory`; nil when the image has no plan Wisp can follow (boot UEFI instead).
    static func extractBoot(image: String, into directory: String) throws -> BootFacts? {
        nil
    }

    struct SeedRequest: Sendable {
        var user: String
        var authorizedKeys: [String]
        var hostname: String
        var instanceID: String
        var phoneHomeURL: String?
        var staticNetwork: Bool
        var macAddress: String
        var hostKeyPrivate: String
        var hostKeyPublic: String
        var extraUserData: String?
    }

    static func makeSeed(_ request: SeedRequest) throws -> NoCloudSeed {
        throw WispError.unsupported("cloud-init seed", "the seed generator is not available until the cloud-init layer lands")
    }

    static func writeSeedDisk(_ seed: NoCloudSeed, to path: String) throws {
        throw WispError.unsupported(path, "the seed writer is not available until the cloud-init layer lands")
    }
}

extension RunIntegration {
    /// The seed files kept in the instance directory for NoCloud-net re-serving.
    static func storedSeed(_ files: InstanceFiles) throws -> CloudInit.NoCloudSeed {
        let dir = files.directory + "/seed"
        func read(_ leaf: String) -> [UInt8]? { FileManager.default.contents(atPath: "\(dir)/\(leaf)").map { Array($0) } }
        guard let user = read("user-data"), let meta = read("meta-data") else {
            throw WispError.notFound("\(dir): the NoCloud-net seed files are missing")
        }
        return NoCloudSeed(userData: user, metaData: meta, vendorData: read("vendor-data"), networkConfig: read("network-config"))
    }

    static func storeSeed(_ seed: CloudInit.NoCloudSeed, in files: InstanceFiles) throws {
        let dir = files.directory + "/seed"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for file in seed.files { try AtomicOutput.write(file.contents, to: "\(dir)/\(file.name)", permissions: 0o600) }
    }
}
