import FileSystems
import WispCore

/// Finds every boot entry in the guest and the one its boot loader would pick: GRUB
/// (grub.cfg, with BLS snippets through `blscfg`), BLS alone (systemd-boot), extlinux, UKIs
/// in EFI/Linux, and as a last resort kernels found by name (kernel-install layouts, bootc).
struct BootEntryFinder {
    let inspector: GuestInspector
    var warnings: [String] = []
    var parseErrors: [WispError] = []

    init(inspector: GuestInspector) { self.inspector = inspector }

    struct Result {
        var entries: [BootEntry]
        var defaultIndex: Int?
        var reason: String
        var warnings: [String]
    }

    var view: MountView? { inspector.view }

    mutating func findEntries() throws -> Result {
        // The boot loader's files live on /boot: if Wisp cannot read it, any kernel found
        // elsewhere would be a guess, so say what is missing instead.
        for point in ["/boot", "/efi", "/boot/efi"] {
            if let reason = inspector.unreadableMounts[point], point == "/boot" {
                throw WispError.unsupported(inspector.disk.name, "cannot read the boot entries: \(reason)")
            }
        }
        let grubenv = loadGrubenv()
        let bls = findBLS()
        var entries: [BootEntry] = []
        var defaultIndex: Int?
        var reason = ""

        if let grub = try runGrub(grubenv: grubenv, bls: bls) {
            entries = grub.entries
            defaultIndex = grub.defaultIndex
            reason = grub.reason
            if !grub.usedBLS {
                entries += bls.entries.map { blsBootEntry($0, grubenv: grubenv, location: bls) }
            }
        } else if !bls.entries.isEmpty {
            entries = bls.entries.map { blsBootEntry($0, grubenv: grubenv, location: bls) }
            if let saved = grubenv["saved_entry"], !saved.isEmpty, let i = entries.firstIndex(where: { $0.id == saved }) {
                defaultIndex = i
                reason = "grubenv saved_entry=\(saved) names this BLS entry"
            } else if let i = entries.firstIndex(where: { !$0.isRescue }) {
                defaultIndex = i
                reason = "first BLS entry in sort order (sort-key, machine-id, version descending)"
            }
        }
        let extlinux = try findExtlinux()
        if defaultIndex == nil, let d = extlinux.defaultIndex {
            defaultIndex = entries.count + d
            reason = extlinux.reason
        }
        entries += extlinux.entries
        let ukis = findUKIs()
        if defaultIndex == nil, !ukis.isEmpty, let i = ukis.firstIndex(where: { !$0.isRescue }) {
            defaultIndex = entries.count + i
            reason = "newest unified kernel image in EFI/Linux (no boot loader configuration names another)"
        }
        entries += ukis
        if entries.isEmpty {
            let scanned = scanKernels()
            entries = scanned
            if let i = scanned.firstIndex(where: { !$0.isRescue }) {
                defaultIndex = i
                reason = scanned[i].source == "kernel-install"
                    ? "no boot loader entries: newest kernel by version, command line from /etc/kernel/cmdline"
                    : "no boot loader entries: newest kernel by version, with a command line built from the root filesystem"
            }
        }
        // Rescue, recovery and kdump entries never boot by default.
        if let d = defaultIndex, entries[d].isRescue {
            if let i = entries.firstIndex(where: { !$0.isRescue }) {
                reason += "; that is a rescue/recovery entry, so the first regular entry \"\(entries[i].title)\" is taken instead"
                defaultIndex = i
            } else {
                reason += " (only rescue entries exist)"
            }
        }
        if defaultIndex == nil {
            if let first = parseErrors.first, entries.isEmpty { throw first }
            let unreadable = inspector.unreadableMounts.values.sorted()
            if !unreadable.isEmpty {
                throw WispError.unsupported(inspector.disk.name, "no boot entry found; " + unreadable.joined(separator: "; "))
            }
            reason = entries.isEmpty ? "no kernel found in /boot, /usr/lib/modules, loader entries, grub.cfg, extlinux or EFI/Linux" : "no regular entry found"
        }
        return Result(entries: entries, defaultIndex: defaultIndex, reason: reason, warnings: warnings)
    }

    // MARK: files

    func read(_ path: String) -> [UInt8]? {
        try? view?.readFile(path, limit: GuestInspector.configLimit)
    }

    func readText(_ path: String) -> String? {
        read(path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Readable filesystems the guest does not mount (a /boot missing from fstab, an ESP).
    var unmountedFileSystems: [(index: Int, fs: any FileSystem)] {
        inspector.fileSystems.enumerated().compactMap { i, o in
            guard o.mountPoint == nil, let fs = o.fileSystem else { return nil }
            return (i, fs)
        }
    }

    /// GRUB notation for a path on a filesystem: its guest path if mounted, else (hd0,gptN)/path.
    func pathOn(fileSystem index: Int, _ path: String) -> String {
        if let guest = view?.guestPath(onFileSystem: index, path: path) { return guest }
        let opened = inspector.fileSystems[index]
        let scheme = inspector.partitionScheme == .gpt ? "gpt" : inspector.partitionScheme == .mbr ? "msdos" : ""
        if opened.partition.number == 0 { return MountView.normalize(path) }
        return "(hd0,\(scheme)\(opened.partition.number))" + MountView.normalize(path)
    }

    func exists(_ path: String) -> Bool {
        (try? inspector.locateGuestFile(path)) != nil
    }

    /// Rejects paths whose ".." climbs above the filesystem root: a boot loader cannot
    /// leave its partition.
    func checkInside(_ path: String, config: String, what: String) throws {
        var depth = 0
        for c in path.split(separator: "/") {
            if c == ".." { depth -= 1 } else if c != "." { depth += 1 }
            if depth < 0 {
                throw WispError.corrupt(inspector.disk.name, config, "\(what) path \"\(path)\" climbs out of the filesystem root")
            }
        }
    }

    /// Where a boot path lands: on the filesystem the loader reads (if known), else as a
    /// guest path, else under /boot (a separate /boot partition seen from the root).
    func locate(_ path: String, fileSystem index: Int?) -> String {
        var candidates: [String] = []
        if let index { candidates.append(pathOn(fileSystem: index, path)) }
        candidates.append(MountView.normalize(path))
        candidates.append(MountView.normalize("/boot/" + path))
        return candidates.first(where: exists) ?? candidates[0]
    }

    static func isRescue(_ texts: String...) -> Bool {
        texts.contains { t in
            let l = t.lowercased()
            return l.contains("rescue") || l.contains("recovery") || l.contains("kdump")
        }
    }

    static func version(fromKernelPath path: String) -> String? {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        for prefix in ["vmlinuz-", "vmlinux-", "kernel-", "Image-", "bzImage-", "linux-"] where name.hasPrefix(prefix) {
            return String(name.dropFirst(prefix.count))
        }
        return nil
    }

    // MARK: grubenv

    mutating func loadGrubenv() -> [String: String] {
        var candidates = ["/boot/grub/grubenv", "/boot/grub2/grubenv"]
        for (i, _) in unmountedFileSystems {
            candidates += [pathOn(fileSystem: i, "/grub/grubenv"), pathOn(fileSystem: i, "/grub2/grubenv")]
        }
        for path in candidates {
            guard let bytes = try? inspector.readGuestFile(path, limit: 64 << 10) else { continue }
            do {
                return try GrubEnvironment.parse(bytes, source: path)
            } catch let error as WispError {
                warnings.append(error.message)
            } catch {}
        }
        return [:]
    }

    // MARK: BLS

    struct BLSLocation {
        var entries: [BLSEntry] = []
        var directory: String = ""
        var fileSystemIndex: Int?
    }

    mutating func findBLS() -> BLSLocation {
        var dirs: [(String, Int?)] = []
        for path in ["/boot/loader/entries", "/efi/loader/entries", "/boot/efi/loader/entries"] {
            if let loc = try? view?.resolve(path) { dirs.append((loc.guestPath, loc.mount.fileSystemIndex)) }
        }
        for (i, _) in unmountedFileSystems { dirs.append((pathOn(fileSystem: i, "/loader/entries"), i)) }
        for (dir, fsIndex) in dirs {
            guard let names = try? listDirectory(dir) else { continue }
            var entries: [BLSEntry] = []
            for name in names.sorted() where name.hasSuffix(".conf") {
                let path = dir + "/" + name
                guard let bytes = try? inspector.readGuestFile(path, limit: 64 << 10) else {
                    warnings.append("\(path): not readable as a BLS entry")
                    continue
                }
                do {
                    entries.append(try BLSEntry.parse(String(decoding: bytes, as: UTF8.self),
                                                      id: String(name.dropLast(5)), source: path))
                } catch let error as WispError {
                    warnings.append(error.message)
                    parseErrors.append(error)
                } catch {}
            }
            if !entries.isEmpty {
                // The directory's own filesystem: BLS paths are relative to its root.
                return BLSLocation(entries: BLSEntry.ordered(entries), directory: dir, fileSystemIndex: fsIndex)
            }
        }
        return BLSLocation()
    }

    func listDirectory(_ path: String) throws -> [String] {
        let (fs, inode) = try inspector.locateGuestFile(path)
        let list = try fs.list(directory: inode)
        guard list.count <= 4096 else {
            throw WispError.corrupt(inspector.disk.name, path, "\(list.count) directory entries: too many to scan")
        }
        return list.map(\.name)
    }

    /// The boot-relative path of a BLS entry's file, as a guest path.
    func blsPath(_ path: String, location: BLSLocation, config: String, what: String) throws -> String {
        try checkInside(path, config: config, what: what)
        return locate(path, fileSystem: location.fileSystemIndex)
    }

    mutating func blsBootEntry(_ bls: BLSEntry, grubenv: [String: String], location: BLSLocation) -> BootEntry {
        let config = "\(location.directory)/\(bls.id).conf"
        // Without GRUB, options still expand the grubenv variables blscfg would ($kernelopts).
        var runner = GrubMenu.Runner(context: GrubMenu.Context(grubenv: grubenv, fileExists: { _ in false }, blsEntries: [], prefix: "/grub"),
                                     source: config)
        runner.environment = grubenv
        let options = runner.expand(bls.options.joined(separator: " ").split(separator: " ").map {
            GrubWord(parts: GrubMenu.splitVariables(String($0)), quoted: false)
        })
        let initrds = runner.expand(bls.initrds.flatMap { $0.split(separator: " ") }.map {
            GrubWord(parts: GrubMenu.splitVariables(String($0)), quoted: false)
        })
        let isUKI = bls.linux == nil
        let kernelRaw = bls.linux ?? bls.efi ?? ""
        var kernel = kernelRaw
        var initrdPaths: [String] = []
        do {
            kernel = try blsPath(kernelRaw, location: location, config: config, what: "linux")
            initrdPaths = try initrds.map { try blsPath($0, location: location, config: config, what: "initrd") }
        } catch let error as WispError {
            warnings.append(error.message)
            parseErrors.append(error)
        } catch {}
        return BootEntry(source: "bls", configPath: config, id: bls.id, title: bls.title ?? bls.id,
                         version: bls.version ?? Self.version(fromKernelPath: kernelRaw), kernel: kernel,
                         initrds: initrdPaths, commandLine: options.joined(separator: " "),
                         commandLineIsFallback: false, submenu: [],
                         isRescue: Self.isRescue(bls.id, bls.title ?? "", kernelRaw), isUnifiedKernelImage: isUKI)
    }

    // MARK: GRUB

    struct GrubResult {
        var entries: [BootEntry]
        var defaultIndex: Int?
        var reason: String
        var usedBLS: Bool
    }

    mutating func runGrub(grubenv: [String: String], bls: BLSLocation) throws -> GrubResult? {
        var candidates: [(path: String, fsIndex: Int?, prefix: String)] = []
        for path in ["/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"] {
            if let loc = try? view?.resolve(path) {
                let inner = view?.mountFor(canonical: loc.guestPath)?.1 ?? path
                let prefix = String(inner.split(separator: "/").dropLast().joined(separator: "/"))
                candidates.append((loc.guestPath, loc.mount.fileSystemIndex, "/" + prefix))
            }
        }
        for (i, _) in unmountedFileSystems {
            for p in ["/grub/grub.cfg", "/grub2/grub.cfg"] {
                candidates.append((pathOn(fileSystem: i, p), i, String(p.dropLast("/grub.cfg".count))))
            }
        }
        for candidate in candidates {
            guard let bytes = try? inspector.readGuestFile(candidate.path, limit: GuestInspector.configLimit) else { continue }
            let text = String(decoding: bytes, as: UTF8.self)
            let menu: GrubMenu
            do {
                let statements = try GrubScriptParser.parse(text, source: candidate.path)
                let context = GrubMenu.Context(
                    grubenv: grubenv,
                    fileExists: { [self] path in
                        let (_, inner) = GrubMenu.splitDevicePath(path, root: nil)
                        return self.exists(self.locate(inner, fileSystem: candidate.fsIndex))
                    },
                    blsEntries: bls.entries, prefix: candidate.prefix)
                menu = try GrubMenu(statements: statements, context: context, source: candidate.path)
            }
            // A grub.cfg GRUB cannot parse leaves the guest at a GRUB prompt: say so
            // rather than guess another kernel.
            return try convert(menu: menu, configPath: candidate.path, configFS: candidate.fsIndex, grubenv: grubenv, bls: bls)
        }
        return nil
    }

    mutating func convert(menu: GrubMenu, configPath: String, configFS: Int?, grubenv: [String: String],
                          bls blsLocation: BLSLocation) throws -> GrubResult? {
        var entries: [BootEntry] = []
        var map: [Int: Int] = [:]  // GRUB entry index -> BootEntry index
        var usedBLS = false
        for (index, e) in menu.entries.enumerated() {
            guard let kernelRaw = e.kernel else { continue }
            let config = e.blsID.map { "\(blsLocation.directory)/\($0).conf" } ?? "\(configPath) line \(e.line)"
            let device = inspector.fileSystemIndex(for: e.kernelDevice)
            if e.blsID == nil, case .partition(let n) = e.kernelDevice, device == nil {
                throw WispError.notFound("\(inspector.disk.name): \(config): kernel on partition \(n), which this disk does not have")
            }
            var kernel: String, initrds: [String]
            do {
                // Paths that climb out of the filesystem are hostile: refuse the whole file.
                try checkInside(kernelRaw, config: config, what: "linux")
                for i in e.initrds { try checkInside(i, config: config, what: "initrd") }
                if e.blsID != nil {
                    usedBLS = true
                    // blscfg paths are relative to the BLS directory's filesystem.
                    let fsIndex = blsLocation.fileSystemIndex ?? device
                    kernel = locate(kernelRaw, fileSystem: fsIndex)
                    initrds = e.initrds.map { locate($0, fileSystem: fsIndex) }
                } else {
                    kernel = locate(kernelRaw, fileSystem: device ?? (e.kernelDevice == .unknown ? nil : configFS))
                    let initrdFS = inspector.fileSystemIndex(for: e.initrdDevice) ?? device
                    initrds = e.initrds.map { locate($0, fileSystem: initrdFS) }
                }
            }
            let blsEntry = e.blsID.flatMap { id in blsLocation.entries.first { $0.id == id } }
            map[index] = entries.count
            entries.append(BootEntry(
                source: e.blsID != nil ? "bls" : "grub.cfg", configPath: e.blsID != nil ? config : configPath,
                id: e.id ?? e.title, title: e.title,
                version: blsEntry?.version ?? Self.version(fromKernelPath: kernelRaw), kernel: kernel, initrds: initrds,
                commandLine: e.arguments.joined(separator: " "), commandLineIsFallback: false, submenu: e.submenuPath,
                isRescue: Self.isRescue(e.title, e.id ?? "", kernelRaw) || e.classes.contains("recovery"),
                isUnifiedKernelImage: false))
        }
        guard !entries.isEmpty else {
            if !menu.entries.isEmpty || !parseErrors.isEmpty {
                warnings.append("\(configPath): no menu entry boots a Linux kernel")
            }
            return nil
        }
        let (grubIndex, reason) = menu.resolveDefault()
        var defaultIndex = grubIndex.flatMap { map[$0] }
        var why = reason
        if grubIndex != nil, defaultIndex == nil {
            defaultIndex = entries.firstIndex { !$0.isRescue }
            why += "; that entry boots no Linux kernel, so the first Linux entry is taken"
        }
        return GrubResult(entries: entries, defaultIndex: defaultIndex, reason: why, usedBLS: usedBLS)
    }

    // MARK: extlinux

    struct ExtlinuxResult {
        var entries: [BootEntry] = []
        var defaultIndex: Int?
        var reason = ""
    }

    mutating func findExtlinux() throws -> ExtlinuxResult {
        var candidates = ["/boot/extlinux/extlinux.conf", "/boot/extlinux.conf", "/extlinux.conf",
                          "/boot/syslinux/syslinux.cfg", "/boot/syslinux.cfg", "/syslinux/syslinux.cfg"]
        for (i, _) in unmountedFileSystems {
            candidates += [pathOn(fileSystem: i, "/extlinux/extlinux.conf"), pathOn(fileSystem: i, "/extlinux.conf")]
        }
        for path in candidates {
            guard let bytes = try? inspector.readGuestFile(path, limit: GuestInspector.configLimit) else { continue }
            do {
                let config = try ExtlinuxConfig.parse(String(decoding: bytes, as: UTF8.self), source: path)
                let directory = String(path.split(separator: "/").dropLast().joined(separator: "/"))
                let (fsIndex, dirInFS): (Int?, String) = {
                    if let (mount, inner) = view?.mountFor(canonical: MountView.normalize(directory)), !path.hasPrefix("(") {
                        return (mount.fileSystemIndex, inner)
                    }
                    return (nil, directory)
                }()
                var result = ExtlinuxResult()
                for label in config.labels {
                    guard let kernelRaw = label.kernel else { continue }
                    func place(_ p: String) throws -> String {
                        let absolute = p.hasPrefix("/") ? p : MountView.normalize(dirInFS + "/" + p)
                        try checkInside(absolute, config: "\(path) line \(label.line)", what: "LINUX/INITRD")
                        return locate(absolute, fileSystem: fsIndex)
                    }
                    let kernel = try place(kernelRaw)
                    let initrds = try label.initrds.map(place)
                    result.entries.append(BootEntry(
                        source: "extlinux", configPath: path, id: label.name, title: label.menuLabel ?? label.name,
                        version: Self.version(fromKernelPath: kernelRaw), kernel: kernel, initrds: initrds,
                        commandLine: label.append ?? config.globalAppend ?? "", commandLineIsFallback: false, submenu: [],
                        isRescue: Self.isRescue(label.name, label.menuLabel ?? ""), isUnifiedKernelImage: false))
                }
                if let (label, reason) = config.defaultChoice(),
                   let i = result.entries.firstIndex(where: { $0.id == label.name }) {
                    result.defaultIndex = i
                    result.reason = reason
                }
                return result
            }
        }
        return ExtlinuxResult()
    }

    // MARK: UKIs

    mutating func findUKIs() -> [BootEntry] {
        var dirs: [String] = []
        for (i, o) in inspector.fileSystems.enumerated() where o.fileSystem != nil && o.kind == .vfat {
            dirs.append(pathOn(fileSystem: i, "/EFI/Linux"))
        }
        if let loc = try? view?.resolve("/boot/EFI/Linux"), !dirs.contains(loc.guestPath) { dirs.append(loc.guestPath) }
        var found: [BootEntry] = []
        for dir in dirs {
            guard let names = try? listDirectory(dir) else { continue }
            for name in names where name.lowercased().hasSuffix(".efi") {
                let path = dir + "/" + name
                do {
                    let uki = try UnifiedKernelImage.open(inspector: inspector, path: path)
                    let osrel = uki.sectionText(".osrel", inspector: inspector).map(OSRelease.init(parsing:))
                    let uname = uki.sectionText(".uname", inspector: inspector)
                    let title = [osrel?.prettyName ?? osrel?.name, uname].compactMap { $0 }.joined(separator: " ")
                    found.append(BootEntry(
                        source: "uki", configPath: path, id: name, title: title.isEmpty ? name : title,
                        version: uname ?? osrel?.versionID, kernel: path, initrds: [],
                        commandLine: uki.sectionText(".cmdline", inspector: inspector) ?? "", commandLineIsFallback: false,
                        submenu: [], isRescue: Self.isRescue(name), isUnifiedKernelImage: true))
                } catch let error as WispError {
                    warnings.append(error.message)
                } catch {}
            }
        }
        return found.sorted { VersionCompare.compare($0.version ?? $0.id, $1.version ?? $1.id) > 0 }
    }

    // MARK: kernels by name

    /// Kernels found by file name when no boot loader names one: /boot/vmlinuz-* (and
    /// unversioned vmlinuz-linux, vmlinuz-virt), /usr/lib/modules/*/vmlinuz (bootc, ostree,
    /// kernel-install). Each initrd is paired with its kernel by version, never picked alone.
    mutating func scanKernels() -> [BootEntry] {
        guard let view else { return [] }
        var kernels: [(path: String, version: String?, initrd: String?)] = []
        var seen = Set<String>()
        func add(_ path: String, version: String?, initrd: String?) {
            guard let loc = try? view.resolve(path), !seen.contains(loc.guestPath) else { return }
            seen.insert(loc.guestPath)
            kernels.append((path, version, initrd))
        }
        if let names = try? listDirectory("/boot") {
            for name in names.sorted() {
                guard name.hasPrefix("vmlinuz") || name.hasPrefix("vmlinux") || name.hasPrefix("Image")
                        || name.hasPrefix("bzImage") || name.hasPrefix("kernel-") else { continue }
                if name.hasSuffix(".hmac") || name.hasSuffix(".sig") || name.hasSuffix(".old") { continue }
                let version = Self.version(fromKernelPath: name)
                var initrd: String?
                let candidates: [String]
                if let v = version {
                    candidates = ["initrd.img-\(v)", "initrd-\(v).img", "initramfs-\(v).img", "initrd-\(v)", "initramfs-\(v)"]
                } else {
                    candidates = ["initrd.img", "initramfs.img", "initrd"]
                }
                for c in candidates where names.contains(c) { initrd = "/boot/\(c)"; break }
                add("/boot/\(name)", version: version, initrd: initrd)
            }
        }
        for base in ["/usr/lib/modules", "/lib/modules"] {
            guard let versions = try? listDirectory(base) else { continue }
            for v in versions.prefix(GuestInspector.maxEntriesPerDirectory) {
                let dir = "\(base)/\(v)"
                guard let files = try? listDirectory(dir) else { continue }
                guard let kernelName = ["vmlinuz", "Image", "vmlinux"].first(where: files.contains) else { continue }
                let initrd = ["initramfs.img", "initrd.img", "initrd"].first(where: files.contains).map { "\(dir)/\($0)" }
                add("\(dir)/\(kernelName)", version: v, initrd: initrd)
            }
        }
        let cmdline = readText("/etc/kernel/cmdline")?.split(whereSeparator: \.isNewline)
            .map(String.init).filter { !$0.hasPrefix("#") }.joined(separator: " ").trimmingWhitespace()
        let sorted = kernels.sorted { VersionCompare.compare($0.version ?? "", $1.version ?? "") > 0 }
        return sorted.map { k in
            BootEntry(source: cmdline?.isEmpty == false ? "kernel-install" : "scan", configPath: k.path,
                      id: k.version ?? k.path, title: "Linux \(k.version ?? k.path)", version: k.version, kernel: k.path,
                      initrds: k.initrd.map { [$0] } ?? [], commandLine: cmdline ?? "", commandLineIsFallback: false,
                      submenu: [], isRescue: Self.isRescue(k.path), isUnifiedKernelImage: false)
        }
    }
}
