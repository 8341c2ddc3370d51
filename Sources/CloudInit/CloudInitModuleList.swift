import Yams

/// The module list one cloud-init stage runs (`cloud_init_modules`, `cloud_config_modules`,
/// `cloud_final_modules`), as an image's own /etc/cloud/cloud.cfg and cloud.cfg.d/*.cfg set
/// it. Wisp reads the init stage's list so it can hand the guest that same list with
/// phone_home appended: the guest then reports as soon as its users, keys and hostname are in
/// place, instead of after the config and final stages (two more Python start-ups, which
/// take tens of seconds in an emulated guest).
public struct CloudInitModuleList: Sendable, Equatable {
    /// One entry as cloud-init takes it: a module name, or `[name, frequency, args...]`.
    public var entries: [[String]]

    public init(entries: [[String]]) {
        self.entries = entries
    }

    /// The list `key` ends up with after cloud-init merges `configs` (cloud.cfg first, then
    /// the cloud.cfg.d files in name order: a later file's list replaces an earlier one, as
    /// cloud-init's own merge does for lists). nil when no file sets it, or when a file that
    /// does is not YAML cloud-init could read the same way: callers then leave the list alone.
    public static func merged(_ key: String, from configs: [String]) -> CloudInitModuleList? {
        var result: CloudInitModuleList?
        for text in configs {
            // Yams builds documents recursively: nesting deep enough to exhaust the stack is
            // refused before parsing, like any other file we cannot read as cloud-init would.
            if YAMLPreflight.excess(in: text) != nil { return nil }
            // A file cloud-init itself fails to parse breaks the guest's cloud-init anyway;
            // guessing at its list would only make things worse.
            let root: Node?
            do {
                root = try Yams.compose(yaml: text)
            } catch {
                if text.contains(key) { return nil }
                continue
            }
            guard case .mapping(let mapping)? = root else { continue }
            guard let value = mapping[Node(key)] else { continue }
            guard let list = parse(value) else { return nil }
            result = list
        }
        return result
    }

    static func parse(_ node: Node) -> CloudInitModuleList? {
        guard case .sequence(let sequence) = node else { return nil }
        var entries: [[String]] = []
        for item in sequence {
            switch item {
            case .scalar(let scalar):
                guard isModuleName(scalar.string) else { return nil }
                entries.append([scalar.string])
            case .sequence(let parts):
                var entry: [String] = []
                for part in parts {
                    guard case .scalar(let scalar) = part else { return nil }
                    entry.append(scalar.string)
                }
                guard let name = entry.first, isModuleName(name) else { return nil }
                entries.append(entry)
            default:
                return nil
            }
        }
        return CloudInitModuleList(entries: entries)
    }

    static func isModuleName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }

    /// cloud-init treats "phone-home" and "phone_home" (and "cc_phone_home") as one module.
    static func canonical(_ name: String) -> String {
        var text = name.replacingOccurrences(of: "-", with: "_")
        if text.hasPrefix("cc_") { text.removeFirst(3) }
        return text
    }

    public func contains(module: String) -> Bool {
        entries.contains { Self.canonical($0[0]) == Self.canonical(module) }
    }

    /// This list with `module` at the end (unless it is already in it).
    public func appending(_ module: String) -> CloudInitModuleList {
        guard !contains(module: module) else { return self }
        return CloudInitModuleList(entries: entries + [[module]])
    }

    /// The list as a block sequence for user-data, indented by `indent` spaces.
    public func yamlLines(indent: Int) -> [String] {
        let pad = String(repeating: " ", count: indent)
        return entries.map { entry in
            entry.count == 1
                ? "\(pad)- \(YAMLText.quoted(entry[0]))"
                : "\(pad)- [" + entry.map { YAMLText.quoted($0) }.joined(separator: ", ") + "]"
        }
    }
}
