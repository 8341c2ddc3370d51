import Foundation
import WispCore

/// The names in a web server's directory index (Apache, nginx, lighttpd and the mirrors'
/// own pages all link each entry with `href="NAME"` or `href="NAME/"`). Only plain relative
/// names are kept: no query, fragment, scheme, absolute path or `..`.
enum DirectoryListing {
    static let maxBytes = 4 << 20
    static let maxNames = 200_000

    /// Names of entries, each once, with a trailing `/` removed (directories and files are
    /// told apart by the pattern the catalog asks for, not by the page).
    static func names(in bytes: [UInt8]) -> [String] {
        var names: [String] = []
        var seen = Set<String>()
        let marker = Array("href=".utf8)
        var i = 0
        let end = min(bytes.count, maxBytes)
        while i + marker.count < end && names.count < maxNames {
            // Case-insensitive "href=".
            var hit = true
            for k in 0..<marker.count where bytes[i + k] | 0x20 != marker[k] { hit = false; break }
            guard hit else { i += 1; continue }
            i += marker.count
            guard i < end else { break }
            let quote = bytes[i]
            let stop: (UInt8) -> Bool
            if quote == 34 || quote == 39 { i += 1; stop = { $0 == quote } } else { stop = { $0 == 32 || $0 == 62 || $0 == 9 } }
            let start = i
            while i < end && !stop(bytes[i]) && i - start < 1024 { i += 1 }
            var name = String(decoding: bytes[start..<i], as: UTF8.self)
            name = name.removingPercentEncodingSafely
            if name.hasPrefix("./") { name.removeFirst(2) }
            if name.hasSuffix("/") { name.removeLast() }
            guard !name.isEmpty, name != "..", name != ".", !name.contains("/"), !name.contains("?"), !name.contains("#"),
                  !name.contains(":"), !Self.hasControlCharacters(name), seen.insert(name).inserted else { continue }
            names.append(name)
        }
        return names
    }

    /// A name with a C0 or C1 control character or DEL (raw, or percent-decoded from %1B and
    /// the like) is never a real image's name and would reach the terminal: not taken.
    static func hasControlCharacters(_ name: String) -> Bool {
        name.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
    }
}

extension String {
    /// Percent-decoding that keeps the text as it was when it is not valid.
    fileprivate var removingPercentEncodingSafely: String {
        contains("%") ? (removingPercentEncoding ?? self) : self
    }
}
