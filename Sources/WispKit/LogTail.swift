import Foundation

/// `wisp logs --tail N`: where a log's last lines begin, without reading the whole log.
public enum LogTail {
    /// Where the last `count` lines start, read backwards in 64 KiB steps so a long log is
    /// not read whole. A last line without its newline counts as a line.
    public static func offsetOfLastLines(_ count: Int, in handle: FileHandle) throws -> UInt64 {
        let end = try handle.seekToEnd()
        guard end > 0 else { return 0 }
        var position = end
        var newlines = 0
        // The final newline ends the last line; it does not start one.
        try handle.seek(toOffset: end - 1)
        let endsWithNewline = handle.readData(ofLength: 1).first == 0x0A
        let wanted = count + (endsWithNewline ? 1 : 0)
        while position > 0 {
            let step = min(position, 64 << 10)
            position -= step
            try handle.seek(toOffset: position)
            let chunk = [UInt8](handle.readData(ofLength: Int(step)))
            for index in chunk.indices.reversed() where chunk[index] == 0x0A {
                newlines += 1
                if newlines == wanted { return position + UInt64(index) + 1 }
            }
        }
        return 0
    }
}
