import WispCore

/// Where the BLS entries were found: BLS paths are relative to the root of the directory's
/// own filesystem.
struct BLSLocation {
    var entries: [BLSEntry] = []
    var directory: String = ""
    var fileSystemIndex: Int?
}

/// Boot Loader Specification entries in loader/entries: systemd-boot's, and GRUB's through
/// blscfg (Fedora, EL, bootc). The entries are read once before any scanner runs
/// (`findEntries`), because GrubScanner expands blscfg from them too.
struct BLSScanner: BootLoaderScanner {
    /// The first of /boot, /efi, /boot/efi (or an unmounted filesystem) whose loader/entries
    /// holds parsable entries, in BLS order. Unparsable entries are warnings and parse errors.
    static func findEntries(_ context: inout BootScanContext) -> BLSLocation {
        var dirs: [(String, Int?)] = []
        for path in ["/boot/loader/entries", "/efi/loader/entries", "/boot/efi/loader/entries"] {
            if let loc = try? context.view?.resolve(path) { dirs.append((loc.guestPath, loc.mount.fileSystemIndex)) }
        }
        for (i, _) in context.unmountedFileSystems { dirs.append((context.pathOn(fileSystem: i, "/loader/entries"), i)) }
        // A CD's systemd-boot entries sit at the medium's root (archiso).
        if context.inspector.isLiveMedium, let loc = try? context.view?.resolve("/loader/entries") {
            dirs.append((loc.guestPath, loc.mount.fileSystemIndex))
        }
        for (dir, fsIndex) in dirs {
            guard let names = try? context.listDirectory(dir) else { continue }
            let inspector = context.inspector
            let entries = parseEntries(names, directory: dir, context: &context) { try inspector.readGuestFile($0, limit: 64 << 10) }
            if !entries.isEmpty {
                return BLSLocation(entries: BLSEntry.ordered(entries), directory: dir, fileSystemIndex: fsIndex)
            }
        }
        // Last, the entries inside a CD's El Torito EFI image: systemd-boot there loads the
        // kernel from the image, which live media keep on the medium too at the same path.
        if let fs = context.elToritoEFI, let dir = try? fs.resolve("/loader/entries"),
           let list = try? fs.list(directory: dir.inode), list.count <= 4096 {
            let entries = parseEntries(list.map(\.name), directory: BootScanContext.elToritoEFIPath("/loader/entries"), context: &context) {
                try fs.readFile("/loader/entries/" + String($0.split(separator: "/").last ?? ""), limit: 64 << 10)
            }
            if !entries.isEmpty {
                return BLSLocation(entries: BLSEntry.ordered(entries), directory: BootScanContext.elToritoEFIPath("/loader/entries"),
                                   fileSystemIndex: nil)
            }
        }
        return BLSLocation()
    }

    /// The `.conf` files of one entries directory, parsed; unreadable and unparsable ones
    /// are warnings (and parse errors).
    static func parseEntries(_ names: [String], directory: String, context: inout BootScanContext,
                             read: (String) throws -> [UInt8]) -> [BLSEntry] {
        var entries: [BLSEntry] = []
        for name in names.sorted() where name.hasSuffix(".conf") {
            let path = directory + "/" + name
            guard let bytes = try? read(path) else {
                context.warnings.append("\(path): not readable as a BLS entry")
                continue
            }
            do {
                entries.append(try BLSEntry.parse(String(decoding: bytes, as: UTF8.self),
                                                  id: String(name.dropLast(5)), source: path))
            } catch let error as WispError {
                context.warnings.append(error.message)
                context.parseErrors.append(error)
            } catch {}
        }
        return entries
    }

    func scan(_ context: inout BootScanContext) throws -> BootLoaderScan {
        let location = context.bls
        switch context.grubMenu {
        case .listingBLS:
            // GRUB's menu already lists them, where blscfg put them.
            return BootLoaderScan()
        case .withoutBLS:
            // Listed after GRUB's own entries; GRUB boots, so GRUB names the default.
            return BootLoaderScan(entries: location.entries.map { Self.bootEntry($0, location: location, context: &context) })
        case .none:
            break
        }
        let entries = location.entries.map { Self.bootEntry($0, location: location, context: &context) }
        if let saved = context.grubenv["saved_entry"], !saved.isEmpty, let i = entries.firstIndex(where: { $0.id == saved }) {
            return BootLoaderScan(entries: entries, defaultChoice: .init(index: i, reason: "grubenv saved_entry=\(saved) names this BLS entry"))
        }
        if let i = entries.firstIndex(where: { !$0.isRescue }) {
            return BootLoaderScan(entries: entries, defaultChoice: .init(
                index: i, reason: "first BLS entry in sort order (sort-key, machine-id, version descending)"))
        }
        return BootLoaderScan(entries: entries)
    }

    /// The boot-relative path of a BLS entry's file, as a guest path.
    static func guestPath(_ path: String, location: BLSLocation, config: String, what: String,
                          context: BootScanContext) throws -> String {
        try context.checkInside(path, config: config, what: what)
        return context.locate(path, fileSystem: location.fileSystemIndex)
    }

    static func bootEntry(_ bls: BLSEntry, location: BLSLocation, context: inout BootScanContext) -> BootEntry {
        let config = "\(location.directory)/\(bls.id).conf"
        // Without GRUB, options still expand the grubenv variables blscfg would ($kernelopts).
        var runner = GrubMenu.Runner(context: GrubMenu.Context(grubenv: context.grubenv, fileExists: { _ in false }, blsEntries: [], prefix: "/grub"),
                                     source: config)
        runner.environment = context.grubenv
        // Expansion is budgeted: grubenv variables repeated in options could otherwise
        // multiply into gigabytes. Over budget, the entry keeps no options and says why.
        var options: [String] = []
        var initrds: [String] = []
        do {
            options = try runner.expand(bls.options.joined(separator: " ").split(separator: " ").map {
                GrubWord(parts: GrubMenu.splitVariables(String($0)), quoted: false)
            }, line: 1)
            initrds = try runner.expand(bls.initrds.flatMap { $0.split(separator: " ") }.map {
                GrubWord(parts: GrubMenu.splitVariables(String($0)), quoted: false)
            }, line: 1)
        } catch let error as WispError {
            context.warnings.append(error.message)
            context.parseErrors.append(error)
        } catch {}
        let isUKI = bls.linux == nil
        let kernelRaw = bls.linux ?? bls.efi ?? ""
        var kernel = kernelRaw
        var initrdPaths: [String] = []
        do {
            kernel = try guestPath(kernelRaw, location: location, config: config, what: "linux", context: context)
            initrdPaths = try initrds.map { try guestPath($0, location: location, config: config, what: "initrd", context: context) }
        } catch let error as WispError {
            context.warnings.append(error.message)
            context.parseErrors.append(error)
        } catch {}
        return BootEntry(source: .bls, configPath: config, id: bls.id, title: bls.title ?? bls.id,
                         version: bls.version ?? Self.version(fromKernelPath: kernelRaw), kernel: kernel,
                         initrds: initrdPaths, commandLine: options.joined(separator: " "),
                         commandLineIsFallback: false, submenu: [],
                         isRescue: Self.isRescue(bls.id, bls.title ?? "", kernelRaw), isUnifiedKernelImage: isUKI)
    }
}
