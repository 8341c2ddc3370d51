import WispCore

/// Kernels found by file name when no boot loader names one: /boot/vmlinuz-* (and
/// unversioned vmlinuz-linux, vmlinuz-virt), /usr/lib/modules/*/vmlinuz (bootc, ostree,
/// kernel-install). Each initrd is paired with its kernel by version, never picked alone.
/// The command line is /etc/kernel/cmdline (source "kernel-install") or, without one, left
/// empty for the inspector's fallback (source "scan").
struct BareKernelScanner: BootLoaderScanner {
    var runsOnlyWhenNothingFound: Bool { true }

    func scan(_ context: inout BootScanContext) throws -> BootLoaderScan {
        guard let view = context.view else { return BootLoaderScan() }
        var kernels: [(path: String, version: String?, initrd: String?)] = []
        var seen = Set<String>()
        func add(_ path: String, version: String?, initrd: String?) {
            guard let loc = try? view.resolve(path), !seen.contains(loc.guestPath) else { return }
            seen.insert(loc.guestPath)
            kernels.append((path, version, initrd))
        }
        if let names = try? context.listDirectory("/boot") {
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
            guard let versions = try? context.listDirectory(base) else { continue }
            for v in versions.prefix(GuestInspector.maxEntriesPerDirectory) {
                let dir = "\(base)/\(v)"
                guard let files = try? context.listDirectory(dir) else { continue }
                guard let kernelName = ["vmlinuz", "Image", "vmlinux"].first(where: files.contains) else { continue }
                let initrd = ["initramfs.img", "initrd.img", "initrd"].first(where: files.contains).map { "\(dir)/\($0)" }
                add("\(dir)/\(kernelName)", version: v, initrd: initrd)
            }
        }
        let cmdline = context.readText("/etc/kernel/cmdline")?.split(whereSeparator: \.isNewline)
            .map(String.init).filter { !$0.hasPrefix("#") }.joined(separator: " ").trimmingWhitespace()
        let sorted = kernels.sorted { VersionCompare.compare($0.version ?? "", $1.version ?? "") > 0 }
        let entries = sorted.map { k in
            BootEntry(source: cmdline?.isEmpty == false ? .kernelInstall : .scan, configPath: k.path,
                      id: k.version ?? k.path, title: "Linux \(k.version ?? k.path)", version: k.version, kernel: k.path,
                      initrds: k.initrd.map { [$0] } ?? [], commandLine: cmdline ?? "", commandLineIsFallback: false,
                      submenu: [], isRescue: Self.isRescue(k.path), isUnifiedKernelImage: false)
        }
        guard let i = entries.firstIndex(where: { !$0.isRescue }) else { return BootLoaderScan(entries: entries) }
        let reason = entries[i].source == .kernelInstall
            ? "no boot loader entries: newest kernel by version, command line from /etc/kernel/cmdline"
            : "no boot loader entries: newest kernel by version, with a command line built from the root filesystem"
        return BootLoaderScan(entries: entries, defaultChoice: .init(index: i, reason: reason))
    }
}
