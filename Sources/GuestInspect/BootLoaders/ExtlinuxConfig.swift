import WispCore

/// An extlinux.conf / syslinux.cfg: global DEFAULT and APPEND, then LABEL blocks with
/// KERNEL or LINUX, INITRD (comma-separated), APPEND, MENU LABEL, MENU DEFAULT.
public struct ExtlinuxConfig: Sendable, Equatable {
    public struct Label: Sendable, Equatable {
        public var name: String
        public var menuLabel: String?
        public var kernel: String?
        public var initrds: [String]
        public var append: String?
        public var isMenuDefault: Bool
        public var line: Int
    }

    public var defaultLabel: String?
    public var globalAppend: String?
    public var labels: [Label]

    public static func parse(_ text: String, source: String) throws -> ExtlinuxConfig {
        guard !text.contains("\u{0}") else {
            throw WispError.corrupt(source, "extlinux configuration", "contains NUL bytes: not a text file")
        }
        var config = ExtlinuxConfig(defaultLabel: nil, globalAppend: nil, labels: [])
        var current: Label?
        func finish() {
            if let c = current { config.labels.append(c) }
            current = nil
        }
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(raw).trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let words = line.split(maxSplits: 1, whereSeparator: { $0 == " " || $0 == "\t" })
            let keyword = words[0].lowercased()
            let value = words.count > 1 ? String(words[1]).trimmingWhitespace() : ""
            func require(_ what: String) throws {
                if value.isEmpty {
                    throw WispError.corrupt(source, "extlinux line \(index + 1)", "\(what) needs a value")
                }
            }
            switch keyword {
            case "default":
                try require("DEFAULT")
                config.defaultLabel = value
            case "label":
                try require("LABEL")
                finish()
                current = Label(name: value, menuLabel: nil, kernel: nil, initrds: [], append: nil, isMenuDefault: false, line: index + 1)
            case "kernel", "linux":
                try require(keyword.uppercased())
                guard current != nil else {
                    throw WispError.corrupt(source, "extlinux line \(index + 1)", "\(keyword.uppercased()) outside a LABEL")
                }
                // "KERNEL path args" is allowed: the extra words act as APPEND.
                let parts = value.split(maxSplits: 1, whereSeparator: { $0 == " " })
                current?.kernel = String(parts[0])
                if parts.count > 1, current?.append == nil { current?.append = String(parts[1]) }
            case "initrd":
                try require("INITRD")
                current?.initrds = value.split(separator: ",").map { String($0).trimmingWhitespace() }
            case "append":
                if current != nil { current?.append = value } else { config.globalAppend = value }
            case "menu":
                let sub = value.split(maxSplits: 1, whereSeparator: { $0 == " " || $0 == "\t" })
                switch sub.first?.lowercased() {
                case "label": current?.menuLabel = sub.count > 1 ? String(sub[1]) : nil
                case "default": current?.isMenuDefault = true
                default: break
                }
            default:
                break
            }
        }
        finish()
        let bootable = config.labels.filter { $0.kernel != nil }
        guard !bootable.isEmpty else {
            throw WispError.corrupt(source, "extlinux configuration", "has no LABEL with a KERNEL or LINUX line")
        }
        return config
    }

    /// The label that boots: MENU DEFAULT wins over DEFAULT (when DEFAULT is a menu module),
    /// then DEFAULT by name, then the first label.
    public func defaultChoice() -> (label: Label, reason: String)? {
        let bootable = labels.filter { $0.kernel != nil }
        if let d = defaultLabel, let l = bootable.first(where: { $0.name == d }) {
            return (l, "extlinux DEFAULT \(d)")
        }
        if let l = bootable.first(where: \.isMenuDefault) {
            return (l, "extlinux MENU DEFAULT on label \(l.name)")
        }
        guard let first = bootable.first else { return nil }
        if let d = defaultLabel {
            return (first, "extlinux DEFAULT \(d) names no label, so the first label \(first.name) boots")
        }
        return (first, "extlinux has no DEFAULT, so the first label \(first.name) boots")
    }
}
