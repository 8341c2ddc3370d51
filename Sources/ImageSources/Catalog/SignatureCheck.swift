import Foundation
import WispCore

/// Checks a checksum file's OpenPGP signature with `gpgv` (GnuPG's verify-only tool, which
/// trusts exactly the keys in the keyring it is given, never the user's keyring).
enum SignatureCheck {
    static let gpgvPaths = ["/usr/bin/gpgv", "/bin/gpgv", "/usr/local/bin/gpgv"]

    static var gpgv: String? { gpgvPaths.first { FileManager.default.isExecutableFile(atPath: $0) } }

    /// Whether a signature can be checked at all: gpgv and the keyring are installed.
    static func available(keyring: String) -> Bool {
        gpgv != nil && FileManager.default.isReadableFile(atPath: keyring)
    }

    /// Verifies `data` (clearsigned when `signature` is nil, else against the detached
    /// `signature`). Throws `.digestMismatch` naming `source` when gpgv says no.
    static func verify(data: [UInt8], signature: [UInt8]?, keyring: String, source: String) throws {
        guard let gpgv else { throw WispError(.notFound, "gpgv is not installed (apt install gpgv)") }
        let work = try TemporaryWorkDirectory()
        defer { work.remove() }
        let ring = try keyringFile(keyring, in: work.path)
        let dataPath = work.path + "/data"
        try Data(data).write(to: URL(fileURLWithPath: dataPath))
        var arguments = ["--keyring", ring]
        if let signature {
            let sigPath = work.path + "/data.sig"
            try Data(signature).write(to: URL(fileURLWithPath: sigPath))
            arguments += [sigPath, dataPath]
        } else {
            arguments.append(dataPath)
        }
        let (status, output) = try run(gpgv, home: work.path, arguments)
        guard status == 0 else {
            let said = output.split(separator: "\n").last.map(String.init) ?? "exit status \(status)"
            throw WispError(.digestMismatch, "\(source): the OpenPGP signature does not verify with \(keyring) (gpgv: \(said.prefix(200)))")
        }
    }

    /// gpgv reads binary keyrings; an ASCII-armored key file (as distribution-gpg-keys ships
    /// them) is turned into one with `gpg --dearmor` first.
    static func keyringFile(_ keyring: String, in directory: String) throws -> String {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: keyring))
        defer { try? handle.close() }
        let head = handle.readData(ofLength: 16)
        guard head.starts(with: Array("-----BEGIN".utf8)) else { return keyring }
        guard let gpg = ["/usr/bin/gpg", "/bin/gpg"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw WispError(.notFound, "\(keyring) is an armored key and gpg (to dearmor it) is not installed")
        }
        let out = directory + "/keyring.gpg"
        let (status, output) = try run(gpg, home: directory, ["--batch", "--yes", "--dearmor", "--output", out, keyring])
        guard status == 0 else { throw WispError(.processFailed, "gpg --dearmor \(keyring) failed: \(output.prefix(200))") }
        return out
    }

    /// `home` is GNUPGHOME: gpgv then trusts the given keyring only, not the user's trustedkeys.
    static func run(_ tool: String, home: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        var environment = ProcessInfo.processInfo.environment
        environment["GNUPGHOME"] = home
        process.environment = environment
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output.prefix(64 << 10), as: UTF8.self))
    }
}

/// A private scratch directory (mode 0700) for gpgv's inputs.
struct TemporaryWorkDirectory {
    let path: String

    init() throws {
        var template = Array((NSTemporaryDirectory() + "/wisp-gpgv-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> UnsafeMutablePointer<CChar>? in
            guard let base = buffer.baseAddress else { return nil }
            return mkdtemp(base)
        }
        guard let made else {
            throw WispError(.io, "could not make a temporary directory for gpgv")
        }
        path = String(cString: made)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}
