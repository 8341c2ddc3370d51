import GuestInspect
import WispCore

/// The text files boot loaders and init read from the guest.
extension FuzzTargets {
    static let bootConfigs: [FuzzTarget] = [
        FuzzTarget(name: "grub", summary: "grub.cfg: the script parser and the menu evaluator (variables, if/test, functions, submenus)") { input in
            let statements = try GrubScriptParser.parse(FuzzInput.text(input), source: "grub.cfg")
            // Which paths "exist" is a function of the path, so `[ -f ... ]` takes both branches.
            let context = GrubMenu.Context(grubenv: ["saved_entry": "1", "next_entry": "", "kernelopts": "root=/dev/vda1"],
                                           fileExists: { $0.utf8.count % 2 == 0 },
                                           blsEntries: [BLSEntry(id: "fedora", title: "Fedora", version: "6.1", linux: "/vmlinuz", options: ["$kernelopts"])],
                                           prefix: "/boot/grub2")
            let menu = try GrubMenu(statements: statements, context: context, source: "grub.cfg")
            _ = menu.resolveDefault()
        },
        FuzzTarget(name: "grubenv", summary: "grubenv: the 1 KiB environment block") { input in
            _ = try GrubEnvironment.parse(input, source: "grubenv")
        },
        FuzzTarget(name: "bls", summary: "Boot Loader Specification entries (loader/entries/*.conf)") { input in
            let parts = FuzzInput.files(input, limit: 4)
            var entries: [BLSEntry] = []
            for (i, part) in parts.enumerated() {
                attempt { entries.append(try BLSEntry.parse(FuzzInput.text(part), id: "entry-\(i)", source: "entry-\(i).conf")) }
            }
            _ = BLSEntry.ordered(entries)
        },
        FuzzTarget(name: "extlinux", summary: "extlinux.conf / syslinux.cfg") { input in
            let config = try ExtlinuxConfig.parse(FuzzInput.text(input), source: "extlinux.conf")
            _ = config.defaultChoice()
        },
        FuzzTarget(name: "fstab", summary: "/etc/fstab and the device specs it names (UUID=, LABEL=, PARTUUID=, /dev/...)") { input in
            for entry in try FstabEntry.parse(FuzzInput.text(input), source: "fstab") {
                _ = DeviceSpec(fstab: entry.device)
            }
        },
        FuzzTarget(name: "os-release", summary: "/etc/os-release (shell-quoted key=value)") { input in
            _ = OSRelease(parsing: FuzzInput.text(input))
            _ = OSRelease.fields(FuzzInput.text(input))
        },
    ]
}
