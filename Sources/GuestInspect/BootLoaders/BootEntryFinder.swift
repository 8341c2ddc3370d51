import WispCore

/// Finds every boot entry in the guest and the one its boot loader would pick, by running
/// one scanner per boot loader in a fixed order: GRUB (grub.cfg, with BLS snippets through
/// `blscfg`), BLS alone (systemd-boot), extlinux, UKIs in EFI/Linux, and as a last resort
/// kernels found by name (kernel-install layouts, bootc).
struct BootEntryFinder {
    /// In the order their entries are listed; the first to name a default wins.
    static let scanners: [any BootLoaderScanner] = [
        GrubScanner(), BLSScanner(), ExtlinuxScanner(), UKIScanner(), BareKernelScanner(),
    ]

    private var context: BootScanContext

    init(inspector: GuestInspector) { context = BootScanContext(inspector: inspector) }

    struct Result {
        var entries: [BootEntry]
        var defaultIndex: Int?
        var reason: String
        var warnings: [String]
    }

    mutating func findEntries() throws -> Result {
        let inspector = context.inspector
        // The boot loader's files live on /boot: if Wisp cannot read it, any kernel found
        // elsewhere would be a guess, so say what is missing instead.
        if let reason = inspector.unreadableMounts["/boot"] {
            throw WispError.unsupported(inspector.disk.name, "cannot read the boot entries: \(reason)")
        }
        // Read by more than one loader: grubenv (GRUB, and $kernelopts in BLS options) and
        // the BLS entries (GRUB's blscfg, systemd-boot).
        if inspector.isLiveMedium { context.elToritoEFI = inspector.guestDisk.elToritoEFIFileSystem }
        context.grubenv = GrubScanner.loadEnvironment(&context)
        context.bls = BLSScanner.findEntries(&context)

        var entries: [BootEntry] = []
        var defaultIndex: Int?
        var reason = ""
        for scanner in Self.scanners where !(scanner.runsOnlyWhenNothingFound && !entries.isEmpty) {
            let scan = try scanner.scan(&context)
            if defaultIndex == nil, let choice = scan.defaultChoice {
                defaultIndex = entries.count + choice.index
                reason = choice.reason
            }
            entries += scan.entries
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
            if let first = context.parseErrors.first, entries.isEmpty { throw first }
            let unreadable = inspector.unreadableMounts.values.sorted()
            if !unreadable.isEmpty {
                throw WispError.unsupported(inspector.disk.name, "no boot entry found; " + unreadable.joined(separator: "; "))
            }
            reason = entries.isEmpty ? "no kernel found in /boot, /usr/lib/modules, loader entries, grub.cfg, extlinux or EFI/Linux" : "no regular entry found"
        }
        return Result(entries: entries, defaultIndex: defaultIndex, reason: reason, warnings: context.warnings)
    }
}
