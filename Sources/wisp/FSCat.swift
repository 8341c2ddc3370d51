import ArgumentParser
import FileSystems
import WispCore
import WispKit

struct FSCat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cat",
        abstract: "Print a file from inside a disk image (like virt-cat).",
        discussion: "The file is streamed in 1 MiB pieces, so files of any size can be piped."
    )

    @OptionGroup var options: FSImageOptions
    @Argument(help: "The file in the guest's tree; symlinks are followed inside the guest, across its mounts.") var path: String

    func run() async throws {
        do {
            let fs = try options.openFileSystem()
            let inode = try fs.resolve(path).inode
            let info = try fs.stat(inode: inode)
            guard info.type == .regular else {
                throw WispError.invalidArgument("\(path): is a \(info.type.rawValue), not a regular file")
            }
            var offset: UInt64 = 0
            while offset < info.size {
                let piece = try fs.read(inode: inode, offset: offset, count: Int(min(1 << 20, info.size - offset)))
                if piece.isEmpty { break }
                try FileOutput.write(piece, to: 1, name: "standard output")
                offset += UInt64(piece.count)
            }
        }
    }
}
