/// The bash lines shared by the fixtures that turn the Debian test image's root into a
/// bootc-style image: `wisp fs get` the tree into ./root, then the kernel and initramfs
/// moved to /usr/lib/modules/$KVER/ (vmlinuz, initramfs.img), /boot's loader files and
/// the /vmlinuz, /initrd.img links dropped (a bootc image has none), /usr/lib/bootc/kargs.d
/// made. Expects `image` and `wisp` set; leaves `kver` set for what follows.
public enum BootcLayoutScript {
    public static let lines = #"""
    "$wisp" fs get "$image" / -o root
    kver=$(cd root/boot && ls vmlinuz-* | sed 's/^vmlinuz-//' | sort -V | tail -1)
    mkdir -p "root/usr/lib/modules/$kver" root/usr/lib/bootc/kargs.d
    mv "root/boot/vmlinuz-$kver" "root/usr/lib/modules/$kver/vmlinuz"
    mv "root/boot/initrd.img-$kver" "root/usr/lib/modules/$kver/initramfs.img"
    rm -rf root/boot/grub root/boot/efi root/boot/System.map-* root/boot/config-* root/vmlinuz* root/initrd.img*
    """#
}
