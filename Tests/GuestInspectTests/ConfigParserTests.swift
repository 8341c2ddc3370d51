import GuestInspect
import Testing
import WispCore
import WispTestSupport

/// Parsers for the guest's boot and system configuration, fed the text real distributions
/// write (trimmed), and malformed variants that must fail with a clear sentence.
@Suite struct ConfigParserTests {
    static let debianGrubCfg = CloudImageLayouts.debianGrubCfg

    func menu(_ text: String, grubenv: [String: String] = [:], bls: [BLSEntry] = []) throws -> GrubMenu {
        let statements = try GrubScriptParser.parse(text, source: "grub.cfg")
        return try GrubMenu(statements: statements,
                            context: .init(grubenv: grubenv, fileExists: { $0.hasSuffix("grubenv") && !grubenv.isEmpty },
                                           blsEntries: bls, prefix: "/boot/grub"),
                            source: "grub.cfg")
    }

    @Test func debianMenuAndDefault() throws {
        let m = try menu(Self.debianGrubCfg)
        #expect(m.entries.count == 4)
        let first = m.entries[0]
        #expect(first.title == "Debian GNU/Linux")
        #expect(first.id == "gnulinux-simple-0a2c0df2")
        #expect(first.kernel == "/boot/vmlinuz-6.1.0-28-cloud-amd64")
        #expect(first.kernelDevice == .fsUUID("0a2c0df2-25b1-4a5e-9d7e-5f1e2a3b4c5d"))
        #expect(first.arguments.joined(separator: " ") == "root=PARTUUID=1d5fa5a4-9b3c-4d7a-8f2e-3c4b5a697887 ro console=tty0 console=ttyS0,115200 earlyprintk=ttyS0,115200 consoleblank=0")
        #expect(first.initrds == ["/boot/initrd.img-6.1.0-28-cloud-amd64"])
        #expect(m.entries[2].submenuPath == ["Advanced options for Debian GNU/Linux"])
        let (index, reason) = m.resolveDefault()
        #expect(index == 0)
        #expect(reason.contains("\"0\""))
    }

    @Test func grubenvSubmenuPathDefault() throws {
        // GRUB_DEFAULT=saved with a "submenu>entry" saved_entry, by id and by title and index.
        let saved = Self.debianGrubCfg.replacingOccurrences(of: "set default=\"0\"", with: "set default=\"${saved_entry}\"")
        let byID = try menu(saved, grubenv: ["saved_entry": "gnulinux-advanced-0a2c0df2>gnulinux-6.1.0-27-cloud-amd64-advanced-0a2c0df2"])
        #expect(byID.resolveDefault().index == 2)
        #expect(byID.resolveDefault().reason.contains("saved_entry"))
        let byTitle = try menu(saved, grubenv: ["saved_entry": "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-28-cloud-amd64"])
        #expect(byTitle.resolveDefault().index == 1)
        let byIndex = try menu(saved, grubenv: ["saved_entry": "1>2"])
        #expect(byIndex.resolveDefault().index == 3)
        let missing = try menu(saved, grubenv: ["saved_entry": "no-such-entry"])
        #expect(missing.resolveDefault().index == 0)
        #expect(missing.resolveDefault().reason.contains("matches no menu entry"))
        // next_entry wins once, as the script says.
        let next = try menu(saved, grubenv: ["saved_entry": "0", "next_entry": "1>1"])
        #expect(next.resolveDefault().index == 2)
    }

    @Test func ubuntuVariablesAndSearch() throws {
        let text = """
            set default="0"
            if [ "${recordfail}" = 1 ] ; then
              set timeout=30
            else
              set timeout=0
            fi
            set linux_gfx_mode=keep
            export linux_gfx_mode
            if [ "${linux_gfx_mode}" != "text" ]; then
              set vt_handoff=vt.handoff=7
            else
              set vt_handoff=
            fi
            menuentry 'Ubuntu' --class ubuntu $menuentry_id_option 'gnulinux-simple-1234' {
            	recordfail
            	load_video
            	gfxmode $linux_gfx_mode
            	search --no-floppy --fs-uuid --set=root --hint-bios=hd0,gpt16 --hint-efi=hd0,gpt16 5b9c-boot
            	linux	/vmlinuz-6.8.0-49-generic root=LABEL=cloudimg-rootfs ro  console=tty1 console=ttyS0 $vt_handoff
            	initrd	/initrd.img-6.8.0-49-generic
            }
            menuentry 'Ubuntu, with Linux 6.8.0-49-generic (recovery mode)' --class ubuntu {
            	search --no-floppy --fs-uuid --set=root 5b9c-boot
            	linux	/vmlinuz-6.8.0-49-generic root=LABEL=cloudimg-rootfs ro recovery nomodeset dis_ucode_ldr $unset_variable
            }
            """
        let m = try menu(text)
        #expect(m.entries[0].kernelDevice == .fsUUID("5b9c-boot"))
        #expect(m.entries[0].arguments.joined(separator: " ") == "root=LABEL=cloudimg-rootfs ro console=tty1 console=ttyS0 vt.handoff=7")
        #expect(m.entries[1].arguments.last == "dis_ucode_ldr")  // unknown variables are dropped
        #expect(m.entries[1].initrds.isEmpty)
    }

    @Test func blsThroughBlscfgExpandsGrubenv() throws {
        let text = """
            set pager=1
            if [ -f ${config_directory}/grubenv ]; then
              load_env -f ${config_directory}/grubenv
            elif [ -s $prefix/grubenv ]; then
              load_env
            fi
            if [ "${next_entry}" ] ; then
               set default="${next_entry}"
            else
               set default="${saved_entry}"
            fi
            insmod blscfg
            blscfg
            """
        let entries = BLSEntry.ordered([
            try BLSEntry.parse("title Fedora (6.9.5)\nversion 6.9.5-200.fc40.x86_64\nlinux /vmlinuz-6.9.5-200.fc40.x86_64\ninitrd /initramfs-6.9.5-200.fc40.x86_64.img $tuned_initrd\noptions root=UUID=r ro rootflags=subvol=root $tuned_params\n", id: "abc-6.9.5-200.fc40.x86_64", source: "a.conf"),
            try BLSEntry.parse("title Fedora (6.10.3)\nversion 6.10.3-200.fc40.x86_64\nlinux /vmlinuz-6.10.3-200.fc40.x86_64\ninitrd /initramfs-6.10.3-200.fc40.x86_64.img $tuned_initrd\noptions root=UUID=r ro rootflags=subvol=root $tuned_params\n", id: "abc-6.10.3-200.fc40.x86_64", source: "b.conf"),
            try BLSEntry.parse("title Fedora (0-rescue-abc)\nversion 0-rescue-abc\nlinux /vmlinuz-0-rescue-abc\ninitrd /initramfs-0-rescue-abc.img\noptions root=UUID=r ro\n", id: "abc-0-rescue", source: "c.conf"),
        ])
        #expect(entries.map(\.id) == ["abc-6.10.3-200.fc40.x86_64", "abc-6.9.5-200.fc40.x86_64", "abc-0-rescue"])
        let m = try menu(text, grubenv: ["saved_entry": "abc-6.9.5-200.fc40.x86_64", "tuned_params": "skew_tick=1", "tuned_initrd": ""], bls: entries)
        #expect(m.entries.count == 3)
        #expect(m.resolveDefault().index == 1)
        #expect(m.entries[1].arguments.joined(separator: " ") == "root=UUID=r ro rootflags=subvol=root skew_tick=1")
        #expect(m.entries[1].initrds == ["/initramfs-6.9.5-200.fc40.x86_64.img"])
        // Without grubenv, the variables disappear instead of reaching the kernel.
        let bare = try menu(text, bls: entries)
        #expect(bare.entries[0].arguments.joined(separator: " ") == "root=UUID=r ro rootflags=subvol=root")
    }

    @Test func blsSortKeyAndMachineID() throws {
        let a = BLSEntry(id: "a", machineID: "m2", sortKey: "fedora", linux: "/a")
        let b = BLSEntry(id: "b", version: "6.9", machineID: "m1", sortKey: "fedora", linux: "/b")
        let c = BLSEntry(id: "c", version: "6.10", machineID: "m1", sortKey: "fedora", linux: "/c")
        let d = BLSEntry(id: "d", version: "9.0", linux: "/d")
        let e = BLSEntry(id: "e", sortKey: "arch", linux: "/e")
        #expect(BLSEntry.ordered([d, a, b, c, e]).map(\.id) == ["e", "c", "b", "a", "d"])
    }

    @Test func malformedGrubCfgGivesLineNumbers() throws {
        #expect { try GrubScriptParser.parse("menuentry 'x' {\n linux /vmlinuz\n", source: "/boot/grub/grub.cfg") } throws: {
            "\($0)" == "/boot/grub/grub.cfg: GRUB script line 1: menuentry has no closing \"}\""
        }
        #expect { try GrubScriptParser.parse("set a=b\nmenuentry 'x {\n}\n", source: "g") } throws: {
            "\($0)" == "g: GRUB script line 2: single quote is never closed"
        }
        #expect { try GrubScriptParser.parse("if [ a ]; then\n set x=y\n", source: "g") } throws: {
            "\($0)" == "g: GRUB script line 1: if has no \"fi\""
        }
        #expect { try GrubScriptParser.parse("}\n", source: "g") } throws: {
            "\($0)".contains("line 1: \"}\" without an open menuentry")
        }
        #expect { try GrubScriptParser.parse("menuentry {\n}\n", source: "g") } throws: {
            "\($0)".contains("menuentry has no title")
        } 
        let deep = String(repeating: "submenu 'x' {\n", count: 40) + String(repeating: "}\n", count: 40)
        #expect { try GrubScriptParser.parse(deep, source: "g") } throws: { "\($0)".contains("nest deeper than 32") }
        #expect { try menu("menuentry 'x' {\n linux\n}\n").entries } throws: {
            "\($0)".contains("line 2: linux without a kernel path")
        }
    }

    @Test func malformedBLSAndExtlinux() throws {
        #expect { try BLSEntry.parse("title x\noptions ro\n", id: "x", source: "/boot/loader/entries/x.conf") } throws: {
            "\($0)" == "/boot/loader/entries/x.conf: BLS entry: has no \"linux\" or \"efi\" line naming the kernel"
        }
        #expect { try BLSEntry.parse("title x\nlinux\n", id: "x", source: "e.conf") } throws: {
            "\($0)" == "e.conf: BLS entry line 2: \"linux\" has no value"
        }
        #expect { try ExtlinuxConfig.parse("DEFAULT x\nLABEL x\n  APPEND ro\n", source: "/boot/extlinux.conf") } throws: {
            "\($0)" == "/boot/extlinux.conf: extlinux configuration: has no LABEL with a KERNEL or LINUX line"
        }
        #expect { try ExtlinuxConfig.parse("LABEL\n", source: "e") } throws: { "\($0)" == "e: extlinux line 1: LABEL needs a value" }
        #expect { try ExtlinuxConfig.parse("LINUX /vmlinuz\n", source: "e") } throws: { "\($0)" == "e: extlinux line 1: linux outside a LABEL" || "\($0)" == "e: extlinux line 1: LINUX outside a LABEL" }
    }

    @Test func alpineExtlinux() throws {
        let text = """
            DEFAULT menu.c32
            PROMPT 0
            MENU TITLE Alpine/Linux Boot Menu
            MENU HIDDEN
            TIMEOUT 10
            LABEL virt
              MENU DEFAULT
              MENU LABEL Linux virt
              LINUX vmlinuz-virt
              INITRD initramfs-virt
              APPEND root=UUID=1111 modules=sd-mod,usb-storage,ext4 quiet rootfstype=ext4
            """
        let c = try ExtlinuxConfig.parse(text, source: "extlinux.conf")
        let (label, reason) = try #require(c.defaultChoice())
        #expect(label.name == "virt")
        #expect(reason.contains("MENU DEFAULT"))
        #expect(label.kernel == "vmlinuz-virt")
        #expect(label.initrds == ["initramfs-virt"])
        #expect(label.append == "root=UUID=1111 modules=sd-mod,usb-storage,ext4 quiet rootfstype=ext4")
    }

    @Test func grubenvFstabOsRelease() throws {
        var block = Array("# GRUB Environment Block\nsaved_entry=abc\nkernelopts=root=UUID=x ro\\\\quiet\n".utf8)
        block += [UInt8](repeating: UInt8(ascii: "#"), count: 1024 - block.count)
        let env = try GrubEnvironment.parse(block, source: "grubenv")
        #expect(env == ["saved_entry": "abc", "kernelopts": "root=UUID=x ro\\quiet"])
        #expect { try GrubEnvironment.parse(Array("saved_entry=x\n".utf8), source: "/boot/grub/grubenv") } throws: {
            "\($0)" == "/boot/grub/grubenv: GRUB environment block at offset 0: expected \"# GRUB Environment Block\" at the start"
        }
        let fstab = try FstabEntry.parse("""
            # comment
            UUID=abc / btrfs subvol=root,compress=zstd:1 0 0
            LABEL=my\\040boot /boot ext4 defaults 1 2
            /dev/vda15\t/boot/efi vfat umask=0077 0 1
            """, source: "fstab")
        #expect(fstab.count == 3)
        #expect(fstab[0].subvolume == "root")
        #expect(fstab[1].device == "LABEL=my boot")
        #expect(fstab[2].mountPoint == "/boot/efi")
        #expect { try FstabEntry.parse("UUID=abc\n", source: "/etc/fstab") } throws: { "\($0)".contains("/etc/fstab: fstab line 1: expected a device and a mount point") }
        let os = OSRelease(parsing: "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\nPRETTY_NAME='Debian GNU/Linux 12 (bookworm)'\n")
        #expect(os.id == "debian")
        #expect(os.versionID == "12")
        #expect(os.prettyName == "Debian GNU/Linux 12 (bookworm)")
    }
}
