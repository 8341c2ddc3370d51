import CCrypt
#if canImport(Glibc)
import Glibc
#endif
import WispCore

/// Hashes passwords with libcrypt (libxcrypt): yescrypt (`$y$`, Debian's default) or
/// SHA-512 crypt (`$6$`). Salts come from crypt_gensalt's own OS randomness. The clear text
/// is copied only into buffers this type zeroes before returning.
public enum PasswordHasher {
    public enum Method: String, Sendable, CaseIterable {
        case yescrypt, sha512

        var prefix: String { self == .yescrypt ? "$y$" : "$6$" }
    }

    public static func hash(_ clear: String, method: Method = .yescrypt) throws -> String {
        try hash(bytes: Array(clear.utf8), method: method)
    }

    /// Hashes `clear` (no NUL allowed); the caller should zero its own copy afterwards.
    public static func hash(bytes clear: [UInt8], method: Method = .yescrypt) throws -> String {
        var setting = [CChar](repeating: 0, count: Int(CRYPT_GENSALT_OUTPUT_SIZE))
        let made = method.prefix.withCString { prefix in
            crypt_gensalt_rn(prefix, 0, nil, 0, &setting, Int32(setting.count))
        }
        guard made != nil, setting[0] != CChar(UInt8(ascii: "*")) else {
            throw WispError(.failed, "libcrypt could not make a \(method.rawValue) salt (crypt_gensalt: \(String(cString: strerror(errno))))")
        }
        return try hash(bytes: clear, setting: String(cString: setting))
    }

    /// Hashes with a given setting (`$6$salt`, `$y$j9T$salt`), or verifies against a full hash.
    public static func hash(bytes clear: [UInt8], setting: String) throws -> String {
        guard !clear.contains(0) else { throw WispError.invalidArgument("a password cannot contain a NUL byte") }
        var phrase = clear.map { CChar(bitPattern: $0) } + [0]
        defer { for i in phrase.indices { phrase[i] = 0 } }
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        let size = MemoryLayout<crypt_data>.size
        memset(data, 0, size)
        defer {
            memset(data, 0, size)
            data.deallocate()
        }
        guard let result = setting.withCString({ crypt_rn(&phrase, $0, data, Int32(size)) }) else {
            throw WispError(.failed, "libcrypt could not hash with setting \(setting): \(String(cString: strerror(errno)))")
        }
        let text = String(cString: result)
        guard !text.hasPrefix("*") else { throw WispError.invalidArgument("libcrypt rejected the setting \(setting)") }
        return text
    }

    /// True when `clear` hashes to `hashed`.
    public static func verify(_ clear: String, against hashed: String) -> Bool {
        (try? hash(bytes: Array(clear.utf8), setting: hashed)) == hashed
    }

    /// Whether `text` looks like a crypt(3) hash cloud-init can hand to chpasswd -e.
    public static func looksHashed(_ text: String) -> Bool {
        let known = ["$y$", "$6$", "$5$", "$2b$", "$2y$", "$2a$", "$gy$", "$7$", "$sha1$", "$1$"]
        return known.contains { text.hasPrefix($0) } && !text.contains(where: { $0 == ":" || $0.isWhitespace })
    }
}
