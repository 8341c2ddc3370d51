import Foundation
import WispCore

/// Tracks the images opened along one backing chain, so a chain that loops back on itself
/// (a → b → a, found by device and inode, whatever the spelling of the path) or runs too
/// deep is refused instead of recursing forever.
struct BackingChainState {
    static let maxDepth = 16
    private var seen: [(device: UInt64, inode: UInt64, path: String)] = []

    mutating func enter(_ path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let code = errno
            if code == ENOENT {
                if let parent = seen.last {
                    throw WispError.notFound("\(parent.path): backing file \(path) does not exist")
                }
                throw WispError.notFound("\(path): no such file")
            }
            throw WispError.posix("stat", path, errno: code)
        }
        let key = (UInt64(st.st_dev), UInt64(st.st_ino))
        if let loop = seen.first(where: { $0.device == key.0 && $0.inode == key.1 }) {
            throw WispError.corrupt(seen.last?.path ?? path, "backing chain",
                                    "backing file \(path) is \(loop.path) again: the chain loops")
        }
        guard seen.count < Self.maxDepth else {
            throw WispError.corrupt(seen.first?.path ?? path, "backing chain",
                                    "more than \(Self.maxDepth) images deep (at \(path))")
        }
        seen.append((key.0, key.1, path))
    }
}
