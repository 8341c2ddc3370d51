import Foundation
import WispKit

/// The guest part of `wisp image info`: the partition table and the filesystems found.
/// A table or filesystem Wisp cannot read is reported, never fatal to `image info`.
struct GuestDiskInfo: Encodable {
    var summary: GuestDiskSummary?
    var error: String?

    init(path: String) {
        do {
            summary = try GuestDisk(path: path).summary
        } catch {
            self.error = "\(error)"
        }
    }

    var textLines: [String] {
        if let summary { return summary.textLines }
        return ["partition table: unreadable (\(error ?? "unknown error"))"]
    }
}

/// `ImageInfo`'s JSON with the guest summary added under "partitionTable" (or
/// "partitionTableError").
struct ImageInfoWithGuest<Info: Encodable>: Encodable {
    var info: Info
    var guest: GuestDiskInfo

    enum Keys: String, CodingKey { case partitionTable, partitionTableError }

    func encode(to encoder: any Encoder) throws {
        try info.encode(to: encoder)
        var container = encoder.container(keyedBy: Keys.self)
        try container.encodeIfPresent(guest.summary, forKey: .partitionTable)
        try container.encodeIfPresent(guest.error, forKey: .partitionTableError)
    }
}
