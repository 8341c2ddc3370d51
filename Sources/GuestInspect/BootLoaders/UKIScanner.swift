import WispCore

/// Unified kernel images in EFI/Linux on every FAT filesystem (and /boot/EFI/Linux), which
/// systemd-boot lists without any configuration. Newest first; the newest regular one boots
/// when no other loader configuration names a default.
struct UKIScanner: BootLoaderScanner {
    func scan(_ context: inout BootScanContext) throws -> BootLoaderScan {
        let inspector = context.inspector
        var dirs: [String] = []
        for (i, o) in inspector.fileSystems.enumerated() where o.fileSystem != nil && o.kind == .vfat {
            dirs.append(context.pathOn(fileSystem: i, "/EFI/Linux"))
        }
        if let loc = try? context.view?.resolve("/boot/EFI/Linux"), !dirs.contains(loc.guestPath) { dirs.append(loc.guestPath) }
        var found: [BootEntry] = []
        for dir in dirs {
            guard let names = try? context.listDirectory(dir) else { continue }
            for name in names where name.lowercased().hasSuffix(".efi") {
                let path = dir + "/" + name
                do {
                    let uki = try UnifiedKernelImage.open(inspector: inspector, path: path)
                    let osrel = uki.sectionText(".osrel", inspector: inspector).map(OSRelease.init(parsing:))
                    let uname = uki.sectionText(".uname", inspector: inspector)
                    let title = [osrel?.prettyName ?? osrel?.name, uname].compactMap { $0 }.joined(separator: " ")
                    found.append(BootEntry(
                        source: .uki, configPath: path, id: name, title: title.isEmpty ? name : title,
                        version: uname ?? osrel?.versionID, kernel: path, initrds: [],
                        commandLine: uki.sectionText(".cmdline", inspector: inspector) ?? "", commandLineIsFallback: false,
                        submenu: [], isRescue: Self.isRescue(name), isUnifiedKernelImage: true))
                } catch let error as WispError {
                    context.warnings.append(error.message)
                } catch {}
            }
        }
        let entries = found.sorted { VersionCompare.compare($0.version ?? $0.id, $1.version ?? $1.id) > 0 }
        guard let i = entries.firstIndex(where: { !$0.isRescue }) else { return BootLoaderScan(entries: entries) }
        return BootLoaderScan(entries: entries, defaultChoice: .init(
            index: i, reason: "newest unified kernel image in EFI/Linux (no boot loader configuration names another)"))
    }
}
