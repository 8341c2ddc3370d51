import WispCore

/// One line of /etc/fstab.
public struct FstabEntry: Sendable, Codable, Equatable {
    /// As written: "UUID=...", "LABEL=...", "PARTUUID=...", "/dev/vda1", ...
    public var device: String
    public var mountPoint: String
    public var type: String
    public var options: String
    public var line: Int

    public init(device: String, mountPoint: String, type: String, options: String, line: Int) {
        self.device = device
        self.mountPoint = mountPoint
        self.type = type
        self.options = options
        self.line = line
    }

    /// The `subvol=` mount option (btrfs), if any.
    public var subvolume: String? {
        for option in options.split(separator: ",") where option.hasPrefix("subvol=") {
            return String(option.dropFirst("subvol=".count))
        }
        return nil
    }

    /// Parses fstab text: whitespace-separated fields, octal escapes (\040) in the first two,
    /// comments and blank lines skipped. Lines with fewer than two fields are an error
    /// naming the line, since mount(8) rejects them too.
    public static func parse(_ text: String, source: String) throws -> [FstabEntry] {
        var entries: [FstabEntry] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map { unescape(String($0)) }
            if fields.isEmpty { continue }
            guard fields.count >= 2 else {
                throw WispError.corrupt(source, "fstab line \(index + 1)", "expected a device and a mount point, found \"\(line)\"")
            }
            entries.append(FstabEntry(device: fields[0], mountPoint: fields[1],
                                      type: fields.count > 2 ? fields[2] : "auto",
                                      options: fields.count > 3 ? fields[3] : "defaults", line: index + 1))
        }
        return entries
    }

    static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\\"), i + 4 <= b.count, b[(i + 1)..<(i + 4)].allSatisfy({ $0 >= 48 && $0 <= 55 }) {
                let v = (Int(b[i + 1]) - 48) * 64 + (Int(b[i + 2]) - 48) * 8 + (Int(b[i + 3]) - 48)
                if v < 256 { out.append(UInt8(v)); i += 4; continue }
            }
            out.append(b[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}
