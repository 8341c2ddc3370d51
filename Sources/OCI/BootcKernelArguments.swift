import WispCore

/// Kernel arguments a bootc image ships in `/usr/lib/bootc/kargs.d/*.toml`: files merged in
/// name order, each `kargs = ["a", "b=c"]` and an optional `match-architectures = [...]`
/// (Rust's architecture names: x86_64, aarch64, ...) that limits the file to those guests.
/// Any other key is an error naming the file, as bootc treats it.
///
/// Hand-written rather than TOMLKit: these files use two keys whose values are arrays of
/// strings, and a strict parser for exactly that subset (basic and literal strings, arrays
/// over several lines, comments) is some 100 lines, against a C++ TOML library in every
/// build. Anything outside the subset is refused with the file and line, never guessed.
public enum BootcKernelArguments {
    public struct File: Sendable, Equatable {
        public var name: String
        public var text: String
        public init(name: String, text: String) { self.name = name; self.text = text }
    }

    /// The merged arguments for `architecture`, from files given in any order.
    public static func merge(_ files: [File], architecture: String) throws -> [String] {
        var result: [String] = []
        for file in files.sorted(by: { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }) {
            let parsed = try parse(file)
            if let architectures = parsed.matchArchitectures, !architectures.contains(architecture) { continue }
            result += parsed.kargs
        }
        return result
    }

    struct Parsed: Equatable {
        var kargs: [String] = []
        var matchArchitectures: [String]?
    }

    static func parse(_ file: File) throws -> Parsed {
        guard file.text.utf8.count <= 1 << 20 else {
            throw WispError.corrupt(file.name, "bootc kargs.d file", "larger than 1 MiB")
        }
        var scanner = Scanner(file: file)
        var parsed = Parsed()
        var seen: Set<String> = []
        while true {
            scanner.skipBlankAndComments()
            guard !scanner.atEnd else { break }
            let key = try scanner.key()
            guard seen.insert(key).inserted else { throw scanner.error("key \"\(key)\" appears twice") }
            scanner.skipSpaces()
            guard scanner.take("=") else { throw scanner.error("expected = after \"\(key)\"") }
            scanner.skipSpaces()
            let values = try scanner.stringArray()
            scanner.skipSpaces()
            scanner.skipComment()
            guard scanner.atEnd || scanner.take("\n") || scanner.take("\r\n") else { throw scanner.error("expected the end of the line after the array") }
            switch key {
            case "kargs": parsed.kargs = values
            case "match-architectures": parsed.matchArchitectures = values
            default: throw scanner.error("unknown key \"\(key)\" (bootc knows kargs and match-architectures)")
            }
        }
        return parsed
    }

    struct Scanner {
        let file: File
        let bytes: [UInt8]
        var index = 0
        var line = 1

        init(file: File) {
            self.file = file
            bytes = Array(file.text.utf8)
        }

        var atEnd: Bool { index >= bytes.count }
        var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

        func error(_ detail: String) -> WispError {
            WispError.corrupt(file.name, "bootc kargs.d file", "line \(line): \(detail)")
        }

        mutating func take(_ text: String) -> Bool {
            let t = Array(text.utf8)
            guard index + t.count <= bytes.count, Array(bytes[index..<(index + t.count)]) == t else { return false }
            index += t.count
            line += t.filter { $0 == 0x0A }.count
            return true
        }

        mutating func skipSpaces() {
            while let b = peek, b == 0x20 || b == 0x09 { index += 1 }
        }

        mutating func skipComment() {
            guard peek == UInt8(ascii: "#") else { return }
            while let b = peek, b != 0x0A { index += 1 }
        }

        mutating func skipBlankAndComments() {
            while true {
                skipSpaces()
                skipComment()
                if take("\n") || take("\r\n") { continue }
                return
            }
        }

        mutating func key() throws -> String {
            let start = index
            while let b = peek, (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x2D || b == 0x5F {
                index += 1
            }
            guard index > start else { throw error("expected a key") }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        mutating func stringArray() throws -> [String] {
            guard take("[") else { throw error("expected an array of strings") }
            var values: [String] = []
            while true {
                skipBlankAndComments()
                if take("]") { return values }
                values.append(try string())
                guard values.count <= 4096 else { throw error("more than 4096 values") }
                skipBlankAndComments()
                if take(",") { continue }
                skipBlankAndComments()
                guard take("]") else { throw error("expected , or ] in the array") }
                return values
            }
        }

        mutating func string() throws -> String {
            if take("'") {
                let start = index
                while let b = peek, b != UInt8(ascii: "'") {
                    guard b != 0x0A else { throw error("a literal string ends at the line's end") }
                    index += 1
                }
                guard take("'") else { throw error("unterminated literal string") }
                return String(decoding: bytes[start..<(index - 1)], as: UTF8.self)
            }
            guard take("\"") else { throw error("expected a string") }
            var out: [UInt8] = []
            while true {
                guard let b = peek else { throw error("unterminated string") }
                index += 1
                switch b {
                case UInt8(ascii: "\""): return String(decoding: out, as: UTF8.self)
                case 0x0A: throw error("a string ends at the line's end")
                case UInt8(ascii: "\\"):
                    guard let e = peek else { throw error("unterminated escape") }
                    index += 1
                    switch e {
                    case UInt8(ascii: "\""): out.append(e)
                    case UInt8(ascii: "\\"): out.append(e)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    default: throw error("escape \\\(Character(Unicode.Scalar(e))) is not supported here")
                    }
                default: out.append(b)
                }
            }
        }
    }
}
