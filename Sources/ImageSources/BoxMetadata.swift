import Foundation
import WispCore

/// A Vagrant box's metadata.json: `{"provider": "libvirt", "format": "qcow2",
/// "virtual_size": 40}` (vagrant-libvirt; `virtual_size` in GiB), optionally with
/// `"disks": [{"path": "box_1.img"}, ...]` for boxes of several disks, or
/// `{"provider": "virtualbox"}`. Only these keys are read; values of the wrong type are
/// errors naming the key.
struct BoxMetadata: Sendable, Equatable {
    var provider: String?
    var format: String?
    var virtualSizeGiB: UInt64?
    /// Disk file names, boot disk first (nil: the provider's default, box.img).
    var diskPaths: [String]?

    static let maxDisks = 16

    static func parse(_ bytes: [UInt8], name: String) throws -> BoxMetadata {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes), options: [])
        } catch {
            throw WispError.corrupt(name, "metadata.json", "is not JSON")
        }
        guard let top = object as? [String: Any] else { throw WispError.corrupt(name, "metadata.json", "is not a JSON object") }
        func string(_ key: String) throws -> String? {
            guard let value = top[key] else { return nil }
            guard let text = value as? String, text.utf8.count <= 256 else {
                throw WispError.corrupt(name, "metadata.json", "\"\(key)\" is not a short string")
            }
            return text
        }
        var metadata = BoxMetadata(provider: try string("provider"), format: try string("format"))
        if let size = top["virtual_size"] {
            guard let number = size as? NSNumber, number.doubleValue >= 0, number.doubleValue <= Double(1 << 24) else {
                throw WispError.corrupt(name, "metadata.json", "\"virtual_size\" is not a size in GiB")
            }
            metadata.virtualSizeGiB = UInt64(number.doubleValue.rounded(.up))
        }
        if let disks = top["disks"] {
            guard let list = disks as? [Any], !list.isEmpty, list.count <= maxDisks else {
                throw WispError.corrupt(name, "metadata.json", "\"disks\" is not a list of 1 to \(maxDisks) disks")
            }
            metadata.diskPaths = try list.enumerated().map { index, entry in
                guard let disk = entry as? [String: Any], let path = disk["path"] as? String,
                      !path.isEmpty, !path.contains("/"), path != "..", path != "." else {
                    throw WispError.corrupt(name, "metadata.json", "disks[\(index)] has no \"path\" naming a file at the top of the box")
                }
                return path
            }
        }
        return metadata
    }
}
