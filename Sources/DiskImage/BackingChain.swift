#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import WispCore

/// An image and every other file it draws data from (qcow2 backing files, external data
/// files), found by reading the image headers and checked against an
/// `ExternalReferencePolicy` before any member is opened for reading. `resolve` builds it;
/// `DiskImageFile.open(_:)` opens exactly these files, nothing the headers say besides.
///
/// It carries what a QEMU `-blockdev` graph needs so QEMU never follows a name itself:
/// for each member, bottom up, a `file` node (`filename: path`, `read-only: isReadOnly`),
/// for a data file another `file` node (`dataFile.path`), and a format node
/// (`driver: qemuDriver`, `file`, `read-only`; for qcow2 also `backing`: the next
/// member's node or null for the last one, and `data-file` when there is one).
public struct BackingChain: Sendable, Equatable {
    /// Members beyond this many (top included) are refused, as are loops.
    public static let maxDepth = 16

    /// The policy every member was checked against.
    public let policy: ExternalReferencePolicy
    /// The image first, then its backing file, its backing file's backing file... Never empty.
    public let members: [Member]

    public var top: Member { members[0] }

    init(policy: ExternalReferencePolicy, members: [Member]) {
        self.policy = policy
        self.members = members
    }

    /// One image of a chain.
    public struct Member: Sendable, Equatable {
        /// The file as Wisp reached it: the path the caller gave for the top; for a backing
        /// file its recorded name joined to the referencing image's directory (qemu-img's
        /// "full-backing-filename"). Used in messages.
        public let name: String
        /// The canonical path: absolute, no symbolic links, no `.` or `..`. What QEMU is given.
        public let path: String
        public let format: ImageFormat
        public let formatSource: FormatSource
        public let virtualSize: UInt64
        /// The top is writable when `resolve` was asked for a writable chain; backing files never are.
        public let isReadOnly: Bool
        /// The name the referencing image records for this member (nil for the top).
        public let recordedName: String?
        /// The qcow2 header (nil for raw), as read when the chain was resolved.
        public let qcow2Header: Qcow2Header?
        /// The external data file that holds this qcow2 image's guest data, if any.
        public let dataFile: DataFile?
        /// The file the checks were made on; opening verifies it is still the same one.
        public let identity: FileIdentity
        public let fileType: FileType
        /// A VMDK member's descriptor and checked extent files.
        public var vmdk: VmdkLayout? = nil
        /// A VHD, VHDX or VDI member's headers.
        public var blockMapped: BlockMappedHeader? = nil
        /// A differencing VHD or VHDX member's parent, as the locator Wisp followed records it.
        public var parentLocator: BlockMappedHeader.ParentLocator? = nil

        /// QEMU's block driver name for `format` (the `driver` of its format node).
        public var qemuDriver: String { format.qemuDriverName }
        /// The backing file name as recorded in this member's header.
        public var backingFile: String? {
            qcow2Header?.backingFile ?? vmdk.flatMap { $0.descriptor.hasParent ? $0.descriptor.parentFileNameHint : nil } ?? parentLocator?.path
        }
        /// The backing file format as recorded in this member's header.
        public var backingFormat: String? { qcow2Header?.backingFormat }
    }

    /// A qcow2 external data file: the file the image's L2 entries point into.
    public struct DataFile: Sendable, Equatable {
        /// As recorded in the image's header extension.
        public let recordedName: String
        /// The recorded name joined to the image's directory.
        public let name: String
        /// Canonical, like `Member.path`.
        public let path: String
        /// The data file is a valid raw image by itself (autoclear bit data_file_raw).
        public let isRaw: Bool
        public let isReadOnly: Bool
        public let identity: FileIdentity
    }

    /// Where a member's format came from.
    public enum FormatSource: String, Sendable, Codable, Equatable {
        /// The caller said (a user's -f, or the image source knows): never re-probed, so a
        /// raw image whose first bytes look like a qcow2 header stays raw.
        case caller
        /// The referencing qcow2 image's backing format extension.
        case header
        /// The file's magic (nothing said otherwise).
        case probe
    }

    /// A file's device and inode: the same file under whatever name or link.
    public struct FileIdentity: Sendable, Hashable {
        public let device: UInt64
        public let inode: UInt64

        init(_ st: stat) {
            device = UInt64(st.st_dev)
            inode = UInt64(st.st_ino)
        }
    }

    public enum FileType: String, Sendable, Equatable {
        case regular, directory, blockDevice, characterDevice, fifo, socket, symbolicLink, other

        init(mode: mode_t) {
            switch mode & S_IFMT {
            case S_IFREG: self = .regular
            case S_IFDIR: self = .directory
            case S_IFBLK: self = .blockDevice
            case S_IFCHR: self = .characterDevice
            case S_IFIFO: self = .fifo
            case S_IFSOCK: self = .socket
            case S_IFLNK: self = .symbolicLink
            default: self = .other
            }
        }

        /// "a FIFO", "a directory", ... for messages.
        var phrase: String {
            switch self {
            case .regular: return "a regular file"
            case .directory: return "a directory"
            case .blockDevice: return "a block device"
            case .characterDevice: return "a character device"
            case .fifo: return "a FIFO"
            case .socket: return "a socket"
            case .symbolicLink: return "a symbolic link"
            case .other: return "not a regular file"
            }
        }
    }
}
