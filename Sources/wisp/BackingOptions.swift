import ArgumentParser
import DiskImage

/// `--allow-backing DIR`, shared by every command that reads a local image with its
/// backing chain. Without it a chain may only use files in the image's own directory.
struct BackingOptions: ParsableArguments {
    @Option(name: .customLong("allow-backing"), help: ArgumentHelp(
        """
        Let the image's backing files and external data files also come from DIR \
        (repeatable; symbolic links are resolved first). Files in the image's own directory \
        are always allowed; devices, FIFOs and anything under /proc, /sys or /dev never are. \
        Example: --allow-backing ~/images/bases
        """,
        valueName: "DIR"))
    var allowBacking: [String] = []

    /// The policy local images are read under.
    var policy: ExternalReferencePolicy { .confined(allowedDirectories: allowBacking) }
}
