/// One name in a directory, compared and hashed by its UTF-8 bytes. Swift's own String
/// equality is canonical (an "é" precomposed equals "e" + combining acute), but to a
/// filesystem those are two different names, and a tar layer may hold both.
struct Ext4WriterName: Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    let string: String

    init(_ string: String) { self.string = string }
    init(stringLiteral value: String) { string = value }

    var bytes: [UInt8] { Array(string.utf8) }
    var description: String { string }

    static func == (a: Ext4WriterName, b: Ext4WriterName) -> Bool {
        a.string.utf8.elementsEqual(b.string.utf8)
    }

    func hash(into hasher: inout Hasher) {
        let hashed: Void? = string.utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if hashed == nil {
            for byte in string.utf8 { hasher.combine(byte) }
        }
    }
}
