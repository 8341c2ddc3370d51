/// One boot loader's way of naming kernels: where its configuration lives, how it reads,
/// and which entry it would boot. `BootEntryFinder` runs the scanners in a fixed order,
/// lists their entries in that order and takes the first default one of them names.
protocol BootLoaderScanner: Sendable {
    /// Consulted only when the scanners before it found no entry: kernels found by file
    /// name are a guess that any real boot loader configuration beats.
    var runsOnlyWhenNothingFound: Bool { get }

    /// The loader's entries and, when its configuration names one, the entry it boots.
    /// Throws when the configuration exists but the loader could not use it (a grub.cfg
    /// GRUB cannot parse, a kernel path that climbs out of its filesystem): finding another
    /// kernel would boot something the guest never would. Problems that only cost one entry
    /// go to the context's warnings.
    func scan(_ context: inout BootScanContext) throws -> BootLoaderScan
}

extension BootLoaderScanner {
    var runsOnlyWhenNothingFound: Bool { false }

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
}

/// What one boot loader scanner found.
struct BootLoaderScan {
    /// The entry the loader boots, as an index into `entries`, and the sentence saying why.
    struct DefaultChoice {
        var index: Int
        var reason: String
    }

    var entries: [BootEntry] = []
    var defaultChoice: DefaultChoice?
}
