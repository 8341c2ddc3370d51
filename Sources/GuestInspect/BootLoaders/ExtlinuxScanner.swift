import WispCore

/// extlinux/syslinux: the first readable extlinux.conf or syslinux.cfg (Alpine, some arm
/// boards), its LABELs as entries and its DEFAULT / MENU DEFAULT as the default.
struct ExtlinuxScanner: BootLoaderScanner {
    func scan(_ context: inout BootScanContext) throws -> BootLoaderScan {
        var candidates = ["/boot/extlinux/extlinux.conf", "/boot/extlinux.conf", "/extlinux.conf",
                          "/boot/syslinux/syslinux.cfg", "/boot/syslinux.cfg", "/syslinux/syslinux.cfg"]
        for (i, _) in context.unmountedFileSystems {
            candidates += [context.pathOn(fileSystem: i, "/extlinux/extlinux.conf"), context.pathOn(fileSystem: i, "/extlinux.conf")]
        }
        for path in candidates {
            guard let bytes = try? context.inspector.readGuestFile(path, limit: GuestInspector.configLimit) else { continue }
            let config = try ExtlinuxConfig.parse(String(decoding: bytes, as: UTF8.self), source: path)
            let directory = String(path.split(separator: "/").dropLast().joined(separator: "/"))
            // Relative LINUX/INITRD paths are relative to the configuration's directory.
            let (fsIndex, dirInFS): (Int?, String) = {
                if let (mount, inner) = context.view?.mountFor(canonical: MountView.normalize(directory)), !path.hasPrefix("(") {
                    return (mount.fileSystemIndex, inner)
                }
                return (nil, directory)
            }()
            var result = BootLoaderScan()
            for label in config.labels {
                guard let kernelRaw = label.kernel else { continue }
                func place(_ p: String) throws -> String {
                    let absolute = p.hasPrefix("/") ? p : MountView.normalize(dirInFS + "/" + p)
                    try context.checkInside(absolute, config: "\(path) line \(label.line)", what: "LINUX/INITRD")
                    return context.locate(absolute, fileSystem: fsIndex)
                }
                let kernel = try place(kernelRaw)
                let initrds = try label.initrds.map(place)
                result.entries.append(BootEntry(
                    source: .extlinux, configPath: path, id: label.name, title: label.menuLabel ?? label.name,
                    version: Self.version(fromKernelPath: kernelRaw), kernel: kernel, initrds: initrds,
                    commandLine: label.append ?? config.globalAppend ?? "", commandLineIsFallback: false, submenu: [],
                    isRescue: Self.isRescue(label.name, label.menuLabel ?? ""), isUnifiedKernelImage: false))
            }
            if let (label, reason) = config.defaultChoice(),
               let i = result.entries.firstIndex(where: { $0.id == label.name }) {
                result.defaultChoice = .init(index: i, reason: reason)
            }
            return result
        }
        return BootLoaderScan()
    }
}
