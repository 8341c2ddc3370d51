import WispCore

/// A distribution's checksum file, in whichever of the published formats it comes:
///
///     0f3e...  debian-13-genericcloud-amd64-20250814-2204.qcow2      (GNU: SHA512SUMS, SHA256SUMS,
///     0f3e... *ubuntu-24.04-server-cloudimg-amd64.img                 Alpine's .sha512, openSUSE's
///                                                                     .sha256, Arch's .SHA256)
///     SHA256 (Fedora-Cloud-Base-Generic-43-1.6.x86_64.qcow2) = 0f3e...  (BSD: Fedora, Alma, Rocky,
///                                                                        CentOS CHECKSUM)
///
/// optionally inside an OpenPGP clearsigned message (Fedora, Alma), whose dash-escaping is
/// undone. Lines that are neither (comments, `# file: N bytes`, blank lines, the signature
/// block) are skipped; a digest of the wrong length for the algorithm is not taken.
struct ChecksumList: Sendable, Equatable {
    struct Line: Sendable, Equatable {
        var name: String
        var hex: String
    }

    var lines: [Line]

    static let maxBytes = 4 << 20
    static let maxLines = 100_000

    /// Parses `bytes` (from `source`, for messages) keeping digests of `algorithm`.
    static func parse(_ bytes: [UInt8], algorithm: ChecksumAlgorithm, source: String) throws -> ChecksumList {
        guard bytes.count <= maxBytes else {
            throw WispError(.invalidArgument, "\(source): larger than \(maxBytes >> 20) MiB, not a checksum file")
        }
        var lines: [Line] = []
        var inSignature = false
        var signatureEnded = false
        var count = 0
        var all = bytes.split(separator: 10, omittingEmptySubsequences: true)
        // A clearsigned file: only what the signature covers counts, nothing before it.
        let begin = Array("-----BEGIN PGP SIGNED MESSAGE-----".utf8)
        let clearsigned: Bool
        if let start = all.firstIndex(where: { $0.starts(with: begin) }) {
            all = Array(all[start...])
            clearsigned = true
        } else {
            clearsigned = false
        }
        var seenBegin = false
        for raw in all {
            count += 1
            guard count <= maxLines else { throw WispError(.invalidArgument, "\(source): more than \(maxLines) lines, not a checksum file") }
            var line = raw.last == 13 ? raw.dropLast() : raw[...]
            let text = String(decoding: line, as: UTF8.self)
            // gpgv verifies only the first signed block: anything after its signature (appended
            // lines, a second signed message) is unsigned, so such a file is refused outright,
            // whether or not a keyring is here to check it, so one file never reads two ways.
            if signatureEnded {
                guard line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) else {
                    throw WispError(.corrupt, "\(source): text after the end of the OpenPGP signature is not signed; refusing the checksum file")
                }
                continue
            }
            if clearsigned && text.hasPrefix("-----BEGIN PGP SIGNED MESSAGE-----") {
                guard !seenBegin else {
                    throw WispError(.corrupt, "\(source): a second OpenPGP signed message inside the first; refusing the checksum file")
                }
                seenBegin = true
                continue
            }
            if text.hasPrefix("-----BEGIN PGP SIGNATURE-----") { inSignature = true; continue }
            if text.hasPrefix("-----END PGP SIGNATURE-----") { inSignature = false; signatureEnded = clearsigned; continue }
            if inSignature || text.hasPrefix("Hash:") { continue }
            // Clearsigned text escapes lines starting with '-' as "- -".
            if line.starts(with: Array("- ".utf8)) { line = line.dropFirst(2) }
            if let parsed = parseLine(Array(line), algorithm: algorithm) { lines.append(parsed) }
        }
        return ChecksumList(lines: lines)
    }

    static func parseLine(_ line: [UInt8], algorithm: ChecksumAlgorithm) -> Line? {
        let tag = algorithm == .sha256 ? "SHA256 (" : "SHA512 ("
        if line.starts(with: Array(tag.utf8)) {
            // BSD: TAG (NAME) = HEX, NAME may hold spaces and parentheses: split at the last ") = ".
            let body = line.dropFirst(tag.utf8.count)
            let marker = Array(") = ".utf8)
            guard body.count > marker.count else { return nil }
            var split: Int?
            var i = body.endIndex - marker.count
            while i >= body.startIndex {
                if body[i..<(i + marker.count)].elementsEqual(marker) { split = i; break }
                i -= 1
            }
            guard let split else { return nil }
            let name = String(decoding: body[body.startIndex..<split], as: UTF8.self)
            let hex = String(decoding: body[(split + marker.count)...], as: UTF8.self)
            return valid(name: name, hex: hex, algorithm: algorithm)
        }
        // GNU: HEX, two spaces or " *", NAME.
        let length = algorithm.hexLength
        guard line.count > length + 1 else { return nil }
        let hex = String(decoding: line[0..<length], as: UTF8.self)
        guard line[length] == 32 || line[length] == 9 else { return nil }
        var rest = line[(length + 1)...]
        if rest.first == 32 || rest.first == 42 { rest = rest.dropFirst() }
        return valid(name: String(decoding: rest, as: UTF8.self), hex: hex, algorithm: algorithm)
    }

    static func valid(name: String, hex: String, algorithm: ChecksumAlgorithm) -> Line? {
        guard hex.utf8.count == algorithm.hexLength, hex.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) || ($0 >= 65 && $0 <= 70) }),
              !name.isEmpty, name.utf8.count <= 1024, !DirectoryListing.hasControlCharacters(name) else { return nil }
        // A path in the list ("./name", "images/name") is matched by its last component.
        let leaf = name.split(separator: "/").last.map(String.init) ?? name
        return Line(name: leaf, hex: hex.lowercased())
    }

    /// The digest listed for `name`; two different digests for one name is an error.
    func digest(for name: String, source: String) throws -> String? {
        let found = Set(lines.filter { $0.name == name }.map(\.hex))
        guard found.count <= 1 else { throw WispError(.corrupt, "\(source): lists \(name) with \(found.count) different digests") }
        return found.first
    }

    var names: [String] { lines.map(\.name) }
}
