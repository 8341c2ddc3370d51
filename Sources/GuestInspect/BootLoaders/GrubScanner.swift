import WispCore

/// GRUB: the first readable grub.cfg (/boot/grub, /boot/grub2, or grub/ on a filesystem the
/// guest does not mount), run as GRUB would with grubenv loaded, submenus walked and blscfg
/// expanded, and GRUB's own `default` resolved.
struct GrubScanner: BootLoaderScanner {
    /// Whether a grub.cfg gave a menu that boots Linux, and whether that menu already lists
    /// the BLS entries (through blscfg).
    enum MenuFinding {
        case none
        case listingBLS
        case withoutBLS
    }

    /// The grubenv variables, from the first readable grubenv; a broken one is a warning.
    static func loadEnvironment(_ context: inout BootScanContext) -> [String: String] {
        var candidates = ["/boot/grub/grubenv", "/boot/grub2/grubenv"]
        for (i, _) in context.unmountedFileSystems {
            candidates += [context.pathOn(fileSystem: i, "/grub/grubenv"), context.pathOn(fileSystem: i, "/grub2/grubenv")]
        }
        for path in candidates {
            guard let bytes = try? context.inspector.readGuestFile(path, limit: 64 << 10) else { continue }
            do {
                return try GrubEnvironment.parse(bytes, source: path)
            } catch let error as WispError {
                context.warnings.append(error.message)
            } catch {}
        }
        return [:]
    }

    func scan(_ context: inout BootScanContext) throws -> BootLoaderScan {
        var candidates: [(path: String, fsIndex: Int?, prefix: String)] = []
        for path in ["/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"] {
            if let loc = try? context.view?.resolve(path) {
                let inner = context.view?.mountFor(canonical: loc.guestPath)?.1 ?? path
                let prefix = String(inner.split(separator: "/").dropLast().joined(separator: "/"))
                candidates.append((loc.guestPath, loc.mount.fileSystemIndex, "/" + prefix))
            }
        }
        for (i, _) in context.unmountedFileSystems {
            for p in ["/grub/grub.cfg", "/grub2/grub.cfg"] {
                candidates.append((context.pathOn(fileSystem: i, p), i, String(p.dropLast("/grub.cfg".count))))
            }
        }
        if context.inspector.isLiveMedium {
            // A CD's UEFI GRUB often keeps its menu beside itself (Fedora's /EFI/BOOT/grub.cfg).
            for p in Self.efiConfigPaths { candidates.append((p, nil, String(p.dropLast("/grub.cfg".count)))) }
        }
        for candidate in candidates {
            guard let bytes = try? context.inspector.readGuestFile(candidate.path, limit: GuestInspector.configLimit) else { continue }
            return try scanConfig(bytes, path: candidate.path, fsIndex: candidate.fsIndex, prefix: candidate.prefix, context: &context)
        }
        // Last, the GRUB menu inside a CD's El Torito EFI image: its paths name files on the
        // medium (GRUB's `search` finds the CD and sets root to it).
        if let (path, bytes) = context.readElToritoEFI(Self.efiConfigPaths + ["/boot/grub/grub.cfg"]) {
            return try scanConfig(bytes, path: BootScanContext.elToritoEFIPath(path), fsIndex: nil,
                                  prefix: String(path.dropLast("/grub.cfg".count)), context: &context)
        }
        return BootLoaderScan()
    }

    /// Where UEFI GRUB looks for its menu beside its own binary, in the spellings FAT
    /// images and CDs carry.
    static let efiConfigPaths = ["/EFI/BOOT/grub.cfg", "/EFI/boot/grub.cfg", "/efi/boot/grub.cfg"]

    /// One grub.cfg run as GRUB would, its Linux entries as boot entries.
    func scanConfig(_ bytes: [UInt8], path: String, fsIndex: Int?, prefix: String, context: inout BootScanContext) throws -> BootLoaderScan {
        let candidate = (path: path, fsIndex: fsIndex, prefix: prefix)
        let text = String(decoding: bytes, as: UTF8.self)
        // A grub.cfg GRUB cannot parse leaves the guest at a GRUB prompt: say so
        // rather than guess another kernel.
        let statements = try GrubScriptParser.parse(text, source: candidate.path)
        let files = context
        let menuContext = GrubMenu.Context(
            grubenv: context.grubenv,
            fileExists: { path in
                let (_, inner) = GrubMenu.splitDevicePath(path, root: nil)
                return files.exists(files.locate(inner, fileSystem: candidate.fsIndex))
            },
            blsEntries: context.bls.entries, prefix: candidate.prefix)
        let menu = try GrubMenu(statements: statements, context: menuContext, source: candidate.path)
        return try convert(menu: menu, configPath: candidate.path, configFS: candidate.fsIndex, context: &context)
    }

    /// The menu's Linux entries as boot entries. A menu without one counts as no GRUB menu
    /// (`context.grubMenu` stays `.none`), so BLS entries alone may name the default.
    func convert(menu: GrubMenu, configPath: String, configFS: Int?, context: inout BootScanContext) throws -> BootLoaderScan {
        let inspector = context.inspector
        let blsLocation = context.bls
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
            // Paths that climb out of the filesystem are hostile: refuse the whole file.
            try context.checkInside(kernelRaw, config: config, what: "linux")
            for i in e.initrds { try context.checkInside(i, config: config, what: "initrd") }
            if e.blsID != nil {
                usedBLS = true
                // blscfg paths are relative to the BLS directory's filesystem.
                let fsIndex = blsLocation.fileSystemIndex ?? device
                kernel = context.locate(kernelRaw, fileSystem: fsIndex)
                initrds = e.initrds.map { context.locate($0, fileSystem: fsIndex) }
            } else {
                kernel = context.locate(kernelRaw, fileSystem: device ?? (e.kernelDevice == .unknown ? nil : configFS))
                let initrdFS = inspector.fileSystemIndex(for: e.initrdDevice) ?? device
                initrds = e.initrds.map { context.locate($0, fileSystem: initrdFS) }
            }
            let blsEntry = e.blsID.flatMap { id in blsLocation.entries.first { $0.id == id } }
            map[index] = entries.count
            entries.append(BootEntry(
                source: e.blsID != nil ? .bls : .grubConfig, configPath: e.blsID != nil ? config : configPath,
                id: e.id ?? e.title, title: e.title,
                version: blsEntry?.version ?? Self.version(fromKernelPath: kernelRaw), kernel: kernel, initrds: initrds,
                commandLine: e.arguments.joined(separator: " "), commandLineIsFallback: false, submenu: e.submenuPath,
                isRescue: Self.isRescue(e.title, e.id ?? "", kernelRaw) || e.classes.contains("recovery"),
                isUnifiedKernelImage: false))
        }
        guard !entries.isEmpty else {
            if !menu.entries.isEmpty || !context.parseErrors.isEmpty {
                context.warnings.append("\(configPath): no menu entry boots a Linux kernel")
            }
            return BootLoaderScan()
        }
        context.grubMenu = usedBLS ? .listingBLS : .withoutBLS
        let (grubIndex, reason) = menu.resolveDefault()
        var defaultIndex = grubIndex.flatMap { map[$0] }
        var why = reason
        if grubIndex != nil, defaultIndex == nil {
            defaultIndex = entries.firstIndex { !$0.isRescue }
            why += "; that entry boots no Linux kernel, so the first Linux entry is taken"
        }
        return BootLoaderScan(entries: entries, defaultChoice: defaultIndex.map { .init(index: $0, reason: why) })
    }
}
