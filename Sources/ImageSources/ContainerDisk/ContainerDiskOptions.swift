import Foundation
import OCI
import WispCore

/// How a container image becomes a disk. Part of the cache key: a different choice is a
/// different disk.
public struct ContainerDiskOptions: Sendable, Hashable, Codable {
    /// The whole disk's size in bytes; nil: the content plus `headroomPercent`.
    public var size: UInt64?
    /// Free space left in the root filesystem beyond what the content needs.
    public var headroomPercent: Int

    public init(size: UInt64? = nil, headroomPercent: Int = 20) {
        self.size = size
        self.headroomPercent = headroomPercent
    }

    /// The options as they enter a cache name. `layout` changes whenever a disk Wisp built
    /// before would differ from one built now (2: an entry per kernel, UKIs, rw rule).
    var cacheKey: String {
        "size=\(size.map(String.init) ?? "auto"),headroom=\(headroomPercent),layout=2"
    }
}

/// The identifiers a disk is given. Derived from the image and the options, so the same
/// image converted twice gives the same disk (a reproducible base, one cache entry), and
/// distinct images get distinct filesystem UUIDs.
struct ContainerDiskIdentity {
    let filesystemUUID: UUID
    let hashSeed: UUID
    let partitionGUID: UUID
    let diskGUID: UUID

    init(key: String) {
        filesystemUUID = Self.uuid(key, "ext4 filesystem")
        hashSeed = Self.uuid(key, "ext4 hash seed")
        partitionGUID = Self.uuid(key, "root partition")
        diskGUID = Self.uuid(key, "disk")
    }

    /// A random-looking (version 4, RFC 4122 variant) UUID from SHA-256 of the key.
    static func uuid(_ key: String, _ purpose: String) -> UUID {
        var hasher = SHA256()
        hasher.update(Array("wisp container disk\0\(purpose)\0\(key)".utf8))
        var b = Array(hasher.finalize().prefix(16))
        b[6] = (b[6] & 0x0F) | 0x40
        b[8] = (b[8] & 0x3F) | 0x80
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }
}

/// The GPT type of a root partition for the image's architecture (the Discoverable
/// Partitions Specification), so systemd-gpt-auto-generator and inspection recognise it;
/// architectures the specification gives no root type get "Linux filesystem".
enum RootPartitionType {
    static func guid(for architecture: GuestArchitecture?) -> UUID {
        let text = switch architecture {
        case .x86_64: "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
        case .aarch64: "B921B045-1DF0-41C3-AF44-4C6F280D3FAE"
        case .riscv64: "72EC70A6-CF74-40E6-BD49-4BDA08E8F224"
        case .loongarch64: "77055800-792C-4F94-B39A-98C91B762BB6"
        case nil: "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
        }
        return UUID(uuidString: text)!  // constant, well-formed
    }
}
