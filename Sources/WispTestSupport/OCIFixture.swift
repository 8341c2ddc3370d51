import Foundation
import WispCore

/// Fixture images made at test time by the real tools: umoci builds an OCI layout from
/// synthetic trees (ownership, modes, xattrs, device nodes, FIFOs, symlinks, hard links,
/// long names, whiteouts, an opaque directory) and adds two hand-made layers (python's
/// tarfile for PAX records and cross-layer hard links, GNU tar for sparse files and GNU
/// long names); skopeo turns the layout into the other transports.
public enum OCIFixture {
    public static let tag = "base"

    /// Builds `DIR/img` (tag `base`) and returns the layout's path.
    public static func makeLayout(in directory: String) throws -> String {
        try ToolRunner.check("bash", ["-c", script, "fixture", directory], environment: ["CRAFT": craftLayer])
        return "\(directory)/img"
    }

    static let craftLayer = #"""
    import io, sys, tarfile
    t = tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT)
    def add(name, kind=tarfile.REGTYPE, data=b'', mode=0o644, uid=0, gid=0, link='', pax=None, mtime=1600000000):
        i = tarfile.TarInfo(name)
        i.type, i.mode, i.uid, i.gid, i.linkname, i.mtime = kind, mode, uid, gid, link, mtime
        i.size = len(data) if kind == tarfile.REGTYPE else 0
        if pax: i.pax_headers = pax
        t.addfile(i, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    add('hl', tarfile.DIRTYPE, mode=0o755)
    add('hl/passwd-link', tarfile.LNKTYPE, link='etc/passwd')   # a file of a lower layer
    add('replace-file', tarfile.DIRTYPE, mode=0o750)             # a directory over a file
    add('replace-file/inside', data=b'inside\n')
    add('replace-dir', data=b'now a file\n', mode=0o600)         # a file over a directory
    add('opq2', tarfile.DIRTYPE, mode=0o755)
    add('opq2/fresh', data=b'fresh\n')
    add('opq2/.wh..wh..opq')                                     # after this layer's own entry
    add('etc/.wh.hostname-link')
    long = 'p' * 150
    add('pax', tarfile.DIRTYPE, mode=0o755)
    add('pax/' + long, tarfile.DIRTYPE, mode=0o755)
    add('pax/' + long + '/' + 'q' * 120, data=b'pax long name\n')
    add('pax/owner', data=b'owned\n', uid=3000000, gid=4000000, pax={'mtime': '1650000000.987654321'})
    add('pax/xattrs', data=b'labelled\n', pax={'SCHILY.xattr.security.selinux': 'system_u:object_r:bin_t:s0', 'SCHILY.xattr.user.note': 'hello'})
    add('pax/sticky', tarfile.DIRTYPE, mode=0o1777)
    t.close()
    """#

    static let script = #"""
    set -euo pipefail
    cd "$1"
    umoci init --layout img
    umoci new --image img:base
    # layer 1: a synthetic tree with everything a root filesystem holds
    mkdir -p l1/etc l1/bin l1/usr/lib l1/old l1/opq l1/opq2 l1/replace-dir/sub l1/tmp l1/dev l1/shared l1/setgid-dir
    printf 'root:x:0:0::/root:/bin/sh\n' > l1/etc/passwd
    echo host > l1/etc/hostname
    printf '#!/bin/sh\necho tool\n' > l1/bin/tool
    chmod 4755 l1/bin/tool
    setfattr -n user.comment -v "a tool" l1/bin/tool
    setfattr -n security.capability -v 0sAQAAAgAgAAAAAAAAAAAAAAAAAAA= l1/bin/tool
    chmod 2775 l1/setgid-dir
    chmod 1777 l1/tmp
    mknod l1/dev/null c 1 3
    mknod l1/dev/loop0 b 7 0
    mkfifo l1/dev/fifo
    echo lib > l1/usr/lib/libx.so
    ln -s usr/lib l1/lib
    ln -s /etc/hostname l1/etc/hostname-link
    echo a > l1/old/a
    echo b > l1/old/b
    echo 1 > l1/opq/lower1
    echo 2 > l1/opq2/lower2
    echo f > l1/replace-file
    echo d > l1/replace-dir/sub/x
    echo shared > l1/shared/one
    ln l1/shared/one l1/shared/two
    long=$(printf 'n%.0s' $(seq 1 200))
    mkdir -p "l1/deep/$long/$long"
    echo long > "l1/deep/$long/$long/file-with-a-long-name"
    echo big-owner > l1/owned
    chown 100000:200000 l1/owned
    head -c 300000 /dev/urandom > l1/random.bin
    touch -d '2021-02-03 04:05:06.123456789' l1/etc/hostname
    umoci insert --image img:base l1 /
    # layer 2: a whiteout
    umoci insert --image img:base --whiteout /old/a
    # layer 3: an opaque directory
    mkdir l3
    echo new > l3/upper
    umoci insert --image img:base --opaque l3 /opq
    # layer 4: PAX records, cross-layer hard link, replacements, opaque marker after entries
    printf '%s' "$CRAFT" > craft.py
    python3 craft.py layer4.tar
    umoci raw add-layer --image img:base layer4.tar
    # layer 5: GNU tar's PAX sparse file (umoci reads PAX sparse maps, not GNU 'S' entries)
    mkdir -p l5/sparse
    truncate -s 8M l5/sparse/file
    printf middle | dd of=l5/sparse/file bs=1 seek=4194304 conv=notrunc 2>/dev/null
    tar --format=pax --sparse --numeric-owner -cf layer5.tar -C l5 sparse
    umoci raw add-layer --image img:base layer5.tar
    # layer 6: GNU format: GNU long names and long link targets
    mkdir -p l6/gnu
    echo gnu > "l6/gnu/$(printf 'g%.0s' $(seq 1 150))"
    ln -s "$(printf 't%.0s' $(seq 1 150))" l6/gnu/long-target-link
    tar --format=gnu --numeric-owner -cf layer6.tar -C l6 gnu
    umoci raw add-layer --image img:base layer6.tar
    """#
}
