import Foundation
import OCI
import WispCore

/// The Boot Loader Specification entry Wisp writes for a container image's kernel, at
/// `/boot/loader/entries/<id>.conf` on the root filesystem. Its paths are relative to the
/// root of the filesystem holding the entry (the BLS rule), which here is the root
/// filesystem itself, so `linux /usr/lib/modules/$KVER/vmlinuz` names the image's own file
/// and nothing is copied. Wisp boots it directly (the guest inspection reads the entry like
/// any other); a loader that reads BLS entries from the root filesystem (GRUB's blscfg
/// with /boot on it) would find it too.
public struct ContainerBootEntry: Sendable, Equatable, Codable {
    public static let directory = "/boot/loader/entries"

    public var id: String
    public var title: String
    public var kernel: ContainerKernel
    /// `root=UUID=...`, `rw` (unless the kargs say ro or rw themselves), then the image's
    /// kargs.d arguments.
    public var options: [String]

    public var path: String { "\(Self.directory)/\(id).conf" }

    public init(kernel: ContainerKernel, osName: String?, rootUUID: UUID, kernelArguments: [String]) {
        self.kernel = kernel
        id = "wisp-\(kernel.version)"
        title = "\(osName ?? "Linux") (\(kernel.version))"
        // rw unless the image's own arguments ask for ro (ostree-style images do).
        let access = kernelArguments.contains("ro") || kernelArguments.contains("rw") ? [] : ["rw"]
        options = ["root=UUID=\(rootUUID.uuidString.lowercased())"] + access + kernelArguments
    }

    /// The entry's text. Values are one line each: a newline inside one would start a key
    /// the image chose, so such values are refused.
    public func text() throws -> String {
        var lines = ["title \(title)", "version \(kernel.version)"]
        if kernel.unified == true {
            // The UKI carries its initrd; these options replace its .cmdline, as systemd-stub
            // does outside Secure Boot (its own root= cannot name this disk).
            lines.append("efi \(kernel.kernel)")
        } else {
            lines.append("linux \(kernel.kernel)")
            if let initrd = kernel.initrd { lines.append("initrd \(initrd)") }
        }
        lines.append("options \(options.joined(separator: " "))")
        for line in lines where line.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\0" }) {
            throw WispError.corrupt(path, "BLS entry", "a value contains a line break or NUL: \(line.debugDescription)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// PRETTY_NAME (else NAME) from os-release text, unquoted.
    static func osName(fromOSRelease text: String) -> String? {
        var values: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            var value = parts[1].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            values[String(parts[0]).trimmingCharacters(in: .whitespaces)] = value
        }
        let name = values["PRETTY_NAME"] ?? values["NAME"]
        return name.map { String($0.filter { $0 != "\n" && $0 != "\r" && $0 != "\0" }.prefix(128)) }
    }
}
