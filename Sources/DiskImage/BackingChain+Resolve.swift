#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import WispCore

extension BackingChain {
    /// Reads the chain of the image at `path` and checks every file it names against
    /// `policy`, before anything named is opened for reading.
    ///
    /// `format`: the image's format when the caller knows it (a user's `-f`, or the image
    /// source); it is never re-probed, so a raw image whose bytes look like qcow2 stays
    /// raw. When nil the format comes from the magic. Backing files take the format their
    /// referencing image records, else their magic.
    ///
    /// Refusals are `.permissionDenied` (the policy forbids the reference), `.notFound` (a
    /// named file is missing), `.corrupt` (the chain loops or runs deeper than `maxDepth`)
    /// or `.unsupported`; each message names the referencing image, the field and its value.
    /// `writable`: the top member will be opened for writing (backing files never are).
    public static func resolve(path: String, format: ImageFormat? = nil, policy: ExternalReferencePolicy,
                               writable: Bool = false) throws -> BackingChain {
        var resolver = ChainResolver(topPath: path, policy: policy)
        let members = try resolver.resolve(format: format, writable: writable)
        return BackingChain(policy: policy, members: members)
    }
}

/// The walk behind `BackingChain.resolve`: one member at a time, each reference checked
/// before the file it names is opened.
struct ChainResolver {
    let topPath: String
    let policy: ExternalReferencePolicy
    /// Canonical directories members may live in (confined policy only).
    private var roots: [String] = []
    var seen: [BackingChain.FileIdentity: String] = [:]

    /// Canonical paths no image may refer to, whatever the policy allows.
    static let systemDirectories = ["/proc", "/sys", "/dev"]

    init(topPath: String, policy: ExternalReferencePolicy) {
        self.topPath = topPath
        self.policy = policy
    }

    mutating func resolve(format: ImageFormat?, writable: Bool) throws -> [BackingChain.Member] {
        // The top: the caller named it, so it may be anywhere and may be a block device.
        let topCanonical = try Self.canonicalPath(topPath) { code in
            code == ENOENT ? WispError.notFound("\(topPath): no such file") : nil
        }
        let topStat = try Self.status(of: topCanonical, name: topPath)
        let topType = BackingChain.FileType(mode: topStat.st_mode)
        guard topType == .regular || topType == .blockDevice else {
            throw WispError.invalidArgument("\(topPath): is \(topType.phrase), not a disk image")
        }
        if case .confined(let allowed) = policy {
            roots = try Self.roots(top: topPath, canonical: topCanonical, allowed: allowed)
        }
        var probe = try Self.openProbe(topCanonical, name: topPath, expected: BackingChain.FileIdentity(topStat))
        seen[probe.identity] = topPath

        var members: [BackingChain.Member] = []
        var current = (name: topPath, path: topCanonical, format: format,
                       source: format == nil ? BackingChain.FormatSource.probe : .caller, recorded: String?.none)
        /// The unique id the previous (differencing) member says its parent has.
        var expectedParentID: (id: String, field: String, child: String)?
        while true {
            let memberFormat = try current.format ?? ImageFormat.probe(probe)
            let isTop = members.isEmpty
            let readOnly = !(isTop && writable)
            var header: Qcow2Header?
            var dataFile: BackingChain.DataFile?
            var backing: (name: String, format: String?)?
            var vmdk: VmdkLayout?
            var mappedSize: UInt64?
            var mapped: BlockMappedHeader?
            var locator: BlockMappedHeader.ParentLocator?
            var field = "qcow2 backing file"
            switch memberFormat {
            case .raw:
                break
            case .qcow2:
                let h = try Qcow2Header.parse(probe, name: current.name)
                header = h
                try refuseIfSelfContained(h, name: current.name)
                if h.hasExternalDataFile {
                    dataFile = try resolveDataFile(h, of: current.name, readOnly: readOnly)
                }
                if let b = h.backingFile { backing = (b, h.backingFormat) }
            case .vmdk:
                let v = try resolveVmdk(probe, name: current.name)
                vmdk = v.layout
                if let p = v.parent { backing = (p, "vmdk") }
                field = "VMDK parentFileNameHint"
            case .vhd, .vhdx, .vdi:
                let h = try BlockMappedFormats.header(of: probe, format: memberFormat)
                mapped = h
                mappedSize = h.virtualSize
                // A VDI names its parent by UUID only: opening it refuses it with that UUID.
                if h.isDifferencing, memberFormat != .vdi {
                    let chosen = try chooseParent(h, referrer: current.name)
                    locator = chosen.locator
                    field = h.field(of: chosen.locator)
                    backing = (chosen.path, memberFormat.qemuDriverName)
                }
            default:
                throw WispError.unsupported(current.name, "\(memberFormat.rawValue) images are not supported yet (Wisp cannot tell which files they refer to)")
            }
            members.append(BackingChain.Member(
                name: current.name, path: current.path, format: memberFormat, formatSource: current.source,
                virtualSize: header?.size ?? vmdk?.virtualSize ?? mappedSize ?? probe.size, isReadOnly: readOnly, recordedName: current.recorded,
                qcow2Header: header, dataFile: dataFile, identity: probe.identity, fileType: probe.fileType,
                vmdk: vmdk, blockMapped: mapped, parentLocator: locator))
            if let expected = expectedParentID {
                // The child was made against a parent with this id; another file under the
                // same name (or one written since) would read as wrong data.
                guard let id = mapped?.uuid, id == expected.id else {
                    throw WispError.corrupt(expected.child, expected.field,
                                            "names \(current.name), whose unique id \(mapped?.uuid ?? "(none)") is not the parent id \(expected.id) the image records")
                }
            }
            expectedParentID = nil
            if let mapped, locator != nil, let id = mapped.parentUUID { expectedParentID = (id, field, current.name) }

            guard let (recorded, recordedFormat) = backing else { return members }
            let target = try check(recorded, field: field, referrer: current.name)
            if let loop = seen[target.identity] {
                throw WispError.corrupt(current.name, field,
                                        "\"\(recorded)\" is \(loop) again: the backing chain loops")
            }
            guard members.count < BackingChain.maxDepth else {
                throw WispError.corrupt(topPath, "backing chain",
                                        "more than \(BackingChain.maxDepth) images deep (at \(target.name))")
            }
            var nextFormat: ImageFormat?
            if let recordedFormat {
                guard let known = ImageFormat(qemuDriverName: recordedFormat), [.raw, .qcow2, .vmdk, .vhd, .vhdx].contains(known) else {
                    throw WispError.unsupported(current.name, "qcow2 backing file format \"\(recordedFormat)\" is not one Wisp reads (raw, qcow2)")
                }
                nextFormat = known
            }
            probe = try Self.openProbe(target.path, name: target.name, expected: target.identity)
            seen[target.identity] = target.name
            current = (target.name, target.path, nextFormat, nextFormat == nil ? .probe : .header, recorded)
        }
    }

    /// The locator of a differencing VHD or VHDX to follow: the first in the format's
    /// order that names a path usable here and an existing file (relative before absolute,
    /// as Hyper-V tries them). Every candidate goes through `check` when followed, so the
    /// policy governs it; one that exists but is refused is an error, not skipped.
    private func chooseParent(_ h: BlockMappedHeader, referrer: String) throws
        -> (locator: BlockMappedHeader.ParentLocator, path: String) {
        let kind = h.format == .vhdx ? "VHDX" : "VHD"
        guard let first = h.parentLocators.first else {
            throw WispError.corrupt(referrer, "\(kind) parent locators", "a differencing image that names no parent")
        }
        if policy == .selfContained {
            throw WispError(.permissionDenied, "\(referrer): \(h.field(of: first)) \"\(first.path)\" refers to another file; images from outside Wisp must be self-contained")
        }
        let usable = h.parentLocators.compactMap { l in l.localPath.map { (l, $0) } }
        for (i, candidate) in usable.enumerated() {
            let joined = Qcow2Image.resolveBacking(candidate.1, relativeTo: referrer)
            var st = stat()
            if i + 1 < usable.count, lstat(joined, &st) != 0, errno == ENOENT { continue }
            return candidate
        }
        let names = h.parentLocators.map { "\($0.key) \"\($0.path)\"" }.joined(separator: ", ")
        throw WispError.notFound("\(referrer): differencing \(kind) image: none of its parent locators (\(names)) names a file on this machine")
    }

    /// Images from outside name no other file at all; say which field names one.
    private func refuseIfSelfContained(_ h: Qcow2Header, name: String) throws {
        guard policy == .selfContained else { return }
        let tail = "refers to another file; images from outside Wisp must be self-contained"
        if let b = h.backingFile {
            throw WispError(.permissionDenied, "\(name): qcow2 backing file \"\(b)\" \(tail)")
        }
        if let d = h.dataFile {
            throw WispError(.permissionDenied, "\(name): qcow2 external data file \"\(d)\" \(tail)")
        }
        if h.hasExternalDataFile {
            throw WispError(.permissionDenied, "\(name): qcow2 incompatible feature bit 2 (external data file) says the guest data lives in another file; images from outside Wisp must be self-contained")
        }
    }

    private mutating func resolveDataFile(_ h: Qcow2Header, of name: String, readOnly: Bool) throws -> BackingChain.DataFile {
        let field = "qcow2 external data file"
        guard let recorded = h.dataFile else {
            throw WispError.unsupported(name, "\(field): the external data file bit is set but the image does not name its data file")
        }
        let target = try check(recorded, field: field, referrer: name)
        if let other = seen[target.identity] {
            throw WispError.corrupt(name, field, "\"\(recorded)\" is \(other), an image of the chain")
        }
        // Open it once the way members are opened, so a swap shows up here too.
        _ = try Self.openProbe(target.path, name: target.name, expected: target.identity)
        return BackingChain.DataFile(recordedName: recorded, name: target.name, path: target.path,
                                     isRaw: h.dataFileIsRaw, isReadOnly: readOnly, identity: target.identity)
    }

    /// The checks every name an image records must pass under a confined policy. Returns
    /// the joined name, the canonical path and the file's identity; opens nothing.
    func check(_ recorded: String, field: String, referrer: String) throws
        -> (name: String, path: String, identity: BackingChain.FileIdentity) {
        let quoted = "\(field) \"\(recorded)\""
        try Self.refuseNonFileName(recorded, field: field, referrer: referrer)
        let joined = Qcow2Image.resolveBacking(recorded, relativeTo: referrer)
        let canonical = try Self.canonicalPath(joined) { code in
            switch code {
            case ENOENT, ENOTDIR:
                return WispError.notFound("\(referrer): \(quoted) (\(joined)) does not exist")
            case ELOOP:
                return WispError.corrupt(referrer, field, "\"\(recorded)\" (\(joined)): symbolic links loop")
            case EACCES:
                return WispError(.permissionDenied, "\(referrer): \(quoted) (\(joined)) cannot be reached: permission denied", errno: code)
            default:
                return nil
            }
        }
        if let system = Self.systemDirectories.first(where: { Self.isInside(canonical, $0) }) {
            throw WispError(.permissionDenied, "\(referrer): \(quoted) resolves to \(canonical), under \(system); images may not refer to system files")
        }
        let st = try Self.status(of: canonical, name: joined)
        let type = BackingChain.FileType(mode: st.st_mode)
        guard type == .regular else {
            throw WispError(.permissionDenied, "\(referrer): \(quoted) resolves to \(canonical), \(type.phrase); only regular files may back an image")
        }
        guard case .confined = policy else {
            // Unreachable: self-contained chains stop at the first name.
            throw WispError(.permissionDenied, "\(referrer): \(quoted) refers to another file; images from outside Wisp must be self-contained")
        }
        guard roots.contains(where: { Self.isInside(canonical, $0) }) else {
            throw WispError(.permissionDenied, "\(referrer): \(quoted) resolves to \(canonical), outside the directories this image may refer to (\(roots.joined(separator: ", "))); to use it, allow its directory (--allow-backing \(ChainResolver.directory(of: canonical)))")
        }
        return (joined, canonical, BackingChain.FileIdentity(st))
    }

    /// `json:` specifications and protocol names make QEMU open something other than a
    /// file by that name; Wisp follows plain file names only.
    static func refuseNonFileName(_ recorded: String, field: String, referrer: String) throws {
        let quoted = "\(field) \"\(recorded)\""
        if recorded.hasPrefix("json:") {
            throw WispError(.permissionDenied, "\(referrer): \(quoted) is a json: block specification; Wisp follows only plain file names")
        }
        // QEMU reads "name:" before any slash as a protocol (nbd:, http:, file:, ...).
        if let stop = recorded.firstIndex(where: { $0 == ":" || $0 == "/" }), recorded[stop] == ":" {
            let proto = recorded[..<stop]
            throw WispError(.permissionDenied, "\(referrer): \(quoted) names the \"\(proto):\" protocol, not a file; Wisp follows only plain file names (write ./\(recorded) for a file)")
        }
    }

    // MARK: - File system helpers

    /// The directories a confined chain may use: the top's directory as named and as it
    /// really is, and the caller's allowed directories, all canonical.
    static func roots(top: String, canonical: String, allowed: [String]) throws -> [String] {
        var roots: [String] = []
        func add(_ dir: String) { if !roots.contains(dir) { roots.append(dir) } }
        let namedDirectory = directory(of: top)
        add(try canonicalPath(namedDirectory) { _ in nil })
        add(directory(of: canonical))
        for dir in allowed {
            let real = try canonicalPath(dir) { code in
                code == ENOENT ? WispError.notFound("allowed backing directory \(dir) does not exist") : nil
            }
            let st = try status(of: real, name: dir)
            guard BackingChain.FileType(mode: st.st_mode) == .directory else {
                throw WispError.invalidArgument("allowed backing directory \(dir) is not a directory")
            }
            add(real)
        }
        return roots
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Whether canonical `path` is `directory` or lies below it.
    static func isInside(_ path: String, _ directory: String) -> Bool {
        if directory == "/" { return true }
        return path == directory || path.hasPrefix(directory + "/")
    }

    /// realpath(3); `explain` turns an errno into the error to throw (nil: a generic one).
    static func canonicalPath(_ path: String, explain: (Int32) -> WispError?) throws -> String {
        guard let resolved = realpath(path, nil) else {
            let code = errno
            throw explain(code) ?? WispError.posix("realpath", path, errno: code)
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func status(of path: String, name: String) throws -> stat {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            let code = errno
            if code == ENOENT { throw WispError.notFound("\(name): no such file") }
            throw WispError.posix("stat", name, errno: code)
        }
        return st
    }

    /// Opens a checked file without following links or blocking, and makes sure it is the
    /// file that was checked.
    static func openProbe(_ path: String, name: String, expected: BackingChain.FileIdentity) throws -> ChainFileProbe {
        let probe: ChainFileProbe
        do {
            probe = try ChainFileProbe(path: path, name: name, followSymlinks: false)
        } catch let error as WispError where error.errno == ELOOP {
            throw WispError(.failed, "\(name): \(path) was replaced by a symbolic link while it was being checked")
        }
        guard probe.identity == expected else {
            throw WispError(.failed, "\(name): \(path) was replaced while it was being checked")
        }
        return probe
    }
}
