/// Which other files an image may make Wisp (and QEMU) read: qcow2 backing files and
/// external data files are names written inside the image, so whoever wrote the image
/// chooses them. An image from outside Wisp naming `/etc/shadow` as its backing file would
/// otherwise hand that file to the guest, or copy it into `wisp image convert`'s output
/// (the class of CVE-2024-32498).
///
/// `BackingChain.resolve` applies the policy to every member of a chain before any of
/// them is opened for reading; `DiskImageFile.open` reads only chains resolved that way.
public enum ExternalReferencePolicy: Sendable, Equatable, Hashable {
    /// The image must not refer to any other file: no backing file, no external data
    /// file. For images that came from outside (a URL, the catalog, an OCI registry, an
    /// OVA or box archive): whatever they name is refused before anything else is read.
    case selfContained

    /// The image may refer to regular files in its own directory (or below it) and in
    /// `allowedDirectories` (or below them), after every symbolic link is resolved. Never
    /// to devices, FIFOs, sockets or directories, never under /proc, /sys or /dev, never
    /// through `json:` specifications or protocol names (`nbd:`, `http:` ...). For images
    /// the user keeps on this machine.
    case confined(allowedDirectories: [String])

    /// Local images whose chain stays in the image's own directory: the default for
    /// library callers that do not say otherwise.
    public static let confinedToImageDirectory = ExternalReferencePolicy.confined(allowedDirectories: [])

    /// Whether the policy lets an image refer to other files at all.
    public var allowsReferences: Bool {
        if case .confined = self { return true }
        return false
    }
}
