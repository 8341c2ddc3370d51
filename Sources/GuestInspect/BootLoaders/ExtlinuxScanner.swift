import WispCore

/// extlinux/syslinux: the first readable extlinux.conf or syslinux.cfg (Alpine, some arm
/// boards), its LABELs as entries and its DEFAULT / MENU DEFAULT as the default.
struct ExtlinuxScanner: BootLoaderScanner {
    func scan(_ context: inout BootScanContext) throws -> BootLoaderScan {
        var candidates = ["/boot/extlinux/extlinux.conf", "/boot/extlinux.conf", "/extlinux.conf",
                          "/boot/syslinux/syslinux.cfg", "/boot/syslinux.cfg", "/syslinux/syslinux.cfg",
                          // CD images: isolinux (Debian, Ubuntu, Alpine, Arch), syslinux on the medium's root.
                          "/isolinux/isolinux.cfg", "/boot/isolinux/isolinux.cfg", "/isolinux.cfg", "/syslinux.cfg"]
        for (i, _) in context.unmountedFileSystems {
            candidates += [context.pathOn(fileSystem: i, "/extlinux/extlinux.conf"), context.pathOn(fileSystem: i, "/extlinux.conf")]
        }
        for path in candidates {
            guard let bytes = try? context.inspector.readGuestFile(path, limit: GuestInspector.configLimit) else { continue }
            let directory = String(path.split(separator: "/").dropLast().joined(separator: "/"))
            let text = Self.expandingIncludes(String(decoding: bytes, as: UTF8.self), directory: "/" + directory, context: context)
            let config = try ExtlinuxConfig.parse(text, source: path)
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
                // isolinux configurations often name the initrd in APPEND ("initrd=/casper/initrd"):
                // syslinux loads it from there, so it is the entry's initrd, not a kernel argument.
                var append = label.append ?? config.globalAppend ?? ""
                var initrdPaths = label.initrds
                if initrdPaths.isEmpty {
                    let words = append.split(separator: " ", omittingEmptySubsequences: true)
                    if let word = words.first(where: { $0.hasPrefix("initrd=") }) {
                        initrdPaths = word.dropFirst("initrd=".count).split(separator: ",").map(String.init)
                        append = words.filter { !$0.hasPrefix("initrd=") }.joined(separator: " ")
                    }
                }
                let initrds = try initrdPaths.map(place)
                result.entries.append(BootEntry(
                    source: .extlinux, configPath: path, id: label.name, title: label.menuLabel ?? label.name,
                    version: Self.version(fromKernelPath: kernelRaw), kernel: kernel, initrds: initrds,
                    commandLine: append, commandLineIsFallback: false, submenu: [],
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

    /// Inlines INCLUDE lines (isolinux menus are split over menu.cfg, txt.cfg, ...), files
    /// relative to the configuration's directory, at most 8 levels and 64 files deep; a
    /// file that cannot be read is left out, as syslinux skips it.
    static func expandingIncludes(_ text: String, directory: String, context: BootScanContext) -> String {
        var budget = 64
        func expand(_ text: String, depth: Int) -> String {
            var lines: [Substring] = []
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard words.count >= 2, words[0].lowercased() == "include", depth < 8, budget > 0 else {
                    lines.append(line)
                    continue
                }
                budget -= 1
                let name = String(words[1])
                let path = name.hasPrefix("/") ? name : MountView.normalize(directory + "/" + name)
                guard let bytes = try? context.inspector.readGuestFile(path, limit: GuestInspector.configLimit) else { continue }
                lines.append(Substring(expand(String(decoding: bytes, as: UTF8.self), depth: depth + 1)))
            }
            return lines.joined(separator: "\n")
        }
        return expand(text, depth: 0)
    }
}
