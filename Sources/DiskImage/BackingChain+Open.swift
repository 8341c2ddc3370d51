#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import WispCore

extension BackingChain {
    /// Opens a file of a resolved chain by its canonical path, refusing it unless it is
    /// still the file that was checked: same type (looked at before opening, so a FIFO or
    /// device put in its place is never opened) and same device and inode.
    static func openChecked(path: String, name: String, identity: FileIdentity, type: FileType,
                            writable: Bool) throws -> PosixFile {
        let st = try ChainResolver.status(of: path, name: name)
        guard BackingChain.FileType(mode: st.st_mode) == type, FileIdentity(st) == identity else {
            throw WispError(.failed, "\(name): \(path) changed since its backing chain was checked")
        }
        let file = try PosixFile(path: path, mode: writable ? .readWrite : .readOnly)
        var opened = stat()
        guard fstat(file.descriptor, &opened) == 0 else { throw WispError.posix("fstat", name, errno: errno) }
        guard FileIdentity(opened) == identity else {
            throw WispError(.failed, "\(name): \(path) changed since its backing chain was checked")
        }
        return file
    }

    func openFile(of member: Member) throws -> PosixFile {
        try Self.openChecked(path: member.path, name: member.name, identity: member.identity,
                             type: member.fileType, writable: !member.isReadOnly)
    }

    func openDataFile(_ dataFile: DataFile) throws -> PosixFile {
        try Self.openChecked(path: dataFile.path, name: dataFile.name, identity: dataFile.identity,
                             type: .regular, writable: !dataFile.isReadOnly)
    }

    /// The members from `index` down, opened bottom up: the device `members[index]` reads as.
    func openMembers(from index: Int) throws -> any BlockDevice {
        guard index < members.count else {
            throw WispError.invalidArgument("backing chain of \(top.name) has no member \(index)")
        }
        var below: (any BlockDevice)?
        for i in stride(from: members.count - 1, through: index, by: -1) {
            let member = members[i]
            switch member.format {
            case .raw:
                below = try FileBlockDevice(file: try openFile(of: member))
            case .qcow2:
                below = try Qcow2Image(chain: self, index: i, backing: below)
            case .vmdk:
                below = try VmdkImage(chain: self, index: i, backing: below)
            case .vhd, .vhdx, .vdi:
                let file = try FileBlockDevice(file: try openFile(of: member))
                below = try BlockMappedFormats.open(file, format: member.format, name: member.name, parent: below)
            default:
                throw WispError.unsupported(member.name, "\(member.format.rawValue) images are not supported yet")
            }
        }
        guard let device = below else {
            throw WispError.invalidArgument("backing chain of \(top.name) is empty")
        }
        return device
    }
}
