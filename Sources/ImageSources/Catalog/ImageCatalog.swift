import CloudInit
import Foundation
import WispCore
import Yams

/// The images `wisp run NAME` knows: the catalog compiled into Wisp (Catalog/catalog.yaml)
/// plus the user's `$XDG_CONFIG_HOME/wisp/images.d/*.yaml`, which may add names and replace
/// built-in ones. Catalog files are read as hostile YAML (bounded before Yams sees them).
public struct ImageCatalog: Sendable {
    public private(set) var entries: [CatalogEntry] = []
    /// Name or alias → index in `entries`.
    private var names: [String: Int] = [:]

    public static let maxFileBytes = 256 << 10
    public static let maxUserFiles = 64

    public init(entries: [CatalogEntry] = []) {
        for entry in entries { add(entry) }
    }

    /// The embedded catalog (a programming error in it is a test failure, not a user's).
    public static func builtin() throws -> ImageCatalog {
        try ImageCatalog(entries: parse(String(decoding: PackageResources.catalog_yaml, as: UTF8.self), file: "built-in"))
    }

    /// The built-in catalog and the user's files in `userDirectory` (sorted by name; a later
    /// entry with the same name or alias wins).
    public static func load(userDirectory: String?) throws -> ImageCatalog {
        var catalog = try builtin()
        guard let userDirectory, let names = try? FileManager.default.contentsOfDirectory(atPath: userDirectory) else { return catalog }
        let files = names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
        guard files.count <= maxUserFiles else {
            throw WispError(.invalidArgument, "\(userDirectory): more than \(maxUserFiles) catalog files")
        }
        for name in files {
            let path = "\(userDirectory)/\(name)"
            let file = try PosixFile(path: path, mode: .readOnly)
            defer { file.close() }
            let size = try file.size()
            guard size <= UInt64(maxFileBytes) else { throw WispError(.invalidArgument, "\(path): larger than \(maxFileBytes >> 10) KiB, not a catalog file") }
            var bytes = [UInt8](repeating: 0, count: Int(size))
            try bytes.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
            for entry in try parse(String(decoding: bytes, as: UTF8.self), file: path) { catalog.add(entry) }
        }
        return catalog
    }

    public mutating func add(_ entry: CatalogEntry) {
        if let old = names[entry.name], entries[old].name == entry.name {
            // Replacing an entry (a mirror of debian-13, say): `debian` still means it.
            var replacement = entry
            replacement.aliases += entries[old].aliases.filter { !entry.aliases.contains($0) }
            entries[old] = replacement
            for alias in replacement.aliases { names[alias] = old }
        } else {
            entries.append(entry)
            names[entry.name] = entries.count - 1
            for alias in entry.aliases { names[alias] = entries.count - 1 }
        }
    }

    public func entry(named name: String) -> CatalogEntry? {
        names[name].map { entries[$0] }
    }

    /// Aliases of `entry` that still point at it (a user's entry may have taken one).
    public func aliases(of entry: CatalogEntry) -> [String] {
        entry.aliases.filter { names[$0].map { entries[$0].name } == entry.name }
    }

    public var allNames: [String] { names.keys.sorted() }

    // MARK: parsing

    static let keys = ["name", "aliases", "distribution", "release", "variant", "arches", "root", "directory", "build", "file", "checksum", "signature"]
    static let architectures = ["x86_64", "aarch64"]

    /// The entries of one catalog file: `images:` followed by a list of entries.
    public static func parse(_ text: String, file: String) throws -> [CatalogEntry] {
        let node = try YAMLPreflight.composeFile(text, file: file)
        guard let top = node?.mapping, let images = top["images"] else {
            throw WispError(.invalidArgument, "\(file): expected 'images:' followed by a list of images")
        }
        guard let list = images.sequence else { throw WispError(.invalidArgument, "\(file): images: expected a list") }
        return try list.enumerated().map { try entry($0.element, file: file, index: $0.offset) }
    }

    static func entry(_ node: Node, file: String, index: Int) throws -> CatalogEntry {
        var place = "\(file): images[\(index)]"
        func fail(_ what: String) -> WispError { WispError(.invalidArgument, "\(place): \(what)") }
        guard let mapping = node.mapping else { throw fail("expected a mapping (name: ..., root: ...)") }
        var values: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string else { throw fail("keys must be plain words") }
            guard keys.contains(key) else {
                let hint = EditDistance.suggestion(for: key, among: keys).map { " (did you mean \($0)?)" } ?? ""
                throw fail("unknown key '\(key.prefix(40))'\(hint)")
            }
            guard values.updateValue(value, forKey: key) == nil else { throw fail("\(key) given twice") }
        }
        func text(_ key: String, required: Bool = true) throws -> String? {
            guard let value = values[key] else {
                if required { throw fail("\(key) is missing") }
                return nil
            }
            guard let string = value.scalar?.string, !string.isEmpty, string.utf8.count <= 512 else { throw fail("\(key): expected a value of 1 to 512 characters") }
            return string
        }
        func map(_ node: Node, _ key: String) throws -> [String: String] {
            guard let mapping = node.mapping else { throw fail("\(key): expected a mapping") }
            var out: [String: String] = [:]
            for (k, v) in mapping {
                guard let k = k.scalar?.string, let v = v.scalar?.string, v.utf8.count <= 512 else { throw fail("\(key): expected plain values") }
                out[k] = v
            }
            return out
        }
        let name = try text("name")!
        place += " (\(name))"
        guard isValidName(name) else { throw fail("name: letters, digits, '.', '-' and '_' only, 64 at most") }
        var aliases: [String] = []
        if let node = values["aliases"] {
            guard let sequence = node.sequence, sequence.count <= 16 else { throw fail("aliases: expected a list of up to 16 names") }
            aliases = try sequence.map {
                guard let alias = $0.scalar?.string, isValidName(alias) else { throw fail("aliases: letters, digits, '.', '-' and '_' only") }
                return alias
            }
        }
        guard let archNode = values["arches"] else { throw fail("arches is missing") }
        guard let archMapping = archNode.mapping, archMapping.count > 0 else { throw fail("arches: expected x86_64 and/or aarch64") }
        var arches: [String: [String: String]] = [:]
        for (k, v) in archMapping {
            guard let arch = k.scalar?.string, architectures.contains(arch) else { throw fail("arches: only \(architectures.joined(separator: " and ")) are known") }
            arches[arch] = try map(v, "arches.\(arch)")
        }
        let root = try text("root")!
        guard let rootURL = URL(string: root), ["http", "https"].contains(rootURL.scheme ?? ""), rootURL.host != nil, root.hasSuffix("/") else {
            throw fail("root: expected an http(s) URL ending in /")
        }
        let directory = try text("directory")!
        guard !directory.hasPrefix("/"), !directory.split(separator: "/").contains(".."), directory.isEmpty || directory.hasSuffix("/") else {
            throw fail("directory: expected a relative path ending in / without '..'")
        }
        let build = try text("build", required: false)
        guard directory.contains("{build}") == (build != nil) else { throw fail("build: needed exactly when directory has {build}") }
        let fileName = try text("file")!
        guard !fileName.contains("/") else { throw fail("file: a file name, not a path") }
        guard let checksumNode = values["checksum"] else { throw fail("checksum is missing") }
        let checksum = try map(checksumNode, "checksum")
        guard let checksumFile = checksum["file"], !checksumFile.contains("/") else { throw fail("checksum.file: a file name in the release directory") }
        guard let algorithm = ChecksumAlgorithm(rawValue: checksum["algorithm"] ?? "") else { throw fail("checksum.algorithm: expected sha256 or sha512") }
        var signature: CatalogSignature?
        if let node = values["signature"] {
            let values = try map(node, "signature")
            guard let kind = CatalogSignature.Kind(rawValue: values["kind"] ?? "") else { throw fail("signature.kind: expected clearsigned or detached") }
            guard let keyring = values["keyring"], keyring.hasPrefix("/") else { throw fail("signature.keyring: an absolute path") }
            guard (kind == .detached) == (values["file"] != nil), values["file"].map({ !$0.contains("/") }) ?? true else {
                throw fail("signature.file: the signature's file name, for detached signatures only")
            }
            signature = CatalogSignature(kind: kind, file: values["file"], keyring: keyring)
        }
        return CatalogEntry(name: name, aliases: aliases, distribution: try text("distribution")!, release: try text("release")!,
                            variant: try text("variant", required: false) ?? "", arches: arches, root: root,
                            directory: directory, build: build, file: fileName, checksumFile: checksumFile,
                            algorithm: algorithm, signature: signature, source: file)
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && name.first != "." && name.first != "-"
            && name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) }
    }
}
