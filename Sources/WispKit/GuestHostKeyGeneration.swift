import CloudInit
import Foundation
import WispCore

/// RSA and ECDSA host keys for a cloud-init guest, made by ssh-keygen while the image is
/// inspected. Wisp checks the guest by its ed25519 host key alone, but cloud-init's
/// phone_home module reads all three host key files whatever `post` asks for, and logs a
/// warning for each one missing; a guest given only the ed25519 key would print two on
/// every boot. RSA 3072 takes about 0.8 s of CPU here, so it is started early and runs
/// beside the inspection instead of after it. cloud-init up to 23.x (Debian 12 has 22.4)
/// also reads the DSA key: one is made too and handed in when the guest's phone_home
/// module names that file (sshd no longer offers DSA keys, so it only quiets the warning).
/// A host whose OpenSSH cannot make DSA keys any more skips it.
final class GuestHostKeyGeneration: @unchecked Sendable {
    private let directory: String
    private let processes: [(SSHHostKey.KeyType, Process, Pipe)]
    /// Set once the image is inspected: whether its phone_home reads the DSA key.
    var includeDSA = false

    /// Starts both ssh-keygen runs, writing into `directory` (the run's staging directory).
    init(in directory: String) throws {
        self.directory = directory
        let keygen = try HostCommands.sshKeygen()
        var started: [(SSHHostKey.KeyType, Process, Pipe)] = []
        for (type, arguments) in [(SSHHostKey.KeyType.rsa, ["-t", "rsa", "-b", "3072"]), (.ecdsa, ["-t", "ecdsa", "-b", "256"]), (.dsa, ["-t", "dsa"])] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: keygen)
            process.arguments = ["-q"] + arguments + ["-N", "", "-C", "wisp-host", "-f", Self.path(directory, type)]
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            process.standardInput = FileHandle.nullDevice
            try process.run()
            started.append((type, process, errors))
        }
        processes = started
    }

    static func path(_ directory: String, _ type: SSHHostKey.KeyType) -> String {
        "\(directory)/ssh_host_\(type.rawValue)_key"
    }

    /// The key pairs, once both runs have ended.
    func keys() throws -> [SSHHostKey] {
        try processes.compactMap { type, process, errors in
            process.waitUntilExit()
            let path = Self.path(directory, type)
            if type == .dsa && (!includeDSA || process.terminationStatus != 0) { return nil }
            guard process.terminationStatus == 0 else {
                let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                throw WispError(.processFailed, "ssh-keygen could not make the guest's \(type.rawValue) host key at \(path): \(text.prefix(200))")
            }
            return SSHHostKey(type: type, privateKey: try String(contentsOfFile: path, encoding: .utf8),
                              publicKey: try String(contentsOfFile: path + ".pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    /// Stops runs whose keys are not needed (a guest provisioned by systemd credentials).
    func cancel() {
        for (_, process, _) in processes where process.isRunning { process.terminate() }
        for (_, process, _) in processes { process.waitUntilExit() }
    }
}
