import WispCore

/// A Boot Loader Specification type #1 entry (/loader/entries/*.conf): "key value" lines.
/// Paths are relative to the partition that holds the entries directory.
public struct BLSEntry: Sendable, Codable, Equatable {
    /// The file name without ".conf" (what grubenv's saved_entry names).
    public var id: String
    public var title: String?
    public var version: String?
    public var machineID: String?
    public var sortKey: String?
    public var linux: String?
    public var efi: String?
    public var initrds: [String]
    public var options: [String]
    public var architecture: String?

    public init(id: String, title: String? = nil, version: String? = nil, machineID: String? = nil,
                sortKey: String? = nil, linux: String? = nil, efi: String? = nil, initrds: [String] = [],
                options: [String] = [], architecture: String? = nil) {
        self.id = id
        self.title = title
        self.version = version
        self.machineID = machineID
        self.sortKey = sortKey
        self.linux = linux
        self.efi = efi
        self.initrds = initrds
        self.options = options
        self.architecture = architecture
    }

    /// Parses one snippet. An entry must name a `linux` (or `efi`) image; text with NUL
    /// bytes is not a BLS entry; unknown keys are ignored as the spec asks.
    public static func parse(_ text: String, id: String, source: String) throws -> BLSEntry {
        guard !text.contains("\u{0}") else {
            throw WispError.corrupt(source, "BLS entry", "contains NUL bytes: not a text file")
        }
        var entry = BLSEntry(id: id)
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(raw).trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let key: String, value: String
            if let space = line.firstIndex(where: { $0 == " " || $0 == "\t" }) {
                key = String(line[line.startIndex..<space])
                value = String(line[space...]).trimmingWhitespace()
            } else {
                key = line
                value = ""
            }
            let needsValue: Set<String> = ["linux", "initrd", "efi", "title", "version"]
            if needsValue.contains(key), value.isEmpty {
                throw WispError.corrupt(source, "BLS entry line \(index + 1)", "\"\(key)\" has no value")
            }
            switch key {
            case "title": entry.title = value
            case "version": entry.version = value
            case "machine-id": entry.machineID = value
            case "sort-key": entry.sortKey = value
            case "linux": entry.linux = value
            case "efi": entry.efi = value
            case "initrd": entry.initrds.append(value)
            case "options": entry.options.append(value)
            case "architecture": entry.architecture = value
            default: break
            }
        }
        guard entry.linux != nil || entry.efi != nil else {
            throw WispError.corrupt(source, "BLS entry", "has no \"linux\" or \"efi\" line naming the kernel")
        }
        return entry
    }

    /// The BLS ordering: entries with a sort-key first, by sort-key ascending, then
    /// machine-id ascending, then version descending; entries without a sort-key after, by
    /// version (or file name) descending. Versions compare as rpm does, so 6.10 > 6.9.
    public static func ordered(_ entries: [BLSEntry]) -> [BLSEntry] {
        entries.sorted { a, b in
            switch (a.sortKey, b.sortKey) {
            case let (x?, y?):
                if x != y { return x < y }
                if a.machineID != b.machineID { return (a.machineID ?? "") < (b.machineID ?? "") }
                let c = VersionCompare.compare(a.version ?? a.id, b.version ?? b.id)
                if c != 0 { return c > 0 }
                return a.id > b.id
            case (_?, nil): return true
            case (nil, _?): return false
            case (nil, nil):
                let c = VersionCompare.compare(a.version ?? a.id, b.version ?? b.id)
                if c != 0 { return c > 0 }
                return VersionCompare.compare(a.id, b.id) > 0
            }
        }
    }
}
