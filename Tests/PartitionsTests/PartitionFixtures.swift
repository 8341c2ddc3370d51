import Foundation
import WispCore
import WispTestSupport

/// Small helpers shared by the partition tests: make blank disks, patch bytes in place,
/// and ask the real tools what they see.
enum PartitionFixtures {
    static func blankDisk(_ path: String, size: UInt64) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw WispError(.io, "\(path): cannot create")
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: size)
        try handle.close()
    }

    static func patch(_ path: String, at offset: UInt64, _ bytes: [UInt8]) throws {
        let device = try FileBlockDevice(path: path, writable: true)
        try device.write(bytes, at: offset)
    }

    static func bytes(_ path: String, at offset: UInt64, count: Int) throws -> [UInt8] {
        try FileBlockDevice(path: path).read(at: offset, count: count)
    }

    /// Rewrites the CRC32 of the GPT header at `offset` so a deliberately edited field is the
    /// only thing wrong with it.
    static func refreshHeaderCRC(_ path: String, headerAt offset: UInt64) throws {
        var header = try bytes(path, at: offset, count: 92)
        header.putLE32(0, at: 16)
        let crc = CRC32.checksum(header)
        var field = [UInt8](repeating: 0, count: 4)
        field.putLE32(crc, at: 0)
        try patch(path, at: offset + 16, field)
    }

    /// `sfdisk --json` parsed: the table object.
    static func sfdiskJSON(_ path: String) throws -> [String: Any] {
        let result = try ToolRunner.check("sfdisk", ["--json", path])
        let object = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
        guard let table = object?["partitiontable"] as? [String: Any] else {
            throw WispError(.failed, "sfdisk --json gave no partitiontable: \(result.stdoutText)")
        }
        return table
    }
}
